//! e2e/src/oci.rs without a registry: the layouts it writes are read back (index, manifest,
//! config, the layer's tar entries) with every digest and size recomputed here; the product
//! images are checked against images/Dockerfile; the busybox and pause images are inspected;
//! skopeo's errors reach the caller.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use osartifact_e2e::oci::{self, Config, Entry, Image};
use osartifact_e2e::paths;
use serde_json::{Value, json};

fn sha256(bytes: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let hex: String = d.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// One entry of the layer as the tar crate reads it back.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TarEntry {
    path: String,
    /// `d`, `f` or `l`.
    kind: char,
    mode: u32,
    uid: u64,
    gid: u64,
    data: Vec<u8>,
    link: String,
}

fn dir(path: &str, mode: u32, uid: u64, gid: u64) -> TarEntry {
    let (path, data, link) = (path.into(), Vec::new(), String::new());
    TarEntry {
        path,
        kind: 'd',
        mode,
        uid,
        gid,
        data,
        link,
    }
}
fn file(path: &str, mode: u32, data: &[u8]) -> TarEntry {
    let (path, data, link) = (path.into(), data.to_vec(), String::new());
    TarEntry {
        path,
        kind: 'f',
        mode,
        uid: 0,
        gid: 0,
        data,
        link,
    }
}
fn link(path: &str, target: &str) -> TarEntry {
    let (path, data, link) = (path.into(), Vec::new(), target.into());
    TarEntry {
        path,
        kind: 'l',
        mode: 0o777,
        uid: 0,
        gid: 0,
        data,
        link,
    }
}

/// A layout directory read back and checked against the OCI image layout spec's rules.
struct Layout {
    manifest_digest: String,
    manifest: Value,
    config: Value,
    layer: Vec<TarEntry>,
}

impl Layout {
    fn entry(&self, path: &str) -> &TarEntry {
        let found = self.layer.iter().find(|e| e.path == path);
        found.unwrap_or_else(|| panic!("{path} is not in the layer"))
    }
    fn paths(&self) -> Vec<&str> {
        self.layer.iter().map(|e| e.path.as_str()).collect()
    }
}

/// The blob a descriptor names, after checking its digest and size.
fn blob(dir: &Path, desc: &Value) -> Vec<u8> {
    let digest = desc["digest"].as_str().expect("descriptor without digest");
    let hex = digest.strip_prefix("sha256:").expect("not a sha256 digest");
    let bytes = fs::read(dir.join("blobs/sha256").join(hex)).expect("reading blob");
    assert_eq!(
        sha256(&bytes),
        digest,
        "blob content does not match its name"
    );
    assert_eq!(
        desc["size"],
        json!(bytes.len()),
        "descriptor size of {digest}"
    );
    bytes
}

fn read_layout(dir: &Path, tag: &str) -> Layout {
    let layout: Value = serde_json::from_slice(&fs::read(dir.join("oci-layout")).unwrap()).unwrap();
    assert_eq!(layout, json!({"imageLayoutVersion": "1.0.0"}));
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    // Optional in the spec (skopeo leaves it out); write_layout sets it.
    assert!(
        index.get("mediaType").is_none_or(|m| m == oci::MEDIA_INDEX),
        "{index:#}"
    );
    let named: Vec<&Value> = (index["manifests"].as_array().unwrap().iter())
        .filter(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .collect();
    assert_eq!(
        named.len(),
        1,
        "index.json should name {tag} once: {index:#}"
    );
    let desc = named[0];
    assert_eq!(desc["mediaType"], oci::MEDIA_MANIFEST);
    let manifest: Value = serde_json::from_slice(&blob(dir, desc)).unwrap();
    assert_eq!(manifest["schemaVersion"], 2);
    assert_eq!(manifest["mediaType"], oci::MEDIA_MANIFEST);
    assert_eq!(manifest["config"]["mediaType"], oci::MEDIA_CONFIG);
    let config: Value = serde_json::from_slice(&blob(dir, &manifest["config"])).unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(&blob(dir, &layers[0])[..])
        .read_to_end(&mut tar)
        .unwrap();
    assert_eq!(
        config["rootfs"],
        json!({"type": "layers", "diff_ids": [sha256(&tar)]})
    );

    let mut layer = Vec::new();
    for e in tar::Archive::new(&tar[..]).entries().unwrap() {
        let mut e = e.unwrap();
        let h = e.header().clone();
        assert_eq!(h.mtime().unwrap(), 0, "mtime of {:?}", e.path());
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Regular => 'f',
            tar::EntryType::Symlink => 'l',
            other => panic!("unexpected entry type {other:?}"),
        };
        let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let link = (e.link_name_bytes())
            .map(|l| String::from_utf8(l.into_owned()).unwrap())
            .unwrap_or_default();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        let (mode, uid, gid) = (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap());
        layer.push(TarEntry {
            path,
            kind,
            mode,
            uid,
            gid,
            data,
            link,
        });
    }
    let manifest_digest = desc["digest"].as_str().unwrap().to_string();
    Layout {
        manifest_digest,
        manifest,
        config,
        layer,
    }
}

