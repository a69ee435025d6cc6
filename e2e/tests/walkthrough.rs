//! The user docs' walkthrough on the one-node cluster: `examples/` applied as a user applies
//! them, the kubelet running every step of the builder pod with the real tools where they can
//! be had (buildah, xorriso, squashfs-tools, ...) and the AuroraBoot stand-in for the rest
//! (e2e/standin), the images pulled from the cluster's registry under their upstream names.
//! The files each build publishes are read from its volume and taken apart.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use osartifact_e2e::builder_images::WHITED_OUT;
use osartifact_e2e::net::NODE_IP;
use osartifact_e2e::{Ns, env, http, oci, paths};
use serde_json::Value;

osartifact_e2e::cluster_namespaces!();

/// A build of a small OS takes seconds per step; the machine may be busy with several.
const BUILD_TIMEOUT: Duration = Duration::from_secs(420);

fn example(file: &str) -> String {
    let p = paths::workspace().join("examples").join(file);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn apply(ns: &Ns, yaml: &str) {
    let out = ns.k_stdin(&["apply", "-f", "-"], Some(yaml));
    assert!(out.success, "{out}");
}

/// An OSArtifact `name` of the small core OS image with the spec lines `spec` (YAML at the
/// spec's indentation, without it), as YAML.
fn core_artifact(name: &str, spec: &str) -> String {
    let spec: String = spec.lines().map(|l| format!("  {l}\n")).collect();
    format!(
        "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {{name: {name}}}\n\
         spec:\n  imageName: {}\n{spec}",
        osartifact_e2e::builder_images::OS_CORE
    )
}

/// Everything that tells why a build ended as it did.
fn diagnostics(ns: &Ns, name: &str) -> String {
    let pod = ns.k(&["get", "pod", &format!("{name}-build"), "-o", "yaml"]);
    let logs = ns.k(&[
        "logs",
        &format!("{name}-build"),
        "--all-containers",
        "--prefix",
        "--tail=40",
    ]);
    let events = ns.k(&["get", "events", "--sort-by=.lastTimestamp"]);
    format!(
        "--- pod\n{}\n--- logs\n{}{}\n--- events\n{}",
        pod.stdout, logs.stdout, logs.stderr, events.stdout
    )
}

/// Waits until `name` is Ready or Error and returns it; panics with the pod's story on Error.
fn wait_ready(ns: &Ns, name: &str) -> Value {
    wait_ready_within(ns, name, BUILD_TIMEOUT)
}

/// [`wait_ready`] with its own bound.
fn wait_ready_within(ns: &Ns, name: &str, timeout: Duration) -> Value {
    let obj = ns.wait_for(
        &["osartifact", name],
        &format!("{name} Ready or Error"),
        timeout,
        |v| matches!(v["status"]["phase"].as_str(), Some("Ready" | "Error")),
    );
    assert_eq!(
        obj["status"]["phase"],
        "Ready",
        "{obj:#}\n{}",
        diagnostics(ns, name)
    );
    obj
}

/// Waits until `name` is Error and returns it.
fn wait_error(ns: &Ns, name: &str) -> Value {
    let obj = ns.wait_for(
        &["osartifact", name],
        &format!("{name} Ready or Error"),
        BUILD_TIMEOUT,
        |v| matches!(v["status"]["phase"].as_str(), Some("Ready" | "Error")),
    );
    assert_eq!(obj["status"]["phase"], "Error", "{obj:#}");
    obj
}

/// The directory of the artifacts volume of `name` (the host-path PV, which this process
/// sees in the node's mount namespace).
fn volume_dir(ns: &Ns, name: &str) -> PathBuf {
    let pvc = ns
        .get(&["pvc", &format!("{name}-artifacts")])
        .expect("the artifacts PVC");
    let pv = pvc["spec"]["volumeName"].as_str().expect("a bound PVC");
    let pv = ns.env.k().get_json(&["pv", pv]).expect("the PV");
    PathBuf::from(
        pv["spec"]["hostPath"]["path"]
            .as_str()
            .expect("a host-path PV"),
    )
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect()
}

/// The volume holds exactly `files` and the build's manifest `<name>.manifest.json`, each
/// non-empty and readable by anyone (an exporter need not run as root); `status.artifacts` lists
/// `files`, and `status.outputs` each of them with the size of the file in the volume, as the
/// manifest does.
fn assert_published(obj: &Value, dir: &Path, files: &[String]) {
    let name = obj["metadata"]["name"].as_str().expect("metadata.name");
    let manifest = format!("{name}.manifest.json");
    let want: BTreeSet<String> = files.iter().cloned().collect();
    let mut in_volume = want.clone();
    in_volume.insert(manifest.clone());
    assert_eq!(file_names(dir), in_volume, "files in the artifacts volume");
    for f in &in_volume {
        let meta = std::fs::metadata(dir.join(f)).unwrap();
        assert!(meta.len() > 0, "{f} is empty");
        assert_eq!(
            meta.permissions().mode() & 0o444,
            0o444,
            "{f} is not readable by all: {:o}",
            meta.permissions().mode()
        );
    }
    let listed: BTreeSet<String> = obj["status"]["artifacts"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().or_else(|| v["name"].as_str()))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(listed, want, "status.artifacts");
    let outputs = obj["status"]["outputs"]
        .as_array()
        .unwrap_or_else(|| panic!("no status.outputs: {obj:#}"));
    let reported: BTreeSet<String> = outputs
        .iter()
        .filter_map(|o| o["name"].as_str())
        .map(str::to_owned)
        .collect();
    assert_eq!(reported, want, "status.outputs");
    for o in outputs {
        let f = o["name"].as_str().unwrap_or_default();
        let len = std::fs::metadata(dir.join(f)).unwrap().len();
        assert_eq!(o["size"].as_u64(), Some(len), "status.outputs size of {f}");
    }
    let text = std::fs::read_to_string(dir.join(&manifest)).unwrap();
    let m: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{manifest}: {e}"));
    assert_eq!(&m["files"], &obj["status"]["outputs"], "{manifest}");
}

fn sha256_hex(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    oci::sha256(&bytes)
        .trim_start_matches("sha256:")
        .to_string()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ISO's files, extracted with xorriso into a new directory.
fn extract_iso(iso: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    run(Command::new("xorriso")
        .args(["-osirrox", "on", "-indev"])
        .arg(iso)
        .args(["-extract", "/"])
        .arg(d.path()));
    d
}

/// The root file system in `squashfs`, extracted with unsquashfs (modes and owners kept).
fn extract_squashfs(squashfs: &Path) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let root = d.path().join("root");
    run(Command::new("unsquashfs")
        .args(["-no-progress", "-d"])
        .arg(&root)
        .arg(squashfs));
    d
}

fn find_file(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) && p.is_file() {
            return Some(p);
        }
        if p.is_dir()
            && !p.is_symlink()
            && let Some(f) = find_file(&p, name)
        {
            return Some(f);
        }
    }
    None
}

