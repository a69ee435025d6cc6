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
    let mut r = Rootfs::default().library_links();
    r.program("/usr/sbin/nginx", exe)?;
    let mut entries = r.into_entries();
    entries.extend([
        Entry::file(
            "/etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/sbin/nologin\nnginx:x:101:101:nginx:/nonexistent:/sbin/nologin\n",
        ),
        Entry::file("/etc/group", 0o644, "root:x:0:\nnginx:x:101:\n"),
        Entry::dir("/tmp", 0o1777),
        // Opened before the command line's `-e stderr` takes effect.
        Entry::dir("/var/log/nginx", 0o755),
    ]);
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

/// Directories of a package that no program reads at run time.
const UNUSED_DIRS: &[&str] = &[
    "/usr/share/doc/",
    "/usr/share/man/",
    "/usr/share/info/",
    "/usr/share/locale/",
    "/usr/share/lintian/",
    "/usr/share/bug/",
    "/usr/share/menu/",
    "/usr/share/bash-completion/",
    "/usr/share/zsh/",
    "/usr/share/fish/",
    "/usr/lib/systemd/",
    "/etc/init.d/",
];

/// The path a file has on a merged-/usr system (Debian 12): `/bin/x` is `/usr/bin/x`.
fn merged_usr(path: &str) -> String {
    for top in ["/bin/", "/sbin/", "/lib/", "/lib64/"] {
        if let Some(rest) = path.strip_prefix(top) {
            return format!("/usr{top}{rest}");
        }
    }
    path.to_string()
}

fn is_elf(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0u8; 4];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok()
        && magic == *b"\x7fELF"
}

/// A root file system assembled from this machine's installed Debian packages: their files
/// (documentation left out) at their merged-/usr paths, and every shared library their
/// programs load, so the programs run as they do on the host. /bin, /sbin, /lib and /lib64
/// are links into /usr, as on Debian 12.
#[derive(Default)]
pub struct Rootfs {
    entries: BTreeMap<String, Entry>,
}

impl Rootfs {
    pub fn new() -> Self {
        let mut r = Rootfs::default();
        for top in ["bin", "sbin", "lib", "lib64"] {
            r.add(Entry::symlink(&format!("/{top}"), &format!("usr/{top}")));
        }
        r.add(Entry::dir("/tmp", 0o1777));
        r.add(Entry::dir("/root", 0o700));
        r
    }

    /// With /lib and /lib64 as links into /usr only, for an image whose /bin is not merged
    /// (busybox's): the programs' libraries are at their merged-/usr paths.
    pub fn library_links(mut self) -> Self {
        for top in ["lib", "lib64"] {
            self.add(Entry::symlink(&format!("/{top}"), &format!("usr/{top}")));
        }
        self
    }

    /// Adds (or replaces) one entry.
    pub fn add(&mut self, e: Entry) {
        self.entries.insert(e.path.clone(), e);
    }

    /// Every file of the installed Debian packages `pkgs`, with the libraries they load.
    pub fn packages(&mut self, pkgs: &[&str]) -> Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for pkg in pkgs {
            let out = Command::new("dpkg")
                .args(["-L", pkg])
                .output()
                .context("running dpkg -L")?;
            if !out.status.success() {
                bail!(
                    "Debian package {pkg} is not installed: run `bash e2e/controlplane/install-tools.sh node`"
                );
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let path = line.trim();
                if !path.starts_with('/') || UNUSED_DIRS.iter().any(|d| path.starts_with(d)) {
                    continue;
                }
                let p = Path::new(path);
                // dpkg also lists files a local policy excluded or another package diverted.
                let Ok(meta) = std::fs::symlink_metadata(p) else {
                    continue;
                };
                let dest = merged_usr(path);
                if meta.file_type().is_symlink() {
                    let target = std::fs::read_link(p)?;
                    self.add(Entry::symlink(&dest, &target.to_string_lossy()));
                } else if meta.is_file() {
                    self.add(Entry::copy(&dest, meta.permissions().mode() & 0o7777, p));
                    if is_elf(p) {
                        self.libraries_of(p)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// One host program at `dest`, with the libraries it loads.
    pub fn program(&mut self, dest: &str, src: &Path) -> Result<()> {
        self.add(Entry::copy(dest, 0o755, src));
        self.libraries_of(src)
    }

    fn libraries_of(&mut self, exe: &Path) -> Result<()> {
        // Static programs and plain shared objects without dependencies make ldd fail.
        let Ok(libs) = shared_libraries(exe) else {
            return Ok(());
        };
        for lib in libs {
            let dest = merged_usr(&lib);
            if !self.entries.contains_key(&dest) {
                self.add(Entry::copy(&dest, 0o755, &lib));
            }
        }
        Ok(())
    }

    /// glibc's character-set converters for the DOS code pages, which iconv loads at run time
    /// (mtools converts FAT file names with them; ldd cannot see them).
    pub fn dos_code_pages(&mut self) -> Result<()> {
        let dir = Path::new("/usr/lib/x86_64-linux-gnu/gconv");
        for f in [
            "gconv-modules",
            "gconv-modules.cache",
            "IBM437.so",
            "IBM850.so",
        ] {
            let p = dir.join(f);
            if p.is_file() {
                self.add(Entry::copy(&p.to_string_lossy(), 0o644, &p));
            }
        }
        if let Ok(rd) = std::fs::read_dir(dir.join("gconv-modules.d")) {
            for e in rd.flatten() {
                let p = e.path();
                self.add(Entry::copy(&p.to_string_lossy(), 0o644, &p));
            }
        }
        Ok(())
    }

    pub fn into_entries(self) -> Vec<Entry> {
        self.entries.into_values().collect()
    }
}
