use super::*;
use crate::types::{OSArtifactSpec, SecretRef, VolumeBindings};
use k8s_openapi::ByteString;
use k8s_openapi::api::batch::v1::JobSpec;
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec, Volume, VolumeMount};
use std::collections::BTreeMap;

const IMAGE: &str = "quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0";

fn artifact(name: &str, spec: OSArtifactSpec) -> OSArtifact {
    let mut a = OSArtifact::new(name, spec);
    a.metadata.namespace = Some("default".into());
    a
}

fn iso() -> OSArtifactSpec {
    OSArtifactSpec {
        image_name: Some(IMAGE.into()),
        iso: true,
        ..Default::default()
    }
}

fn errors(spec: OSArtifactSpec) -> Vec<String> {
    validate(
        &artifact("hello", spec),
        &KnownSecrets::new(),
        Mode::Admission,
    )
    .errors
    .iter()
    .map(|e| e.to_string())
    .collect()
}

fn warnings(spec: OSArtifactSpec) -> Vec<String> {
    validate(
        &artifact("hello", spec),
        &KnownSecrets::new(),
        Mode::Admission,
    )
    .warnings
}

fn has(list: &[String], needle: &str) -> bool {
    list.iter().any(|e| e.contains(needle))
}

fn dockerfile_spec(secret: &str) -> OSArtifactSpec {
    OSArtifactSpec {
        base_image_dockerfile: Some(SecretKeyRef {
            name: secret.into(),
            key: None,
        }),
        iso: true,
        ..Default::default()
    }
}

fn secrets(entries: &[(&str, &[(&str, &str)])]) -> KnownSecrets {
    let mut k = KnownSecrets::new();
    for (name, data) in entries {
        k.insert(
            *name,
            SecretLookup::Found(
                data.iter()
                    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
                    .collect(),
            ),
        );
    }
    k
}

fn exporter(pod: PodSpec) -> JobSpec {
    JobSpec {
        template: PodTemplateSpec {
            spec: Some(pod),
            ..Default::default()
        },
        ..Default::default()
    }
}

fn container(name: &str, image: &str) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        ..Default::default()
    }
}