/// The checks every ISO gets: its `.sha256` matches, and the root file system inside holds
/// the image, the bundles applied as layers (their whiteouts too), a sane root mode.
/// Returns the extracted ISO and root file system.
fn check_iso(dir: &Path, name: &str) -> (tempfile::TempDir, tempfile::TempDir) {
    let iso = dir.join(format!("{name}.iso"));
    let sum = std::fs::read_to_string(dir.join(format!("{name}.iso.sha256"))).unwrap();
    assert_eq!(
        sum.split_whitespace().next(),
        Some(sha256_hex(&iso).as_str()),
        "{name}.iso.sha256: {sum}"
    );
    assert!(sum.contains(&format!("{name}.iso")), "{sum}");
    let x = extract_iso(&iso);
    let squashfs = find_file(x.path(), "rootfs.squashfs").expect("rootfs.squashfs in the ISO");
    let fs = extract_squashfs(&squashfs);
    let root = fs.path().join("root");
    let mode = std::fs::metadata(&root).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755, "the OS root directory's mode");
    let release = std::fs::read_to_string(root.join("etc/kairos-release")).unwrap();
    assert!(release.contains("KAIROS_ARCH"), "{release}");
    (x, fs)
}

fn bundles_applied(root: &Path, programs: &[&str]) {
    for p in programs {
        assert!(
            root.join("usr/local/bin").join(p).is_file(),
            "bundle program {p} missing"
        );
    }
    assert!(
        !root.join(WHITED_OUT.trim_start_matches('/')).exists(),
        "the bundles' whiteout of {WHITED_OUT} was not applied"
    );
}

