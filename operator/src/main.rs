//! `osartifact-operator`: reconciles OSArtifacts into builds (`run`), previews them (`plan`),
//! renders Dockerfile templates (`render`) and prints the CRD (`crd`).

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "osartifact-operator", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Print the OSArtifact CustomResourceDefinition as YAML.
    Crd,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => print!("{}", osartifact_shared::crd::crd_yaml()),
        None => {}
    }
}
