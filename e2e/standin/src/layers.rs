//! Applying image layers to a directory the way containerd's `archive.Apply` does (which both
//! `auroraboot unpack` and `luet util unpack` use): whiteouts delete, opaque directories are
//! emptied of what earlier layers put there, an existing non-directory is replaced, the layer's
//! root entry is skipped (the destination keeps its own mode), and ownership, modes, times,
//! symlinks, hard links and device nodes are restored.
//!
//! Every path is resolved inside the destination: symlinks met on the way are followed as if
//! the destination were `/`, so nothing is ever created or removed outside it. Entry names that
//! climb above the root with `..` are refused.

use std::collections::HashSet;
use std::ffi::{CString, OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use flate2::read::MultiGzDecoder;
use tar::EntryType;

use crate::log;

/// How many symlinks one path may pass through (Linux's limit is 40; containerd's continuity
/// uses 255).
const MAX_LINKS: usize = 255;

/// Splits an archive path into clean components; `None` when it climbs above the root.
pub fn clean_components(path: &[u8]) -> Option<Vec<OsString>> {
    let mut out: Vec<OsString> = Vec::new();
    for comp in path.split(|b| *b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop()?;
            }
            c => out.push(OsStr::from_bytes(c).to_os_string()),
        }
    }
    Some(out)
}

/// Resolves `comps` as a directory path inside `root`, following symlinks as if `root` were
/// `/`. Missing directories are created with mode 0755 when `create` is set (containerd's
/// `mkparent`), otherwise `None` is returned for them.
pub fn resolve_dir(root: &Path, comps: &[OsString], create: bool) -> Result<Option<PathBuf>> {
    let mut stack: Vec<OsString> = Vec::new();
    let mut todo: Vec<OsString> = comps.iter().rev().cloned().collect();
    let mut links = 0;
    while let Some(comp) = todo.pop() {
        if comp == ".." {
            stack.pop();
            continue;
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(&stack);
        candidate.push(&comp);
        match fs::symlink_metadata(&candidate) {
            Ok(md) if md.file_type().is_symlink() => {
                links += 1;
                if links > MAX_LINKS {
                    bail!("{}: too many levels of symbolic links", candidate.display());
                }
                let target = fs::read_link(&candidate)?;
                let target = target.as_os_str().as_bytes();
                if target.starts_with(b"/") {
                    stack.clear();
                }
                for c in target.split(|b| *b == b'/').rev() {
                    match c {
                        b"" | b"." => {}
                        c => todo.push(OsStr::from_bytes(c).to_os_string()),
                    }
                }
            }
            Ok(md) if md.is_dir() => stack.push(comp),
            Ok(_) => bail!("{}: not a directory", candidate.display()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                fs::create_dir(&candidate)
                    .with_context(|| format!("creating parent {}", candidate.display()))?;
                set_mode(&candidate, 0o755)?;
                stack.push(comp);
            }
            Err(e) => return Err(e).with_context(|| format!("lstat {}", candidate.display())),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(&stack);
    Ok(Some(out))
}

fn cstr(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .with_context(|| format!("path with a NUL byte: {}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {}", path.display()))
}

fn lchown(path: &Path, uid: u64, gid: u64) -> Result<()> {
    let c = cstr(path)?;
    // SAFETY: c is a valid NUL-terminated path for the duration of the call.
    let rc = unsafe { libc::lchown(c.as_ptr(), uid as libc::uid_t, gid as libc::gid_t) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        // Unprivileged runs (unit tests) cannot chown; containerd ignores that case too.
        // SAFETY: geteuid has no preconditions.
        if err.raw_os_error() == Some(libc::EPERM) && unsafe { libc::geteuid() } != 0 {
            return Ok(());
        }
        return Err(err).with_context(|| format!("lchown {}", path.display()));
    }
    Ok(())
}

/// Sets atime and mtime of `path` itself (not a symlink's target).
pub fn set_times(path: &Path, secs: i64, nsecs: i64) -> Result<()> {
    let c = cstr(path)?;
    let ts = libc::timespec {
        tv_sec: secs as libc::time_t,
        tv_nsec: nsecs as libc::c_long,
    };
    let times = [ts, ts];
    // SAFETY: c and times are valid for the call; AT_FDCWD with an absolute or relative path.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("setting times of {}", path.display()));
    }
    Ok(())
}

fn mknod(path: &Path, kind: libc::mode_t, mode: u32, major: u32, minor: u32) -> Result<()> {
    let c = cstr(path)?;
    let dev = libc::makedev(major, minor);
    // SAFETY: c is a valid path; mknod has no memory preconditions.
    let rc = unsafe { libc::mknod(c.as_ptr(), kind | (mode as libc::mode_t & 0o7777), dev) };
    if rc != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("mknod {}", path.display()));
    }
    Ok(())
}