#[test]
fn the_iso_example_builds_exports_to_nginx_and_downloads_byte_identical() {
    let e = env();
    let ns = e.namespace("iso");
    let node_port = e.install_nginx(&ns).unwrap();
    apply(&ns, &example("iso.yaml"));
    let obj = wait_ready(&ns, "hello-kairos");
    let dir = volume_dir(&ns, "hello-kairos");
    let files: Vec<String> = [
        "hello-kairos.tar",
        "hello-kairos.iso",
        "hello-kairos.iso.sha256",
    ]
    .map(String::from)
    .to_vec();
    assert_published(&obj, &dir, &files);
    // What was built: every published file with the sha256 of the file in the volume.
    for f in &files {
        let o = obj["status"]["outputs"]
            .as_array()
            .and_then(|a| a.iter().find(|o| o["name"] == f.as_str()))
            .unwrap_or_else(|| panic!("{f} not in status.outputs"));
        assert_eq!(
            o["sha256"].as_str(),
            Some(sha256_hex(&dir.join(f)).as_str()),
            "status.outputs sha256 of {f}"
        );
    }

    // The operator's default helper image, as installed from manifests/default, is the
    // upstream AuroraBoot reference: the stand-in serves exactly that name.
    let pod = ns.get(&["pod", "hello-kairos-build"]).unwrap();
    let images: BTreeSet<&str> = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["image"].as_str())
        .collect();
    assert_eq!(
        images,
        BTreeSet::from([osartifact_e2e::builder_images::AURORABOOT]),
        "the builder pod's step images"
    );

    let (x, fs) = check_iso(&dir, "hello-kairos");
    let root = fs.path().join("root");
    bundles_applied(&root, &["helm"]);
    assert!(root.join("usr/bin/k3s").is_file(), "the standard image");
    // The cloud-config from the Secret's `userdata` key is in the ISO.
    let cc = std::fs::read_to_string(
        find_file(x.path(), "config.yaml").expect("the cloud-config in the ISO"),
    )
    .unwrap();
    assert!(
        cc.contains("#cloud-config") && cc.contains("device: \"auto\""),
        "{cc}"
    );

    // The exporter uploaded every file to nginx through its Service name; they download
    // byte-identical through the NodePort.
    for f in &files {
        let (code, body) =
            http::get_bytes(&format!("{NODE_IP}:{node_port}"), &format!("/{f}")).unwrap();
        assert_eq!(code, 200, "GET /{f}");
        assert_eq!(
            oci::sha256(&body),
            oci::sha256(&std::fs::read(dir.join(f)).unwrap()),
            "/{f} through the NodePort"
        );
    }
}

#[test]
fn the_netboot_example_publishes_readable_kernel_initrd_squashfs_and_ipxe() {
    let e = env();
    let ns = e.namespace("netboot");
    apply(&ns, &example("netboot.yaml"));
    let name = "hello-kairos-netboot".to_string();
    let obj = wait_ready(&ns, &name);
    let dir = volume_dir(&ns, &name);
    let mut files: Vec<String> = [
        ".tar",
        ".iso",
        ".iso.sha256",
        ".squashfs",
        "-kernel",
        "-initrd",
    ]
    .iter()
    .map(|s| format!("{name}{s}"))
    .collect();
    files.push(format!("{name}.ipxe"));
    assert_published(&obj, &dir, &files);
    let (x, _) = check_iso(&dir, &name);
    // The netboot files are those of the ISO.
    let kernel = std::fs::read(dir.join(format!("{name}-kernel"))).unwrap();
    assert!(
        String::from_utf8_lossy(&kernel).contains("osartifact e2e kernel"),
        "the kernel file is not the image's"
    );
    let squashfs = find_file(x.path(), "rootfs.squashfs").unwrap();
    assert_eq!(
        sha256_hex(&squashfs),
        sha256_hex(&dir.join(format!("{name}.squashfs"))),
        "the netboot squashfs is the ISO's"
    );
    // The iPXE script loads them from netbootURL.
    let ipxe = std::fs::read_to_string(dir.join(format!("{name}.ipxe"))).unwrap();
    assert!(ipxe.starts_with("#!ipxe"), "{ipxe}");
    assert!(ipxe.contains(&format!("{name}-kernel")), "{ipxe}");
}

/// Builds with disk images run one at a time: two privileged builder pods attaching loop
/// devices at once on this node failed once with ENXIO opening /dev/loop0 (see
/// docs/testing.md).
static DISK_BUILDS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn disk_builds() -> std::sync::MutexGuard<'static, ()> {
    DISK_BUILDS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The raw disk's partition table, as sgdisk prints it.