#[test]
fn a_valid_spec_has_no_errors_or_warnings() {
    let r = validate(
        &artifact("hello", iso()),
        &KnownSecrets::new(),
        Mode::Admission,
    );
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn exactly_one_image_source() {
    let e = errors(OSArtifactSpec {
        iso: true,
        ..Default::default()
    });
    assert!(
        has(
            &e,
            "spec.imageName: Required value: set exactly one of spec.imageName"
        ),
        "{e:?}"
    );
    let mut both = iso();
    both.base_image_dockerfile = Some(SecretKeyRef {
        name: "d".into(),
        key: None,
    });
    let e = errors(both);
    assert!(
        has(
            &e,
            "spec.baseImageDockerfile: Forbidden: may not be set together with spec.imageName"
        ),
        "{e:?}"
    );
}

#[test]
fn image_references_are_parsed() {
    let mut s = iso();
    s.image_name = Some("quay.io/kairos/@flavor:@flavorRelease-core-amd64-generic-master".into());
    s.bundles = vec![
        "quay.io/kairos/packages:helm-utils-3.10.1".into(),
        "Bad Image".into(),
        "".into(),
    ];
    let e = errors(s);
    assert!(
        has(
            &e,
            "spec.imageName: Invalid value: \"quay.io/kairos/@flavor"
        ),
        "{e:?}"
    );
    assert!(has(&e, "are placeholders from the documentation"), "{e:?}");
    assert!(
        has(&e, "spec.bundles[1]: Invalid value: \"Bad Image\""),
        "{e:?}"
    );
    assert!(has(&e, "spec.bundles[2]: Required value"), "{e:?}");
    assert!(!has(&e, "spec.bundles[0]"), "{e:?}");
}

#[test]
fn template_values_need_a_dockerfile() {
    let mut s = iso();
    s.dockerfile_template_values = Some(BTreeMap::from([("A".into(), "1".into())]));
    s.dockerfile_template_values_from = Some(SecretRef { name: "v".into() });
    let e = errors(s);
    assert!(has(&e, "spec.dockerfileTemplateValues: Forbidden"), "{e:?}");
    assert!(
        has(&e, "spec.dockerfileTemplateValuesFrom: Forbidden"),
        "{e:?}"
    );
}

#[test]
fn disk_size_is_a_positive_number_of_megabytes() {
    for bad in [
        IntOrString::String("32GB".into()),
        IntOrString::Int(0),
        IntOrString::Int(-5),
        IntOrString::String("".into()),
    ] {
        let mut s = iso();
        s.cloud_image = true;
        s.disk_size = Some(bad.clone());
        assert!(has(&errors(s), "spec.diskSize: Invalid value"), "{bad:?}");
    }
    let mut s = iso();
    s.cloud_image = true;
    s.disk_size = Some(IntOrString::String("32000".into()));
    assert!(errors(s.clone()).is_empty());
    s.disk_size = Some(IntOrString::Int(32000));
    assert!(errors(s).is_empty());
}

#[test]
fn soft_problems_are_warnings() {
    let none = OSArtifactSpec {
        image_name: Some(IMAGE.into()),
        ..Default::default()
    };
    assert!(has(&warnings(none), "no output selected"));
    let mut s = iso();
    s.disk_size = Some(IntOrString::String("32000".into()));
    assert!(has(
        &warnings(s),
        "spec.diskSize: has no effect without a disk image"
    ));
    let mut s = iso();
    s.netboot = true;
    assert!(has(&warnings(s), "spec.netbootURL: not set"));
    let mut s = iso();
    s.netboot = true;
    s.netboot_url = Some("ftp://x".into());
    assert!(has(&errors(s), "spec.netbootURL: Invalid value"));
}

#[test]
fn volume_names_unique_valid_and_not_reserved() {
    let mut s = iso();
    s.volumes = ["a", "a", "artifacts", "Bad_Name", ""]
        .iter()
        .map(|n| Volume {
            name: n.to_string(),
            ..Default::default()
        })
        .collect();
    let e = errors(s);
    assert!(
        has(&e, "spec.volumes[1].name: Duplicate value: \"a\""),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.volumes[2].name: Invalid value: \"artifacts\": reserved"
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "spec.volumes[3].name: Invalid value: \"Bad_Name\""),
        "{e:?}"
    );
    assert!(has(&e, "spec.volumes[4].name: Required value"), "{e:?}");
}

#[test]
fn bindings_name_existing_volumes_and_fit_the_build() {
    let mut s = OSArtifactSpec {
        image_name: Some(IMAGE.into()),
        cloud_image: true,
        ..Default::default()
    };
    s.volumes = vec![Volume {
        name: "ctx".into(),
        ..Default::default()
    }];
    s.volume_bindings = Some(VolumeBindings {
        build_context: Some("ctx".into()),
        overlay_iso: Some("iso-extra".into()),
        overlay_rootfs: None,
    });
    let e = errors(s);
    assert!(
        has(
            &e,
            "spec.volumeBindings.overlayISO: Not found: \"iso-extra\": no volume of that name in spec.volumes"
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.volumeBindings.overlayISO: Forbidden: overlays are only used by ISO builds"
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.volumeBindings.buildContext: Forbidden: a build context is only used by a Dockerfile build"
        ),
        "{e:?}"
    );
}

#[test]
fn importers_unique_not_builder_names_and_mount_known_volumes() {
    let mut s = iso();
    s.volumes = vec![Volume {
        name: "data".into(),
        ..Default::default()
    }];
    let mut fetch = container("fetch", "curlimages/curl:latest");
    fetch.volume_mounts = Some(vec![
        VolumeMount {
            name: "data".into(),
            mount_path: "/d".into(),
            ..Default::default()
        },
        VolumeMount {
            name: "nope".into(),
            mount_path: "/n".into(),
            ..Default::default()
        },
    ]);
    s.importers = vec![
        fetch.clone(),
        container("fetch", "alpine"),
        container("iso", "alpine"),
        Container {
            name: "x".into(),
            ..Default::default()
        },
    ];
    let e = errors(s);
    assert!(
        has(
            &e,
            "spec.importers[0].volumeMounts[1].name: Not found: \"nope\""
        ),
        "{e:?}"
    );
    assert!(!has(&e, "volumeMounts[0]"), "{e:?}");
    assert!(
        has(&e, "spec.importers[1].name: Duplicate value: \"fetch\""),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.importers[2].name: Invalid value: \"iso\": the builder pod uses this container name"
        ),
        "{e:?}"
    );
    assert!(has(&e, "spec.importers[3].image: Required value"), "{e:?}");
}

