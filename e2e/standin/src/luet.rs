//! The `luet` personality: `util pack` (and `util unpack`), with cobra's flag handling.

use std::path::Path;

use anyhow::{Result, bail};

use crate::archive::{self, DockerArchive};
use crate::cli::{self, Kind, Spec, UsageError};
use crate::{auroraboot, log, registry};

const GLOBAL_FLAGS: &[Spec] = &[Spec::new(&["debug", "d"], Kind::Bool)];

const PACK_FLAGS: &[Spec] = &[
    Spec::new(&["debug", "d"], Kind::Bool),
    Spec::new(&["arch"], Kind::String),
    Spec::new(&["os"], Kind::String),
];

const UNPACK_FLAGS: &[Spec] = &[
    Spec::new(&["debug", "d"], Kind::Bool),
    Spec::new(&["local"], Kind::Bool),
    Spec::new(&["platform"], Kind::String),
];

pub fn main(args: &[String]) -> Result<()> {
    // The command path is made of the leading non-flag words; cobra finds it before parsing.
    let words: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .take(2)
        .collect();
    match words.as_slice() {
        ["util", "pack", ..] => pack(&strip_words(args, &["util", "pack"])),
        ["util", "unpack", ..] => unpack(&strip_words(args, &["util", "unpack"])),
        [] => {
            let (flags, _) = cli::parse_pflag(GLOBAL_FLAGS, args)?;
            if flags.help {
                println!("luet (osartifact-standin): util pack, util unpack");
                return Ok(());
            }
            bail!("luet: no command given")
        }
        other => bail!("luet {}: not implemented by the stand-in", other.join(" ")),
    }
}

/// `args` without the first occurrence of each command word.
fn strip_words(args: &[String], words: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending: Vec<&str> = words.to_vec();
    for a in args {
        if !pending.is_empty() && a == pending[0] {
            pending.remove(0);
            continue;
        }
        out.push(a.clone());
    }
    out
}

fn pack(args: &[String]) -> Result<()> {
    let (flags, pos) = cli::parse_pflag(PACK_FLAGS, args)?;
    if flags.help {
        println!("luet util pack [--arch A] [--os O] image src.tar dst.tar");
        return Ok(());
    }
    if pos.len() != 3 {
        bail!(UsageError(format!(
            "accepts 3 arg(s), received {} (luet util pack image src.tar dst.tar)",
            pos.len()
        )));
    }
    log::set_debug(flags.bool("debug"));
    let arch = flags.string("arch").unwrap_or("amd64");
    let os = flags.string("os").unwrap_or("linux");
    let reference = registry::Reference::parse(&pos[0])?;
    log::info(format!(
        "Packing {} from {} into {}",
        pos[0], pos[1], pos[2]
    ));
    archive::pack(
        reference.tag_name().as_deref(),
        arch,
        os,
        Path::new(&pos[1]),
        Path::new(&pos[2]),
    )?;
    log::info(format!("Image {} written to {}", pos[0], pos[2]));
    Ok(())
}

fn unpack(args: &[String]) -> Result<()> {
    let (flags, pos) = cli::parse_pflag(UNPACK_FLAGS, args)?;
    if flags.help {
        println!("luet util unpack [--local] image path");
        return Ok(());
    }
    if pos.len() != 2 {
        bail!(UsageError(format!(
            "accepts 2 arg(s), received {} (luet util unpack image path)",
            pos.len()
        )));
    }
    log::set_debug(flags.bool("debug"));
    let (image, dest) = (&pos[0], Path::new(&pos[1]));
    std::fs::create_dir_all(dest)?;
    if flags.bool("local") && image.starts_with("file://") {
        // luet splits the reference on ":/" (pkg/helpers/docker/docker.go), so
        // file:///a/b.tar names the path //a/b.tar.
        let path = image.split_once(":/").map(|(_, p)| p).unwrap_or("");
        log::info(format!(
            "Unpacking local archive {path} to {}",
            dest.display()
        ));
        return DockerArchive::open(Path::new(path))?.unpack_to(dest);
    }
    if flags.bool("local") {
        bail!(
            "luet util unpack --local {image}: only file:// archives are supported by the stand-in (no docker daemon here)"
        );
    }
    let arch = flags
        .string("platform")
        .and_then(|p| p.strip_prefix("linux/"))
        .unwrap_or(auroraboot::host_arch());
    registry::pull_and_unpack(&registry::Settings::from_env(), image, arch, dest)
}