fn partitions(raw: &Path) -> String {
    run(Command::new("sgdisk").arg("-p").arg(raw))
}

/// The disk builds' bound: the build's last step hashes every file it publishes, and
/// cloud-image.yaml's raw disk is 32,000 MB (sparse, but the hash reads all of it: about four
/// minutes with the stand-in's Debian sha256sum on this machine's shared cores).
const DISK_BUILD_TIMEOUT: Duration = Duration::from_secs(600);

// Named to sort first: libtest starts tests in name order, and this is the longest one (the
// 32,000 MB hash), so it runs beside the others rather than after them.
#[test]
fn a_disk_image_example_builds_raw_then_vhd_then_gce() {
    let e = env();
    let ns = e.namespace("disks");
    let _one_at_a_time = disk_builds();
    for f in ["cloud-image.yaml", "azure-image.yaml", "gce-image.yaml"] {
        apply(&ns, &example(f));
        let name = example(f)
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("name: hello-kairos")
                    .map(str::to_owned)
            })
            .map(|rest| format!("hello-kairos{rest}"))
            .expect("the example's artifact name");
        wait_ready_within(&ns, &name, DISK_BUILD_TIMEOUT);
    }

    // Raw, grown to diskSize (32000 MB) as a sparse file.
    let obj = wait_ready(&ns, "hello-kairos-cloud");
    let dir = volume_dir(&ns, "hello-kairos-cloud");
    let files = ["hello-kairos-cloud.tar", "hello-kairos-cloud.raw"].map(String::from);
    assert_published(&obj, &dir, &files);
    let raw = dir.join("hello-kairos-cloud.raw");
    assert!(
        std::fs::metadata(&raw).unwrap().len() >= 32000 * 1024 * 1024,
        "the raw image is smaller than diskSize"
    );
    let table = partitions(&raw);
    assert!(table.contains("Number"), "{table}");

    // Azure: a fixed VHD (the raw image with a 512-byte footer).
    let obj = wait_ready(&ns, "hello-kairos-azure");
    let dir = volume_dir(&ns, "hello-kairos-azure");
    let files = ["hello-kairos-azure.tar", "hello-kairos-azure-azure.vhd"].map(String::from);
    assert_published(&obj, &dir, &files);
    let vhd = std::fs::read(dir.join("hello-kairos-azure-azure.vhd")).unwrap();
    let footer = &vhd[vhd.len() - 512..];
    assert_eq!(&footer[..8], b"conectix", "the VHD footer");
    // AuroraBoot's Raw2Azure cuts or grows the disk so that the file, footer included, is a
    // whole number of MiB.
    assert_eq!(vhd.len() % (1024 * 1024), 0, "the VHD's size in whole MiB");

    // GCE: a gzipped tarball holding exactly disk.raw.
    let obj = wait_ready(&ns, "hello-kairos-gce");
    let dir = volume_dir(&ns, "hello-kairos-gce");
    let files = ["hello-kairos-gce.tar", "hello-kairos-gce.gce.raw.tar.gz"].map(String::from);
    assert_published(&obj, &dir, &files);
    let listing = run(Command::new("tar")
        .arg("-tzf")
        .arg(dir.join("hello-kairos-gce.gce.raw.tar.gz")));
    assert_eq!(listing.trim(), "disk.raw", "{listing}");
}

#[test]
fn the_configmap_overlay_example_puts_its_file_in_every_output() {
    let e = env();
    let ns = e.namespace("cm-overlay");
    apply(&ns, &example("configmap-overlay.yaml"));
    let obj = wait_ready(&ns, "configmap-overlay");
    let dir = volume_dir(&ns, "configmap-overlay");
    let files = [
        "configmap-overlay.tar",
        "configmap-overlay.iso",
        "configmap-overlay.iso.sha256",
    ]
    .map(String::from);
    assert_published(&obj, &dir, &files);
    let (_x, fs) = check_iso(&dir, "configmap-overlay");
    let root = fs.path().join("root");
    let motd = root.join("etc/motd");
    assert!(
        motd.is_file() && !motd.is_symlink(),
        "/etc/motd from the ConfigMap is not a file in the ISO's rootfs"
    );
    assert_eq!(
        std::fs::read_to_string(&motd).unwrap(),
        "Welcome to my custom Kairos build!\n"
    );
    // Not the kubelet's atomic-writer links.
    assert!(!root.join("..data").exists(), "..data in the rootfs");
    // The image tarball (a docker archive: one layer) has it too, as every output does:
    // the overlay is applied to the root file system before the tarball step.
    let tar = dir.join("configmap-overlay.tar");
    let x = tempfile::tempdir().unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(x.path()));
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(x.path().join("manifest.json")).unwrap())
            .unwrap();
    let layer = manifest[0]["Layers"][0]
        .as_str()
        .expect("a layer in manifest.json");
    let files = run(Command::new("tar").arg("-tf").arg(x.path().join(layer)));
    assert!(
        files
            .lines()
            .any(|l| l.trim_start_matches("./") == "etc/motd"),
        "etc/motd not in the image tarball's layer"
    );
}

