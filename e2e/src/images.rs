//! Images of real programs from this machine's Debian packages, for the one-node cluster:
//! the executable, the shared libraries `ldd` names, and the data files it reads.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::oci::{Config, Entry, Image};

/// The shared libraries (and the loader) `ldd` lists for `exe`, as paths in the image.
fn shared_libraries(exe: &Path) -> Result<Vec<String>> {
    let out = Command::new("ldd")
        .arg(exe)
        .output()
        .with_context(|| format!("running ldd {}", exe.display()))?;
    if !out.status.success() {
        bail!(
            "ldd {} failed: {}",
            exe.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut libs = Vec::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        // "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)"
        let path = match line.split_once("=>") {
            Some((_, rest)) => rest.split_whitespace().next(),
            None => line.split_whitespace().next(),
        };
        if let Some(p) = path.filter(|p| p.starts_with('/')) {
            libs.push(p.to_string());
        }
    }
    Ok(libs)
}

/// Debian's nginx (the `nginx` package) as manifests/nginx runs it: `nginx` on PATH, as uid
/// 101, every path from its command line and ConfigMap; nothing else of the package is used.
pub fn nginx_image() -> Result<Image> {
    let exe = Path::new("/usr/sbin/nginx");
    if !exe.is_file() {
        bail!("/usr/sbin/nginx not found: `apt-get install nginx`");
    }
    let mut entries = vec![
        Entry::copy("/usr/sbin/nginx", 0o755, exe),
        Entry::file(
            "/etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/sbin/nologin\nnginx:x:101:101:nginx:/nonexistent:/sbin/nologin\n",
        ),
        Entry::file("/etc/group", 0o644, "root:x:0:\nnginx:x:101:\n"),
        Entry::dir("/tmp", 0o1777),
        // Opened before the command line's `-e stderr` takes effect.
        Entry::dir("/var/log/nginx", 0o755),
    ];
    for lib in shared_libraries(exe)? {
        entries.push(Entry::copy(&lib, 0o755, &lib));
    }
    let config = Config {
        entrypoint: vec!["nginx".into()],
        env: vec!["PATH=/usr/sbin:/usr/bin:/sbin:/bin".into()],
        user: "101:101".into(),
        labels: BTreeMap::from([(
            "org.opencontainers.image.title".into(),
            "osartifact e2e nginx (Debian's)".into(),
        )]),
        ..Config::default()
    };
    Ok(Image { entries, config })
}
