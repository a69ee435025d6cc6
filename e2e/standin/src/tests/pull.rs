//! Registry pulls against the in-process double, the keychain, and luet pack → ocifile.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;

use super::registry_double::{Auth, PASS, Registry, USER};
use super::{args, gzip, tar_of};
use crate::registry::{self, Settings};

/// An image `test/img:v1` whose amd64 and arm64 variants differ, behind an OCI index; the
/// amd64 one has two layers, the second whiting out a file of the first.
fn image_registry() -> Registry {
    let mut r = Registry::new();
    let repo = "test/img";
    let l1 = gzip(&tar_of(&[("etc/", ""), ("etc/a", "A"), ("etc/gone", "G")]));
    let l2 = tar_of(&[("etc/.wh.gone", ""), ("etc/b", "B")]);
    let l_arm = gzip(&tar_of(&[("arm", "yes")]));
    let config = r.blob(repo, br#"{"architecture":"amd64","os":"linux"}"#);
    let (d1, d2, d_arm) = (r.blob(repo, &l1), r.blob(repo, &l2), r.blob(repo, &l_arm));
    let docker_manifest = "application/vnd.docker.distribution.manifest.v2+json";
    let amd = r.manifest(
        repo,
        None,
        docker_manifest,
        &json!({"schemaVersion": 2, "mediaType": docker_manifest,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": config, "size": 1},
            "layers": [
                {"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": d1, "size": l1.len()},
                {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d2, "size": l2.len()},
            ]}),
    );
    let oci_manifest = "application/vnd.oci.image.manifest.v1+json";
    let arm = r.manifest(
        repo,
        None,
        oci_manifest,
        &json!({"schemaVersion": 2,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": 1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d_arm, "size": l_arm.len()}]}),
    );
    let index = "application/vnd.oci.image.index.v1+json";
    r.manifest(
        repo,
        Some("v1"),
        index,
        &json!({"schemaVersion": 2, "mediaType": index, "manifests": [
            {"mediaType": oci_manifest, "digest": arm, "size": 1, "platform": {"os": "linux", "architecture": "arm64"}},
            {"mediaType": docker_manifest, "digest": amd, "size": 1, "platform": {"os": "linux", "architecture": "amd64"}},
        ]}),
    );
    r
}

fn settings(dir: &Path, port: u16, docker_config: Option<PathBuf>) -> Settings {
    let mirrors = dir.join("mirrors.json");
    fs::write(
        &mirrors,
        json!({"quay.io": format!("http://127.0.0.1:{port}")}).to_string(),
    )
    .unwrap();
    Settings {
        mirrors,
        docker_config,
    }
}

fn docker_config(dir: &Path, key: &str) -> PathBuf {
    let path = dir.join("config.json");
    let auth = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("{USER}:{PASS}"),
    );
    fs::write(&path, json!({"auths": {key: {"auth": auth}}}).to_string()).unwrap();
    path
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn pulls_the_platform_from_an_index_and_applies_layers_in_order() {
    let port = image_registry().serve(Auth::None);
    let t = tempfile::tempdir().unwrap();
    let s = settings(t.path(), port, None);
    let dest = t.path().join("rootfs");
    fs::create_dir(&dest).unwrap();
    registry::pull_and_unpack(&s, "quay.io/test/img:v1", "amd64", &dest).unwrap();
    assert_eq!(names(&dest.join("etc")), ["a", "b"]);
    let arm = t.path().join("arm");
    fs::create_dir(&arm).unwrap();
    registry::pull_and_unpack(&s, "quay.io/test/img:v1", "arm64", &arm).unwrap();
    assert_eq!(names(&arm), ["arm"]);
    let err = registry::pull_and_unpack(&s, "quay.io/test/img:v1", "s390x", &arm).unwrap_err();
    assert!(
        format!("{err:#}").contains("no child with platform linux/s390x"),
        "{err:#}"
    );
    let err = registry::pull_and_unpack(&s, "quay.io/test/img:nope", "amd64", &arm).unwrap_err();
    assert!(format!("{err:#}").contains("MANIFEST_UNKNOWN"), "{err:#}");
}

#[test]
fn basic_auth_from_the_docker_config() {
    let port = image_registry().serve(Auth::Basic);
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("rootfs");
    fs::create_dir(&dest).unwrap();

    let anonymous = settings(t.path(), port, Some(t.path().join("absent/config.json")));
    let err =
        registry::pull_and_unpack(&anonymous, "quay.io/test/img:v1", "amd64", &dest).unwrap_err();
    let msg = format!("{err:#}");
    assert!(
        msg.contains("401") && msg.contains("registry quay.io requires authentication"),
        "{msg}"
    );

    // The key is the reference's registry, not the mirror.
    let s = settings(
        t.path(),
        port,
        Some(docker_config(t.path(), "https://quay.io/v1/")),
    );
    registry::pull_and_unpack(&s, "quay.io/test/img:v1", "amd64", &dest).unwrap();
    assert_eq!(names(&dest.join("etc")), ["a", "b"]);
}

#[test]
fn bearer_token_flow() {
    let port = image_registry().serve(Auth::Bearer);
    let t = tempfile::tempdir().unwrap();
    let dest = t.path().join("rootfs");
    fs::create_dir(&dest).unwrap();
    let anonymous = settings(t.path(), port, None);
    let err =
        registry::pull_and_unpack(&anonymous, "quay.io/test/img:v1", "amd64", &dest).unwrap_err();
    assert!(
        format!("{err:#}").contains("requires authentication"),
        "{err:#}"
    );
    let s = settings(t.path(), port, Some(docker_config(t.path(), "quay.io")));
    registry::pull_and_unpack(&s, "quay.io/test/img:v1", "amd64", &dest).unwrap();
    assert_eq!(names(&dest.join("etc")), ["a", "b"]);
}

#[test]
fn no_mirror_means_no_route_out() {
    let t = tempfile::tempdir().unwrap();
    let s = settings(t.path(), 1, None);
    let dest = t.path().join("d");
    let err = registry::pull_and_unpack(&s, "ghcr.io/x/y:1", "amd64", &dest).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("no route out of the test cluster: no mirror for ghcr.io"),
        "{err}"
    );
    // docker.io is the default registry of a one-part name.
    let err = registry::pull_and_unpack(&s, "ubuntu", "amd64", &dest).unwrap_err();
    assert!(err.to_string().contains("no mirror for docker.io"), "{err}");
}

#[test]
fn keychain_lookup() {
    let t = tempfile::tempdir().unwrap();
    let path = t.path().join("config.json");
    fs::write(
        &path,
        json!({"auths": {
            "10.0.0.1:5001": {"auth": "dTE6cDE="},
            "https://index.docker.io/v1/": {"username": "hub", "password": "hp"},
            "https://quay.io": {"auth": "cTpxcA=="},
        }})
        .to_string(),
    )
    .unwrap();
    let get = |r: &str| registry::credentials(Some(&path), r).unwrap();
    assert_eq!(get("10.0.0.1:5001"), Some(("u1".into(), "p1".into())));
    assert_eq!(get("docker.io"), Some(("hub".into(), "hp".into())));
    assert_eq!(get("quay.io"), Some(("q".into(), "qp".into())));
    assert_eq!(get("ghcr.io"), None);
    assert_eq!(
        registry::credentials(Some(&t.path().join("none.json")), "quay.io").unwrap(),
        None
    );
    fs::write(&path, "{not json").unwrap();
    assert!(registry::credentials(Some(&path), "quay.io").is_err());
}

#[test]
fn luet_pack_then_auroraboot_unpack_ocifile() {
    let t = tempfile::tempdir().unwrap();
    let src = t.path().join("rootfs.tar.gz");
    fs::write(
        &src,
        gzip(&tar_of(&[
            ("./", ""),
            ("etc/", ""),
            ("etc/hostname", "kairos"),
        ])),
    )
    .unwrap();
    let dst = t.path().join("image.tar");
    crate::luet::main(&args(&[
        "util",
        "pack",
        "--arch",
        "arm64",
        "--os",
        "linux",
        "my-image:latest",
        src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]))
    .unwrap();

    let archive = crate::archive::DockerArchive::open(&dst).unwrap();
    assert_eq!(
        archive.repo_tags,
        ["index.docker.io/library/my-image:latest"]
    );
    assert_eq!(archive.layers.len(), 1);
    assert!(archive.layers[0].ends_with(".tar.gz"));
    let config = archive.config_json().unwrap();
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["os"], "linux");
    let diff_id = config["rootfs"]["diff_ids"][0]
        .as_str()
        .unwrap()
        .to_string();
    let plain = tar_of(&[("./", ""), ("etc/", ""), ("etc/hostname", "kairos")]);
    assert_eq!(
        diff_id,
        format!("sha256:{}", crate::digest::sha256_hex(&plain))
    );

    let dest = t.path().join("rootfs");
    let ocifile = format!("ocifile:{}", dst.display());
    crate::auroraboot::main(&args(&["unpack", &ocifile, dest.to_str().unwrap()])).unwrap();
    assert_eq!(
        fs::read_to_string(dest.join("etc/hostname")).unwrap(),
        "kairos"
    );

    // luet util unpack --local file://… splits on ":/", keeping the leading slashes.
    let dest2 = t.path().join("rootfs2");
    let file_url = format!("file://{}", dst.display());
    crate::luet::main(&args(&[
        "util",
        "unpack",
        "--local",
        &file_url,
        dest2.to_str().unwrap(),
    ]))
    .unwrap();
    assert_eq!(
        fs::read_to_string(dest2.join("etc/hostname")).unwrap(),
        "kairos"
    );

    // A plain (uncompressed) source tar works too; an invalid reference does not.
    let plain_src = t.path().join("rootfs.tar");
    fs::write(&plain_src, &plain).unwrap();
    crate::luet::main(&args(&[
        "util",
        "pack",
        "q.io/a/b:1",
        plain_src.to_str().unwrap(),
        dst.to_str().unwrap(),
    ]))
    .unwrap();
    assert!(
        crate::luet::main(&args(&[
            "util",
            "pack",
            "Bad/Ref",
            plain_src.to_str().unwrap(),
            dst.to_str().unwrap()
        ]))
        .is_err()
    );
}

#[test]
fn luet_cli_contract() {
    let err = crate::luet::main(&args(&["util", "pack", "--nope", "a", "b", "c"])).unwrap_err();
    assert_eq!(err.to_string(), "unknown flag: --nope");
    let err = crate::luet::main(&args(&["util", "pack", "a", "b"])).unwrap_err();
    assert!(
        err.to_string().contains("accepts 3 arg(s), received 2"),
        "{err}"
    );
    let err = crate::luet::main(&args(&["install", "x"])).unwrap_err();
    assert!(
        err.to_string().contains("not implemented by the stand-in"),
        "{err}"
    );
}

#[test]
fn auroraboot_unpack_contract() {
    let t = tempfile::tempdir().unwrap();
    let d = t.path().join("d");
    let d = d.to_str().unwrap();
    let run = |v: &[&str]| format!("{:#}", crate::auroraboot::main(&args(v)).unwrap_err());
    assert_eq!(
        run(&["unpack", "img"]),
        "requires <image> and <destination> arguments"
    );
    assert!(
        run(&["unpack", "img", d, "--arch", "arm64"])
            .contains("'--arch' after the first positional argument")
    );
    assert!(run(&["unpack", "img", d, "extra"]).contains("extra argument 'extra'"));
    assert_eq!(
        run(&["unpack", "--arch", "riscv64", "img", d]),
        "invalid architecture 'riscv64': must be 'amd64' or 'arm64'"
    );
    assert_eq!(
        run(&["unpack", "--nope", "img", d]),
        "flag provided but not defined: -nope"
    );
    assert!(
        run(&["--cloud-config", "x", "unpack", "img", d])
            .contains("ignored by AuroraBoot's unpack")
    );
    assert!(run(&["unpack", "docker://img", d]).contains("not supported by the stand-in"));
    assert!(run(&["genkey"]).contains("not implemented by the stand-in"));
    assert!(run(&["config.yaml"]).contains("config file"));
}
