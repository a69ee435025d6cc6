//! The directory copy AuroraBoot does with `rsync --archive --acls SRC/ DST/` (kairos-agent's
//! `SyncData`), reproduced in Rust because the builder image has no rsync.
//!
//! What matters for the operator is rsync's behaviour, not speed: symlinks are copied as
//! symlinks (kubelet's `..data` links in a ConfigMap volume arrive as links), a symlink in the
//! destination where the source has a directory is replaced by a directory (no `--keep-dirlinks`),
//! the source root's mode, owner and times are applied to the destination root (the trailing
//! slash transfers `.`), and a non-directory that meets a non-empty directory fails without
//! `--force`, with rsync's messages, after the rest was copied (rsync's exit status 23).

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::layers::{remove_all, set_times};

/// Copies the contents of `src` into `dst` (created if missing) like `rsync -a src/ dst/`.
pub fn archive_copy(src: &Path, dst: &Path) -> Result<()> {
    let md = fs::metadata(src)
        .with_context(|| format!("rsync: change_dir {}: failed", src.display()))?;
    if !md.is_dir() {
        bail!("rsync source {} is not a directory", src.display());
    }
    if !dst.exists() {
        fs::create_dir_all(dst).with_context(|| format!("mkdir {}", dst.display()))?;
    }
    let mut errors = Vec::new();
    copy_dir(src, dst, Path::new(""), &mut errors)?;
    apply_meta(dst, &md, false)?;
    if !errors.is_empty() {
        bail!(
            "rsync --archive --acls {}/ {}/: exit status 23 ({}; rsync error: some files/attrs were \
             not transferred (see previous errors) (code 23))",
            src.display(),
            dst.display(),
            errors.join("; ")
        );
    }
    Ok(())
}

