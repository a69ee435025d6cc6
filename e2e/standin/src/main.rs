//! osartifact-standin: a stand-in for AuroraBoot v0.24.0 and luet in the one-node test
//! cluster's builder pod, where the real images cannot be pulled.
//!
//! It is a multi-call binary: called as `auroraboot` or `luet` (the image links both names to
//! it), or as `osartifact-standin auroraboot|luet ...`. It holds the operator to the tools'
//! command-line contract (docs in README.md) and writes real outputs with the real names and
//! modes, using the real file-system tools for the file systems.

mod archive;
mod auroraboot;
mod cli;
mod copy;
mod digest;
mod disk;
mod http;
mod iso;
mod layers;
mod log;
mod luet;
mod registry;
mod release;
mod tools;

#[cfg(test)]
mod tests;

use std::path::Path;
use std::process::ExitCode;

/// What the binary was called as.
fn personality(argv0: &str) -> Option<&'static str> {
    match Path::new(argv0).file_name().and_then(|n| n.to_str()) {
        Some("auroraboot") => Some("auroraboot"),
        Some("luet") => Some("luet"),
        _ => None,
    }
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = if args.is_empty() {
        String::new()
    } else {
        args.remove(0)
    };
    let tool = match personality(&argv0) {
        Some(t) => t,
        None => match args.first().map(String::as_str) {
            Some("auroraboot") => {
                args.remove(0);
                "auroraboot"
            }
            Some("luet") => {
                args.remove(0);
                "luet"
            }
            _ => {
                eprintln!(
                    "osartifact-standin: call me as auroraboot or luet (symlinks), or as \
                     `osartifact-standin auroraboot|luet ARGS...`"
                );
                return ExitCode::from(1);
            }
        },
    };
    let result = match tool {
        "auroraboot" => auroraboot::main(&args),
        _ => luet::main(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(usage) = e.downcast_ref::<cli::UsageError>() {
                if tool == "luet" {
                    eprintln!("Error: {usage}");
                } else if usage.0.starts_with("osartifact-standin:") {
                    eprintln!("{usage}");
                } else {
                    eprintln!("Incorrect Usage: {usage}");
                }
            } else {
                log::error(format!("{e:#}"));
            }
            ExitCode::from(1)
        }
    }
}
