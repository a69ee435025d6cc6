//! The builder pod `<name>-build`. Every step is an init container, so steps run one at a time in a
//! fixed order and the pod's init container statuses say exactly which step runs or failed:
//!
//! importers → kaniko + unpack (Dockerfile) or unpack (imageName) → bundle-<i> → release-files →
//! tarball → iso-overlay → iso → netboot → cloud-image → azure-image → gce-image; then `done`
//! checks that every promised file exists.
//!
//! No user string is ever part of a shell script: AuroraBoot, kaniko and luet get argument
//! vectors; the few shell steps run fixed scripts that read operator-chosen values from the
//! environment or from `"$@"`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMapProjection, Container, EmptyDirVolumeSource, EnvVar, KeyToPath,
    PersistentVolumeClaimVolumeSource, Pod, PodSpec, ProjectedVolumeSource, ResourceRequirements,
    SecretProjection, SecretVolumeSource, SecurityContext, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use osartifact_shared::OSArtifactSpec;
use osartifact_shared::names;

use super::configmap::{self, GRUB_KEY};
use super::secret::{DOCKER_CONFIG_KEY, DOCKERFILE_KEY, registry_auth_secret};
use super::{Identity, child_meta};
use crate::settings::Settings;

pub const ROOTFS: &str = "/rootfs";
pub const ARTIFACTS: &str = "/artifacts";
pub const WORK: &str = "/work";
pub const CONFIG_DIR: &str = "/config";
/// `$DOCKER_CONFIG` of every step that pulls images.
pub const DOCKER_CONFIG_DIR: &str = "/config/docker";
pub const CLOUD_CONFIG_DIR: &str = "/cloud-config";
pub const CLOUD_CONFIG_FILE: &str = "/cloud-config/cloud-config.yaml";
pub const WORKSPACE: &str = "/workspace";
pub const DOCKERFILE_DIR: &str = "/workspace/dockerfile";
pub const KANIKO_OUT: &str = "/kaniko-out";
pub const OVERLAY_ISO: &str = "/overlay-iso";
pub const OVERLAY_ROOTFS: &str = "/overlay-rootfs";
/// Where the user's overlayISO volume is read from when it is merged with the grub.cfg overlay.
pub const OVERLAY_ISO_USER: &str = "/overlay-iso-user";

/// Volume `rootfs` is the pod's scratch emptyDir: the rootfs lives in its `rootfs` subdirectory and
/// every step that needs scratch space gets its own `work/<step>` subdirectory, so no two steps
/// (and no two disk formats) ever share a state directory, and temporary files stay off the PVC.
const SCRATCH: &str = "rootfs";

/// Runs the tool with `"$@"`, then publishes each `PUBLISH` entry `<glob>=<file>`: exactly one file
/// must match the glob (in the step's own scratch directory); it is copied to `/artifacts/<file>`
/// under a temporary name and renamed, so a half-written output never has the final name.
/// `NETBOOT_URL` (netboot step) adds an iPXE script. The globs are chosen by the operator, never the user.
const RUN_AND_PUBLISH: &str = r#"auroraboot "$@"
for pair in $PUBLISH; do
  pattern=${pair%%=*}
  dest="/artifacts/${pair#*=}"
  set -- $pattern
  if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    echo "expected exactly one file matching $pattern, found: $*" >&2
    exit 1
  fi
  cp "$1" "$dest.partial"
  mv "$dest.partial" "$dest"
  echo "published $dest"
done
if [ -n "${NETBOOT_URL:-}" ]; then
  printf '#!ipxe\nset url %s\nkernel ${url}/%s-kernel initrd=%s-initrd rd.neednet=1 ip=dhcp rd.cos.disable root=live:${url}/%s.squashfs netboot install-mode config_url=${config} console=tty1 console=ttyS0 rd.live.overlay.overlayfs\ninitrd ${url}/%s-initrd\nboot\n' \
    "$NETBOOT_URL" "$NAME" "$NAME" "$NAME" "$NAME" > "/artifacts/$NAME.ipxe.partial"
  mv "/artifacts/$NAME.ipxe.partial" "/artifacts/$NAME.ipxe"
  echo "published /artifacts/$NAME.ipxe"
fi
"#;

/// Writes /etc/os-release and /etc/kairos-release from the ConfigMap keys mounted at /config. The
/// old file is removed first: it is often a symlink, and copying through it could write outside the rootfs.
const RELEASE_FILES: &str = r#"mkdir -p /rootfs/etc
for f in os-release kairos-release; do
  if [ -f "/config/$f" ]; then
    rm -f "/rootfs/etc/$f"
    cp "/config/$f" "/rootfs/etc/$f"
    echo "wrote /etc/$f"
  fi
