//! One test per plan behaviour, including each predecessor bug (reference §3) shown fixed.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{
    Container, EmptyDirVolumeSource, LocalObjectReference, PodSpec, PodTemplateSpec, Secret,
    Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::ObjectMeta;
use osartifact_shared::secrets::{KnownSecrets, SecretLookup};
use osartifact_shared::types::{Arch, SecretKeyRef, VolumeBindings};
use osartifact_shared::{OSArtifact, OSArtifactSpec};

use super::*;

const IMAGE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";

fn artifact(spec: OSArtifactSpec) -> OSArtifact {
    let mut a = OSArtifact::new("hello", spec);
    a.metadata.namespace = Some("ns".into());
    a.metadata.uid = Some("uid-1".into());
    a.metadata.generation = Some(3);
    a
}

fn base() -> OSArtifactSpec {
    OSArtifactSpec {
        image_name: Some(IMAGE.into()),
        iso: true,
        ..Default::default()
    }
}

fn secret(name: &str, data: &[(&str, &str)]) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..Default::default()
    }
}

fn try_plan(spec: OSArtifactSpec, secrets: &[Secret]) -> Result<Plan, PlanError> {
    let a = artifact(spec);
    let id = Identity::of(&a).unwrap();
    let mut known = KnownSecrets::new();
    for n in secret_names(&a.spec) {
        match secrets
            .iter()
            .find(|s| s.metadata.name.as_deref() == Some(&n))
        {
            Some(s) => known.insert_secret(s),
            None => known.insert(n, SecretLookup::NotFound),
        }
    }
    plan(&a, &id, &known, &Settings::default())
}

fn build(spec: OSArtifactSpec, secrets: &[Secret]) -> Plan {
    try_plan(spec, secrets).unwrap()
}

fn init(p: &Plan, name: &str) -> Container {
    p.pod
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .as_ref()
        .unwrap()
        .iter()
        .find(|c| c.name == name)
        .cloned()
        .unwrap_or_else(|| panic!("no init container {name}: {:?}", p.steps))
}

fn args(c: &Container) -> Vec<String> {
    c.args.clone().unwrap_or_default()
}

fn mounts(c: &Container) -> Vec<VolumeMount> {
    c.volume_mounts.clone().unwrap_or_default()
}

fn mount_at<'a>(m: &'a [VolumeMount], path: &str) -> Option<&'a VolumeMount> {
    m.iter().find(|m| m.mount_path == path)
}

fn env(c: &Container, name: &str) -> Option<String> {
    c.env
        .iter()
        .flatten()
        .find(|e| e.name == name)
        .and_then(|e| e.value.clone())
}

fn pos(v: &[String], s: &str) -> usize {
    v.iter()
        .position(|x| x == s)
        .unwrap_or_else(|| panic!("{s} not in {v:?}"))
}

fn cloud_config() -> Secret {
    secret("cc", &[("userdata", "#cloud-config\n")])
}

fn with_cc(mut s: OSArtifactSpec) -> OSArtifactSpec {
    s.cloud_config_ref = Some(SecretKeyRef {
        name: "cc".into(),
        key: None,
    });
    s
}

#[test]
fn deterministic_names_and_ownership_metadata() {
    let p = build(base(), &[]);
    assert_eq!(p.pod.metadata.name.as_deref(), Some("hello-build"));
    assert_eq!(p.pvc.metadata.name.as_deref(), Some("hello-artifacts"));
    assert_eq!(p.config_map.metadata.name.as_deref(), Some("hello"));
    for meta in [&p.pod.metadata, &p.pvc.metadata, &p.config_map.metadata] {
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels[names::ARTIFACT_LABEL], "hello");
        assert_eq!(labels[names::ARTIFACT_UID_LABEL], "uid-1");
        assert_eq!(meta.namespace.as_deref(), Some("ns"));
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                owner.uid.as_str(),
                owner.controller,
                owner.block_owner_deletion
            ),
            ("uid-1", Some(true), Some(true))
        );
        assert_eq!(
            meta.annotations.as_ref().unwrap()[names::GENERATION_ANNOTATION],
            "3"
        );
    }
    // Same input, same output: a restart can never plan a different (second) build.
    assert_eq!(
        serde_json::to_value(&build(base(), &[]).pod).unwrap(),
        serde_json::to_value(&p.pod).unwrap()
    );
}

