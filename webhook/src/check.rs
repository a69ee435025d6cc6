//! `osartifact-webhook check`: validates OSArtifacts in YAML files with the webhook's rules.
//! (Being written by the lead engineer.)

/// Flags of `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// YAML file with one or more documents; `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
}

/// Runs the check and returns the process exit code: 0 admissible, 1 denied, 2 unreadable input.
pub fn run(_args: &CheckArgs) -> i32 {
    2
}