done
"#;

/// Removes this artifact's outputs of a previous build (given as "$@"), so a rebuild starts from
/// scratch, then packs the final rootfs as the image tarball `<name>.tar`.
const TARBALL: &str = r#"for f in "$@"; do rm -f "/artifacts/$f" "/artifacts/$f.partial"; done
tar -czpf /work/rootfs.tar.gz -C /rootfs .
if [ -n "${ARCH:-}" ]; then
  luet util pack --arch "$ARCH" --os linux "$IMAGE_REF" /work/rootfs.tar.gz /work/image.tar
else
  luet util pack "$IMAGE_REF" /work/rootfs.tar.gz /work/image.tar
fi
chmod a+r /work/image.tar
cp /work/image.tar "/artifacts/$NAME.tar.partial"
mv "/artifacts/$NAME.tar.partial" "/artifacts/$NAME.tar"
echo "published /artifacts/$NAME.tar"
"#;

/// Builds the ISO overlay: the user's overlayISO files (if bound) plus grub.cfg at boot/grub2/grub.cfg,
/// the path the Kairos ISO's GRUB loads its configuration from.
const ISO_OVERLAY: &str = r#"if [ -d /overlay-iso-user ]; then cp -rL /overlay-iso-user/. /overlay-iso/; fi
mkdir -p /overlay-iso/boot/grub2
cp /config/grub.cfg /overlay-iso/boot/grub2/grub.cfg
echo "grub.cfg installed in the ISO overlay"
"#;

/// Checks that every promised output exists and is not empty, and lists them in the log.
const DONE: &str = r#"cd /artifacts
for f in "$@"; do
  [ -s "$f" ] || { echo "missing output /artifacts/$f" >&2; exit 1; }
done
ls -l "$@"
"#;

pub struct Builder {
    pub pod: Pod,
    pub steps: Vec<String>,
    pub outputs: Vec<String>,
}

/// Files the build writes into the artifacts PVC, in a stable order.
pub fn outputs(spec: &OSArtifactSpec, name: &str) -> Vec<String> {
    let mut out = vec![format!("{name}.tar")];
    if spec.iso || spec.netboot {
        out.push(format!("{name}.iso"));
        out.push(format!("{name}.iso.sha256"));
    }
    if spec.netboot {
        out.extend(netboot_files(name));
        if netboot_url(spec).is_some() {
            out.push(format!("{name}.ipxe"));
        }
    }
    if spec.cloud_image {
        out.push(format!("{name}.raw"));
    }
    if spec.azure_image {
        out.push(format!("{name}-azure.vhd"));
    }
    if spec.gce_image {
        out.push(format!("{name}.gce.raw.tar.gz"));
    }
    out
}

/// Every file name a build of this artifact can write, whatever formats the spec selects: the
/// tarball step removes them all, so a format dropped by a new generation leaves no stale file.
pub fn all_outputs(name: &str) -> Vec<String> {
    let every = OSArtifactSpec {
        iso: true,
        netboot: true,
        netboot_url: Some("x".into()),
        cloud_image: true,
        azure_image: true,
        gce_image: true,
        ..Default::default()
    };
    outputs(&every, name)
}

fn netboot_files(name: &str) -> [String; 3] {
    [
        format!("{name}.squashfs"),
        format!("{name}-kernel"),
        format!("{name}-initrd"),
    ]
}

fn netboot_url(spec: &OSArtifactSpec) -> Option<&str> {
    spec.netboot_url.as_deref().filter(|u| !u.is_empty())
}

/// Names of the init containers, in order.
pub fn step_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| c.name.clone())
        .collect()
}

fn mount(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        name: volume.into(),
        mount_path: path.into(),
        ..Default::default()
    }
}

fn mount_ro(volume: &str, path: &str) -> VolumeMount {
    VolumeMount {
        read_only: Some(true),
        ..mount(volume, path)
    }
}