#[test]
fn importers_fill_the_iso_and_rootfs_overlays_from_an_http_server() {
    let e = env();
    let ns = e.namespace("importers");
    e.install_nginx(&ns).unwrap();
    osartifact_e2e::files::serve_tarballs(&ns, &["iso-extras", "rootfs-extras"]).unwrap();
    // The example as written, with the internet server replaced by the one in the cluster.
    apply(
        &ns,
        &osartifact_e2e::files::in_cluster(&example("multiple-overlays.yaml")),
    );
    let obj = wait_ready(&ns, "full-custom-iso");
    let dir = volume_dir(&ns, "full-custom-iso");
    let files = [
        "full-custom-iso.tar",
        "full-custom-iso.iso",
        "full-custom-iso.iso.sha256",
    ]
    .map(String::from);
    assert_published(&obj, &dir, &files);
    let (x, fs) = check_iso(&dir, "full-custom-iso");
    assert_eq!(
        std::fs::read_to_string(x.path().join("iso-extras.txt")).unwrap(),
        "iso-extras\n",
        "the ISO overlay's file at the ISO's root"
    );
    assert_eq!(
        std::fs::read_to_string(fs.path().join("root/rootfs-extras.txt")).unwrap(),
        "rootfs-extras\n",
        "the rootfs overlay's file in the root file system"
    );
}

#[test]
fn an_image_missing_from_the_registry_fails_its_step_with_the_pull_error() {
    let e = env();
    let ns = e.namespace("missing-image");
    apply(
        &ns,
        r#"apiVersion: build.kairos.io/v1alpha2
kind: OSArtifact
metadata: {name: missing}
spec:
  imageName: quay.io/kairos/opensuse:no-such-tag
  iso: true
"#,
    );
    let obj = wait_error(&ns, "missing");
    let msg = obj["status"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("step 1 of ")
            && msg.contains("(unpack) failed")
            && msg.contains("exit code 1"),
        "{msg}"
    );
    assert!(
        msg.contains("no-such-tag"),
        "the message names the image: {msg}"
    );
    assert!(msg.contains("build.kairos.io/retry"), "{msg}");
    let pods = ns.k(&["get", "pods", "-o", "name"]);
    assert_eq!(pods.stdout.trim(), "pod/missing-build", "one build only");
}

#[test]
fn a_missing_bundle_fails_its_step_and_a_failing_exporter_keeps_the_files() {
    let e = env();
    let ns = e.namespace("failures");
    apply(
        &ns,
        &[
            core_artifact(
                "bad-bundle",
                "bundles: [quay.io/kairos/packages:no-such-bundle]",
            ),
            core_artifact(
                "bad-export",
                r#"exporters:
  - backoffLimit: 0
    template:
      spec:
        restartPolicy: Never
        containers:
          - name: upload
            image: curlimages/curl:latest
            command: [sh, -c, "echo 'upload refused' >&2; exit 3"]"#,
            ),
        ]
        .join("---\n"),
    );
    let obj = wait_error(&ns, "bad-bundle");
    let msg = obj["status"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with("step 2 of ")
            && msg.contains("(bundle-0) failed")
            && msg.contains("exit code 1"),
        "{msg}"
    );
    assert!(msg.contains("no-such-bundle"), "{msg}");

    let obj = wait_error(&ns, "bad-export");
    let msg = obj["status"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("export"), "{msg}");
    // The build itself succeeded: its files stay listed and in the volume.
    let dir = volume_dir(&ns, "bad-export");
    assert_published(&obj, &dir, &["bad-export.tar".to_string()]);
}