#[test]
fn exporters_need_a_container_no_own_artifacts_volume_and_a_valid_restart_policy() {
    let mut s = iso();
    let mut upload = container("upload", "curlimages/curl");
    upload.volume_mounts = Some(vec![
        VolumeMount {
            name: "artifacts".into(),
            mount_path: "/artifacts".into(),
            read_only: Some(true),
            ..Default::default()
        },
        VolumeMount {
            name: "scratch".into(),
            mount_path: "/s".into(),
            ..Default::default()
        },
    ]);
    s.exporters = vec![
        exporter(PodSpec {
            containers: vec![upload],
            ..Default::default()
        }),
        exporter(PodSpec {
            containers: vec![],
            ..Default::default()
        }),
        exporter(PodSpec {
            containers: vec![container("c", "alpine")],
            restart_policy: Some("Always".into()),
            volumes: Some(vec![Volume {
                name: "artifacts".into(),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        JobSpec::default(),
    ];
    s.exporters[0].ttl_seconds_after_finished = Some(0);
    assert!(has(
        &warnings(s.clone()),
        "spec.exporters[0].ttlSecondsAfterFinished: the Job may be deleted"
    ));
    let e = errors(s);
    assert!(
        has(
            &e,
            "spec.exporters[0].template.spec.containers[0].volumeMounts[1].name: Not found: \"scratch\""
        ),
        "{e:?}"
    );
    assert!(!has(&e, "volumeMounts[0]"), "{e:?}");
    assert!(
        has(
            &e,
            "spec.exporters[1].template.spec.containers: Required value"
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.exporters[2].template.spec.restartPolicy: Unsupported value: \"Always\""
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.exporters[2].template.spec.volumes[0].name: Invalid value: \"artifacts\""
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "spec.exporters[3].template.spec: Required value"),
        "{e:?}"
    );
}

#[test]
fn derived_names_fit_kubernetes_limits() {
    let long = "a".repeat(60);
    let mut s = iso();
    s.exporters = vec![exporter(PodSpec {
        containers: vec![container("c", "alpine")],
        ..Default::default()
    })];
    let r = validate(
        &artifact(&long, s.clone()),
        &KnownSecrets::new(),
        Mode::Admission,
    );
    let e: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        has(&e, "metadata.name: Too long: may not be more than 54 bytes"),
        "{e:?}"
    );
    let r = validate(
        &artifact(&"a".repeat(54), s.clone()),
        &KnownSecrets::new(),
        Mode::Admission,
    );
    assert!(r.is_ok(), "{:?}", r.errors);

    let mut generated = artifact("x", s);
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("b".repeat(50));
    let e: Vec<String> = validate(&generated, &KnownSecrets::new(), Mode::Admission)
        .errors
        .iter()
        .map(|e| e.to_string())
        .collect();
    assert!(
        has(
            &e,
            "metadata.generateName: Too long: may not be more than 49 bytes"
        ),
        "{e:?}"
    );
}

#[test]
fn quantities_and_labels_are_checked() {
    let mut s = iso();
    s.volume = Some(k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
        resources: Some(k8s_openapi::api::core::v1::VolumeResourceRequirements {
            requests: Some(BTreeMap::from([(
                "storage".into(),
                k8s_openapi::apimachinery::pkg::api::resource::Quantity("10 GB".into()),
            )])),
            ..Default::default()
        }),
        access_modes: Some(vec!["ReadWriteSometimes".into()]),
        ..Default::default()
    });
    s.pod_labels = BTreeMap::from([("bad key".into(), "v".into()), ("ok".into(), "-bad".into())]);
    let e = errors(s);
    assert!(
        has(
            &e,
            "spec.volume.resources.requests.storage: Invalid value: \"10 GB\""
        ),
        "{e:?}"
    );
    assert!(
        has(
            &e,
            "spec.volume.accessModes[0]: Unsupported value: \"ReadWriteSometimes\""
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "spec.podLabels: Invalid value: \"bad key\""),
        "{e:?}"
    );
    assert!(
        has(&e, "spec.podLabels[ok]: Invalid value: \"-bad\""),
        "{e:?}"
    );
}

#[test]
fn missing_secret_warns_at_admission_and_fails_a_build() {
    let mut k = KnownSecrets::new();
    k.insert("df", SecretLookup::NotFound);
    let a = artifact("hello", dockerfile_spec("df"));
    let r = validate(&a, &k, Mode::Admission);
    assert!(r.is_ok());
    assert!(
        has(
            &r.warnings,
            "spec.baseImageDockerfile.name: Secret \"df\" not found"
        ),
        "{:?}",
        r.warnings
    );
    let r = validate(&a, &k, Mode::Build);
    let e: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        has(
            &e,
            "spec.baseImageDockerfile: Invalid value: \"df/Dockerfile\": Secret \"df\" not found"
        ),
        "{e:?}"
    );
}

#[test]
fn unreachable_api_is_a_warning_that_says_the_operator_checks_later() {
    let mut k = KnownSecrets::new();
    k.insert("df", SecretLookup::Unavailable("timed out".into()));
    let r = validate(
        &artifact("hello", dockerfile_spec("df")),
        &k,
        Mode::Admission,
    );
    assert!(r.is_ok());
    assert!(
        has(&r.warnings, "the operator checks it when it builds"),
        "{:?}",
        r.warnings
    );
}

#[test]
fn missing_key_is_named_with_the_keys_that_exist() {
    let k = secrets(&[
        ("df", &[("dockerfile", "FROM x")]),
        ("cc", &[("other", "x")]),
    ]);
    let mut spec = dockerfile_spec("df");
    spec.cloud_config_ref = Some(SecretKeyRef {
        name: "cc".into(),
        key: None,
    });
    let r = validate(&artifact("hello", spec), &k, Mode::Build);
    let e: Vec<String> = r.errors.iter().map(|e| e.to_string()).collect();
    assert!(
        has(
            &e,
            "spec.baseImageDockerfile: Invalid value: \"df/Dockerfile\": Secret \"df\" has no key \"Dockerfile\" (it has: dockerfile)"
        ),
        "{e:?}"
    );
    assert!(
        has(&e, "spec.cloudConfigRef: Invalid value: \"cc/userdata\""),
        "{e:?}"
    );
}

#[test]
fn missing_values_secret_is_reported_on_its_own_field() {
    let mut k = secrets(&[("df", &[("Dockerfile", "FROM {{ .Base }}")])]);
    k.insert("vals", SecretLookup::NotFound);
    let mut spec = dockerfile_spec("df");
    spec.dockerfile_template_values_from = Some(SecretRef {
        name: "vals".into(),
    });
    let a = artifact("hello", spec);
    let r = validate(&a, &k, Mode::Admission);
    assert!(r.is_ok(), "{:?}", r.errors);
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(has(
        &r.warnings,
        "spec.dockerfileTemplateValuesFrom.name: Secret \"vals\" not found"
    ));
    let r = validate(&a, &k, Mode::Build);
    assert_eq!(r.errors.len(), 1, "{:?}", r.errors);
    assert_eq!(r.errors[0].field, "spec.dockerfileTemplateValuesFrom");
}

#[test]
fn a_secret_from_a_manifest_counts_string_data() {
    let secret = k8s_openapi::api::core::v1::Secret {
        metadata: ObjectMeta {
            name: Some("df".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "Dockerfile".into(),
            ByteString(b"FROM old".to_vec()),
        )])),
        string_data: Some(BTreeMap::from([("Dockerfile".into(), "FROM new".into())])),
        ..Default::default()
    };
    let mut k = KnownSecrets::new();
    k.insert_secret(&secret);
    assert_eq!(k.value("df", "Dockerfile"), Some(&b"FROM new"[..]));
}

