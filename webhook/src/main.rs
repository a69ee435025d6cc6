//! `osartifact-webhook`: parses flags, sets up logging and runs the chosen subcommand.

use clap::Parser;
use osartifact_webhook::cli::{Cli, Command, LogFormat};
use osartifact_webhook::{certs_cmd, check, serve, tls};
use tracing_subscriber::EnvFilter;

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() {
    let cli = Cli::parse();
    let command = cli.command.unwrap_or(Command::Serve(Box::new(cli.serve)));
    if let Command::Check(args) = &command {
        std::process::exit(check::run(args));
    }
    init_logging(cli.log_format);
    tls::install_crypto_provider();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        match command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Certs(cmd) => certs_cmd::run(cmd).await,
            Command::Check(_) => Ok(()),
        }
    });
    if let Err(e) = result {
        // Logging is set up by now, so the error goes out in the chosen format (text or JSON).
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}