#[test]
fn a_volume_that_cannot_bind_keeps_the_build_waiting_and_says_why() {
    let e = env();
    let ns = e.namespace("unbound");
    apply(
        &ns,
        &core_artifact(
            "unbound",
            "iso: true\nvolume:\n  storageClassName: no-such-class\n  \
             accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}",
        ),
    );
    let obj = ns.wait_for(
        &["osartifact", "unbound"],
        "the scheduling problem in status.message",
        Duration::from_secs(120),
        |v| {
            v["status"]["message"].as_str().is_some_and(|m| {
                m.contains("waiting to be scheduled") && m.contains("PersistentVolumeClaim")
            })
        },
    );
    assert_eq!(obj["status"]["phase"], "Building", "{obj:#}");
}

#[test]
fn a_step_out_of_memory_is_reported_as_oomkilled() {
    let e = env();
    let ns = e.namespace("oom");
    apply(
        &ns,
        &core_artifact(
            "small",
            "iso: true\nresources:\n  iso:\n    limits: {memory: 3Mi}",
        ),
    );
    let obj = wait_error(&ns, "small");
    let msg = obj["status"]["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("(iso) failed: OOMKilled"),
        "{msg}\n{}",
        diagnostics(&ns, "small")
    );
}

#[test]
fn an_operator_restart_mid_build_finishes_the_build_once() {
    let e = env();
    let ns = e.namespace("restart");
    let _one_at_a_time = disk_builds();
    apply(
        &ns,
        &core_artifact("restarted", "iso: true\ncloudImage: true"),
    );
    let pod = ns.wait_for(
        &["pod", "restarted-build"],
        "the builder pod running",
        Duration::from_secs(120),
        |v| {
            v["status"]["initContainerStatuses"][0]["state"]["running"].is_object()
                || v["status"]["initContainerStatuses"][0]["state"]["terminated"].is_object()
        },
    );
    let uid = pod["metadata"]["uid"].as_str().unwrap().to_string();
    let holder = e.operator_lease_holder();
    assert!(holder.starts_with("osartifact-operator-"), "{holder}");
    let d = e
        .k()
        .run(&[
            "delete",
            "pod",
            "-n",
            "osartifact-system",
            &holder,
            "--wait=false",
        ])
        .unwrap();
    assert!(d.success, "{d}");
    let obj = wait_ready(&ns, "restarted");
    let pod = ns.get(&["pod", "restarted-build"]).unwrap();
    assert_eq!(
        pod["metadata"]["uid"],
        uid.as_str(),
        "a second builder pod ran"
    );
    let dir = volume_dir(&ns, "restarted");
    assert_published(
        &obj,
        &dir,
        &[
            "restarted.tar",
            "restarted.iso",
            "restarted.iso.sha256",
            "restarted.raw",
        ]
        .map(String::from),
    );
}

