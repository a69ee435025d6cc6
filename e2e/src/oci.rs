//! OCI images built from local files, without a container engine: the test cluster's
//! containerd pulls them from a local registry after [`push`] has copied them there.
//!
//! An [`Image`] is a list of [`Entry`]s plus a [`Config`]. [`write_layout`] turns it into an OCI
//! image layout directory (one layer), deterministically: the same input gives the same manifest
//! digest, so rebuilding an unchanged image changes nothing in the registry or on the node.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};
use ring::digest::{Context as Sha256, SHA256};
use serde_json::{Value, json};

/// What an entry is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Content {
    Dir,
    /// A regular file with these bytes.
    Bytes(Vec<u8>),
    /// A regular file with the bytes of this host file (read when the layout is written).
    Copy(PathBuf),
    /// A symbolic link to this target.
    Symlink(String),
}

/// One file-system entry of the image. `path` is inside the image (`/etc/passwd`); `mode` is
/// the permission bits only (`0o1777`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub content: Content,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Entry {
    /// A root-owned directory.
    pub fn dir(path: &str, mode: u32) -> Entry {
        Entry::new(path, Content::Dir, mode)
    }
    /// A root-owned regular file with these bytes.
    pub fn file(path: &str, mode: u32, bytes: impl Into<Vec<u8>>) -> Entry {
        Entry::new(path, Content::Bytes(bytes.into()), mode)
    }
    /// A root-owned regular file with the content of the host file `src`.
    pub fn copy(path: &str, mode: u32, src: impl Into<PathBuf>) -> Entry {
        Entry::new(path, Content::Copy(src.into()), mode)
    }
    /// A root-owned symbolic link (mode 0777, as links always have).
    pub fn symlink(path: &str, target: &str) -> Entry {
        Entry::new(path, Content::Symlink(target.into()), 0o777)
    }
    /// The same entry owned by `uid:gid`.
    pub fn owner(self, uid: u32, gid: u32) -> Entry {
        Entry { uid, gid, ..self }
    }
    fn new(path: &str, content: Content, mode: u32) -> Entry {
        let (path, uid, gid) = (path.into(), 0, 0);
        Entry {
            path,
            content,
            mode,
            uid,
            gid,
        }
    }
}

/// The runtime part of the image config (`config.*` in the OCI image config). Empty fields are
/// left out of the JSON, which is what "not set" means there.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `uid:gid` (or a name); empty means root.
    pub user: String,
    /// `NAME=value`.
    pub env: Vec<String>,
    pub working_dir: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Image {
    pub entries: Vec<Entry>,
    pub config: Config,
}

pub const MEDIA_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const MEDIA_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const MEDIA_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const MEDIA_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// The index.json annotation that names a manifest (skopeo's `oci:<dir>:<tag>`).
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The `PATH` distroless and busybox images set.
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Writes `image` as an OCI image layout in `dir` (created if missing) under the name `tag`
/// and returns the manifest digest (`sha256:...`). Other tags already in `dir` are kept, so one
/// directory can hold several images; a previous image under `tag` is replaced. Blobs are
/// content-addressed, so writing an unchanged image again rewrites identical files. Not safe
/// for concurrent writers of the same `dir`.
pub fn write_layout(dir: &Path, tag: &str, image: &Image) -> Result<String> {
    let blobs = dir.join("blobs/sha256");
    fs::create_dir_all(&blobs).with_context(|| format!("creating {}", blobs.display()))?;
    write_file(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;

    let (layer, diff_id) = write_layer(&blobs, image).context("writing the image layer")?;
    let c = &image.config;
    let mut run = serde_json::Map::new();
    let mut set = |k: &str, v: Value, empty: bool| {
        if !empty {
            run.insert(k.into(), v);
        }
    };
    set("User", json!(c.user), c.user.is_empty());
    set("Env", json!(c.env), c.env.is_empty());
    set("Entrypoint", json!(c.entrypoint), c.entrypoint.is_empty());
    set("Cmd", json!(c.cmd), c.cmd.is_empty());
    set("WorkingDir", json!(c.working_dir), c.working_dir.is_empty());
    set("Labels", json!(c.labels), c.labels.is_empty());
    // No `created`/`history` timestamps: they would make every build a new image.
    let config = json!({
        "architecture": arch(),
        "os": "linux",
        "config": run,
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    });
    let config = write_blob(&blobs, MEDIA_CONFIG, &config)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config,
        "layers": [layer],
    });
    let mut manifest = write_blob(&blobs, MEDIA_MANIFEST, &manifest)?;
    let digest = manifest["digest"].as_str().unwrap_or_default().to_string();
    manifest["annotations"] = json!({ REF_NAME: tag });

    let index_path = dir.join("index.json");
    let mut manifests: Vec<Value> = match fs::read(&index_path) {
        Ok(b) => {
            let old: Value = serde_json::from_slice(&b)
                .with_context(|| format!("parsing {}", index_path.display()))?;
            let old = old["manifests"].as_array().cloned().unwrap_or_default();
            old.into_iter()
                .filter(|m| m["annotations"][REF_NAME] != tag)
                .collect()
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", index_path.display())),
    };
    manifests.push(manifest);
    manifests.sort_by_key(|m| m["annotations"][REF_NAME].as_str().map(str::to_owned));
    let index = json!({"schemaVersion": 2, "mediaType": MEDIA_INDEX, "manifests": manifests});
    write_file(&index_path, &serde_json::to_vec_pretty(&index)?)?;
    Ok(digest)
}