fn scratch(sub: &str, path: &str) -> VolumeMount {
    VolumeMount {
        sub_path: Some(sub.into()),
        ..mount(SCRATCH, path)
    }
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..Default::default()
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// A container of ours: pinned image pulled only when absent, and on failure the log tail becomes
/// the termination message the status quotes.
fn step(name: &str, image: &str) -> Container {
    Container {
        name: name.into(),
        image: Some(image.into()),
        image_pull_policy: Some("IfNotPresent".into()),
        termination_message_policy: Some("FallbackToLogsOnError".into()),
        ..Default::default()
    }
}

fn shell(mut c: Container, script: &str, args: Vec<String>) -> Container {
    c.command = Some(strings(&["/bin/sh", "-ec", script, c.name.as_str()]));
    c.args = (!args.is_empty()).then_some(args);
    c
}

/// Loop devices and mounts for the ISO and disk images need a privileged container.
fn privileged(mut c: Container) -> Container {
    c.security_context = Some(SecurityContext {
        privileged: Some(true),
        ..Default::default()
    });
    c
}

fn with_resources(mut c: Container, r: Option<&ResourceRequirements>) -> Container {
    c.resources = r.cloned();
    c
}

fn disk_size(spec: &OSArtifactSpec) -> Option<String> {
    match spec.disk_size.as_ref()? {
        IntOrString::Int(n) => Some(n.to_string()),
        IntOrString::String(s) if !s.is_empty() => Some(s.clone()),
        IntOrString::String(_) => None,
    }
}

struct Ctx<'a> {
    spec: &'a OSArtifactSpec,
    name: &'a str,
    settings: &'a Settings,
    registry_auth: bool,
    config_keys: Vec<String>,
}