/// No image source, a duplicate volume, a bad disk size and a bad bundle.
fn four_problems() -> OSArtifactSpec {
    let volume = Volume {
        name: "a".into(),
        ..Default::default()
    };
    OSArtifactSpec {
        volumes: vec![volume.clone(), volume],
        disk_size: Some(IntOrString::String("big".into())),
        bundles: vec!["Not An Image".into()],
        ..Default::default()
    }
}

#[test]
fn every_error_is_reported_at_once() {
    let e = errors(four_problems());
    assert_eq!(e.len(), 4, "{e:?}");
}

#[test]
fn validating_in_place_reports_what_validating_a_copy_does() {
    let mut known = secrets(&[("df", &[("Dockerfile", "FROM {{ .missing }}")])]);
    known.insert("absent".to_string(), SecretLookup::NotFound);
    let mut reports = Vec::new();
    for spec in [
        iso(),
        four_problems(),
        dockerfile_spec("df"),
        dockerfile_spec("absent"),
    ] {
        let a = artifact("hello", spec);
        let copy = validate(&a, &known, Mode::Admission);
        assert_eq!(copy, validate_owned(a, &known, Mode::Admission));
        reports.push(copy);
    }
    // The cases cover a clean report, errors, and a warning (the absent Secret).
    assert!(reports[0].is_ok() && reports[0].warnings.is_empty());
    assert_eq!(reports[1].errors.len(), 4);
    assert!(!reports[3].warnings.is_empty());
}