/// The image architecture: that of the host, whose binaries go into the images.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// The layer is gzip-compressed here rather than left as a plain tar because skopeo compresses
/// uncompressed layers on push: the registry would then hold a manifest with another digest
/// than the one [`write_layout`] returns. Compressed here, the bytes pushed are the bytes
/// written. Level "fast": the layers only travel over loopback.
fn write_layer(blobs: &Path, image: &Image) -> Result<(Value, String)> {
    let entries = plan(&image.entries)?;
    let tmp = tempfile::NamedTempFile::new_in(blobs).context("creating a temporary blob")?;
    let compressed = Hashing::new(tmp);
    let gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(compressed, flate2::Compression::fast());
    let mut tar = tar::Builder::new(Hashing::new(gz));
    for (path, e) in &entries {
        append(&mut tar, path, *e).with_context(|| format!("adding /{path}"))?;
    }
    let (gz, diff_id, _) = tar.into_inner()?.finish();
    let (tmp, digest, size) = gz.finish()?.finish();
    let path = blobs.join(digest.trim_start_matches("sha256:"));
    // Temporary files are 0600; blobs are as readable as the JSON ones next to them.
    fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))?;
    tmp.persist(&path)
        .with_context(|| format!("writing {}", path.display()))?;
    let layer = json!({"mediaType": MEDIA_LAYER, "digest": digest, "size": size});
    Ok((layer, diff_id))
}

/// The entries by normalized path (no leading or trailing `/`), sorted so that parents come
/// before their children; `None` is a parent directory nobody listed (0755 root:root).
fn plan(entries: &[Entry]) -> Result<BTreeMap<String, Option<&Entry>>> {
    let mut out = BTreeMap::new();
    for e in entries {
        let parts: Vec<&str> = e.path.split('/').filter(|p| !p.is_empty()).collect();
        ensure!(
            !parts.is_empty() && parts.iter().all(|p| *p != "." && *p != ".."),
            "bad image path {:?}: it needs a name and no `.` or `..`",
            e.path
        );
        ensure!(
            e.mode <= 0o7777,
            "{}: mode {:o} is more than permission bits",
            e.path,
            e.mode
        );
        if out.insert(parts.join("/"), Some(e)).is_some() {
            bail!("{} is listed twice", e.path);
        }
    }
    let parents: BTreeSet<String> = (out.keys())
        .flat_map(|p| p.match_indices('/').map(|(i, _)| p[..i].to_string()))
        .collect();
    for p in parents {
        match out.get(&p) {
            Some(Some(e)) if e.content != Content::Dir => {
                bail!("/{p} is not a directory but has entries below it")
            }
            Some(_) => {}
            None => _ = out.insert(p, None),
        }
    }
    Ok(out)
}

fn append<W: Write>(tar: &mut tar::Builder<W>, path: &str, e: Option<&Entry>) -> Result<()> {
    let implicit = Entry::dir(path, 0o755);
    let e = e.unwrap_or(&implicit);
    let mut h = tar::Header::new_gnu();
    h.set_mode(e.mode);
    h.set_uid(e.uid.into());
    h.set_gid(e.gid.into());
    h.set_mtime(0);
    h.set_size(0);
    match &e.content {
        Content::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            tar.append_data(&mut h, format!("{path}/"), io::empty())?;
        }
        Content::Bytes(b) => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(b.len() as u64);
            tar.append_data(&mut h, path, b.as_slice())?;
        }
        Content::Copy(src) => {
            let f = File::open(src).with_context(|| format!("opening {}", src.display()))?;
            let meta = f.metadata()?;
            ensure!(meta.is_file(), "{} is not a regular file", src.display());
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(meta.len());
            tar.append_data(&mut h, path, io::Read::take(f, meta.len()))
                .with_context(|| format!("copying {}", src.display()))?;
        }
        Content::Symlink(target) => {
            h.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(&mut h, path, target)?;
        }
    }
    Ok(())
}