fn write_and_read(image: &Image, tag: &str) -> (tempfile::TempDir, String, Layout) {
    let tmp = tempfile::tempdir().unwrap();
    let digest = oci::write_layout(tmp.path(), tag, image).unwrap();
    let layout = read_layout(tmp.path(), tag);
    assert_eq!(layout.manifest_digest, digest);
    let index: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["mediaType"], oci::MEDIA_INDEX);
    (tmp, digest, layout)
}

fn host_file(content: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut f, content).unwrap();
    f
}

fn long_name() -> String {
    "d".repeat(120)
}

/// An image with every kind of entry, unsorted, with parents left out and a path longer than
/// the 100 bytes of a tar header.
fn sample(tool: &Path) -> Image {
    let long = long_name();
    Image {
        entries: vec![
            Entry::symlink("/bin/tool", "../usr/bin/tool"),
            Entry::copy("/usr/bin/tool", 0o755, tool),
            Entry::file("/etc/motd", 0o644, "hello\n"),
            Entry::dir("/data/", 0o750).owner(1000, 2000),
            Entry::file("data/owned", 0o600, "x").owner(1000, 2000),
            Entry::dir("/tmp", 0o1777),
            Entry::file(&format!("/opt/{long}/f"), 0o444, "deep"),
        ],
        config: Config {
            entrypoint: vec!["/bin/tool".into()],
            cmd: vec!["--flag".into(), "value".into()],
            user: "1000:2000".into(),
            env: vec!["A=1".into(), "PATH=/bin".into()],
            working_dir: "/data".into(),
            labels: BTreeMap::from([("k".into(), "v".into())]),
        },
    }
}

#[test]
fn layout_reads_back_with_the_expected_entries_config_and_digests() {
    let tool = host_file(b"\x7fELF not really");
    let (_tmp, _, layout) = write_and_read(&sample(tool.path()), "sample:1");
    let long = long_name();
    let owned = |mut e: TarEntry| {
        (e.uid, e.gid) = (1000, 2000);
        e
    };
    let expected = vec![
        dir("bin/", 0o755, 0, 0),
        link("bin/tool", "../usr/bin/tool"),
        dir("data/", 0o750, 1000, 2000),
        owned(file("data/owned", 0o600, b"x")),
        dir("etc/", 0o755, 0, 0),
        file("etc/motd", 0o644, b"hello\n"),
        dir("opt/", 0o755, 0, 0),
        dir(&format!("opt/{long}/"), 0o755, 0, 0),
        file(&format!("opt/{long}/f"), 0o444, b"deep"),
        dir("tmp/", 0o1777, 0, 0),
        dir("usr/", 0o755, 0, 0),
        dir("usr/bin/", 0o755, 0, 0),
        file("usr/bin/tool", 0o755, b"\x7fELF not really"),
    ];
    assert_eq!(layout.layer, expected);

    let mut config = layout.config.clone();
    config.as_object_mut().unwrap().remove("rootfs"); // checked by read_layout
    let arch = if cfg!(target_arch = "x86_64") {
        "amd64"
    } else {
        std::env::consts::ARCH
    };
    let arch = if cfg!(target_arch = "aarch64") {
        "arm64"
    } else {
        arch
    };
    assert_eq!(
        config,
        json!({
            "architecture": arch,
            "os": "linux",
            "config": {
                "Entrypoint": ["/bin/tool"],
                "Cmd": ["--flag", "value"],
                "User": "1000:2000",
                "Env": ["A=1", "PATH=/bin"],
                "WorkingDir": "/data",
                "Labels": {"k": "v"},
            },
        })
    );
    assert_eq!(layout.manifest["layers"].as_array().unwrap().len(), 1);
}