/// Removes `path` whatever it is, without following a symlink; absent is fine.
pub fn remove_all(path: &Path) -> Result<()> {
    match fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => {
            fs::remove_dir_all(path).with_context(|| format!("removing {}", path.display()))
        }
        Ok(_) => fs::remove_file(path).with_context(|| format!("removing {}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("lstat {}", path.display())),
    }
}

/// Wraps a layer stream in the decompressor its first bytes call for: gzip or none. Other
/// compressions fail clearly (containerd would handle zstd; the stand-in does not).
pub fn decompress<'a, R: Read + 'a>(reader: R, what: &str) -> Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::with_capacity(1 << 16, reader);
    let head = buf
        .fill_buf()
        .with_context(|| format!("reading {what}"))?
        .to_vec();
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok(Box::new(MultiGzDecoder::new(buf)));
    }
    if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        bail!("{what} is zstd-compressed: the stand-in unpacks tar and tar+gzip layers only");
    }
    if head.starts_with(b"BZh") || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        bail!("{what} is bzip2/xz-compressed: the stand-in unpacks tar and tar+gzip layers only");
    }
    Ok(Box::new(buf))
}

/// Applies one (uncompressed) tar layer onto `root`. Returns the number of entries written.
pub fn apply_layer<R: Read>(root: &Path, layer: R) -> Result<usize> {
    let mut archive = tar::Archive::new(layer);
    let mut unpacked: HashSet<PathBuf> = HashSet::new();
    let mut dirs: Vec<(PathBuf, i64)> = Vec::new();
    let mut count = 0;
    for entry in archive.entries().context("reading layer")? {
        let mut entry = entry.context("reading layer entry")?;
        let raw_name = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw_name).into_owned();
        let Some(comps) = clean_components(&raw_name) else {
            bail!("layer entry {shown:?} points outside the destination: refused");
        };
        let Some((base, parents)) = comps.split_last() else {
            log::debug(format!("file {shown:?} ignored: resolved to root"));
            continue;
        };
        let parent = resolve_dir(root, parents, true)?
            .context("parent directory vanished while resolving")?;
        let path = parent.join(base);
        let base_bytes = base.as_bytes();

        if let Some(orig) = base_bytes.strip_prefix(b".wh.") {
            if orig == b".wh..opq" {
                remove_not_unpacked(&parent, &unpacked)?;
            } else {
                remove_all(&parent.join(OsStr::from_bytes(orig)))?;
            }
            continue;
        }

        let header = entry.header().clone();
        let kind = header.entry_type();
        let is_dir = kind == EntryType::Directory;
        if let Ok(md) = fs::symlink_metadata(&path)
            && !(md.is_dir() && is_dir)
        {
            remove_all(&path)?;
        }
        let mode = header.mode().unwrap_or(0o644);
        let mtime = header.mtime().unwrap_or(0) as i64;
        match kind {
            EntryType::Directory => {
                if !path.is_dir() {
                    fs::create_dir(&path).with_context(|| format!("mkdir {}", path.display()))?;
                }
            }
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("creating {}", path.display()))?;
                io::copy(&mut entry, &mut f)
                    .with_context(|| format!("writing {}", path.display()))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .with_context(|| format!("symlink {shown:?} without a target"))?;
                symlink(OsStr::from_bytes(&target), &path)
                    .with_context(|| format!("symlink {}", path.display()))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .with_context(|| format!("hard link {shown:?} without a target"))?;
                let Some(tcomps) = clean_components(&target) else {
                    bail!("hard link {shown:?} points outside the destination: refused");
                };
                let Some((tbase, tparents)) = tcomps.split_last() else {
                    bail!("hard link {shown:?} points at the root");
                };
                let tparent = resolve_dir(root, tparents, false)?.with_context(|| {
                    format!(
                        "hard link {shown:?}: target {:?} does not exist",
                        String::from_utf8_lossy(&target)
                    )
                })?;
                fs::hard_link(tparent.join(tbase), &path)
                    .with_context(|| format!("hard link {}", path.display()))?;
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => {
                let fmt = match kind {
                    EntryType::Char => libc::S_IFCHR,
                    EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                mknod(&path, fmt, mode, major, minor)?;
            }
            other => {
                log::debug(format!("layer entry {shown:?} of type {other:?} skipped"));
                continue;
            }
        }
        lchown(&path, header.uid().unwrap_or(0), header.gid().unwrap_or(0))?;
        if kind != EntryType::Symlink && kind != EntryType::Link {
            // After chown, which clears setuid/setgid bits.
            set_mode(&path, mode & 0o7777)?;
        }
        if is_dir {
            dirs.push((path.clone(), mtime));
        } else if kind != EntryType::Link {
            set_times(&path, mtime, 0)?;
        }
        unpacked.insert(path);
        count += 1;
    }
    // Directory times last: creating their children changed them.
    for (dir, mtime) in dirs.iter().rev() {
        set_times(dir, *mtime, 0)?;
    }
    Ok(count)
}