#[test]
fn retry_value_is_recorded_on_children() {
    let mut a = artifact(base());
    a.metadata.annotations = Some(BTreeMap::from([(
        names::RETRY_ANNOTATION.into(),
        "2".into(),
    )]));
    let id = Identity::of(&a).unwrap();
    let p = plan(&a, &id, &KnownSecrets::new(), &Settings::default()).unwrap();
    assert_eq!(
        Attempt::of_child(&p.pod.metadata),
        Some(Attempt {
            generation: "3".into(),
            retry: "2".into()
        })
    );
}

#[test]
fn bug4_cloud_config_flag_comes_before_the_positional_source() {
    let p = build(with_cc(base()), &[cloud_config()]);
    let a = args(&init(&p, "iso"));
    assert_eq!(a.last().map(String::as_str), Some("dir:/rootfs"));
    assert!(pos(&a, "--cloud-config") < pos(&a, "dir:/rootfs"));
    // Every flag precedes the positional argument.
    let src = pos(&a, "dir:/rootfs");
    assert!(a[..src].iter().any(|x| x == "--output"));
}

#[test]
fn bug5_no_cloud_config_flag_without_a_mounted_cloud_config() {
    let mut s = base();
    s.grub_config = Some("set timeout=1".into());
    s.cloud_image = true;
    let p = build(s, &[]);
    for c in ["iso", "cloud-image"] {
        assert!(
            !args(&init(&p, c)).contains(&"--cloud-config".to_string()),
            "{c}"
        );
    }
}

#[test]
fn cloud_config_reaches_iso_and_every_disk_image() {
    let mut s = with_cc(base());
    s.cloud_image = true;
    s.azure_image = true;
    s.gce_image = true;
    let p = build(s, &[cloud_config()]);
    for c in ["iso", "cloud-image", "azure-image", "gce-image"] {
        let c = init(&p, c);
        let a = args(&c);
        assert_eq!(
            a[pos(&a, "--cloud-config") + 1],
            "/cloud-config/cloud-config.yaml"
        );
        assert!(mount_at(&mounts(&c), "/cloud-config").is_some());
    }
}

#[test]
fn bug6_grub_config_takes_effect_through_the_iso_overlay() {
    let mut s = base();
    s.grub_config = Some("set timeout=5".into());
    let p = build(s, &[]);
    assert_eq!(
        p.config_map.data.as_ref().unwrap()["grub.cfg"],
        "set timeout=5"
    );
    let overlay = init(&p, "iso-overlay");
    let script = overlay.command.clone().unwrap().join(" ");
    assert!(script.contains("/overlay-iso/boot/grub2/grub.cfg"));
    let iso = init(&p, "iso");
    let a = args(&iso);
    assert_eq!(a[pos(&a, "--overlay-iso") + 1], "/overlay-iso");
    assert_eq!(
        mount_at(&mounts(&iso), "/overlay-iso")
            .unwrap()
            .sub_path
            .as_deref(),
        Some("iso-overlay")
    );
    assert!(
        p.steps.iter().position(|s| s == "iso-overlay") < p.steps.iter().position(|s| s == "iso")
    );
}

#[test]
fn grub_config_merges_with_the_users_iso_overlay() {
    let mut s = base();
    s.grub_config = Some("x".into());
    s.volumes = vec![Volume {
        name: "extra".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }];
    s.volume_bindings = Some(VolumeBindings {
        overlay_iso: Some("extra".into()),
        ..Default::default()
    });
    let p = build(s, &[]);
    let m = mounts(&init(&p, "iso-overlay"));
    assert_eq!(mount_at(&m, "/overlay-iso-user").unwrap().name, "extra");
}