#[test]
fn empty_config_fields_are_left_out() {
    let image = Image {
        entries: vec![Entry::file("/f", 0o644, "")],
        config: Config::default(),
    };
    let (_tmp, _, layout) = write_and_read(&image, "t");
    assert_eq!(layout.config["config"], json!({}));
}

/// Every file of a directory tree, by relative path.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn same_input_gives_the_same_bytes_and_digest() {
    let tool = host_file(b"tool");
    let image = sample(tool.path());
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let da = oci::write_layout(a.path(), "t", &image).unwrap();
    let db = oci::write_layout(b.path(), "t", &image).unwrap();
    assert_eq!(da, db);
    assert_eq!(tree(a.path()), tree(b.path()));
    // Writing it again into the same directory changes nothing.
    assert_eq!(oci::write_layout(a.path(), "t", &image).unwrap(), da);
    assert_eq!(tree(a.path()), tree(b.path()));

    // Entry order does not matter: the layer is sorted.
    let mut reversed = image.clone();
    reversed.entries.reverse();
    assert_eq!(oci::write_layout(b.path(), "t", &reversed).unwrap(), da);

    // A label changes the config, and so the manifest, but not the layer.
    let mut labelled = image.clone();
    labelled.config.labels.insert("other".into(), "x".into());
    let (_tmp, dl, l) = write_and_read(&labelled, "t");
    assert_ne!(dl, da);
    let orig = read_layout(a.path(), "t");
    assert_eq!(l.manifest["layers"], orig.manifest["layers"]);
    assert_ne!(l.manifest["config"], orig.manifest["config"]);
}

#[test]
fn one_layout_holds_several_tags_and_a_rewrite_replaces_its_tag() {
    let tmp = tempfile::tempdir().unwrap();
    let img = |s: &str| Image {
        entries: vec![Entry::file("/f", 0o644, s)],
        config: Config::default(),
    };
    let a1 = oci::write_layout(tmp.path(), "a", &img("1")).unwrap();
    let b = oci::write_layout(tmp.path(), "b", &img("b")).unwrap();
    let a2 = oci::write_layout(tmp.path(), "a", &img("2")).unwrap();
    assert_ne!(a1, a2);
    assert_eq!(read_layout(tmp.path(), "a").manifest_digest, a2);
    assert_eq!(read_layout(tmp.path(), "a").entry("f").data, b"2");
    assert_eq!(read_layout(tmp.path(), "b").manifest_digest, b);
    let index: Value =
        serde_json::from_slice(&fs::read(tmp.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2, "{index:#}");
}

#[test]
fn bad_entries_are_errors_that_name_the_path() {
    let check = |entries: Vec<Entry>, want: &str| {
        let tmp = tempfile::tempdir().unwrap();
        let image = Image {
            entries,
            config: Config::default(),
        };
        let err = oci::write_layout(tmp.path(), "t", &image).unwrap_err();
        let err = format!("{err:#}");
        assert!(err.contains(want), "{err:?} should contain {want:?}");
    };
    check(vec![Entry::file("/a/../b", 0o644, "")], "/a/../b");
    check(vec![Entry::dir("/", 0o755)], "bad image path \"/\"");
    check(
        vec![Entry::dir("/etc", 0o755), Entry::dir("etc/", 0o700)],
        "etc/ is listed twice",
    );
    check(
        vec![Entry::file("/a", 0o644, ""), Entry::file("/a/b", 0o644, "")],
        "/a is not a directory",
    );
    check(vec![Entry::file("/a", 0o100644, "")], "mode 100644");
    check(
        vec![Entry::copy("/a", 0o644, "/nonexistent/x")],
        "/nonexistent/x",
    );
}

/// A Dockerfile stage: its instructions with continuation lines joined.
fn target_stage(dockerfile: &Path, target: &str) -> Vec<(String, String)> {
    let text = fs::read_to_string(dockerfile).unwrap();
    let (mut lines, mut cur) = (Vec::new(), String::new());
    for l in text.lines().map(str::trim) {
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        match l.strip_suffix('\\') {
            Some(l) => cur = cur + l + " ",
            None => lines.push(std::mem::take(&mut cur) + l),
        }
    }
    let instructions: Vec<(String, String)> = (lines.iter())
        .map(|l| {
            let (i, rest) = l.split_once(char::is_whitespace).unwrap_or((l, ""));
            (i.to_ascii_uppercase(), rest.trim().to_string())
        })
        .collect();
    let is_from = |i: &(String, String)| i.0 == "FROM";
    let start = (instructions.iter())
        .position(|i| is_from(i) && i.1.ends_with(&format!(" AS {target}")))
        .unwrap_or_else(|| panic!("{}: no stage {target}", dockerfile.display()));
    assert!(
        start > 0,
        "{}: expected a build stage",
        dockerfile.display()
    );
    let end = (instructions.iter().skip(start + 1))
        .position(is_from)
        .map_or(instructions.len(), |n| start + 1 + n);
    instructions[start..end].to_vec()
}

fn only<'a>(stage: &'a [(String, String)], instruction: &str) -> &'a str {
    let found: Vec<&str> = (stage.iter())
        .filter(|(i, _)| i == instruction)
        .map(|(_, a)| a.as_str())
        .collect();
    assert_eq!(
        found.len(),
        1,
        "one {instruction} expected in the stage: {stage:?}"
    );
    found[0]
}