/// Writes `v` as a blob and returns its descriptor.
fn write_blob(blobs: &Path, media_type: &str, v: &Value) -> Result<Value> {
    let bytes = serde_json::to_vec(v)?;
    let digest = sha256(&bytes);
    write_file(&blobs.join(digest.trim_start_matches("sha256:")), &bytes)?;
    Ok(json!({"mediaType": media_type, "digest": digest, "size": bytes.len()}))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// `sha256:<hex>` of `bytes`, the digest form OCI uses.
pub fn sha256(bytes: &[u8]) -> String {
    oci_digest(ring::digest::digest(&SHA256, bytes))
}

fn oci_digest(d: ring::digest::Digest) -> String {
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// A writer that passes bytes on and hashes and counts them.
struct Hashing<W> {
    inner: W,
    sha: Sha256,
    size: u64,
}

impl<W> Hashing<W> {
    fn new(inner: W) -> Self {
        let sha = Sha256::new(&SHA256);
        Hashing {
            inner,
            sha,
            size: 0,
        }
    }
    /// The inner writer, `sha256:<hex>` and the byte count.
    fn finish(self) -> (W, String, u64) {
        (self.inner, oci_digest(self.sha.finish()), self.size)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The skopeo binary from `PATH`, or an error that says how to install it.
pub fn skopeo() -> Result<PathBuf> {
    (std::env::var_os("PATH").iter())
        .flat_map(std::env::split_paths)
        .map(|d| d.join("skopeo"))
        .find(|p| p.is_file())
        .context(
            "skopeo is not installed (it pushes the test images to the cluster's registry): \
             install it with `apt-get install skopeo`",
        )
}

/// `skopeo` such that it leaves the host alone: run as root, it keeps a blob-info cache in
/// /var/lib/containers whatever its flags say, so it runs in a mount namespace of its own with
/// an empty tmpfs over /var/lib (it needs nothing there for `oci:` and `docker://`).
pub fn skopeo_command(skopeo: &Path) -> Command {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Command::new(skopeo);
    }
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -t tmpfs osartifact-skopeo /var/lib && exec \"$0\" \"$@\"")
        .arg(skopeo);
    cmd
}

/// Copies the image `tag` of the layout `layout_dir` to `dest_ref` (`host:port/name:tag`) over
/// plain HTTP or unverified TLS, as the test registry is local. The registry then holds the
/// manifest digest [`write_layout`] returned: skopeo pushes the blobs as they are.
pub fn push(layout_dir: &Path, tag: &str, dest_ref: &str) -> Result<()> {
    push_as(layout_dir, tag, dest_ref, None)
}

/// [`push`] with `(user, password)` for a registry that asks for them. They are passed on
/// skopeo's command line, which is fine for a test registry's throwaway password.
pub fn push_as(
    layout_dir: &Path,
    tag: &str,
    dest_ref: &str,
    creds: Option<(&str, &str)>,
) -> Result<()> {
    let skopeo = skopeo()?;
    let dir = (layout_dir.to_str())
        .filter(|d| !d.contains(':'))
        .with_context(|| {
            let d = layout_dir.display();
            format!("{d}: skopeo's `oci:` reference needs a UTF-8 path without `:`")
        })?;
    let (src, dst) = (format!("oci:{dir}:{tag}"), format!("docker://{dest_ref}"));
    let mut cmd = skopeo_command(&skopeo);
    cmd.args(["--insecure-policy", "--command-timeout=300s", "copy"]);
    cmd.arg("--dest-tls-verify=false");
    if let Some((user, password)) = creds {
        cmd.arg(format!("--dest-creds={user}:{password}"));
    }
    let out = (cmd.args([&src, &dst]).output())
        .with_context(|| format!("running {}", skopeo.display()))?;
    if !out.status.success() {
        bail!(
            "`skopeo copy {src} {dst}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// What the two targets of images/Dockerfile build, without their build
/// stage: `binary` at /usr/local/bin/`name` on the files of distroless static:nonroot that a
/// static binary can notice (users and groups, /tmp, the nonroot home, CA certificates from
/// the host), run as 65532:65532 in /home/nonroot with distroless's `PATH` and `SSL_CERT_FILE`,
/// with no shell.
pub fn product_image(binary: &Path, name: &str) -> Image {
    let bin = format!("/usr/local/bin/{name}");
    let mut entries = vec![
        Entry::file(
            "/etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/sbin/nologin\n\
             nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n\
             nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n",
        ),
        Entry::file(
            "/etc/group",
            0o644,
            "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n",
        ),
        Entry::dir("/tmp", 0o1777),
        Entry::dir("/root", 0o700),
        Entry::dir("/home/nonroot", 0o700).owner(65532, 65532),
        Entry::copy(&bin, 0o755, binary),
    ];
    let mut env = vec![PATH_ENV.to_string()];
    if Path::new(CA_BUNDLE).is_file() {
        entries.push(Entry::copy(CA_BUNDLE, 0o644, CA_BUNDLE));
        env.push(format!("SSL_CERT_FILE={CA_BUNDLE}"));
    }
    let config = Config {
        entrypoint: vec![bin],
        user: "65532:65532".into(),
        env,
        working_dir: "/home/nonroot".into(),
        ..Config::default()
    };
    Image { entries, config }
}

/// Debian's busybox-static (the path its package installs; usrmerge adds /usr/bin/busybox).
const BUSYBOX: &str = "/bin/busybox";

/// A shell image for test pods: the host's static busybox with a /bin symlink per applet,
/// running `sh` as root. `title` becomes the `org.opencontainers.image.title` label so that
/// two images with these same files can differ: containerd 1.6's CRI keys images by config
/// digest and mixes up two names that share one.
pub fn busybox_image(title: &str) -> Result<Image> {
    let bytes = fs::read(BUSYBOX)
        .with_context(|| format!("reading {BUSYBOX}: `apt-get install busybox-static`"))?;
    ensure!(
        is_static_elf(&bytes)?,
        "{BUSYBOX} is dynamically linked: install `busybox-static` rather than `busybox`"
    );
    let out = Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .with_context(|| format!("running {BUSYBOX} --list"))?;
    ensure!(
        out.status.success(),
        "{BUSYBOX} --list failed ({})",
        out.status
    );
    let mut entries = vec![
        Entry::file("/bin/busybox", 0o755, bytes),
        Entry::file(
            "/etc/passwd",
            0o644,
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n",
        ),
        Entry::file("/etc/group", 0o644, "root:x:0:\nnobody:x:65534:\n"),
        Entry::dir("/tmp", 0o1777),
        Entry::dir("/root", 0o700),
    ];
    for applet in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        ensure!(
            !applet.contains('/'),
            "odd applet name {applet:?} from busybox --list"
        );
        if applet != "busybox" {
            entries.push(Entry::symlink(&format!("/bin/{applet}"), "busybox"));
        }
    }
    let config = Config {
        cmd: vec!["sh".into()],
        env: vec![PATH_ENV.into()],
        labels: BTreeMap::from([("org.opencontainers.image.title".into(), title.into())]),
        ..Config::default()
    };
    Ok(Image { entries, config })
}

/// e2e/node/pause.c, embedded so that the harness does not depend on the source tree's
/// location at run time.
const PAUSE_C: &str = include_str!("../node/pause.c");

/// The pod sandbox ("pause") image, so that the cluster needs no image from the internet:
/// e2e/node/pause.c compiled with `gcc -static` in `work_dir`, as /pause, run as 65535:65535
/// like the upstream pause image.
pub fn pause_image(work_dir: &Path) -> Result<Image> {
    fs::create_dir_all(work_dir).with_context(|| format!("creating {}", work_dir.display()))?;
    let (src, bin) = (work_dir.join("pause.c"), work_dir.join("pause"));
    write_file(&src, PAUSE_C.as_bytes())?;
    let out = Command::new("gcc")
        .args(["-static", "-Os", "-o"])
        .args([&bin, &src])
        .output()
        .context("running gcc: install it with `apt-get install gcc libc6-dev`")?;
    ensure!(
        out.status.success(),
        "gcc -static failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let bytes = fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
    ensure!(
        is_static_elf(&bytes)?,
        "gcc -static made a dynamic executable"
    );
    let config = Config {
        entrypoint: vec!["/pause".into()],
        user: "65535:65535".into(),
        ..Config::default()
    };
    Ok(Image {
        entries: vec![Entry::file("/pause", 0o755, bytes)],
        config,
    })
}

/// Whether the 64-bit little-endian ELF file `elf` has no program interpreter (no PT_INTERP
/// program header), i.e. runs without a dynamic loader, which these images do not have.
fn is_static_elf(elf: &[u8]) -> Result<bool> {
    let le = |at: usize, len: usize| -> Result<usize> {
        let b = elf
            .get(at..at.saturating_add(len))
            .context("truncated ELF file")?;
        let v = b.iter().rev().fold(0u64, |v, b| v << 8 | u64::from(*b));
        usize::try_from(v).context("ELF offset out of range")
    };
    ensure!(
        elf.starts_with(b"\x7fELF\x02\x01"),
        "not a 64-bit little-endian ELF file"
    );
    let (phoff, phentsize, phnum) = (le(0x20, 8)?, le(0x36, 2)?, le(0x38, 2)?);
    for i in 0..phnum {
        if le(phoff.saturating_add(i * phentsize), 4)? == 3 {
            return Ok(false);
        }
    }
    Ok(true)
}