#[test]
fn bug7_kairos_release_and_os_release_are_written() {
    let mut s = base();
    s.kairos_release = Some("KAIROS_VERSION=v3.6.0\n".into());
    s.os_release = Some("NAME=x\n".into());
    let p = build(s, &[]);
    let data = p.config_map.data.as_ref().unwrap();
    assert_eq!(data["kairos-release"], "KAIROS_VERSION=v3.6.0\n");
    assert_eq!(data["os-release"], "NAME=x\n");
    let c = init(&p, "release-files");
    let script = c.command.clone().unwrap().join(" ");
    assert!(script.contains("/rootfs/etc/$f"));
    // The config volume projects only keys that exist.
    let vols = p.pod.spec.as_ref().unwrap().volumes.clone().unwrap();
    let config = vols.iter().find(|v| v.name == "config").unwrap();
    let items = config.projected.as_ref().unwrap().sources.as_ref().unwrap()[0]
        .config_map
        .as_ref()
        .unwrap()
        .items
        .clone()
        .unwrap();
    let keys: Vec<_> = items.iter().map(|i| i.key.as_str()).collect();
    assert_eq!(keys, vec!["kairos-release", "os-release"]);
}

#[test]
fn no_release_step_without_release_contents() {
    let p = build(base(), &[]);
    assert!(!p.steps.contains(&"release-files".to_string()));
    assert!(p.config_map.data.as_ref().unwrap().is_empty());
}

#[test]
fn bug9_each_disk_format_has_its_own_scratch_directory_and_runs_in_sequence() {
    let mut s = base();
    s.cloud_image = true;
    s.azure_image = true;
    s.gce_image = true;
    let p = build(s, &[]);
    let mut dirs = Vec::new();
    for c in ["cloud-image", "azure-image", "gce-image"] {
        let c = init(&p, c);
        let a = args(&c);
        assert!(a.contains(&"state_dir=/work".to_string()));
        dirs.push(
            mount_at(&mounts(&c), "/work")
                .unwrap()
                .sub_path
                .clone()
                .unwrap(),
        );
        // Init containers: never concurrent.
        assert!(
            p.pod
                .spec
                .as_ref()
                .unwrap()
                .containers
                .iter()
                .all(|m| m.name == "done")
        );
    }
    dirs.sort();
    dirs.dedup();
    assert_eq!(dirs.len(), 3);
}

#[test]
fn output_files_are_named_as_the_api_says() {
    let mut s = base();
    s.netboot = true;
    s.netboot_url = Some("http://example.com".into());
    s.cloud_image = true;
    s.azure_image = true;
    s.gce_image = true;
    let p = build(s, &[]);
    assert_eq!(
        p.outputs,
        vec![
            "hello.tar",
            "hello.iso",
            "hello.iso.sha256",
            "hello.squashfs",
            "hello-kernel",
            "hello-initrd",
            "hello.ipxe",
            "hello.raw",
            "hello-azure.vhd",
            "hello.gce.raw.tar.gz",
        ]
    );
    assert_eq!(
        env(&init(&p, "azure-image"), "PUBLISH").unwrap(),
        "/work/*.vhd=hello-azure.vhd"
    );
    assert_eq!(
        env(&init(&p, "gce-image"), "PUBLISH").unwrap(),
        "/work/*.tar.gz=hello.gce.raw.tar.gz"
    );
    assert_eq!(
        env(&init(&p, "cloud-image"), "PUBLISH").unwrap(),
        "/work/*.raw=hello.raw"
    );
    assert_eq!(
        env(&init(&p, "iso"), "PUBLISH").unwrap(),
        "/work/hello.iso=hello.iso /work/hello.iso.sha256=hello.iso.sha256"
    );
    // The final container checks every promised file.
    assert_eq!(
        p.pod.spec.as_ref().unwrap().containers[0]
            .args
            .clone()
            .unwrap(),
        p.outputs
    );
}

#[test]
fn netboot_runs_after_the_iso_and_uses_netboot_url() {
    let mut s = base();
    s.iso = false;
    s.netboot = true;
    s.netboot_url = Some("http://example.com/k".into());
    let p = build(s, &[]);
    assert!(pos(&p.steps, "iso") < pos(&p.steps, "netboot"));
    let c = init(&p, "netboot");
    assert_eq!(
        args(&c),
        vec![
            "--debug",
            "netboot",
            "/artifacts/hello.iso",
            "/work",
            "hello"
        ]
    );
    assert_eq!(
        env(&c, "NETBOOT_URL").as_deref(),
        Some("http://example.com/k")
    );
    assert!(
        c.security_context.is_none(),
        "netboot extraction needs no privilege"
    );
}