#[test]
fn dockerfiles_agree_with_the_locally_built_product_images() {
    for name in ["osartifact-operator", "osartifact-webhook"] {
        let dockerfile = paths::workspace().join("images/Dockerfile");
        let stage = target_stage(&dockerfile, name);
        let ctx = format!("{} (target {name})", dockerfile.display());

        // Everything the target stage does is modelled by product_image: no RUN (no shell
        // there), no ENV/WORKDIR/LABEL this test would not compare.
        for (i, _) in &stage {
            let known = ["FROM", "COPY", "USER", "ENTRYPOINT"];
            assert!(known.contains(&i.as_str()), "{ctx}: the stage has {i}");
        }
        // The base is distroless static, nonroot variant: the files it provides are the base
        // files product_image adds (checked below).
        let from = only(&stage, "FROM");
        let image = from.split_whitespace().next().unwrap();
        assert!(from.ends_with(&format!(" AS {name}")), "{ctx}: {from}");
        let image = image.split('@').next().unwrap();
        let (repo, tag) = image.rsplit_once(':').unwrap();
        assert!(
            repo.starts_with("gcr.io/distroless/static"),
            "{ctx}: base {from}"
        );
        assert!(tag.starts_with("nonroot"), "{ctx}: base {from}");

        let copy: Vec<&str> = only(&stage, "COPY").split_whitespace().collect();
        assert_eq!(copy[0], "--from=build", "{ctx}: {copy:?}");
        assert_eq!(copy.len(), 3, "{ctx}: {copy:?}");
        let dest = copy[2];
        let user = only(&stage, "USER");
        let entrypoint: Vec<String> = serde_json::from_str(only(&stage, "ENTRYPOINT")).unwrap();

        let binary = host_file(b"the binary");
        let image = oci::product_image(binary.path(), name);
        assert_eq!(image.config.entrypoint, entrypoint, "{ctx}");
        assert_eq!(image.config.user, user, "{ctx}");
        assert!(image.config.cmd.is_empty());
        let (_tmp, _, layout) = write_and_read(&image, name);
        assert_eq!(layout.config["config"]["Entrypoint"], json!(entrypoint));
        assert_eq!(layout.config["config"]["User"], user);
        let bin = layout.entry(dest.trim_start_matches('/'));
        assert_eq!(
            (bin.kind, bin.mode, bin.uid, bin.gid),
            ('f', 0o755, 0, 0),
            "{dest}"
        );
        assert_eq!(bin.data, b"the binary");
        assert_eq!(
            entrypoint,
            [dest.to_string()],
            "{ctx}: ENTRYPOINT runs the copied binary"
        );
        assert_distroless_static_nonroot(&layout, dest);
    }
}