fn copy_dir(src: &Path, dst: &Path, rel: &Path, errors: &mut Vec<String>) -> Result<()> {
    let mut names: Vec<_> = fs::read_dir(src)
        .with_context(|| format!("reading {}", src.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<io::Result<_>>()?;
    names.sort();
    for name in names {
        let s = src.join(&name);
        let d = dst.join(&name);
        let r = rel.join(&name);
        let smd = fs::symlink_metadata(&s).with_context(|| format!("lstat {}", s.display()))?;
        let dmd = fs::symlink_metadata(&d).ok();
        if smd.is_dir() {
            match &dmd {
                Some(m) if m.is_dir() => {}
                Some(_) => {
                    remove_all(&d)?;
                    fs::create_dir(&d).with_context(|| format!("mkdir {}", d.display()))?;
                }
                None => fs::create_dir(&d).with_context(|| format!("mkdir {}", d.display()))?,
            }
            copy_dir(&s, &d, &r, errors)?;
            apply_meta(&d, &smd, false)?;
            continue;
        }
        if let Some(m) = &dmd
            && m.is_dir()
        {
            if fs::read_dir(&d)?.next().is_some() {
                let what = if smd.file_type().is_symlink() {
                    "symlink"
                } else if smd.is_file() {
                    "regular file"
                } else {
                    "special file"
                };
                errors.push(format!(
                    "cannot delete non-empty directory: {}",
                    r.display()
                ));
                errors.push(format!(
                    "could not make way for new {what}: {}",
                    r.display()
                ));
                continue;
            }
            fs::remove_dir(&d)?;
        }
        // rsync writes a temporary file beside the target and renames it over.
        let tmp = temp_name(dst, &name);
        create_like(&s, &tmp, &smd)?;
        apply_meta(&tmp, &smd, smd.file_type().is_symlink())?;
        fs::rename(&tmp, &d)
            .with_context(|| format!("rename {} -> {}", tmp.display(), d.display()))?;
    }
    Ok(())
}

fn temp_name(dir: &Path, name: &std::ffi::OsStr) -> PathBuf {
    let mut n = std::ffi::OsString::from(".");
    n.push(name);
    n.push(format!(".{}", std::process::id()));
    dir.join(n)
}

fn create_like(src: &Path, dst: &Path, md: &fs::Metadata) -> Result<()> {
    let ft = md.file_type();
    if ft.is_symlink() {
        let target = fs::read_link(src)?;
        symlink(&target, dst).with_context(|| format!("symlink {}", dst.display()))?;
    } else if ft.is_file() {
        let mut from = File::open(src).with_context(|| format!("open {}", src.display()))?;
        let mut to = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dst)
            .with_context(|| format!("creating {}", dst.display()))?;
        io::copy(&mut from, &mut to).with_context(|| format!("copying {}", src.display()))?;
    } else if ft.is_fifo() || ft.is_socket() || ft.is_char_device() || ft.is_block_device() {
        let c = CString::new(dst.as_os_str().as_bytes())?;
        // SAFETY: c is a valid path; mode and rdev come from the source's lstat.
        let rc = unsafe {
            libc::mknod(
                c.as_ptr(),
                md.mode() as libc::mode_t,
                md.rdev() as libc::dev_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error())
                .with_context(|| format!("mknod {}", dst.display()));
        }
    } else {
        bail!("{}: unsupported file type", src.display());
    }
    Ok(())
}

fn apply_meta(path: &Path, md: &fs::Metadata, is_link: bool) -> Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: c is a valid path for the call.
    if unsafe { libc::lchown(c.as_ptr(), md.uid(), md.gid()) } != 0 {
        let err = io::Error::last_os_error();
        // SAFETY: geteuid has no preconditions.
        if !(err.raw_os_error() == Some(libc::EPERM) && unsafe { libc::geteuid() } != 0) {
            return Err(err).with_context(|| format!("lchown {}", path.display()));
        }
    }
    if !is_link {
        fs::set_permissions(path, fs::Permissions::from_mode(md.mode() & 0o7777))
            .with_context(|| format!("chmod {}", path.display()))?;
    }
    set_times(path, md.mtime(), md.mtime_nsec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_symlinks_as_symlinks_and_keeps_modes() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir_all(src.join("d")).unwrap();
        fs::write(src.join("d/f"), "x").unwrap();
        fs::set_permissions(src.join("d/f"), fs::Permissions::from_mode(0o4755)).unwrap();
        symlink("d/f", src.join("l")).unwrap();
        fs::set_permissions(&src, fs::Permissions::from_mode(0o777)).unwrap();
        fs::create_dir(&dst).unwrap();
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o755)).unwrap();
        archive_copy(&src, &dst).unwrap();
        assert_eq!(fs::read_link(dst.join("l")).unwrap(), Path::new("d/f"));
        assert_eq!(
            fs::metadata(dst.join("d/f")).unwrap().mode() & 0o7777,
            0o4755
        );
        // The trailing-slash copy transfers the source root's mode (builder-cli.md §4.3).
        assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o7777, 0o777);
        assert_eq!(
            fs::metadata(dst.join("d/f")).unwrap().mtime(),
            fs::metadata(src.join("d/f")).unwrap().mtime()
        );
    }

    /// A kubelet ConfigMap volume (`etc -> ..data/etc`) copied onto a rootfs with a real,
    /// non-empty /etc fails as rsync does (builder-cli.md §4.2).
    #[test]
    fn configmap_volume_over_a_real_etc_fails_like_rsync() {
        let t = tempfile::tempdir().unwrap();
        let (vol, root) = (t.path().join("vol"), t.path().join("root"));
        fs::create_dir_all(vol.join("..2026_01_01_00_00_00.1/etc")).unwrap();
        fs::write(vol.join("..2026_01_01_00_00_00.1/etc/motd"), "hi").unwrap();
        symlink("..2026_01_01_00_00_00.1", vol.join("..data")).unwrap();
        symlink("..data/etc", vol.join("etc")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        fs::write(root.join("etc/os-release"), "ID=x").unwrap();
        let err = archive_copy(&vol, &root).unwrap_err().to_string();
        assert!(err.contains("exit status 23"), "{err}");
        assert!(
            err.contains("could not make way for new symlink: etc"),
            "{err}"
        );
        // The rest was transferred, and /etc is untouched.
        assert!(
            fs::symlink_metadata(root.join("..data"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert!(root.join("etc/os-release").is_file());
    }

    #[test]
    fn replaces_files_and_dir_symlinks() {
        let t = tempfile::tempdir().unwrap();
        let (src, dst) = (t.path().join("src"), t.path().join("dst"));
        fs::create_dir_all(src.join("lib")).unwrap();
        fs::write(src.join("lib/x"), "new").unwrap();
        fs::write(src.join("f"), "new").unwrap();
        fs::create_dir_all(dst.join("usr/lib")).unwrap();
        symlink("usr/lib", dst.join("lib")).unwrap();
        fs::write(dst.join("f"), "old").unwrap();
        fs::create_dir(dst.join("empty")).unwrap();
        fs::write(src.join("empty"), "file now").unwrap();
        archive_copy(&src, &dst).unwrap();
        assert!(
            fs::symlink_metadata(dst.join("lib")).unwrap().is_dir(),
            "no --keep-dirlinks"
        );
        assert_eq!(fs::read_to_string(dst.join("f")).unwrap(), "new");
        assert_eq!(fs::read_to_string(dst.join("empty")).unwrap(), "file now");
    }
}
