//! Running the real file-system tools (mksquashfs, xorriso, mkfs.*, mcopy, sgdisk) the way
//! AuroraBoot's runner does: the command line at debug level, output captured, a failure
//! returned as an error with the tool's output.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::process::Command;

use anyhow::{Result, bail};

use crate::log;

/// Runs `program args...`, returning its combined output.
pub fn run<I, S>(program: &str, args: I) -> Result<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args
        .into_iter()
        .map(|a| a.as_ref().to_os_string())
        .collect();
    let shown = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    log::debug(format!("Running cmd: '{program} {shown}'"));
    let out = match Command::new(program).args(&args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            bail!("exec: \"{program}\": executable file not found in $PATH")
        }
        Err(e) => bail!("exec: \"{program}\": {e}"),
    };
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    if !out.status.success() {
        let status = match out.status.code() {
            Some(c) => format!("exit status {c}"),
            None => "killed by a signal".to_string(),
        };
        bail!("{program} {shown}: {status}: {}", text.trim());
    }
    log::debug(format!("{program} output: {}", text.trim()));
    Ok(text)
}

#[cfg(test)]
pub mod test_support {
    /// Panics with the install hint when a tool the test needs is missing (tests do not skip).
    pub fn require(tools: &[&str]) {
        for tool in tools {
            let found = std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
                .unwrap_or(false);
            assert!(
                found,
                "`{tool}` is not on PATH: run `bash e2e/controlplane/install-tools.sh` \
                 (it installs xorriso, squashfs-tools, mtools, dosfstools, gdisk, e2fsprogs)"
            );
        }
    }
}