/// What distroless static:nonroot provides and a static binary can notice, and nothing else:
/// in particular no shell and no other executable than `binary`.
fn assert_distroless_static_nonroot(layout: &Layout, binary: &str) {
    let passwd = String::from_utf8(layout.entry("etc/passwd").data.clone()).unwrap();
    let lines: Vec<&str> = passwd.lines().collect();
    assert!(
        lines.contains(&"root:x:0:0:root:/root:/sbin/nologin"),
        "{passwd}"
    );
    let nonroot = "nonroot:x:65532:65532:nonroot:/home/nonroot:";
    assert!(lines.iter().any(|l| l.starts_with(nonroot)), "{passwd}");
    let group = String::from_utf8(layout.entry("etc/group").data.clone()).unwrap();
    assert!(group.lines().any(|l| l == "root:x:0:"), "{group}");
    assert!(group.lines().any(|l| l == "nonroot:x:65532:"), "{group}");
    assert_eq!(layout.entry("tmp/"), &dir("tmp/", 0o1777, 0, 0));
    assert_eq!(
        layout.entry("home/nonroot/"),
        &dir("home/nonroot/", 0o700, 65532, 65532)
    );
    let config = &layout.config["config"];
    assert_eq!(config["WorkingDir"], "/home/nonroot");
    let env: Vec<&str> = (config["Env"].as_array().unwrap().iter())
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(env.contains(&"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"));

    let ca = Path::new("/etc/ssl/certs/ca-certificates.crt");
    let mut files = vec!["etc/group", "etc/passwd", binary.trim_start_matches('/')];
    if ca.is_file() {
        let bundle = layout.entry("etc/ssl/certs/ca-certificates.crt");
        assert_eq!((bundle.mode, bundle.uid), (0o644, 0));
        assert_eq!(bundle.data, fs::read(ca).unwrap());
        assert!(env.contains(&"SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"));
        files.push("etc/ssl/certs/ca-certificates.crt");
    } else {
        eprintln!(
            "{} missing on this host: the image has no CA bundle",
            ca.display()
        );
    }
    files.sort();
    let regular: Vec<&str> = (layout.layer.iter())
        .filter(|e| e.kind != 'd')
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(
        regular, files,
        "only these files, no links (no shell, no busybox)"
    );
    for p in layout.paths() {
        let name = p.trim_end_matches('/').rsplit('/').next().unwrap();
        assert!(
            !["sh", "bash", "ash", "dash", "busybox"].contains(&name),
            "{p}"
        );
    }
}

/// Whether `elf` has a PT_INTERP program header (a dynamic loader to run it).
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..4], b"\x7fELF", "not ELF");
    assert_eq!(elf[4], 2, "not 64-bit");
    assert_eq!(elf[5], 1, "not little-endian");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    assert!(phnum > 0, "no program headers");
    (0..phnum).any(|i| {
        let at = phoff + i * phentsize;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap()) == 3 // PT_INTERP
    })
}

#[test]
fn elf_check_tells_static_from_dynamic() {
    // The test binary itself is dynamically linked (glibc target).
    let me = fs::read(std::env::current_exe().unwrap()).unwrap();
    assert!(has_interpreter(&me));
}

#[test]
fn busybox_image_has_a_static_busybox_and_its_applets() {
    let image = oci::busybox_image("busybox-a").unwrap();
    let (_tmp, da, layout) = write_and_read(&image, "busybox:a");
    let bb = layout.entry("bin/busybox");
    assert_eq!((bb.kind, bb.mode, bb.uid), ('f', 0o755, 0));
    assert_eq!(bb.data, fs::read("/bin/busybox").unwrap());
    assert!(
        !has_interpreter(&bb.data),
        "busybox must be static: the image has no libc"
    );
    assert_eq!(layout.entry("bin/sh"), &link("bin/sh", "busybox"));

    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    let mut applets: Vec<String> = String::from_utf8(list.stdout)
        .unwrap()
        .split_whitespace()
        .filter(|a| *a != "busybox")
        .map(|a| format!("bin/{a}"))
        .collect();
    applets.sort();
    let links: Vec<&str> = (layout.layer.iter())
        .filter(|e| e.kind == 'l')
        .inspect(|e| assert_eq!(e.link, "busybox", "{}", e.path))
        .map(|e| e.path.as_str())
        .collect();
    assert_eq!(links, applets);
    assert!(links.len() > 100, "{} applets", links.len());

    let passwd = String::from_utf8(layout.entry("etc/passwd").data.clone()).unwrap();
    assert!(passwd.starts_with("root:x:0:0:"), "{passwd}");
    assert!(passwd.contains("\nnobody:x:65534:65534:"), "{passwd}");
    let group = String::from_utf8(layout.entry("etc/group").data.clone()).unwrap();
    assert_eq!(group, "root:x:0:\nnobody:x:65534:\n");
    assert_eq!(layout.entry("tmp/"), &dir("tmp/", 0o1777, 0, 0));

    let config = &layout.config["config"];
    assert_eq!(config.get("Entrypoint"), None);
    assert_eq!(config["Cmd"], json!(["sh"]));
    assert_eq!(config.get("User"), None, "root");
    assert_eq!(
        config["Labels"],
        json!({"org.opencontainers.image.title": "busybox-a"})
    );

    // Another title: same layer, another config, so containerd keeps two images apart.
    let (_tmp, db, other) = write_and_read(&oci::busybox_image("busybox-b").unwrap(), "b");
    assert_ne!(da, db);
    assert_eq!(other.manifest["layers"], layout.manifest["layers"]);
    assert_ne!(
        other.manifest["config"]["digest"],
        layout.manifest["config"]["digest"]
    );
}

