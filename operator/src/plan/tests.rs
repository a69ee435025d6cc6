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
    s.kairos_release = Some("KAIROS_VERSION=v3.6.0\nKAIROS_ARCH=amd64\n".into());
    s.os_release = Some("NAME=x\n".into());
    let p = build(s.clone(), &[]);
    let data = p.config_map.data.as_ref().unwrap();
    assert_eq!(
        data["kairos-release"],
        "KAIROS_VERSION=v3.6.0\nKAIROS_ARCH=amd64\n"
    );
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
fn a_kairos_release_auroraboot_cannot_read_is_refused_before_the_build() {
    // A bare version (as in the upstream docs) would fail the ISO step 20 minutes in.
    let mut s = base();
    s.kairos_release = Some("v3.6.0".into());
    let e = try_plan(s, &[]).unwrap_err();
    assert_eq!(e.category(), "InvalidSpec");
    assert!(e.to_string().contains("spec.kairosRelease"), "{e}");
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
fn done_checks_the_promised_files_and_reports_them_with_a_manifest() {
    let p = build(base(), &[]);
    let done = p.pod.spec.as_ref().unwrap().containers[0].clone();
    assert_eq!(done.name, "done");
    assert_eq!(args(&done), p.outputs);
    assert!(
        !p.outputs.contains(&"hello.manifest.json".to_string()),
        "the manifest is no promised output"
    );
    assert_eq!(env(&done, "MANIFEST").unwrap(), "hello.manifest.json");
    let m = mounts(&done);
    let artifacts = mount_at(&m, "/artifacts").unwrap();
    assert_eq!(artifacts.name, "artifacts");
    assert_ne!(artifacts.read_only, Some(true), "done writes the manifest");
    assert_eq!(
        done.termination_message_policy.as_deref(),
        Some("FallbackToLogsOnError")
    );
    // A rebuild removes the previous manifest with the previous outputs.
    assert!(args(&init(&p, "tarball")).contains(&"hello.manifest.json".to_string()));
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
            "netboot",
            "--debug",
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
    assert_eq!(privileged, vec!["cloud-image"]);
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
        vec![
            "unpack",
            "--loglevel",
            "debug",
            "--arch",
            "arm64",
            IMAGE,
            "/rootfs"
        ]
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
fn dockerfile_build_renders_the_template_and_runs_buildah_then_unpacks_its_archive() {
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
    let b = init(&p, "buildah");
    assert_eq!(
        b.image.as_deref(),
        Some(crate::settings::DEFAULT_BUILDAH_IMAGE)
    );
    assert_eq!(
        args(&b),
        vec![
            "bud",
            "--layers=false",
            "-f",
            "/dockerfile/Dockerfile",
            "-t",
            "localhost/hello:latest",
            "/workspace"
        ]
    );
    let script = &b.command.clone().unwrap()[2];
    assert!(script.contains(r#"buildah "$@""#), "{script}");
    assert!(
        script.contains(r#"buildah push "$IMAGE" "docker-archive:$ARCHIVE""#),
        "{script}"
    );
    assert_eq!(env(&b, "BUILDAH_ISOLATION").as_deref(), Some("chroot"));
    assert_eq!(env(&b, "STORAGE_DRIVER").as_deref(), Some("vfs"));
    assert_eq!(env(&b, "IMAGE").as_deref(), Some("localhost/hello:latest"));
    assert_eq!(env(&b, "ARCHIVE").as_deref(), Some("/image/image.tar"));
    assert_eq!(env(&b, "TMPDIR").as_deref(), Some("/work/tmp"));
    let m = mounts(&b);
    // The build context is the user's volume; the Dockerfile is outside it.
    assert_eq!(mount_at(&m, "/workspace").unwrap().name, "ctx");
    let df = mount_at(&m, "/dockerfile").unwrap();
    assert_eq!((df.name.as_str(), df.read_only), ("dockerfile", Some(true)));
    assert!(!m.iter().any(|m| m.mount_path.starts_with("/workspace/")));
    // The image store, the temp dir and the archive are in scratch.
    for (path, sub) in [
        ("/var/lib/containers", "work/buildah/containers"),
        ("/work", "work/buildah"),
        ("/image", "image"),
    ] {
        let m = mount_at(&m, path).unwrap();
        assert_eq!(
            (m.name.as_str(), m.sub_path.as_deref()),
            ("rootfs", Some(sub)),
            "{path}"
        );
    }
    let sc = b.security_context.clone().unwrap();
    assert_eq!(sc.privileged, None);
    assert_eq!(sc.allow_privilege_escalation, Some(true));
    assert_eq!(
        sc.capabilities.unwrap().add.unwrap(),
        vec!["SETUID", "SETGID"]
    );

    let u = init(&p, "unpack");
    assert_eq!(
        u.image.as_deref(),
        Some(crate::settings::DEFAULT_AURORABOOT_IMAGE)
    );
    assert_eq!(
        args(&u),
        vec![
            "unpack",
            "--loglevel",
            "debug",
            "ocifile:/image/image.tar",
            "/rootfs"
        ]
    );
    assert_eq!(env(&u, "CONSUMED").as_deref(), Some("/image/image.tar"));
    assert_eq!(
        mount_at(&mounts(&u), "/image").unwrap().sub_path.as_deref(),
        Some("image")
    );
    assert!(pos(&p.steps, "buildah") < pos(&p.steps, "unpack"));
}

#[test]
fn buildah_without_context_arch_and_with_pull_secrets() {
    let mut s = dockerfile_spec();
    s.arch = Some(Arch::Arm64);
    s.image_pull_secrets = vec![LocalObjectReference { name: "reg".into() }];
    let reg = secret(
        "reg",
        &[(
            ".dockerconfigjson",
            r#"{"auths":{"r.example":{"auth":"eDp5"}}}"#,
        )],
    );
    let p = build(
        s,
        &[secret("df", &[("Dockerfile", "FROM {{ .Base }}\n")]), reg],
    );
    let b = init(&p, "buildah");
    let a = args(&b);
    assert_eq!(a[pos(&a, "--platform") + 1], "linux/arm64");
    assert!(pos(&a, "--platform") < pos(&a, "/workspace"));
    // An empty scratch directory as the context when no buildContext is bound.
    assert_eq!(
        mount_at(&mounts(&b), "/workspace")
            .unwrap()
            .sub_path
            .as_deref(),
        Some("work/buildah/context")
    );
    assert_eq!(env(&b, "DOCKER_CONFIG").as_deref(), Some("/config/docker"));
    assert_eq!(
        env(&b, "REGISTRY_AUTH_FILE").as_deref(),
        Some("/config/docker/config.json")
    );
    assert!(mount_at(&mounts(&b), "/config").is_some());
    // The unpack of the local archive pulls nothing.
    let u = init(&p, "unpack");
    assert_eq!(env(&u, "DOCKER_CONFIG"), None);
    assert!(args(&u).windows(2).any(|w| w == ["--arch", "arm64"]));
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

fn overlay_spec(iso: bool, rootfs: bool) -> OSArtifactSpec {
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
        overlay_iso: iso.then(|| "iso-extra".into()),
        overlay_rootfs: rootfs.then(|| "root-extra".into()),
        ..Default::default()
    });
    s
}

#[test]
fn overlay_iso_is_always_staged_in_scratch() {
    // Without grubConfig too: AuroraBoot cannot read a ConfigMap or Secret volume as an overlay.
    let p = build(overlay_spec(true, false), &[]);
    let stage = init(&p, "iso-overlay");
    let m = mounts(&stage);
    let user = mount_at(&m, "/overlay-iso-user").unwrap();
    assert_eq!(
        (user.name.as_str(), user.read_only),
        ("iso-extra", Some(true))
    );
    assert_eq!(
        mount_at(&m, "/overlay-iso").unwrap().sub_path.as_deref(),
        Some("iso-overlay")
    );
    let iso = init(&p, "iso");
    let a = args(&iso);
    assert_eq!(a[pos(&a, "--overlay-iso") + 1], "/overlay-iso");
    let iso_mounts = mounts(&iso);
    let staged = mount_at(&iso_mounts, "/overlay-iso").unwrap();
    assert_eq!(
        (staged.name.as_str(), staged.sub_path.as_deref()),
        ("rootfs", Some("iso-overlay"))
    );
    // The user's volume never reaches AuroraBoot.
    assert!(!mounts(&iso).iter().any(|m| m.name == "iso-extra"));
    assert!(pos(&p.steps, "iso-overlay") < pos(&p.steps, "iso"));
}

#[test]
fn overlay_rootfs_is_applied_to_the_rootfs_before_the_tarball() {
    let mut s = overlay_spec(false, true);
    s.cloud_image = true;
    s.kairos_release =
        Some("KAIROS_ARCH=amd64\nKAIROS_FLAVOR=opensuse\nKAIROS_MODEL=generic\n".into());
    let p = build(s, &[]);
    let c = init(&p, "rootfs-overlay");
    let m = mounts(&c);
    let user = mount_at(&m, "/overlay-rootfs").unwrap();
    assert_eq!(
        (user.name.as_str(), user.read_only),
        ("root-extra", Some(true))
    );
    assert_eq!(
        mount_at(&m, "/rootfs").unwrap().sub_path.as_deref(),
        Some("rootfs")
    );
    // After the release files, before the tarball: <name>.tar, the ISO and the disks contain it.
    assert!(pos(&p.steps, "release-files") < pos(&p.steps, "rootfs-overlay"));
    assert!(pos(&p.steps, "rootfs-overlay") < pos(&p.steps, "tarball"));
    for step in ["iso", "cloud-image"] {
        let c = init(&p, step);
        assert!(
            !args(&c).contains(&"--overlay-rootfs".to_string()),
            "{step}"
        );
        assert!(!mounts(&c).iter().any(|m| m.name == "root-extra"), "{step}");
    }
    // No ISO overlay step without an ISO overlay or grub.cfg.
    assert!(!p.steps.contains(&"iso-overlay".to_string()));
    assert!(!args(&init(&p, "iso")).contains(&"--overlay-iso".to_string()));
}

#[test]
fn overlays_are_bound_by_volume_name() {
    let p = build(overlay_spec(true, true), &[]);
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
    assert_eq!(
        &p.steps[..5],
        &["unpack", "rootfs-overlay", "tarball", "iso-overlay", "iso"]
    );
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

fn all_steps(p: &Plan) -> Vec<Container> {
    p.pod
        .spec
        .as_ref()
        .unwrap()
        .init_containers
        .clone()
        .unwrap()
}

fn everything() -> OSArtifactSpec {
    let mut s = overlay_spec(true, true);
    s.bundles = vec!["quay.io/kairos/packages:x-1".into()];
    s.netboot = true;
    s.cloud_image = true;
    s.azure_image = true;
    s.gce_image = true;
    s
}

#[test]
fn every_tool_step_keeps_its_temporary_files_in_its_own_scratch_directory() {
    let p = build(everything(), &[]);
    let df = build(
        dockerfile_spec(),
        &[secret("df", &[("Dockerfile", "FROM {{ .Base }}\n")])],
    );
    let mut steps = all_steps(&p);
    steps.extend(all_steps(&df));
    let mut seen = 0;
    for step in [
        "unpack",
        "bundle-0",
        "buildah",
        "tarball",
        "iso",
        "netboot",
        "cloud-image",
        "azure-image",
        "gce-image",
    ] {
        for c in steps.iter().filter(|c| c.name == step) {
            assert_eq!(env(c, "TMPDIR").as_deref(), Some("/work/tmp"), "{step}");
            let work = mount_at(c.volume_mounts.as_deref().unwrap(), "/work").unwrap();
            assert_eq!(
                (work.name.as_str(), work.sub_path.clone()),
                ("rootfs", Some(format!("work/{step}"))),
                "{step}"
            );
            let script = &c.command.clone().unwrap()[2];
            // The directory exists before the tool runs.
            assert!(
                script.contains("mkdir -p \"$TMPDIR\"\n"),
                "{step}: {script}"
            );
            seen += 1;
        }
    }
    assert_eq!(seen, 12);
}

#[test]
fn debug_logging_uses_each_commands_own_flag_before_the_positionals() {
    let p = build(everything(), &[]);
    let iso = args(&init(&p, "iso"));
    assert_eq!(&iso[..3], &["build-iso", "--loglevel", "debug"]);
    assert!(!iso.contains(&"--debug".to_string()));
    let netboot = args(&init(&p, "netboot"));
    assert_eq!(&netboot[..2], &["netboot", "--debug"]);
    for step in ["unpack", "bundle-0"] {
        let a = args(&init(&p, step));
        assert_eq!(&a[..3], &["unpack", "--loglevel", "debug"], "{step}");
        assert_eq!(a[a.len() - 1], "/rootfs");
    }
    for step in ["cloud-image", "azure-image", "gce-image"] {
        // The disk builder is AuroraBoot's top-level action, where the global flag works.
        assert_eq!(args(&init(&p, step))[0], "--debug", "{step}");
    }
    // Every flag of the ISO step comes before `dir:/rootfs`.
    let src = pos(&iso, "dir:/rootfs");
    assert_eq!(src, iso.len() - 1);
    assert!(pos(&iso, "--overlay-iso") < src);
}

#[test]
fn disks_without_a_cloud_config_get_no_default_user() {
    let mut s = base();
    s.cloud_image = true;
    s.azure_image = true;
    s.gce_image = true;
    let p = build(s.clone(), &[]);
    for c in ["cloud-image", "azure-image", "gce-image"] {
        let a = args(&init(&p, c));
        assert!(
            a.windows(2)
                .any(|w| w == ["--set", "no_default_cloud_config=true"]),
            "{c}: {a:?}"
        );
    }
    // With a cloud-config, the user's file decides.
    let p = build(with_cc(s), &[cloud_config()]);
    for c in ["cloud-image", "azure-image", "gce-image"] {
        assert!(
            !args(&init(&p, c)).contains(&"no_default_cloud_config=true".to_string()),
            "{c}"
        );
    }
}

#[test]
fn ephemeral_storage_requests_reach_the_output_containers() {
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    let rr = |q: &str| k8s_openapi::api::core::v1::ResourceRequirements {
        requests: Some(BTreeMap::from([(
            "ephemeral-storage".into(),
            Quantity(q.into()),
        )])),
        limits: Some(BTreeMap::from([(
            "ephemeral-storage".into(),
            Quantity(q.into()),
        )])),
        ..Default::default()
    };
    let mut s = everything();
    s.resources = Some(osartifact_shared::types::OutputResources {
        iso: Some(rr("40Gi")),
        netboot: Some(rr("20Gi")),
        cloud_image: Some(rr("41Gi")),
        azure_image: Some(rr("42Gi")),
        gce_image: Some(rr("43Gi")),
    });
    let p = build(s, &[]);
    for (step, q) in [
        ("iso", "40Gi"),
        ("netboot", "20Gi"),
        ("cloud-image", "41Gi"),
        ("azure-image", "42Gi"),
        ("gce-image", "43Gi"),
    ] {
        assert_eq!(init(&p, step).resources, Some(rr(q)), "{step}");
    }
    for step in ["unpack", "tarball", "iso-overlay", "rootfs-overlay", "done"] {
        let c = all_steps(&p)
            .into_iter()
            .chain(p.pod.spec.as_ref().unwrap().containers.clone())
            .find(|c| c.name == step)
            .unwrap();
        assert_eq!(c.resources, None, "{step}");
    }
    // The scratch the ISO and disk steps fill is the pod's emptyDir: charged to the pod.
    let vols = p.pod.spec.as_ref().unwrap().volumes.clone().unwrap();
    let scratch = vols.iter().find(|v| v.name == "rootfs").unwrap();
    assert!(scratch.empty_dir.is_some());
}

/// Runs one of the fixed scripts with `/bin/sh -ec`, its absolute paths moved under `root`, and
/// `bin` first on PATH (stand-ins for the tools).
mod scripts_run {
    use std::os::unix::fs::PermissionsExt;
    use std::path::PathBuf;
    use std::process::Command;

    use super::super::builder::scripts;

    pub struct Sandbox {
        pub root: PathBuf,
    }

    impl Sandbox {
        pub fn new(test: &str) -> Self {
            let root =
                std::env::temp_dir().join(format!("osartifact-plan-{test}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("bin")).unwrap();
            Self { root }
        }

        pub fn path(&self, p: &str) -> PathBuf {
            self.root.join(p.trim_start_matches('/'))
        }

        pub fn write(&self, p: &str, content: &str, mode: u32) {
            let path = self.path(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        }

        pub fn symlink(&self, target: &str, link: &str) {
            std::os::unix::fs::symlink(target, self.path(link)).unwrap();
        }

        pub fn mode(&self, p: &str) -> u32 {
            std::fs::metadata(self.path(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o7777
        }

        pub fn exists(&self, p: &str) -> bool {
            std::fs::symlink_metadata(self.path(p)).is_ok()
        }

        /// `script` with each absolute path of `paths` (where a path starts: after a space, a
        /// quote or the start of a line) moved under the sandbox, in one pass.
        pub fn relocate(&self, script: &str, paths: &[&str]) -> String {
            let mut paths = paths.to_vec();
            paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
            let root = self.root.to_string_lossy();
            let mut out = String::new();
            let mut rest = script;
            let mut prev = '\n';
            while let Some(c) = rest.chars().next() {
                let boundary = matches!(prev, ' ' | '"' | '\n' | '=');
                if boundary && let Some(p) = paths.iter().find(|p| rest.starts_with(**p)) {
                    out.push_str(&root);
                    out.push_str(p);
                    rest = &rest[p.len()..];
                    prev = p.chars().last().unwrap_or('/');
                    continue;
                }
                out.push(c);
                prev = c;
                rest = &rest[c.len_utf8()..];
            }
            out
        }

        /// Runs `script` relocated, with `{root}` in environment values replaced by the sandbox.
        pub fn run(&self, script: &str, paths: &[&str], args: &[&str], env: &[(&str, &str)]) {
            let s = self.relocate(script, paths);
            let root = self.root.to_string_lossy();
            let path = format!(
                "{}:{}",
                self.path("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-ec").arg(&s).arg("step").args(args);
            cmd.env("PATH", path);
            for (k, v) in env {
                cmd.env(k, v.replace("{root}", &root));
            }
            let out = cmd.output().unwrap();
            assert!(
                out.status.success(),
                "script failed:\n{s}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    impl Drop for Sandbox {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    /// A ConfigMap volume as the kubelet's atomic writer lays it out.
    fn config_map_volume(s: &Sandbox, dir: &str) {
        s.write(
            &format!("{dir}/..2026_01_01_00_00_00.1/etc/motd"),
            "hi\n",
            0o644,
        );
        s.write(
            &format!("{dir}/..2026_01_01_00_00_00.1/.hidden"),
            "h\n",
            0o644,
        );
        s.symlink("..2026_01_01_00_00_00.1", &format!("{dir}/..data"));
        s.symlink("..data/etc", &format!("{dir}/etc"));
        s.symlink("..data/.hidden", &format!("{dir}/.hidden"));
    }

    #[test]
    fn rootfs_overlay_copies_a_config_map_volume_without_the_kubelets_entries() {
        let s = Sandbox::new("rootfs-overlay");
        config_map_volume(&s, "/overlay-rootfs");
        // The rootfs already has /etc, and a symlink where the overlay puts a file.
        s.write("/rootfs/etc/hostname", "x\n", 0o644);
        s.write("/outside", "untouched\n", 0o644);
        s.symlink(&s.path("/outside").to_string_lossy(), "/rootfs/etc/motd");
        s.run(
            &scripts::rootfs_overlay(),
            &["/overlay-rootfs", "/rootfs"],
            &[],
            &[],
        );
        assert_eq!(
            std::fs::read_to_string(s.path("/rootfs/etc/motd")).unwrap(),
            "hi\n"
        );
        assert!(
            !std::fs::symlink_metadata(s.path("/rootfs/etc/motd"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(s.path("/outside")).unwrap(),
            "untouched\n"
        );
        assert!(s.exists("/rootfs/etc/hostname"));
        assert!(s.exists("/rootfs/.hidden"));
        assert!(!s.exists("/rootfs/..data"));
        assert!(!s.exists("/rootfs/..2026_01_01_00_00_00.1"));
    }

    #[test]
    fn iso_overlay_stages_the_users_files_and_grub_cfg() {
        let s = Sandbox::new("iso-overlay");
        config_map_volume(&s, "/overlay-iso-user");
        s.write("/config/grub.cfg", "menuentry x {}\n", 0o644);
        std::fs::create_dir_all(s.path("/overlay-iso")).unwrap();
        s.run(
            &scripts::iso_overlay(),
            &["/overlay-iso-user", "/overlay-iso", "/config"],
            &[],
            &[],
        );
        assert_eq!(
            std::fs::read_to_string(s.path("/overlay-iso/etc/motd")).unwrap(),
            "hi\n"
        );
        assert_eq!(
            std::fs::read_to_string(s.path("/overlay-iso/boot/grub2/grub.cfg")).unwrap(),
            "menuentry x {}\n"
        );
        assert!(!s.exists("/overlay-iso/..data"));
        // Empty ISO overlay volume, no grub.cfg: nothing to do, no failure.
        let e = Sandbox::new("iso-overlay-empty");
        std::fs::create_dir_all(e.path("/overlay-iso-user")).unwrap();
        std::fs::create_dir_all(e.path("/overlay-iso")).unwrap();
        e.run(
            &scripts::iso_overlay(),
            &["/overlay-iso-user", "/overlay-iso", "/config"],
            &[],
            &[],
        );
    }

    #[test]
    fn auroraboot_steps_use_scratch_for_temp_files_and_publish_readable_files() {
        let s = Sandbox::new("publish");
        // Stand-in: records its TMPDIR and arguments, writes 0600 files as AuroraBoot's netboot does.
        s.write(
            "/bin/auroraboot",
            "#!/bin/sh\nset -e\n[ -d \"$TMPDIR\" ]\necho \"$TMPDIR\" > \"$OUT/tmpdir\"\necho \"$@\" > \"$OUT/args\"\nfor f in hello.squashfs hello-kernel hello-initrd; do echo x > \"$OUT/$f\"; chmod 0600 \"$OUT/$f\"; done\n",
            0o755,
        );
        std::fs::create_dir_all(s.path("/artifacts")).unwrap();
        std::fs::create_dir_all(s.path("/work")).unwrap();
        let root = s.root.to_string_lossy().to_string();
        s.run(
            &scripts::run_and_publish(),
            &["/artifacts", "/work"],
            &["netboot", "--debug", "x.iso", "/work", "hello"],
            &[
                ("TMPDIR", "{root}/work/tmp"),
                ("OUT", "{root}/work"),
                ("NAME", "hello"),
                (
                    "PUBLISH",
                    "{root}/work/hello.squashfs=hello.squashfs {root}/work/hello-kernel=hello-kernel {root}/work/hello-initrd=hello-initrd",
                ),
                ("NETBOOT_URL", "http://example.com"),
            ],
        );
        assert_eq!(
            std::fs::read_to_string(s.path("/work/tmpdir"))
                .unwrap()
                .trim(),
            format!("{root}/work/tmp")
        );
        for f in [
            "hello.squashfs",
            "hello-kernel",
            "hello-initrd",
            "hello.ipxe",
        ] {
            assert_eq!(s.mode(&format!("/artifacts/{f}")) & 0o444, 0o444, "{f}");
            assert!(!s.exists(&format!("/artifacts/{f}.partial")), "{f}");
        }
        // Scratch copies and the temp dir are gone after publishing.
        for f in [
            "hello.squashfs",
            "hello-kernel",
            "hello-initrd",
            "ipxe",
            "tmp",
        ] {
            assert!(!s.exists(&format!("/work/{f}")), "{f}");
        }
    }

    fn json(s: &Sandbox, p: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(s.path(p)).unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{p}: {e}: {text}"))
    }

    #[test]
    fn done_reports_name_size_and_sha256_of_each_file() {
        let s = Sandbox::new("done");
        s.write("/artifacts/hello.tar", "hello\n", 0o644);
        s.write("/artifacts/hello.iso", "abc", 0o600);
        std::fs::create_dir_all(s.path("/dev")).unwrap();
        s.run(
            &scripts::done(),
            &["/artifacts", "/dev/termination-log"],
            &["hello.tar", "hello.iso"],
            &[("MANIFEST", "hello.manifest.json")],
        );
        let want = serde_json::json!({"files": [
            {"name": "hello.tar", "size": 6,
             "sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},
            {"name": "hello.iso", "size": 3,
             "sha256": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        ]});
        assert_eq!(json(&s, "/dev/termination-log"), want);
        assert_eq!(json(&s, "/artifacts/hello.manifest.json"), want);
        assert_eq!(s.mode("/artifacts/hello.manifest.json") & 0o444, 0o444);
        assert!(!s.exists("/artifacts/hello.manifest.json.partial"));
    }

    #[test]
    fn done_truncates_its_termination_message_and_keeps_the_full_manifest() {
        let s = Sandbox::new("done-truncated");
        std::fs::create_dir_all(s.path("/dev")).unwrap();
        let names: Vec<String> = (0..40)
            .map(|i| format!("{}-{i:02}.raw", "x".repeat(60)))
            .collect();
        for n in &names {
            s.write(&format!("/artifacts/{n}"), n, 0o644);
        }
        let args: Vec<&str> = names.iter().map(String::as_str).collect();
        s.run(
            &scripts::done(),
            &["/artifacts", "/dev/termination-log"],
            &args,
            &[("MANIFEST", "x.manifest.json")],
        );
        let msg = std::fs::read_to_string(s.path("/dev/termination-log")).unwrap();
        assert!(msg.len() <= 4096, "{} bytes", msg.len());
        let msg: serde_json::Value = serde_json::from_str(&msg).unwrap();
        assert_eq!(msg["truncated"], true);
        let fit = msg["files"].as_array().unwrap();
        assert!(!fit.is_empty() && fit.len() < names.len(), "{}", fit.len());
        assert_eq!(fit[0]["name"], names[0].as_str());
        let full = json(&s, "/artifacts/x.manifest.json");
        assert_eq!(full["files"].as_array().unwrap().len(), names.len());
        assert!(full.get("truncated").is_none());
        assert_eq!(full["files"][39]["size"], names[39].len());
    }

    #[test]
    fn tarball_sets_the_root_mode_packs_uncompressed_and_cleans_up() {
        let s = Sandbox::new("tarball");
        // Stand-in for `luet util pack [--arch A --os linux] REF SRC DST`: SRC must be a plain tar.
        s.write(
            "/bin/luet",
            "#!/bin/sh\nset -e\n[ -d \"$TMPDIR\" ]\nfor a; do :; done\neval src=\\${$(($# - 1))}\ntar -tf \"$src\" > /dev/null\ncp \"$src\" \"$a\"\nchmod 0600 \"$a\"\n",
            0o755,
        );
        s.write("/rootfs/etc/os-release", "NAME=x\n", 0o644);
        std::fs::set_permissions(s.path("/rootfs"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        std::fs::create_dir_all(s.path("/work")).unwrap();
        s.write("/artifacts/hello.raw", "old\n", 0o644);
        s.run(
            &scripts::tarball(),
            &["/artifacts", "/rootfs", "/work"],
            &["hello.tar", "hello.raw"],
            &[
                ("TMPDIR", "{root}/work/tmp"),
                ("NAME", "hello"),
                ("IMAGE_REF", "hello:latest"),
            ],
        );
        assert_eq!(s.mode("/rootfs"), 0o755);
        assert_eq!(s.mode("/artifacts/hello.tar") & 0o444, 0o444);
        assert!(!s.exists("/artifacts/hello.raw"), "old outputs removed");
        for f in ["rootfs.tar", "image.tar", "tmp"] {
            assert!(!s.exists(&format!("/work/{f}")), "{f}");
        }
        let listing = Command::new("tar")
            .arg("-tf")
            .arg(s.path("/artifacts/hello.tar"))
            .output()
            .unwrap();
        assert!(String::from_utf8_lossy(&listing.stdout).contains("etc/os-release"));
    }
}

#[test]
fn name_overrides_name_every_file_of_their_format() {
    let mut s = base();
    s.netboot = true;
    s.netboot_url = Some("http://example.com".into());
    s.cloud_image = true;
    s.azure_image = true;
    s.gce_image = true;
    s.name_override = Some(osartifact_shared::types::NameOverride {
        iso: Some("live".into()),
        cloud_image: Some("disk".into()),
        azure_image: Some("az".into()),
        gce_image: Some("gce".into()),
        netboot: Some("pxe".into()),
    });
    let p = build(s.clone(), &[]);
    assert_eq!(
        p.outputs,
        vec![
            "hello.tar",
            "live.iso",
            "live.iso.sha256",
            "pxe.squashfs",
            "pxe-kernel",
            "pxe-initrd",
            "pxe.ipxe",
            "disk.raw",
            "az-azure.vhd",
            "gce.gce.raw.tar.gz",
        ]
    );
    assert_eq!(outputs(&s, "hello"), p.outputs, "status.artifacts");
    let iso = init(&p, "iso");
    let a = args(&iso);
    assert_eq!(a[pos(&a, "--override-name") + 1], "live");
    assert_eq!(
        env(&iso, "PUBLISH").unwrap(),
        "/work/live.iso=live.iso /work/live.iso.sha256=live.iso.sha256"
    );
    let netboot = init(&p, "netboot");
    assert_eq!(
        args(&netboot),
        vec!["netboot", "--debug", "/artifacts/live.iso", "/work", "pxe"]
    );
    assert_eq!(
        env(&netboot, "NAME").unwrap(),
        "pxe",
        "the iPXE script's file names"
    );
    assert_eq!(
        env(&init(&p, "cloud-image"), "PUBLISH").unwrap(),
        "/work/*.raw=disk.raw"
    );
    assert_eq!(
        env(&init(&p, "azure-image"), "PUBLISH").unwrap(),
        "/work/*.vhd=az-azure.vhd"
    );
    assert_eq!(
        env(&init(&p, "gce-image"), "PUBLISH").unwrap(),
        "/work/*.tar.gz=gce.gce.raw.tar.gz"
    );
    // `done` checks the overridden names; the tarball and the manifest keep the artifact's name.
    let done = p.pod.spec.as_ref().unwrap().containers[0].clone();
    assert_eq!(args(&done), p.outputs);
    assert_eq!(env(&done, "MANIFEST").unwrap(), "hello.manifest.json");
    // A rebuild removes the files under both the default and the overridden names.
    let removed = args(&init(&p, "tarball"));
    for f in [
        "hello.iso",
        "live.iso",
        "pxe.ipxe",
        "hello.ipxe",
        "gce.gce.raw.tar.gz",
    ] {
        assert!(removed.contains(&f.to_string()), "{f}");
    }
}

#[test]
fn the_deadline_is_the_specs_or_the_operators_on_the_pod_and_each_exporter() {
    let mut s = base();
    s.exporters = vec![exporter_job_spec(None), exporter_job_spec(Some(60))];
    let p = build(s.clone(), &[]);
    let pod_deadline = p.pod.spec.as_ref().unwrap().active_deadline_seconds;
    assert_eq!(pod_deadline, Some(3 * 3600), "the operator's default");
    let job_deadlines: Vec<_> = p
        .exporters
        .iter()
        .map(|j| j.spec.as_ref().unwrap().active_deadline_seconds)
        .collect();
    assert_eq!(
        job_deadlines,
        vec![Some(3 * 3600), Some(60)],
        "the exporter's own wins"
    );

    let a = artifact(s.clone());
    let id = Identity::of(&a).unwrap();
    let settings = Settings {
        build_timeout: 600,
        ..Settings::default()
    };
    let p = plan(&a, &id, &KnownSecrets::new(), &settings).unwrap();
    assert_eq!(
        p.pod.spec.as_ref().unwrap().active_deadline_seconds,
        Some(600)
    );
    let jobs = exporter_jobs(&s, &id, &settings);
    assert_eq!(
        jobs[0].spec.as_ref().unwrap().active_deadline_seconds,
        Some(600)
    );

    s.build_timeout = Some("1h30m".into());
    let a = artifact(s.clone());
    let p = plan(&a, &id, &KnownSecrets::new(), &settings).unwrap();
    assert_eq!(
        p.pod.spec.as_ref().unwrap().active_deadline_seconds,
        Some(5400)
    );
    assert_eq!(
        p.exporters[0]
            .spec
            .as_ref()
            .unwrap()
            .active_deadline_seconds,
        Some(5400)
    );

    s.build_timeout = Some("forever".into());
    assert!(matches!(try_plan(s, &[]), Err(PlanError::Invalid(_))));
}

#[test]
fn exporters_get_no_service_account_token_unless_their_template_asks() {
    let mut s = base();
    let mut wants = exporter_job_spec(None);
    if let Some(pod) = wants.template.spec.as_mut() {
        pod.automount_service_account_token = Some(true);
    }
    s.exporters = vec![exporter_job_spec(None), wants];
    let p = build(s, &[]);
    let automount: Vec<_> = p
        .exporters
        .iter()
        .map(|j| {
            let pod = j.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
            pod.automount_service_account_token
        })
        .collect();
    assert_eq!(automount, vec![Some(false), Some(true)]);
}

fn exporter_job_spec(deadline: Option<i64>) -> JobSpec {
    JobSpec {
        active_deadline_seconds: deadline,
        template: PodTemplateSpec {
            spec: Some(PodSpec {
                containers: vec![Container {
                    name: "upload".into(),
                    image: Some("curlimages/curl:8.10.1".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn a_retained_pvc_has_no_owner_and_keeps_its_labels() {
    use osartifact_shared::types::VolumeRetention;
    let owned = build(base(), &[]).pvc;
    assert_eq!(
        owned.metadata.owner_references.as_ref().map(Vec::len),
        Some(1),
        "Delete (the default): owned, deleted with the artifact"
    );
    let mut s = base();
    s.volume_retention = Some(VolumeRetention::Retain);
    let p = build(s, &[]);
    assert_eq!(p.pvc.metadata.owner_references, None);
    assert_eq!(p.pvc.metadata.labels, owned.metadata.labels);
    assert_eq!(
        p.pvc.metadata.labels.as_ref().unwrap()[osartifact_shared::names::ARTIFACT_UID_LABEL],
        "uid-1"
    );
    // Only the PVC outlives the artifact.
    assert!(p.pod.metadata.owner_references.is_some());
    assert!(p.config_map.metadata.owner_references.is_some());
    // Serialized for server-side apply, the field is absent, so an earlier reference is removed.
    let body = serde_json::to_value(&p.pvc).unwrap();
    assert!(body["metadata"].get("ownerReferences").is_none(), "{body}");
}

#[test]
fn ownership_is_the_controller_reference_or_for_an_unowned_child_the_uid_label() {
    use osartifact_shared::types::VolumeRetention;
    let a = artifact(base());
    let id = Identity::of(&a).unwrap();
    let owned = child_meta(&id, "hello-artifacts".into());
    assert!(is_ours(&owned, "uid-1"));
    assert!(!is_ours(&owned, "uid-2"), "another artifact's child");

    let mut s = base();
    s.volume_retention = Some(VolumeRetention::Retain);
    let retained = build(s, &[]).pvc.metadata;
    assert!(is_ours(&retained, "uid-1"), "recognised by its UID label");
    assert!(
        !is_ours(&retained, "uid-2"),
        "a re-created artifact of the same name does not adopt the old one's PVC"
    );

    let mut foreign = retained.clone();
    foreign.owner_references = Some(vec![OwnerReference {
        uid: "other".into(),
        controller: Some(true),
        ..Default::default()
    }]);
    assert!(!is_ours(&foreign, "uid-1"), "controlled by something else");

    let mut non_controller = retained.clone();
    non_controller.owner_references = Some(vec![OwnerReference {
        uid: "other".into(),
        controller: None,
        ..Default::default()
    }]);
    assert!(
        is_ours(&non_controller, "uid-1"),
        "a plain owner is no controller"
    );

    let unlabelled = ObjectMeta {
        name: Some("hello-artifacts".into()),
        ..Default::default()
    };
    assert!(!is_ours(&unlabelled, "uid-1"), "a user's PVC of that name");
    assert!(
        !is_ours(&unlabelled, ""),
        "no UID matches an unlabelled object"
    );
}
