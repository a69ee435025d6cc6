//! Where things are: the workspace, the cargo target dir, the product binaries and the
//! control-plane binaries. A missing binary is an error that says how to build it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};

/// The workspace root (the parent of this crate).
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// `CARGO_TARGET_DIR`, else `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace().join(d)
            }
        }
        None => workspace().join("target"),
    }
}

/// `debug` unless `OSARTIFACT_E2E_PROFILE=release`.
pub fn profile() -> String {
    std::env::var("OSARTIFACT_E2E_PROFILE").unwrap_or_else(|_| "debug".into())
}

/// A product binary (`osartifact-operator`, `osartifact-webhook`) from the target dir.
pub fn product_binary(name: &str) -> Result<PathBuf> {
    let profile = profile();
    let p = target_dir().join(&profile).join(name);
    if !p.is_file() {
        let flag = if profile == "release" {
            " --release"
        } else {
            ""
        };
        bail!(
            "{} not found: build it first with `cargo build{flag} --bins` (or `just test`)",
            p.display()
        );
    }
    Ok(p)
}

/// The directory with etcd, kube-apiserver, kube-controller-manager and kubectl:
/// `OSARTIFACT_CONTROLPLANE_BIN`, else the last stdout line of `e2e/controlplane/build.sh`.
pub fn controlplane_bin() -> Result<PathBuf> {
    static DIR: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    DIR.get_or_init(|| find_controlplane_bin().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn find_controlplane_bin() -> Result<PathBuf> {
    let dir = match std::env::var_os("OSARTIFACT_CONTROLPLANE_BIN") {
        Some(d) => PathBuf::from(d),
        None => {
            let script = workspace().join("e2e/controlplane/build.sh");
            let out = Command::new("bash")
                .arg(&script)
                .output()
                .with_context(|| format!("running {}", script.display()))?;
            if !out.status.success() {
                bail!(
                    "`bash e2e/controlplane/build.sh` failed ({}); run it by hand to see why:\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            PathBuf::from(stdout.lines().last().unwrap_or_default().trim())
        }
    };
    for b in [
        "etcd",
        "kube-apiserver",
        "kube-controller-manager",
        "kubectl",
    ] {
        if !dir.join(b).is_file() {
            bail!(
                "{b} missing in {}: run `bash e2e/controlplane/build.sh` (or set OSARTIFACT_CONTROLPLANE_BIN)",
                dir.display()
            );
        }
    }
    Ok(dir)
}

/// `<target>/e2e-logs/<name>`: emptied at start, kept after the run for reading.
pub fn log_dir(name: &str) -> Result<PathBuf> {
    let d = target_dir().join("e2e-logs").join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

/// The name of the running test binary without cargo's hash suffix (`crd-0123abcd` → `crd`).
pub fn test_binary_name() -> String {
    let exe = std::env::current_exe().ok();
    let stem = exe
        .as_deref()
        .and_then(|p| p.file_stem())
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "e2e".into());
    match stem.rsplit_once('-') {
        Some((base, hash)) if hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit()) => {
            base.to_string()
        }
        _ => stem,
    }
}

/// `OSARTIFACT_CACHE`, else `$HOME/.cache/osartifact`: where the scripts keep what they build.
pub fn cache_root() -> PathBuf {
    match std::env::var_os("OSARTIFACT_CACHE") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/root".into()))
            .join(".cache/osartifact"),
    }
}

/// A node tool that `install-tools.sh node` unpacks into the cache instead of installing
/// (Debian's docker-registry package would start a registry on the host).
pub fn node_tool(name: &str) -> Result<PathBuf> {
    let p = cache_root().join("node/root/usr/bin").join(name);
    if !p.is_file() {
        bail!(
            "{} not found: run `bash e2e/controlplane/install-tools.sh node`",
            p.display()
        );
    }
    Ok(p)
}

/// The target triple of the static product binaries that go into the cluster's images.
pub const IMAGE_TARGET: &str = "x86_64-unknown-linux-gnu";

/// A product binary linked statically (`just images-local` builds them): what the local
/// images carry, as the musl build of images/Dockerfile would.
pub fn static_product_binary(name: &str) -> Result<PathBuf> {
    let p = target_dir().join(IMAGE_TARGET).join("release").join(name);
    if !p.is_file() {
        bail!(
            "{} not found: build it with `just static-bins` (or `just test`)",
            p.display()
        );
    }
    Ok(p)
}