const KAIROS_RELEASE: &str = r#"KAIROS_NAME="kairos-core-opensuse-leap-15.6"
KAIROS_VERSION="v3.6.0"
KAIROS_ARCH="amd64"
KAIROS_FLAVOR="opensuse"
KAIROS_FLAVOR_RELEASE="leap-15.6"
KAIROS_VARIANT="core"
KAIROS_MODEL="generic"
"#;

fn with_release(release: &str, disk: bool) -> OSArtifactSpec {
    let mut s = iso();
    s.cloud_image = disk;
    s.kairos_release = Some(release.into());
    s
}

#[test]
fn a_full_kairos_release_passes_for_every_output() {
    let mut s = with_release(KAIROS_RELEASE, true);
    s.netboot = true;
    s.netboot_url = Some("http://example.com".into());
    s.azure_image = true;
    s.gce_image = true;
    assert!(errors(s.clone()).is_empty(), "{:?}", errors(s.clone()));
    assert!(warnings(s.clone()).is_empty(), "{:?}", warnings(s));
}

#[test]
fn kairos_release_that_is_not_an_env_file_is_refused() {
    let e = errors(with_release("v3.6.0", false));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(r#"spec.kairosRelease: Invalid value: "v3.6.0": line 1 is not KEY=VALUE"#),
        "{e:?}"
    );
    // Whatever outputs are selected.
    let mut none = with_release("KAIROS_ARCH=amd64\nnot a variable\n", false);
    none.iso = false;
    let e = errors(none);
    assert!(has(&e, "line 2 is not KEY=VALUE"), "{e:?}");
}

#[test]
fn kairos_release_needs_the_keys_auroraboot_reads_for_the_selected_outputs() {
    // ISO: the architecture (KAIROS_TARGETARCH is the older spelling).
    let e = errors(with_release("KAIROS_VERSION=v3.6.0\n", false));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("spec.kairosRelease: Required value: KAIROS_ARCH (or KAIROS_TARGETARCH) is missing or empty"),
        "{e:?}"
    );
    assert!(errors(with_release("KAIROS_TARGETARCH=arm64\n", false)).is_empty());
    assert!(!errors(with_release("KAIROS_ARCH=\n", false)).is_empty());
    // Netboot alone builds the ISO too.
    let mut netboot = with_release("KAIROS_FLAVOR=x\n", false);
    netboot.iso = false;
    netboot.netboot = true;
    netboot.netboot_url = Some("http://example.com".into());
    assert!(has(&errors(netboot), "KAIROS_ARCH"));
    // Disks: flavor and model, each named.
    let e = errors(with_release("KAIROS_ARCH=amd64\n", true));
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(has(&e, "KAIROS_FLAVOR is missing or empty"), "{e:?}");
    assert!(has(&e, "KAIROS_MODEL is missing or empty"), "{e:?}");
    assert!(has(&e, "disk images"), "{e:?}");
    let mut disk_only = with_release("KAIROS_FLAVOR=ubuntu\nKAIROS_MODEL=generic\n", true);
    disk_only.iso = false;
    assert!(errors(disk_only).is_empty());
}