impl Ctx<'_> {
    fn arch(&self) -> Option<&'static str> {
        self.spec.arch.map(|a| a.as_str())
    }

    /// Steps that pull images read the merged credentials through `$DOCKER_CONFIG`.
    fn pulls(&self, mut c: Container) -> Container {
        if self.registry_auth {
            c.env
                .get_or_insert_with(Vec::new)
                .push(env("DOCKER_CONFIG", DOCKER_CONFIG_DIR));
            c.volume_mounts
                .get_or_insert_with(Vec::new)
                .push(mount_ro("config", CONFIG_DIR));
        }
        c
    }

    fn cloud_config_args(&self) -> Vec<String> {
        // Only with a mounted cloud-config: the predecessor passed the flag when only grubConfig was set.
        if self.spec.cloud_config_ref.is_some() {
            strings(&["--cloud-config", CLOUD_CONFIG_FILE])
        } else {
            Vec::new()
        }
    }

    fn cloud_config_mount(&self, mounts: &mut Vec<VolumeMount>) {
        if self.spec.cloud_config_ref.is_some() {
            mounts.push(mount_ro("cloudconfig", CLOUD_CONFIG_DIR));
        }
    }

    fn unpack(&self, name: &str, image: &str) -> Container {
        let mut args = strings(&["unpack"]);
        if let Some(a) = self.arch() {
            args.extend(strings(&["--arch", a]));
        }
        // Flags first, then the positional image and target (AuroraBoot's CLI stops at the first positional).
        args.extend([image.to_string(), ROOTFS.to_string()]);
        let mut c = step(name, &self.settings.auroraboot_image);
        c.command = Some(strings(&["auroraboot"]));
        c.args = Some(args);
        c.volume_mounts = Some(vec![scratch("rootfs", ROOTFS)]);
        self.pulls(c)
    }

    fn kaniko(&self) -> Vec<Container> {
        let mut args = vec![
            format!("--dockerfile={DOCKERFILE_DIR}/{DOCKERFILE_KEY}"),
            format!("--context=dir://{WORKSPACE}"),
            "--no-push".to_string(),
            format!("--destination={}:latest", self.name),
            format!("--tar-path={KANIKO_OUT}/image.tar"),
            "--ignore-path=/product_uuid".to_string(),
        ];
        if let Some(a) = self.arch() {
            args.push(format!("--custom-platform=linux/{a}"));
        }
        // Parent mounts first: /workspace (the build context), then the Dockerfile inside it.
        let mut mounts = Vec::new();
        if let Some(ctx) = self
            .spec
            .volume_bindings
            .as_ref()
            .and_then(|b| b.build_context.as_deref())
        {
            mounts.push(mount(ctx, WORKSPACE));
        }
        mounts.push(mount_ro("dockerfile", DOCKERFILE_DIR));
        mounts.push(scratch("kaniko", KANIKO_OUT));
        let mut kaniko = step("kaniko", &self.settings.kaniko_image);
        kaniko.args = Some(args);
        kaniko.volume_mounts = Some(mounts);

        let mut extract = step("unpack", &self.settings.extractor_image);
        extract.args = Some(vec![
            "util".into(),
            "unpack".into(),
            "--local".into(),
            format!("file://{KANIKO_OUT}/image.tar"),
            ROOTFS.into(),
        ]);
        extract.volume_mounts = Some(vec![
            scratch("rootfs", ROOTFS),
            scratch("kaniko", KANIKO_OUT),
        ]);
        vec![self.pulls(kaniko), extract]
    }

    fn release_files(&self) -> Option<Container> {
        let wanted = [configmap::OS_RELEASE_KEY, configmap::KAIROS_RELEASE_KEY];
        if !self
            .config_keys
            .iter()
            .any(|k| wanted.contains(&k.as_str()))
        {
            return None;
        }
        let mut c = shell(
            step("release-files", &self.settings.auroraboot_image),
            RELEASE_FILES,
            Vec::new(),
        );
        c.volume_mounts = Some(vec![
            mount_ro("config", CONFIG_DIR),
            scratch("rootfs", ROOTFS),
        ]);
        Some(c)
    }

    fn tarball(&self, outputs: &[String]) -> Container {
        let mut c = shell(
            step("tarball", &self.settings.auroraboot_image),
            TARBALL,
            outputs.to_vec(),
        );
        let image_ref = self
            .spec
            .image_name
            .clone()
            .unwrap_or_else(|| format!("{}:latest", self.name));
        let mut envs = vec![env("NAME", self.name), env("IMAGE_REF", image_ref)];
        if let Some(a) = self.arch() {
            envs.push(env("ARCH", a));
        }
        c.env = Some(envs);
        c.volume_mounts = Some(vec![
            mount("artifacts", ARTIFACTS),
            VolumeMount {
                read_only: Some(true),
                ..scratch("rootfs", ROOTFS)
            },
            scratch("work/tarball", WORK),
        ]);
        c
    }

    fn has_grub(&self) -> bool {
        self.config_keys.iter().any(|k| k == GRUB_KEY)
    }

    fn overlay_iso_binding(&self) -> Option<&str> {
        self.spec
            .volume_bindings
            .as_ref()
            .and_then(|b| b.overlay_iso.as_deref())
    }

    fn overlay_rootfs_binding(&self) -> Option<&str> {
        self.spec
            .volume_bindings
            .as_ref()
            .and_then(|b| b.overlay_rootfs.as_deref())
    }

    fn iso_overlay(&self) -> Option<Container> {
        if !self.has_grub() {
            return None;
        }
        let mut c = shell(
            step("iso-overlay", &self.settings.auroraboot_image),
            ISO_OVERLAY,
            Vec::new(),
        );
        let mut mounts = vec![
            mount_ro("config", CONFIG_DIR),
            scratch("iso-overlay", OVERLAY_ISO),
        ];
        if let Some(v) = self.overlay_iso_binding() {
            mounts.push(mount_ro(v, OVERLAY_ISO_USER));
        }
        c.volume_mounts = Some(mounts);
        Some(c)
    }

    /// A step that runs AuroraBoot in its own scratch directory and publishes its outputs.
    fn auroraboot_step(
        &self,
        name: &str,
        args: Vec<String>,
        publish: Vec<(String, String)>,
        mut mounts: Vec<VolumeMount>,
    ) -> Container {
        let mut c = shell(
            step(name, &self.settings.auroraboot_image),
            RUN_AND_PUBLISH,
            args,
        );
        let publish = publish
            .into_iter()
            .map(|(glob, file)| format!("{glob}={file}"))
            .collect::<Vec<_>>()
            .join(" ");
        c.env = Some(vec![env("NAME", self.name), env("PUBLISH", publish)]);
        mounts.insert(0, mount("artifacts", ARTIFACTS));
        mounts.push(scratch(&format!("work/{name}"), WORK));
        c.volume_mounts = Some(mounts);
        c
    }

    fn iso(&self) -> Container {
        let n = self.name;
        let mut args = strings(&["--debug", "build-iso", "--override-name", n]);
        args.extend(strings(&["--date=false", "--output", WORK]));
        if let Some(a) = self.arch() {
            args.extend(strings(&["--arch", a]));
        }
        let mut mounts = vec![scratch("rootfs", ROOTFS)];
        if self.has_grub() {
            mounts.push(scratch("iso-overlay", OVERLAY_ISO));
            args.extend(strings(&["--overlay-iso", OVERLAY_ISO]));
        } else if let Some(v) = self.overlay_iso_binding() {
            mounts.push(mount_ro(v, OVERLAY_ISO));
            args.extend(strings(&["--overlay-iso", OVERLAY_ISO]));
        }
        if let Some(v) = self.overlay_rootfs_binding() {
            mounts.push(mount_ro(v, OVERLAY_ROOTFS));
            args.extend(strings(&["--overlay-rootfs", OVERLAY_ROOTFS]));
        }
        args.extend(self.cloud_config_args());
        self.cloud_config_mount(&mut mounts);
        // The positional source comes last, after every flag.
        args.push(format!("dir:{ROOTFS}"));
        let publish = vec![
            (format!("{WORK}/{n}.iso"), format!("{n}.iso")),
            (format!("{WORK}/{n}.iso.sha256"), format!("{n}.iso.sha256")),
        ];
        let c = self.auroraboot_step("iso", args, publish, mounts);
        let r = self.spec.resources.as_ref().and_then(|r| r.iso.as_ref());
        with_resources(privileged(c), r)
    }

    /// Runs after `iso` (init containers are sequential), extracting from the published ISO.
    /// It only reads files from the ISO, so it is not privileged.
    fn netboot(&self) -> Container {
        let n = self.name;
        let args = vec![
            "--debug".to_string(),
            "netboot".to_string(),
            format!("{ARTIFACTS}/{n}.iso"),
            WORK.to_string(),
            n.to_string(),
        ];
        let publish = netboot_files(n)
            .into_iter()
            .map(|f| (format!("{WORK}/{f}"), f))
            .collect();
        let mut c = self.auroraboot_step("netboot", args, publish, Vec::new());
        if let Some(url) = netboot_url(self.spec) {
            c.env
                .get_or_insert_with(Vec::new)
                .push(env("NETBOOT_URL", url));
        }
        let r = self
            .spec
            .resources
            .as_ref()
            .and_then(|r| r.netboot.as_ref());
        with_resources(c, r)
    }

    fn disk(
        &self,
        name: &str,
        format: &str,
        glob: &str,
        file: String,
        r: Option<&ResourceRequirements>,
    ) -> Container {
        let mut args = strings(&["--debug"]);
        let mut set = |kv: String| args.extend(["--set".to_string(), kv]);
        set(format!("{format}=true"));
        set("disable_netboot=true".into());
        set("disable_http_server=true".into());
        set(format!("state_dir={WORK}"));
        set(format!("container_image=dir:{ROOTFS}"));
        if let Some(a) = self.arch() {
            set(format!("arch={a}"));
        }
        if let Some(size) = disk_size(self.spec) {
            set(format!("disk.size={size}"));
        }
        args.extend(self.cloud_config_args());
        let mut mounts = vec![scratch("rootfs", ROOTFS)];
        self.cloud_config_mount(&mut mounts);
        let publish = vec![(format!("{WORK}/{glob}"), file)];
        with_resources(
            privileged(self.auroraboot_step(name, args, publish, mounts)),
            r,
        )
    }

    fn volumes(&self, id: &Identity) -> Vec<Volume> {
        let mut sources = vec![VolumeProjection {
            config_map: Some(ConfigMapProjection {
                name: names::config_map(&id.name),
                items: Some(
                    self.config_keys
                        .iter()
                        .map(|k| KeyToPath {
                            key: k.clone(),
                            path: k.clone(),
                            mode: None,
                        })
                        .collect(),
                ),
                optional: Some(false),
            }),
            ..Default::default()
        }];
        if self.registry_auth {
            sources.push(VolumeProjection {
                secret: Some(SecretProjection {
                    name: registry_auth_secret(&id.name),
                    items: Some(vec![KeyToPath {
                        key: DOCKER_CONFIG_KEY.into(),
                        path: format!("docker/{DOCKER_CONFIG_KEY}"),
                        mode: None,
                    }]),
                    optional: Some(false),
                }),
                ..Default::default()
            });
        }
        let mut v = vec![
            Volume {
                name: "artifacts".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: names::artifacts_pvc(&id.name),
                    read_only: Some(false),
                }),
                ..Default::default()
            },
            Volume {
                name: SCRATCH.into(),
                empty_dir: Some(EmptyDirVolumeSource::default()),
                ..Default::default()
            },
            Volume {
                name: "config".into(),
                projected: Some(ProjectedVolumeSource {
                    sources: Some(sources),
                    default_mode: None,
                }),
                ..Default::default()
            },
        ];
        if self.spec.base_image_dockerfile.is_some() {
            v.push(Volume {
                name: "dockerfile".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(names::rendered_dockerfile_secret(&id.name)),
                    items: Some(vec![KeyToPath {
                        key: DOCKERFILE_KEY.into(),
                        path: DOCKERFILE_KEY.into(),
                        mode: None,
                    }]),
                    optional: Some(false),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        if let Some(cc) = &self.spec.cloud_config_ref {
            // Not optional, and only the one key: the predecessor's optional volume silently built
            // images without the cloud-config, and an empty key mounted the whole Secret as a directory.
            let key = cc
                .key
                .clone()
                .unwrap_or_else(|| osartifact_shared::defaults::DEFAULT_CLOUD_CONFIG_KEY.into());
            v.push(Volume {
                name: "cloudconfig".into(),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(cc.name.clone()),
                    items: Some(vec![KeyToPath {
                        key,
                        path: "cloud-config.yaml".into(),
                        mode: None,
                    }]),
                    optional: Some(false),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        v.extend(self.spec.volumes.iter().cloned());
        v
    }
}

pub fn pod(
    spec: &OSArtifactSpec,
    id: &Identity,
    settings: &Settings,
    registry_auth: bool,
) -> Builder {
    let ctx = Ctx {
        spec,
        name: &id.name,
        settings,
        registry_auth,
        config_keys: configmap::entries(spec).into_keys().collect(),
    };
    let outputs = outputs(spec, &id.name);
    let mut init: Vec<Container> = spec.importers.clone();
    if spec.base_image_dockerfile.is_some() {
        init.extend(ctx.kaniko());
    } else if let Some(image) = &spec.image_name {
        init.push(ctx.unpack("unpack", image));
    }
    for (i, bundle) in spec.bundles.iter().enumerate() {
        init.push(ctx.unpack(&format!("bundle-{i}"), bundle));
    }
    init.extend(ctx.release_files());
    init.push(ctx.tarball(&all_outputs(&id.name)));
    if spec.iso || spec.netboot {
        init.extend(ctx.iso_overlay());
        init.push(ctx.iso());
    }
    if spec.netboot {
        init.push(ctx.netboot());
    }
    let res = spec.resources.as_ref();
    let n = &id.name;
    if spec.cloud_image {
        let r = res.and_then(|r| r.cloud_image.as_ref());
        init.push(ctx.disk("cloud-image", "disk.raw", "*.raw", format!("{n}.raw"), r));
    }
    if spec.azure_image {
        let r = res.and_then(|r| r.azure_image.as_ref());
        init.push(ctx.disk(
            "azure-image",
            "disk.vhd",
            "*.vhd",
            format!("{n}-azure.vhd"),
            r,
        ));
    }
    if spec.gce_image {
        let r = res.and_then(|r| r.gce_image.as_ref());
        let file = format!("{n}.gce.raw.tar.gz");
        init.push(ctx.disk("gce-image", "disk.gce", "*.tar.gz", file, r));
    }

    let mut done = shell(
        step("done", &settings.auroraboot_image),
        DONE,
        outputs.clone(),
    );
    done.volume_mounts = Some(vec![mount_ro("artifacts", ARTIFACTS)]);

    let mut meta = child_meta(id, names::builder_pod(&id.name));
    // The user's labels and annotations first, so the operator's own win on conflict.
    let mut labels: BTreeMap<String, String> = spec.pod_labels.clone();
    labels.extend(meta.labels.take().unwrap_or_default());
    meta.labels = Some(labels);
    let mut annotations: BTreeMap<String, String> = spec.pod_annotations.clone();
    annotations.extend(meta.annotations.take().unwrap_or_default());
    meta.annotations = Some(annotations);

    let steps = init.iter().map(|c| c.name.clone()).collect();
    let pod = Pod {
        metadata: meta,
        spec: Some(PodSpec {
            restart_policy: Some("Never".into()),
            // The build never talks to the API.
            automount_service_account_token: Some(false),
            enable_service_links: Some(false),
            image_pull_secrets: (!spec.image_pull_secrets.is_empty())
                .then(|| spec.image_pull_secrets.clone()),
            node_selector: (!spec.node_selector.is_empty()).then(|| spec.node_selector.clone()),
            tolerations: (!spec.tolerations.is_empty()).then(|| spec.tolerations.clone()),
            affinity: spec.affinity.clone(),
            init_containers: Some(init),
            containers: vec![done],
            volumes: Some(ctx.volumes(id)),
            ..Default::default()
        }),
        ..Default::default()
    };
    Builder {
        pod,
        steps,
        outputs,
    }
}
