//! `osartifact-operator`: reconciles OSArtifacts into builds (`run`, the default), previews them
//! (`plan`), renders Dockerfile templates (`render`) and prints the CRD (`crd`).

mod admin;
mod apply;
mod caches;
mod controller;
mod errors;
mod leader;
mod ledger;
mod metrics;
mod phase;
mod plan;
mod preview;
mod queue;
mod render;
mod run;
mod settings;
mod telemetry;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "osartifact-operator",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Without a subcommand the operator runs (same flags as `run`).
    #[command(flatten)]
    run: run::RunArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator (the default).
    Run(run::RunArgs),
    /// Print, as multi-document YAML, the objects the operator would create for each OSArtifact.
    Plan(preview::PlanArgs),
    /// Render a Dockerfile template as the operator does.
    Render(render::RenderArgs),
    /// Print the OSArtifact CustomResourceDefinition as YAML.
    Crd,
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Some(Command::Crd) => {
            print!("{}", osartifact_shared::crd::crd_yaml());
            0
        }
        Some(Command::Plan(args)) => preview::run(&args),
        Some(Command::Render(args)) => render::run(&args),
        Some(Command::Run(args)) => run::main(args),
        None => run::main(cli.run),
    };
    std::process::exit(code);
}