fn have(tool: &str) -> bool {
    Command::new(tool).arg("--version").output().is_ok()
}

#[test]
fn pause_image_is_static_and_stops_on_sigterm_and_sigint() {
    if !have("gcc") {
        eprintln!("gcc is not installed: pause image not tested");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let image = oci::pause_image(work.path()).unwrap();
    let (_tmp, _, layout) = write_and_read(&image, "pause");
    assert_eq!(layout.paths(), ["pause"]);
    let pause = layout.entry("pause");
    assert_eq!((pause.kind, pause.mode, pause.uid), ('f', 0o755, 0));
    assert!(!has_interpreter(&pause.data), "/pause must be static");
    let config = &layout.config["config"];
    assert_eq!(config["Entrypoint"], json!(["/pause"]));
    assert_eq!(config["User"], "65535:65535");

    let bin = work.path().join("pause");
    assert_eq!(fs::read(&bin).unwrap(), pause.data);
    if have("ldd") {
        let out = Command::new("ldd").arg(&bin).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("not a dynamic executable"), "ldd: {text}");
    }
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let mut child = Command::new(&bin).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            child.try_wait().unwrap().is_none(),
            "pause exited by itself"
        );
        let pid = libc::pid_t::try_from(child.id()).unwrap();
        // SAFETY: kill(2) on a child this test spawned and has not reaped yet.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "signal {signal}: {status}");
    }
}

fn tiny_layout() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let image = Image {
        entries: vec![Entry::file("/f", 0o644, "x")],
        config: Config {
            cmd: vec!["/f".into()],
            ..Config::default()
        },
    };
    oci::write_layout(tmp.path(), "t", &image).unwrap();
    tmp
}

#[test]
fn push_failures_carry_skopeos_message() {
    let tmp = tiny_layout();
    let err = oci::push(tmp.path(), "t", "127.0.0.1:1/x:y").unwrap_err();
    let err = format!("{err:#}");
    match oci::skopeo() {
        Ok(_) => {
            assert!(err.contains("skopeo copy oci:"), "{err}");
            assert!(err.contains("docker://127.0.0.1:1/x:y"), "{err}");
            // skopeo's own words about the refused connection.
            assert!(
                err.contains("127.0.0.1:1") && err.contains("connection refused"),
                "{err}"
            );
        }
        Err(_) => assert!(err.contains("apt-get install skopeo"), "{err}"),
    }
    let bad = tmp.path().join("a:b");
    let err = format!("{:#}", oci::push(&bad, "t", "127.0.0.1:1/x:y").unwrap_err());
    assert!(
        err.contains("apt-get install skopeo") || err.contains("without `:`"),
        "{err}"
    );
}

/// skopeo (when installed) reads the layout, and copies it with push's defaults (no
/// `--preserve-digests`) without changing the manifest digest: what `push` sends is what
/// `write_layout` wrote. (skopeo would gzip an uncompressed layer, changing the digest.)
#[test]
fn skopeo_reads_the_layout_and_keeps_its_digest() {
    let Ok(skopeo) = oci::skopeo() else {
        eprintln!("skopeo is not installed: layout not checked with skopeo");
        return;
    };
    let tool = host_file(b"tool");
    let src = tempfile::tempdir().unwrap();
    let digest = oci::write_layout(src.path(), "t", &sample(tool.path())).unwrap();
    let oci_ref = |d: &Path| format!("oci:{}:t", d.display());

    let out = oci::skopeo_command(&skopeo)
        .args(["inspect", "--config", &oci_ref(src.path())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(config["config"]["User"], "1000:2000");

    let dst = tempfile::tempdir().unwrap();
    let out = oci::skopeo_command(&skopeo)
        .args(["--insecure-policy", "copy"])
        .args([oci_ref(src.path()), oci_ref(dst.path())])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(read_layout(dst.path(), "t").manifest_digest, digest);
}