#[test]
fn bug12_no_image_source_is_an_error_not_a_runtime_failure() {
    let mut s = base();
    s.image_name = None;
    let e = try_plan(s, &[]).unwrap_err();
    assert_eq!(e.category(), "InvalidSpec");
    assert!(e.to_string().contains("spec.imageName"), "{e}");
}

#[test]
fn bug13_14_cloud_config_is_a_single_required_key() {
    let p = build(with_cc(base()), &[cloud_config()]);
    let vols = p.pod.spec.as_ref().unwrap().volumes.clone().unwrap();
    let v = vols
        .iter()
        .find(|v| v.name == "cloudconfig")
        .unwrap()
        .secret
        .clone()
        .unwrap();
    assert_eq!(v.optional, Some(false));
    let items = v.items.unwrap();
    assert_eq!(
        (items[0].key.as_str(), items[0].path.as_str()),
        ("userdata", "cloud-config.yaml")
    );
    // Missing Secret or key: Error with a fix-it message, not a silently empty cloud-config.
    let e = try_plan(with_cc(base()), &[]).unwrap_err();
    assert_eq!(e.category(), "SecretNotFound");
    assert!(e.to_string().contains("\"cc\""), "{e}");
    let e = try_plan(with_cc(base()), &[secret("cc", &[("other", "x")])]).unwrap_err();
    assert_eq!(e.category(), "SecretNotFound");
    assert!(e.to_string().contains("userdata"), "{e}");
}

#[test]
fn bug17_importer_colliding_with_a_builder_container_is_rejected() {
    let mut s = base();
    s.importers = vec![Container {
        name: "iso".into(),
        image: Some("busybox:1.36".into()),
        ..Default::default()
    }];
    let e = try_plan(s, &[]).unwrap_err();
    assert_eq!(e.category(), "InvalidSpec");
}