#[test]
fn env_files_are_parsed_like_an_env_file_reader() {
    use super::release::{EnvFileError, parse_env_file};
    let vars = parse_env_file(
        "# comment\n\nexport A=1\nB = \"two words\" # note\nC='x # y'\nD=plain # trailing\nE=\"multi\nline\"\nF.G=\n",
    )
    .unwrap();
    assert_eq!(vars["A"], "1");
    assert_eq!(vars["B"], "two words");
    assert_eq!(vars["C"], "x # y");
    assert_eq!(vars["D"], "plain");
    assert_eq!(vars["E"], "multi\nline");
    assert_eq!(vars["F.G"], "");
    for (text, line) in [
        ("v3.6.0", 1),
        ("A=1\n=2", 2),
        ("A=\"open", 1),
        ("A='x' y", 1),
        ("MY-KEY=1", 1),
    ] {
        assert_eq!(
            parse_env_file(text).map(|_| ()),
            Err(EnvFileError {
                line,
                text: text.lines().nth(line - 1).unwrap().to_string()
            }),
            "{text:?}"
        );
    }
}

#[test]
fn os_release_that_is_not_an_env_file_is_a_warning() {
    let mut s = iso();
    s.os_release = Some("opensuse-leap-15.6".into());
    assert!(errors(s.clone()).is_empty());
    let w = warnings(s);
    assert!(
        has(
            &w,
            "spec.osRelease: line 1 (\"opensuse-leap-15.6\") is not KEY=VALUE"
        ),
        "{w:?}"
    );
    let mut ok = iso();
    ok.os_release = Some("NAME=\"openSUSE Leap\"\nID=opensuse-leap\n".into());
    assert!(warnings(ok).is_empty());
}

#[test]
fn grub_config_without_a_menuentry_is_a_warning() {
    let mut s = iso();
    s.grub_config = Some("set timeout=5\nset default=0\n".into());
    assert!(errors(s.clone()).is_empty(), "a warning, never an error");
    let w = warnings(s);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("spec.grubConfig: has no menuentry"),
        "{w:?}"
    );
    for good in [
        "set timeout=5\nmenuentry \"Kairos\" {\n  linux /boot/kernel\n}\n",
        "submenu 'More' {\n\tmenuentry 'x' { true }\n}\n",
    ] {
        let mut s = iso();
        s.grub_config = Some(good.into());
        assert!(warnings(s).is_empty(), "{good}");
    }
    // A line that merely mentions the word does not count.
    let mut s = iso();
    s.grub_config = Some("# menuentry is below\nset menuentry_id_option=x\n".into());
    assert!(has(&warnings(s), "has no menuentry"));
}

#[test]
fn build_timeout_is_a_duration() {
    for ok in ["3h", "90m", "1h30m", "45s"] {
        let mut s = iso();
        s.build_timeout = Some(ok.into());
        assert!(errors(s).is_empty(), "{ok}");
    }
    for bad in ["3", "1.5h", "0s", "721h", "1d", ""] {
        let mut s = iso();
        s.build_timeout = Some(bad.into());
        let e = errors(s);
        assert!(
            e.len() == 1 && e[0].starts_with("spec.buildTimeout: Invalid value"),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn name_overrides_are_dns_labels_for_selected_formats() {
    use crate::types::NameOverride;
    let mut s = iso();
    s.netboot = true;
    s.netboot_url = Some("http://example.com".into());
    s.name_override = Some(NameOverride {
        iso: Some("kairos-live".into()),
        netboot: Some("kairos-pxe".into()),
        ..Default::default()
    });
    assert!(errors(s.clone()).is_empty());
    assert!(warnings(s.clone()).is_empty(), "{:?}", warnings(s));

    let mut s = iso();
    s.name_override = Some(NameOverride {
        iso: Some("Kairos.ISO".into()),
        cloud_image: Some("disk".into()),
        gce_image: Some(String::new()),
        azure_image: Some("a".repeat(64)),
        ..Default::default()
    });
    let e = errors(s.clone());
    assert_eq!(e.len(), 3, "{e:?}");
    assert!(has(
        &e,
        "spec.nameOverride.iso: Invalid value: \"Kairos.ISO\""
    ));
    assert!(has(&e, "spec.nameOverride.gceImage: Invalid value"));
    assert!(has(&e, "spec.nameOverride.azureImage: Invalid value"));
    assert!(has(&e, "it is the base name of the output files"));
    assert!(has(
        &warnings(s),
        "spec.nameOverride.cloudImage: has no effect without cloudImage: true"
    ));
}

#[test]
fn volume_retention_needs_no_validation_beyond_its_enum() {
    let mut s = iso();
    s.volume_retention = Some(crate::types::VolumeRetention::Retain);
    assert!(errors(s).is_empty());
}