/// An opaque whiteout: everything under `dir` that this layer has not written goes.
fn remove_not_unpacked(dir: &Path, unpacked: &HashSet<PathBuf>) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", dir.display())),
    };
    for entry in entries {
        let path = entry?.path();
        if !unpacked.contains(&path) {
            remove_all(&path)?;
        } else if fs::symlink_metadata(&path)?.is_dir() {
            remove_not_unpacked(&path, unpacked)?;
        }
    }
    Ok(())
}

/// Applies a possibly gzip-compressed layer file.
pub fn apply_layer_file(root: &Path, file: &Path) -> Result<usize> {
    let f = File::open(file).with_context(|| format!("open {}", file.display()))?;
    let what = format!("layer {}", file.display());
    apply_layer(root, decompress(f, &what)?).with_context(|| format!("applying {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// A tar layer built entry by entry.
    struct Layer(tar::Builder<Vec<u8>>);

    impl Layer {
        fn new() -> Layer {
            Layer(tar::Builder::new(Vec::new()))
        }
        fn entry(
            mut self,
            name: &str,
            kind: EntryType,
            mode: u32,
            data: &[u8],
            link: Option<&str>,
        ) -> Layer {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_size(data.len() as u64);
            h.set_mtime(1_000_000);
            h.set_uid(0);
            h.set_gid(0);
            if let Some(l) = link {
                h.set_link_name(l).unwrap();
            }
            // set_path refuses "..", which the escape tests need: write the raw name.
            let raw = name.as_bytes();
            h.as_old_mut().name[..raw.len()].copy_from_slice(raw);
            h.set_cksum();
            self.0.append(&h, data).unwrap();
            self
        }
        fn dir(self, name: &str, mode: u32) -> Layer {
            self.entry(name, EntryType::Directory, mode, b"", None)
        }
        fn file(self, name: &str, data: &str) -> Layer {
            self.entry(name, EntryType::Regular, 0o644, data.as_bytes(), None)
        }
        fn link(self, name: &str, target: &str) -> Layer {
            self.entry(name, EntryType::Symlink, 0o777, b"", Some(target))
        }
        fn bytes(self) -> Vec<u8> {
            self.0.into_inner().unwrap()
        }
    }

    fn apply(root: &Path, layer: Layer) -> Result<usize> {
        apply_layer(root, &layer.bytes()[..])
    }

    #[test]
    fn root_entry_is_skipped_and_dest_keeps_its_mode() {
        let d = tempfile::tempdir().unwrap();
        fs::set_permissions(d.path(), fs::Permissions::from_mode(0o700)).unwrap();
        let n = apply(
            d.path(),
            Layer::new()
                .dir("./", 0o777)
                .dir("etc", 0o755)
                .file("etc/a", "x"),
        )
        .unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            fs::metadata(d.path()).unwrap().permissions().mode() & 0o7777,
            0o700
        );
        assert_eq!(fs::read_to_string(d.path().join("etc/a")).unwrap(), "x");
        assert_eq!(
            fs::metadata(d.path().join("etc/a")).unwrap().mtime(),
            1_000_000
        );
    }

    #[test]
    fn whiteouts_and_opaque_dirs() {
        let d = tempfile::tempdir().unwrap();
        apply(
            d.path(),
            Layer::new()
                .dir("a", 0o755)
                .file("a/old1", "1")
                .file("a/old2", "2")
                .dir("b", 0o755)
                .file("b/gone", "g")
                .file("b/stays", "s"),
        )
        .unwrap();
        apply(
            d.path(),
            Layer::new()
                .dir("a", 0o750)
                .file("a/new", "n")
                .file("a/.wh..wh..opq", "")
                .file("b/.wh.gone", ""),
        )
        .unwrap();
        let names = |p: &str| {
            let mut v: Vec<_> = fs::read_dir(d.path().join(p))
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        };
        assert_eq!(names("a"), ["new"]);
        assert_eq!(names("b"), ["stays"]);
        assert_eq!(
            fs::metadata(d.path().join("a"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o750
        );
    }

    #[test]
    fn a_non_directory_replaces_what_was_there() {
        let d = tempfile::tempdir().unwrap();
        apply(d.path(), Layer::new().dir("x", 0o755).file("x/f", "1")).unwrap();
        apply(d.path(), Layer::new().link("x", "elsewhere")).unwrap();
        assert_eq!(
            fs::read_link(d.path().join("x")).unwrap(),
            Path::new("elsewhere")
        );
    }

    #[test]
    fn dotdot_escapes_are_refused() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        fs::create_dir(&root).unwrap();
        let err = apply(&root, Layer::new().file("../evil", "x")).unwrap_err();
        assert!(err.to_string().contains("outside the destination"), "{err}");
        let err = apply(&root, Layer::new().file("a/../../evil", "x")).unwrap_err();
        assert!(err.to_string().contains("outside the destination"), "{err}");
        assert!(!outer.path().join("evil").exists());
    }

    #[test]
    fn symlinked_parents_resolve_inside_the_root() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("root");
        let host = outer.path().join("host");
        fs::create_dir(&root).unwrap();
        fs::create_dir(&host).unwrap();
        // An absolute link to the host directory, and a relative one climbing out.
        apply(
            &root,
            Layer::new()
                .link("abs", host.to_str().unwrap())
                .link("rel", "../../../../host")
                .file("abs/f", "1")
                .file("rel/g", "2"),
        )
        .unwrap();
        assert_eq!(
            fs::read_dir(&host).unwrap().count(),
            0,
            "nothing written outside"
        );
        let inside = root.join(host.strip_prefix("/").unwrap());
        assert_eq!(fs::read_to_string(inside.join("f")).unwrap(), "1");
        assert_eq!(fs::read_to_string(root.join("host/g")).unwrap(), "2");
    }

    #[test]
    fn hard_links_and_devices() {
        let d = tempfile::tempdir().unwrap();
        apply(
            d.path(),
            Layer::new()
                .file("f", "data")
                .entry("h", EntryType::Link, 0o644, b"", Some("f"))
                .entry("fifo", EntryType::Fifo, 0o600, b"", None),
        )
        .unwrap();
        let f = fs::metadata(d.path().join("f")).unwrap();
        let h = fs::metadata(d.path().join("h")).unwrap();
        assert_eq!(f.ino(), h.ino());
        assert_eq!(f.nlink(), 2);
        let fifo = fs::symlink_metadata(d.path().join("fifo")).unwrap();
        assert_eq!(fifo.mode() & libc::S_IFMT, libc::S_IFIFO);
        let err = apply(
            d.path(),
            Layer::new().entry("h2", EntryType::Link, 0o644, b"", Some("../../etc/passwd")),
        )
        .unwrap_err();
        assert!(err.to_string().contains("outside"), "{err}");
    }

    #[test]
    fn compressed_layers() {
        use flate2::{Compression, write::GzEncoder};
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let tar = Layer::new().file("z", "gz").bytes();
        let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
        gz.write_all(&tar).unwrap();
        let gz = gz.finish().unwrap();
        apply_layer(d.path(), decompress(&gz[..], "test").unwrap()).unwrap();
        assert_eq!(fs::read_to_string(d.path().join("z")).unwrap(), "gz");
        let zstd = [0x28u8, 0xb5, 0x2f, 0xfd, 0, 0];
        let err = decompress(&zstd[..], "layer x").err().unwrap();
        assert!(err.to_string().contains("zstd"), "{err}");
    }
}