#[test]
fn bug18_exporters_are_checked_and_defaulted() {
    let mut s = base();
    s.exporters = vec![JobSpec {
        template: PodTemplateSpec {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "up".into(),
                    image: Some("busybox:1.36".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }];
    s.image_pull_secrets = vec![LocalObjectReference { name: "reg".into() }];
    let reg = secret(
        "reg",
        &[(
            ".dockerconfigjson",
            r#"{"auths":{"r.example":{"auth":"eDp5"}}}"#,
        )],
    );
    let p = build(s.clone(), &[reg]);
    let job = &p.exporters[0];
    assert_eq!(job.metadata.name.as_deref(), Some("hello-export-0"));
    assert_eq!(
        job.metadata.annotations.as_ref().unwrap()[names::EXPORT_INDEX_ANNOTATION],
        "0"
    );
    let js = job.spec.as_ref().unwrap();
    assert_eq!(js.backoff_limit, Some(0));
    let pod = js.template.spec.as_ref().unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    let v = pod
        .volumes
        .as_ref()
        .unwrap()
        .iter()
        .find(|v| v.name == "artifacts")
        .unwrap();
    let pvc = v.persistent_volume_claim.as_ref().unwrap();
    assert_eq!(
        (pvc.claim_name.as_str(), pvc.read_only),
        ("hello-artifacts", Some(true))
    );
    assert_eq!(pod.image_pull_secrets.as_ref().unwrap()[0].name, "reg");
    // A user volume named `artifacts` is rejected.
    s.exporters[0].template.spec.as_mut().unwrap().volumes = Some(vec![Volume {
        name: "artifacts".into(),
        ..Default::default()
    }]);
    assert!(try_plan(s, &[]).is_err());
}

#[test]
fn bug16_names_too_long_for_labels_are_rejected() {
    let mut a = artifact(base());
    a.metadata.name = Some("a".repeat(64));
    let id = Identity::of(&a).unwrap();
    let e = plan(&a, &id, &KnownSecrets::new(), &Settings::default()).unwrap_err();
    assert_eq!(e.category(), "InvalidSpec");
}

#[test]
fn bug25_no_user_string_reaches_a_shell_command_line() {
    let mut s = with_cc(base());
    s.bundles = vec!["quay.io/kairos/packages:helm-utils-3.10.1".into()];
    s.disk_size = Some(IntOrString::String("32000".into()));
    s.cloud_image = true;
    s.netboot = true;
    s.netboot_url = Some("http://example.com/$(reboot)".into());
    s.os_release = Some("NAME=\"$(id)\"".into());
    s.grub_config = Some("`id`".into());
    let p = build(s, &[cloud_config()]);
    let all = p
        .pod
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .clone()
        .unwrap();
    for c in all {
        // A shell's script is command[2]; it must be one of the fixed scripts (no user value in it).
        if let Some(cmd) = &c.command
            && cmd.first().map(String::as_str) == Some("/bin/sh")
        {
            let script = &cmd[2];
            for user in ["$(reboot)", "$(id)", "`id`", "32000", "helm-utils", "hello"] {
                assert!(!script.contains(user), "{} script contains {user}", c.name);
            }
        }
    }
    // Values arrive as separate argv elements or environment variables.
    assert!(
        args(&init(&p, "bundle-0"))
            .contains(&"quay.io/kairos/packages:helm-utils-3.10.1".to_string())
    );
    assert!(args(&init(&p, "cloud-image")).contains(&"disk.size=32000".to_string()));
}

#[test]
fn bug10_disk_size_reaches_every_disk_format() {
    let mut s = base();
    s.disk_size = Some(IntOrString::Int(32000));
    s.azure_image = true;
    s.gce_image = true;
    let p = build(s, &[]);
    for c in ["azure-image", "gce-image"] {
        assert!(
            args(&init(&p, c)).contains(&"disk.size=32000".to_string()),
            "{c}"
        );
    }
}

#[test]
fn bug31_helper_images_are_pinned_and_overridable() {
    let p = build(base(), &[]);
    for c in p
        .pod
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .clone()
        .unwrap()
    {
        let image = c.image.unwrap();
        assert!(
            !image.ends_with(":latest") && image.contains(':'),
            "{image}"
        );
        assert_eq!(c.image_pull_policy.as_deref(), Some("IfNotPresent"));
    }
    let a = artifact(base());
    let id = Identity::of(&a).unwrap();
    let settings = Settings {
        auroraboot_image: "mirror.example/auroraboot:v1".into(),
        ..Settings::default()
    };
    let p = plan(&a, &id, &KnownSecrets::new(), &settings).unwrap();
    assert_eq!(
        init(&p, "iso").image.as_deref(),
        Some("mirror.example/auroraboot:v1")
    );
}

#[test]
fn bug27_privileged_only_where_loop_devices_are_needed() {
    let mut s = base();
    s.netboot = true;
    s.cloud_image = true;
    s.bundles = vec!["quay.io/kairos/packages:x-1".into()];
    let p = build(s, &[]);
    let privileged: Vec<String> = p
        .pod
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .clone()
        .unwrap()
        .into_iter()
        .filter(|c| c.security_context.as_ref().and_then(|s| s.privileged) == Some(true))
        .map(|c| c.name)
        .collect();
    assert_eq!(privileged, vec!["iso", "cloud-image"]);
}

#[test]
fn bug32_scheduling_and_resources_are_applied() {
    let mut s = base();
    s.node_selector = BTreeMap::from([("kubernetes.io/arch".into(), "arm64".into())]);
    s.tolerations = vec![Toleration {
        key: Some("build".into()),
        operator: Some("Exists".into()),
        ..Default::default()
    }];
    s.pod_labels = BTreeMap::from([("team".into(), "os".into())]);
    s.pod_annotations = BTreeMap::from([("note".into(), "x".into())]);
    s.affinity = Some(Default::default());
    s.cloud_image = true;
    let rr = k8s_openapi::api::core::v1::ResourceRequirements {
        limits: Some(BTreeMap::from([(
            "cpu".into(),
            k8s_openapi::apimachinery::pkg::api::resource::Quantity("2".into()),
        )])),
        ..Default::default()
    };
    s.resources = Some(osartifact_shared::types::OutputResources {
        iso: Some(rr.clone()),
        cloud_image: Some(rr.clone()),
        ..Default::default()
    });
    let p = try_plan(s, &[]).map_err(|e| e.to_string()).unwrap();
    let spec = p.pod.spec.as_ref().unwrap();
    assert_eq!(
        spec.node_selector.as_ref().unwrap()["kubernetes.io/arch"],
        "arm64"
    );
    assert_eq!(spec.tolerations.as_ref().unwrap().len(), 1);
    assert!(spec.affinity.is_some());
    let labels = p.pod.metadata.labels.as_ref().unwrap();
    assert_eq!(labels["team"], "os");
    assert_eq!(labels[names::ARTIFACT_LABEL], "hello");
    assert_eq!(p.pod.metadata.annotations.as_ref().unwrap()["note"], "x");
    assert_eq!(init(&p, "iso").resources, Some(rr.clone()));
    assert_eq!(init(&p, "cloud-image").resources, Some(rr));
    assert_eq!(init(&p, "unpack").resources, None);
}

#[test]
fn bug33_pull_secrets_reach_in_pod_pulls() {
    let mut s = base();
    s.bundles = vec!["quay.io/kairos/packages:x-1".into()];
    s.image_pull_secrets = vec![
        LocalObjectReference { name: "a".into() },
        LocalObjectReference { name: "b".into() },
    ];
    let a = secret(
        "a",
        &[(
            ".dockerconfigjson",
            r#"{"auths":{"r1.example":{"auth":"QQ=="}}}"#,
        )],
    );
    let b = secret(
        "b",
        &[(
            ".dockerconfigjson",
            r#"{"auths":{"r1.example":{"auth":"Qg=="},"r2.example":{"auth":"Qw=="}}}"#,
        )],
    );
    let p = build(s, &[a, b]);
    assert_eq!(
        p.pod
            .spec
            .as_ref()
            .unwrap()
            .image_pull_secrets
            .as_ref()
            .unwrap()
            .len(),
        2
    );
    let auth = p
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("hello-registry-auth"))
        .unwrap();
    let json: serde_json::Value =
        serde_json::from_slice(&auth.data.as_ref().unwrap()["config.json"].0).unwrap();
    assert_eq!(
        json["auths"]["r1.example"]["auth"], "QQ==",
        "first Secret wins"
    );
    assert_eq!(json["auths"]["r2.example"]["auth"], "Qw==");
    for c in ["unpack", "bundle-0"] {
        let c = init(&p, c);
        assert_eq!(env(&c, "DOCKER_CONFIG").as_deref(), Some("/config/docker"));
        assert!(mount_at(&mounts(&c), "/config").is_some());
    }
}

#[test]
fn missing_or_malformed_pull_secret_is_a_fix_it_error() {
    let mut s = base();
    s.image_pull_secrets = vec![LocalObjectReference { name: "reg".into() }];
    let e = try_plan(s.clone(), &[]).unwrap_err();
    assert_eq!(e.category(), "SecretNotFound");
    assert!(e.to_string().starts_with("spec.imagePullSecrets[0]"), "{e}");
    let e = try_plan(s, &[secret("reg", &[("token", "x")])]).unwrap_err();
    assert_eq!(e.category(), "InvalidSpec");
}

#[test]
fn importers_first_in_order_then_the_image_source() {
    let mut s = base();
    s.importers = ["fetch-a", "fetch-b"]
        .iter()
        .map(|n| Container {
            name: n.to_string(),
            image: Some("busybox:1.36".into()),
            ..Default::default()
        })
        .collect();
    s.bundles = vec![
        "quay.io/kairos/packages:a-1".into(),
        "quay.io/kairos/packages:b-1".into(),
    ];
    let p = build(s, &[]);
    assert_eq!(
        &p.steps[..5],
        &["fetch-a", "fetch-b", "unpack", "bundle-0", "bundle-1"]
    );
    assert_eq!(p.steps.last().map(String::as_str), Some("iso"));
    assert!(pos(&p.steps, "tarball") < pos(&p.steps, "iso"));
}

#[test]
fn arch_is_passed_as_a_flag_before_positionals() {
    let mut s = base();
    s.arch = Some(Arch::Arm64);
    s.cloud_image = true;
    let p = build(s, &[]);
    assert_eq!(
        args(&init(&p, "unpack")),
        vec!["unpack", "--arch", "arm64", IMAGE, "/rootfs"]
    );
    assert!(
        args(&init(&p, "iso"))
            .windows(2)
            .any(|w| w == ["--arch", "arm64"])
    );
    assert!(args(&init(&p, "cloud-image")).contains(&"arch=arm64".to_string()));
    assert_eq!(env(&init(&p, "tarball"), "ARCH").as_deref(), Some("arm64"));
}

fn dockerfile_spec() -> OSArtifactSpec {
    OSArtifactSpec {
        base_image_dockerfile: Some(SecretKeyRef {
            name: "df".into(),
            key: None,
        }),
        dockerfile_template_values: Some(BTreeMap::from([("Base".into(), "alpine:3.20".into())])),
        iso: true,
        ..Default::default()
    }
}

#[test]
fn dockerfile_build_renders_the_template_and_runs_kaniko_with_workspace_layout() {
    let mut s = dockerfile_spec();
    s.volumes = vec![Volume {
        name: "ctx".into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Default::default()
    }];
    s.volume_bindings = Some(VolumeBindings {
        build_context: Some("ctx".into()),
        ..Default::default()
    });
    let p = build(s, &[secret("df", &[("Dockerfile", "FROM {{ .Base }}\n")])]);
    let rendered = p
        .secrets
        .iter()
        .find(|s| s.metadata.name.as_deref() == Some("hello-rendered-dockerfile"))
        .unwrap();
    assert_eq!(
        rendered.data.as_ref().unwrap()["Dockerfile"].0,
        b"FROM alpine:3.20\n"
    );
    let k = init(&p, "kaniko");
    let m = mounts(&k);
    // Parent mount first: the build context at /workspace, then the Dockerfile inside it.
    assert_eq!(
        (m[0].name.as_str(), m[0].mount_path.as_str()),
        ("ctx", "/workspace")
    );
    assert_eq!(
        (m[1].name.as_str(), m[1].mount_path.as_str()),
        ("dockerfile", "/workspace/dockerfile")
    );
    let a = args(&k);
    assert!(a.contains(&"--dockerfile=/workspace/dockerfile/Dockerfile".to_string()));
    assert!(a.contains(&"--context=dir:///workspace".to_string()));
    let u = init(&p, "unpack");
    assert_eq!(
        u.image.as_deref(),
        Some(crate::settings::DEFAULT_EXTRACTOR_IMAGE)
    );
    assert!(pos(&p.steps, "kaniko") < pos(&p.steps, "unpack"));
}

#[test]
fn forbidden_template_action_is_a_template_error() {
    let e = try_plan(
        dockerfile_spec(),
        &[secret(
            "df",
            &[("Dockerfile", "{{define \"x\"}}y{{end}}FROM a\n")],
        )],
    )
    .unwrap_err();
    assert_eq!(e.category(), "TemplateError");
}

#[test]
fn overlays_mount_at_their_documented_paths() {
    let mut s = base();
    s.volumes = ["iso-extra", "root-extra"]
        .iter()
        .map(|n| Volume {
            name: n.to_string(),
            empty_dir: Some(EmptyDirVolumeSource::default()),
            ..Default::default()
        })
        .collect();
    s.volume_bindings = Some(VolumeBindings {
        overlay_iso: Some("iso-extra".into()),
        overlay_rootfs: Some("root-extra".into()),
        ..Default::default()
    });
    let p = build(s, &[]);
    let iso = init(&p, "iso");
    let a = args(&iso);
    assert_eq!(a[pos(&a, "--overlay-iso") + 1], "/overlay-iso");
    assert_eq!(a[pos(&a, "--overlay-rootfs") + 1], "/overlay-rootfs");
    assert_eq!(
        mount_at(&mounts(&iso), "/overlay-iso").unwrap().name,
        "iso-extra"
    );
    assert_eq!(
        mount_at(&mounts(&iso), "/overlay-rootfs").unwrap().name,
        "root-extra"
    );
    let names: Vec<_> = p
        .pod
        .spec
        .as_ref()
        .unwrap()
        .volumes
        .clone()
        .unwrap()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert!(names.contains(&"iso-extra".to_string()) && names.contains(&"root-extra".to_string()));
}

#[test]
fn tarball_step_clears_every_previous_output_of_this_artifact() {
    let p = build(base(), &[]);
    let a = args(&init(&p, "tarball"));
    assert!(
        a.contains(&"hello.raw".to_string()),
        "a format dropped by a new generation is removed too"
    );
    assert!(a.contains(&"hello.tar".to_string()));
}

#[test]
fn default_pvc_and_builder_pod_hygiene() {
    let p = build(base(), &[]);
    let pvc = p.pvc.spec.as_ref().unwrap();
    assert_eq!(pvc.access_modes.clone().unwrap(), vec!["ReadWriteOnce"]);
    let spec = p.pod.spec.as_ref().unwrap();
    assert_eq!(spec.restart_policy.as_deref(), Some("Never"));
    assert_eq!(spec.automount_service_account_token, Some(false));
}

/// Whatever the apiserver's schema lets through, the plan never panics: the examples' specs, with
/// values swapped for others of any type and shape (deterministically), either plan or fail with
/// a message and a category; and every plan that succeeds names its objects, containers and
/// volumes in ways the apiserver accepts, with each mount naming a volume of the pod.
#[test]
fn mangled_specs_plan_well_or_fail_with_a_reason() {
    use osartifact_shared::manifest;
    use osartifact_shared::testing::Mangler;
    use osartifact_shared::validation::formats::dns1123_label;
    use serde_json::Value;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut paths: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path().to_string_lossy().to_string())
        .filter(|p| p.ends_with(".yaml"))
        .collect();
    paths.sort();
    let docs = manifest::read_documents(&paths).unwrap();
    let secrets: Vec<Secret> = docs
        .iter()
        .filter(|d| d.kind() == "Secret")
        .map(|d| serde_json::from_value(d.value.clone()).unwrap())
        .collect();
    let seeds: Vec<Value> = docs
        .iter()
        .filter(|d| d.is_osartifact())
        .map(|d| d.value["spec"].clone())
        .collect();
    assert!(seeds.len() >= 10, "examples missing");
    let mut mangler = Mangler::new(0x2545_F491_4F6C_DD1D);
    let (mut planned, mut refused) = (0, 0);
    for i in 0..3000 {
        let mut spec = seeds[i % seeds.len()].clone();
        mangler.mangle(&mut spec);
        // What the apiserver's schema would refuse never reaches the operator.
        let Ok(spec) = serde_json::from_value::<OSArtifactSpec>(spec) else {
            continue;
        };
        match try_plan(spec.clone(), &secrets) {
            Err(e) => {
                refused += 1;
                assert!(
                    !e.to_string().is_empty() && !e.hint().is_empty(),
                    "{spec:?}"
                );
            }
            Ok(p) => {
                planned += 1;
                let pod = p.pod.spec.as_ref().unwrap();
                let mut names: Vec<String> = vec![p.pod.metadata.name.clone().unwrap()];
                names.extend(p.exporters.iter().map(|j| j.metadata.name.clone().unwrap()));
                for n in &names {
                    assert!(dns1123_label(n).is_none(), "object name {n:?} for {spec:?}");
                }
                let containers: Vec<&Container> = pod
                    .init_containers
                    .iter()
                    .flatten()
                    .chain(pod.containers.iter())
                    .collect();
                let mut seen = std::collections::BTreeSet::new();
                for c in &containers {
                    assert!(
                        dns1123_label(&c.name).is_none(),
                        "container {:?} for {spec:?}",
                        c.name
                    );
                    assert!(
                        seen.insert(c.name.clone()),
                        "container {:?} twice for {spec:?}",
                        c.name
                    );
                }
                let volumes: Vec<&str> = pod
                    .volumes
                    .iter()
                    .flatten()
                    .map(|v| v.name.as_str())
                    .collect();
                let unique: std::collections::BTreeSet<_> = volumes.iter().collect();
                assert_eq!(
                    unique.len(),
                    volumes.len(),
                    "duplicate volumes {volumes:?} for {spec:?}"
                );
                for c in &containers {
                    for m in c.volume_mounts.iter().flatten() {
                        assert!(
                            volumes.contains(&m.name.as_str()),
                            "mount {:?} of {:?} has no volume ({volumes:?}) for {spec:?}",
                            m.name,
                            c.name
                        );
                    }
                }
            }
        }
    }
    assert!(
        planned > 300 && refused > 300,
        "planned {planned}, refused {refused}"
    );
}
