//! The `auroraboot` personality: urfave/cli v2 dispatch of AuroraBoot v0.24.0's app-level
//! flags and the subcommands the operator uses (`unpack`, `build-iso`, `netboot`, and the
//! top-level disk action).

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::archive::DockerArchive;
use crate::cli::{self, Kind, Spec, UsageError};
use crate::{disk, iso, log, registry};

pub const APP_FLAGS: &[Spec] = &[
    Spec::new(&["set"], Kind::StringSlice),
    Spec::new(&["cloud-config"], Kind::String),
    Spec::new(&["debug"], Kind::Bool),
    Spec::new(&["version", "v"], Kind::Bool),
];

pub const UNPACK_FLAGS: &[Spec] = &[
    Spec::new(&["arch"], Kind::String),
    Spec::new(&["loglevel", "l"], Kind::String),
    Spec::new(&["allow-insecure-registries"], Kind::Bool),
];

/// Subcommands AuroraBoot v0.24.0 has that the operator does not use.
const OTHER_COMMANDS: &[&str] = &[
    "build-uki",
    "genkey",
    "sysext",
    "start-pixie",
    "web",
    "redfish-deploy",
    "pxe-uki",
    "worker",
    "help",
    "h",
];

pub fn main(args: &[String]) -> Result<()> {
    let app = cli::parse_go(APP_FLAGS, args)?;
    if app.flags.help {
        println!("AuroraBoot (osartifact-standin): unpack, build-iso, netboot and the disk action");
        return Ok(());
    }
    if app.flags.bool("version") {
        println!("AuroraBoot version v0.24.0 (osartifact-standin)");
        return Ok(());
    }
    let Some(command) = app.rest.first().cloned() else {
        return disk::run(&app.flags);
    };
    let sub_args = &app.rest[1..];
    let run = |name: &str| -> Result<()> {
        // App-level flags are read only by the top-level action; a subcommand never sees them.
        if app.flags.string("cloud-config").is_some() || !app.flags.slice("set").is_empty() {
            bail!(UsageError(format!(
                "osartifact-standin: the app-level --cloud-config/--set given before '{name}' are \
                 ignored by AuroraBoot's {name} command (only the top-level action reads them)"
            )));
        }
        if app.flags.bool("debug") {
            log::warn(format!(
                "the app-level --debug does not reach '{name}' in AuroraBoot v0.24.0 (it is a no-op there)"
            ));
        }
        Ok(())
    };
    match command.as_str() {
        "unpack" | "pull" => {
            run("unpack")?;
            unpack(sub_args)
        }
        "build-iso" | "b" => {
            run("build-iso")?;
            iso::build_iso(sub_args)
        }
        "netboot" | "nb" => {
            run("netboot")?;
            iso::netboot(sub_args)
        }
        c if OTHER_COMMANDS.contains(&c) => {
            bail!("auroraboot {c}: not implemented by the stand-in (the operator does not use it)")
        }
        other => bail!(UsageError(format!(
            "osartifact-standin: '{other}' is not an AuroraBoot command; AuroraBoot would read it as \
             the top-level action's config file, which the stand-in does not support"
        ))),
    }
}

/// Refuses arguments past the ones a command reads: AuroraBoot would ignore them silently.
pub fn refuse_extra(command: &str, rest: &[String], wanted: usize, usage: &str) -> Result<()> {
    if rest.len() > wanted {
        bail!(UsageError(format!(
            "osartifact-standin: extra argument '{}': AuroraBoot's {command} reads only {usage} and \
             would ignore the rest",
            rest[wanted]
        )));
    }
    Ok(())
}

/// The host architecture in Go's spelling (AuroraBoot's default for pulls).
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "arm64",
        _ => "amd64",
    }
}

fn unpack(args: &[String]) -> Result<()> {
    let p = cli::parse_go(UNPACK_FLAGS, args)?;
    if p.flags.help {
        println!(
            "auroraboot unpack [--arch A] [--loglevel L] [--allow-insecure-registries] <image> <destination>"
        );
        return Ok(());
    }
    cli::refuse_flags_after_positional(&p)?;
    log::set_level(p.flags.string("loglevel").unwrap_or("info"));
    if p.rest.len() < 2 {
        bail!("requires <image> and <destination> arguments");
    }
    refuse_extra("unpack", &p.rest, 2, "<image> <destination>")?;
    let (image, dest) = (&p.rest[0], Path::new(&p.rest[1]));
    let arch = p.flags.string("arch").unwrap_or("");
    if !arch.is_empty() && arch != "amd64" && arch != "arm64" {
        bail!("invalid architecture '{arch}': must be 'amd64' or 'arm64'");
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dest)
        .context("failed to create destination directory")?;
    log::info(format!(
        "Unpacking container image image={image} destination={} arch={arch}",
        dest.display()
    ));
    let arch = if arch.is_empty() { host_arch() } else { arch };
    unpack_image(image, arch, dest).context("failed to unpack image")?;
    log::info(format!(
        "Successfully unpacked container image image={image} destination={}",
        dest.display()
    ));
    Ok(())
}

/// `ocifile:PATH` (a Docker archive) or a registry reference, applied onto `dest`.
pub fn unpack_image(image: &str, arch: &str, dest: &Path) -> Result<()> {
    if let Some(path) = image.strip_prefix("ocifile:") {
        return DockerArchive::open(Path::new(path))?.unpack_to(dest);
    }
    if image.contains("://") {
        bail!(
            "image source {image:?} is not supported by the stand-in (ocifile:PATH or a registry reference)"
        );
    }
    registry::pull_and_unpack(&registry::Settings::from_env(), image, arch, dest)
}