#[test]
fn a_dockerfile_template_builds_with_buildah_and_the_iso_shows_the_rendered_values() {
    let e = env();
    let ns = e.namespace("dockerfile");
    apply(&ns, &example("dockerfile-template-combined.yaml"));
    let name = "custom-build-combined";
    let obj = wait_ready(&ns, name);
    let pod = ns.get(&["pod", &format!("{name}-build")]).unwrap();
    let buildah = pod["spec"]["initContainers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "buildah")
        .expect("a buildah step");
    assert_eq!(buildah["image"], osartifact_e2e::builder_images::BUILDAH);
    let dir = volume_dir(&ns, name);
    let files = [".tar", ".iso", ".iso.sha256"].map(|s| format!("{name}{s}"));
    assert_published(&obj, &dir, &files);
    let (_x, fs) = check_iso(&dir, name);
    let root = fs.path().join("root");
    // `RUN echo "Version: {{ .Version }}"`: the inline value overrides the Secret's 1.0.0.
    assert_eq!(
        std::fs::read_to_string(root.join("etc/build-info")).unwrap(),
        "Version: 2.0.0\n"
    );
    // `RUN zypper install -y {{ .ExtraPackages }}` with "vim curl" from the values Secret.
    for p in ["vim", "curl"] {
        assert!(
            root.join("var/lib/e2e-packages").join(p).is_file(),
            "the RUN step did not install {p}"
        );
    }
    // The base image came through buildah's pull: its files are there.
    assert!(root.join("etc/kairos-release").is_file());
}

#[test]
fn the_advanced_example_builds_every_format_with_its_grub_cfg_and_release_files() {
    let e = env();
    let ns = e.namespace("advanced");
    let _one_at_a_time = disk_builds();
    let yaml = example("advanced.yaml");
    apply(&ns, &yaml);
    let name = "advanced-build";
    let obj = wait_ready(&ns, name);
    let dir = volume_dir(&ns, name);
    let files = [".tar", ".iso", ".iso.sha256", ".raw", "-azure.vhd"].map(|s| format!("{name}{s}"));
    assert_published(&obj, &dir, &files);
    let (x, fs) = check_iso(&dir, name);
    // The custom grub.cfg is the live ISO's boot menu.
    let grub = std::fs::read_to_string(x.path().join("boot/grub2/grub.cfg")).unwrap();
    assert!(
        grub.contains("menuentry \"Kairos (basic graphics)\""),
        "{grub}"
    );
    // The release files replaced the image's (its os-release was a symlink).
    let root = fs.path().join("root");
    let os_release = root.join("etc/os-release");
    assert!(
        !os_release.is_symlink(),
        "/etc/os-release is still the image's link"
    );
    assert!(
        std::fs::read_to_string(&os_release)
            .unwrap()
            .contains("Kairos v3.6.0"),
        "the spec's osRelease"
    );
    let kairos = std::fs::read_to_string(root.join("etc/kairos-release")).unwrap();
    assert!(kairos.contains("KAIROS_ID_LIKE"), "{kairos}");
    bundles_applied(&root, &["docker", "k3s-killall.sh"]);
    // The disk images carry a GPT.
    assert!(partitions(&dir.join(format!("{name}.raw"))).contains("Number"));
}

#[test]
fn an_image_in_a_private_registry_needs_its_pull_secret() {
    let e = env();
    let ns = e.namespace("private");
    let node = e.node.as_ref().unwrap();
    let image = format!(
        "{}/kairos/private-os:v1",
        osartifact_e2e::net::auth_registry()
    );
    node.push_image_with_creds(
        "private-os",
        &osartifact_e2e::builder_images::kairos_os(&image, "core").unwrap(),
        &image,
        osartifact_e2e::net::AUTH_REGISTRY_USER,
        osartifact_e2e::net::AUTH_REGISTRY_PASSWORD,
    )
    .unwrap();
    let auth = base64_encode(&format!(
        "{}:{}",
        osartifact_e2e::net::AUTH_REGISTRY_USER,
        osartifact_e2e::net::AUTH_REGISTRY_PASSWORD
    ));
    let config = format!(
        r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#,
        osartifact_e2e::net::auth_registry()
    );
    apply(
        &ns,
        &format!(
            r#"apiVersion: v1
kind: Secret
metadata: {{name: registry}}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '{config}'
---
apiVersion: build.kairos.io/v1alpha2
kind: OSArtifact
metadata: {{name: with-secret}}
spec:
  imageName: {image}
  imagePullSecrets: [{{name: registry}}]
---
apiVersion: build.kairos.io/v1alpha2
kind: OSArtifact
metadata: {{name: without-secret}}
spec:
  imageName: {image}
"#
        ),
    );
    let obj = wait_ready(&ns, "with-secret");
    let dir = volume_dir(&ns, "with-secret");
    assert_published(&obj, &dir, &["with-secret.tar".to_string()]);
    let obj = wait_error(&ns, "without-secret");
    let msg = obj["status"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("(unpack) failed"), "{msg}");
    assert!(msg.contains("401") || msg.contains("unauthorized"), "{msg}");
    // No credential reaches the status or the events.
    let events = ns.k(&["get", "events", "-o", "json"]);
    for text in [msg, events.stdout.as_str()] {
        assert!(!text.contains(&auth), "the credential leaked");
        assert!(
            !text.contains(osartifact_e2e::net::AUTH_REGISTRY_PASSWORD),
            "the password leaked"
        );
    }
}

fn base64_encode(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// A small ISO artifact `name` with these bundles, as YAML.
fn small_iso(name: &str, bundles: &[&str]) -> String {
    let bundles = bundles
        .iter()
        .map(|b| format!("\"{b}\""))
        .collect::<Vec<_>>()
        .join(", ");
    core_artifact(name, &format!("iso: true\nbundles: [{bundles}]"))
}

#[test]
fn a_spec_change_rebuilds_and_the_retry_annotation_builds_again() {
    let e = env();
    let ns = e.namespace("rebuild");
    let name = "rebuilt";
    apply(&ns, &small_iso(name, &[]));
    wait_ready(&ns, name);
    let first = ns.get(&["pod", &format!("{name}-build")]).unwrap();
    let dir = volume_dir(&ns, name);
    let sum = |d: &Path| sha256_hex(&d.join(format!("{name}.iso")));
    let first_iso = sum(&dir);

    // A new generation: a new builder pod, a new ISO with the bundle in it.
    apply(
        &ns,
        &small_iso(name, &["quay.io/kairos/packages:helm-utils-3.10.1"]),
    );
    let obj = ns.wait_for(
        &["osartifact", name],
        "Ready for generation 2",
        BUILD_TIMEOUT,
        |v| v["status"]["observedGeneration"] == 2 && v["status"]["phase"] == "Ready",
    );
    let second = ns.get(&["pod", &format!("{name}-build")]).unwrap();
    assert_ne!(first["metadata"]["uid"], second["metadata"]["uid"]);
    let files = [".tar", ".iso", ".iso.sha256"].map(|s| format!("{name}{s}"));
    assert_published(&obj, &dir, &files);
    assert_ne!(sum(&dir), first_iso, "the ISO was not rebuilt");
    let (_x, fs) = check_iso(&dir, name);
    bundles_applied(&fs.path().join("root"), &["helm"]);

    // The retry annotation builds the same generation again, in a new pod.
    let out = ns.k(&[
        "annotate",
        "osartifact",
        name,
        "build.kairos.io/retry=1",
        "--overwrite",
    ]);
    assert!(out.success, "{out}");
    let third = ns.wait_for(
        &["pod", &format!("{name}-build")],
        "the retry's builder pod",
        BUILD_TIMEOUT,
        |p| {
            p["metadata"]["annotations"]["build.kairos.io/retry"] == "1"
                && p["metadata"]["uid"] != second["metadata"]["uid"]
        },
    );
    let obj = ns.wait_for(
        &["osartifact", name],
        "Ready after the retry",
        BUILD_TIMEOUT,
        |v| {
            v["status"]["phase"] == "Ready"
                && ns.get(&["pod", &format!("{name}-build")]).is_some_and(|p| {
                    p["metadata"]["uid"] == third["metadata"]["uid"]
                        && p["status"]["phase"] == "Succeeded"
                })
        },
    );
    assert_published(&obj, &dir, &files);
}

#[test]
fn every_other_example_builds_to_ready() {
    let e = env();
    let cases = [
        ("overlay-iso-importer.yaml", "my-custom-iso"),
        ("dockerfile.yaml", "custom-build"),
        ("dockerfile-template-inline.yaml", "custom-build-inline"),
        ("dockerfile-template-secret.yaml", "custom-build-values"),
        ("build-context.yaml", "custom-context-build"),
    ];
    // Each in a namespace of its own (two of them define the same Secret), applied at once.
    let runs: Vec<(Ns, &str, &str)> = cases
        .iter()
        .map(|(file, name)| {
            let ns = e.namespace("example");
            osartifact_e2e::files::serve_tarballs(&ns, &["extra-files"]).unwrap();
            apply(&ns, &osartifact_e2e::files::in_cluster(&example(file)));
            (ns, *file, *name)
        })
        .collect();
    for (ns, file, name) in &runs {
        let obj = wait_ready(ns, name);
        let dir = volume_dir(ns, name);
        let files = [".tar", ".iso", ".iso.sha256"].map(|s| format!("{name}{s}"));
        assert_published(&obj, &dir, &files);
        let (x, fs) = check_iso(&dir, name);
        let root = fs.path().join("root");
        match *file {
            "overlay-iso-importer.yaml" => assert_eq!(
                std::fs::read_to_string(x.path().join("extra-files.txt")).unwrap(),
                "extra-files\n",
                "the importer's file at the ISO's root"
            ),
            "dockerfile.yaml" => assert!(root.join("var/lib/e2e-packages/vim").is_file()),
            "build-context.yaml" => {
                // The importer cloned the repository into the context; `COPY . /opt/myrepo`.
                let (f, content) = osartifact_e2e::files::GIT_FILE;
                assert_eq!(
                    std::fs::read_to_string(root.join("opt/myrepo").join(f)).unwrap(),
                    content
                );
                // The Dockerfile is not in the build context any more.
                assert!(!root.join("opt/myrepo/dockerfile").exists());
            }
            _ => assert!(
                std::fs::read_to_string(root.join("etc/build-info"))
                    .unwrap()
                    .starts_with("Version: "),
                "{file}: the rendered RUN step"
            ),
        }
    }
}
