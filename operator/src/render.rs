//! Placeholder for `osartifact-operator render` until the template engineer's version lands.

/// Arguments of `osartifact-operator render`.
#[derive(clap::Args, Debug, Clone)]
pub struct RenderArgs {}

/// Runs `render`; returns the process exit code.
pub fn run(_args: &RenderArgs) -> i32 {
    eprintln!("render: not available in this build");
    2
}
