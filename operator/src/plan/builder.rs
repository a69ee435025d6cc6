//! The builder pod `<name>-build`. Every step is an init container, so steps run one at a time in a
//! fixed order and the pod's init container statuses say exactly which step runs or failed:
//!
//! importers → buildah + unpack (Dockerfile) or unpack (imageName) → bundle-<i> → release-files →
//! rootfs-overlay → tarball → iso-overlay → iso → netboot → cloud-image → azure-image → gce-image;
//! then `done` checks that every promised file exists and reports what was built (name, size,
//! sha256 of each file) in its termination message and in `<name>.manifest.json` in the PVC.
//!
//! No user string is ever part of a shell script: AuroraBoot, buildah and luet get argument
//! vectors; the shell steps run fixed scripts that read operator-chosen values from the
//! environment or from `"$@"`. Every step that runs a tool has its own scratch directory
//! (`/work`) with `TMPDIR` inside it, so the tools' temporary files are charged to the pod's
//! scratch emptyDir and not to the container's writable layer.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, ConfigMapProjection, Container, EmptyDirVolumeSource, EnvVar, KeyToPath,
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
/// `$TMPDIR` of every step that runs a tool: inside the step's own scratch directory.
pub const TMP: &str = "/work/tmp";
pub const CONFIG_DIR: &str = "/config";
/// `$DOCKER_CONFIG` of every step that pulls images.
pub const DOCKER_CONFIG_DIR: &str = "/config/docker";
pub const CLOUD_CONFIG_DIR: &str = "/cloud-config";
pub const CLOUD_CONFIG_FILE: &str = "/cloud-config/cloud-config.yaml";
/// The build context of a Dockerfile build (the `buildContext` volume, or an empty directory).
pub const WORKSPACE: &str = "/workspace";
/// The rendered Dockerfile, outside the build context so `COPY .` never picks it up and a
/// read-only context volume needs no mount point inside it.
pub const DOCKERFILE_DIR: &str = "/dockerfile";
/// buildah's image store (`/var/lib/containers/storage` by default), mounted from scratch.
pub const CONTAINERS_STORAGE: &str = "/var/lib/containers";
/// The image archive buildah writes and the next `unpack` reads.
pub const IMAGE_DIR: &str = "/image";
pub const IMAGE_ARCHIVE: &str = "/image/image.tar";
/// The staged ISO overlay passed to AuroraBoot as `--overlay-iso`.
pub const OVERLAY_ISO: &str = "/overlay-iso";
/// Where the user's overlayISO volume is read from when it is staged.
pub const OVERLAY_ISO_USER: &str = "/overlay-iso-user";
/// Where the user's overlayRootfs volume is read from when it is copied onto the rootfs.
pub const OVERLAY_ROOTFS: &str = "/overlay-rootfs";

/// Volume `rootfs` is the pod's scratch emptyDir: the rootfs lives in its `rootfs` subdirectory and
/// every step that needs scratch space gets its own `work/<step>` subdirectory, so no two steps
/// (and no two disk formats) ever share a state directory, and temporary files stay off the PVC.
const SCRATCH: &str = "rootfs";

/// `publish SRC DEST`: copies a scratch file to the PVC under a temporary name, makes it readable
/// for exporters running as any user (AuroraBoot creates the netboot files 0600), renames it so a
/// half-written output never has the final name, and frees the scratch copy.
const PUBLISH_FN: &str = r#"publish() {
  cp "$1" "$2.partial"
  chmod a+r "$2.partial"
  mv "$2.partial" "$2"
  rm -f "$1"
  echo "published $2"
}
"#;

/// `copy_overlay SRC DEST`: copies the entries of a user's overlay volume into DEST, dereferencing
/// symlinks. The top-level `..*` entries are skipped: ConfigMap and Secret volumes keep their
/// files in `..data` and timestamped `..<date>` directories behind symlinks, and those must not
/// end up in the image. An existing file at a destination path is removed first, so a symlink in
/// the rootfs is replaced rather than written through.
const COPY_OVERLAY_FN: &str = r#"copy_overlay() {
  for e in "$1"/* "$1"/.[!.]*; do
    if [ -e "$e" ]; then cp -rL --remove-destination "$e" "$2/"; fi
  done
}
"#;

/// Runs AuroraBoot with `"$@"` and `$TMPDIR` in the step's scratch directory, then publishes each
/// `PUBLISH` entry `<glob>=<file>`: exactly one file must match the glob (in the step's own scratch
/// directory). `NETBOOT_URL` (netboot step) adds an iPXE script. The globs are chosen by the
/// operator, never the user.
const RUN_AND_PUBLISH: &str = r#"mkdir -p "$TMPDIR"
auroraboot "$@"
for pair in $PUBLISH; do
  pattern=${pair%%=*}
  dest="/artifacts/${pair#*=}"
  set -- $pattern
  if [ "$#" -ne 1 ] || [ ! -f "$1" ]; then
    echo "expected exactly one file matching $pattern, found: $*" >&2
    exit 1
  fi
  publish "$1" "$dest"
done
if [ -n "${NETBOOT_URL:-}" ]; then
  printf '#!ipxe\nset url %s\nkernel ${url}/%s-kernel initrd=%s-initrd rd.neednet=1 ip=dhcp rd.cos.disable root=live:${url}/%s.squashfs netboot install-mode config_url=${config} console=tty1 console=ttyS0 rd.live.overlay.overlayfs\ninitrd ${url}/%s-initrd\nboot\n' \
    "$NETBOOT_URL" "$NAME" "$NAME" "$NAME" "$NAME" > /work/ipxe
  publish /work/ipxe "/artifacts/$NAME.ipxe"
fi
rm -rf "$TMPDIR"
"#;

/// Runs `auroraboot unpack` (`"$@"`) with `$TMPDIR` in the step's scratch directory; `CONSUMED`
/// names a scratch file the unpack used up (buildah's image archive), removed afterwards.
const UNPACK: &str = r#"mkdir -p "$TMPDIR"
auroraboot "$@"
rm -rf "$TMPDIR"
if [ -n "${CONSUMED:-}" ]; then rm -f "$CONSUMED"; fi
"#;

/// Builds the Dockerfile with buildah (`"$@"` = the `bud` arguments), writes the image as a
/// docker archive to scratch, then frees the image store: the layers are not needed any more.
const BUILDAH: &str = r#"mkdir -p "$TMPDIR"
buildah "$@"
rm -f "$ARCHIVE"
buildah push "$IMAGE" "docker-archive:$ARCHIVE"
rm -rf /var/lib/containers/storage "$TMPDIR"
echo "wrote $ARCHIVE"
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
/// scratch; sets the rootfs root to 0755 (it is a subdirectory of an emptyDir, created 0777, and
/// would otherwise become a world-writable `/` in every output); then packs the rootfs as the
/// image tarball `<name>.tar`. The intermediate tar is uncompressed: luet accepts it, and it
/// needs no gzip in the image.
const TARBALL: &str = r#"for f in "$@"; do rm -f "/artifacts/$f" "/artifacts/$f.partial"; done
mkdir -p "$TMPDIR"
chmod 0755 /rootfs
tar -cpf /work/rootfs.tar -C /rootfs .
if [ -n "${ARCH:-}" ]; then
  luet util pack --arch "$ARCH" --os linux "$IMAGE_REF" /work/rootfs.tar /work/image.tar
else
  luet util pack "$IMAGE_REF" /work/rootfs.tar /work/image.tar
fi
rm -f /work/rootfs.tar
publish /work/image.tar "/artifacts/$NAME.tar"
rm -rf "$TMPDIR"
"#;

/// Copies the user's overlayRootfs files onto the rootfs, so the image tarball, the ISO and every
/// disk image contain them.
const ROOTFS_OVERLAY: &str = r#"copy_overlay /overlay-rootfs /rootfs
echo "overlayRootfs copied onto the rootfs"
"#;

/// Stages the ISO overlay in scratch: the user's overlayISO files (if bound) plus grub.cfg at
/// boot/grub2/grub.cfg (if set), the path the Kairos ISO's GRUB loads its configuration from.
const ISO_OVERLAY: &str = r#"if [ -d /overlay-iso-user ]; then
  copy_overlay /overlay-iso-user /overlay-iso
  echo "overlayISO staged"
fi
if [ -f /config/grub.cfg ]; then
  mkdir -p /overlay-iso/boot/grub2
  rm -f /overlay-iso/boot/grub2/grub.cfg
  cp /config/grub.cfg /overlay-iso/boot/grub2/grub.cfg
  echo "grub.cfg installed in the ISO overlay"
fi
"#;

/// Checks that every promised output ("$@") exists and is not empty, lists them in the log, then
/// reports what was built as JSON `{"files":[{"name":..,"size":..,"sha256":..}]}`: in full into the
/// PVC as `$MANIFEST` (written under a temporary name, then renamed), and as the termination
/// message, which the kubelet cuts at 4096 bytes, so that one holds the entries that fit and says
/// `"truncated":true` when some did not. File names are the operator's (from a DNS name): no JSON
/// escaping needed.
const DONE: &str = r#"cd /artifacts
for f in "$@"; do
  [ -s "$f" ] || { echo "missing output /artifacts/$f" >&2; exit 1; }
done
ls -l "$@"
all=""
fit=""
truncated=""
for f in "$@"; do
  size=$(stat -c %s "$f")
  sum=$(sha256sum "$f")
  entry=$(printf '{"name":"%s","size":%s,"sha256":"%s"}' "$f" "$size" "${sum%% *}")
  all="${all:+$all,}$entry"
  if [ -z "$truncated" ]; then
    next="${fit:+$fit,}$entry"
    if [ $((${#next} + 32)) -le 4096 ]; then fit="$next"; else truncated=1; fi
  fi
done
printf '{"files":[%s]}\n' "$all" > "$MANIFEST.partial"
chmod a+r "$MANIFEST.partial"
mv "$MANIFEST.partial" "$MANIFEST"
echo "wrote /artifacts/$MANIFEST"
if [ -n "$truncated" ]; then
  printf '{"files":[%s],"truncated":true}' "$fit" > /dev/termination-log
else
  printf '{"files":[%s]}' "$fit" > /dev/termination-log
fi
"#;

/// The fixed scripts, by step kind, with the shell functions they use in front. Tests run them.
pub mod scripts {
    use super::*;

    pub fn run_and_publish() -> String {
        format!("{PUBLISH_FN}{RUN_AND_PUBLISH}")
    }
    pub fn tarball() -> String {
        format!("{PUBLISH_FN}{TARBALL}")
    }
    pub fn rootfs_overlay() -> String {
        format!("{COPY_OVERLAY_FN}{ROOTFS_OVERLAY}")
    }
    pub fn iso_overlay() -> String {
        format!("{COPY_OVERLAY_FN}{ISO_OVERLAY}")
    }
    pub fn unpack() -> String {
        UNPACK.to_string()
    }
    pub fn buildah() -> String {
        BUILDAH.to_string()
    }
    pub fn release_files() -> String {
        RELEASE_FILES.to_string()
    }
    pub fn done() -> String {
        DONE.to_string()
    }
}

pub struct Builder {
    pub pod: Pod,
    pub steps: Vec<String>,
    pub outputs: Vec<String>,
}

/// Files the build writes into the artifacts PVC, in a stable order. Each format's files take its
/// base name (`spec.nameOverride`, else the artifact's name); the tarball keeps the artifact's.
pub fn outputs(spec: &OSArtifactSpec, name: &str) -> Vec<String> {
    let b = names::base_names(spec, name);
    let mut out = vec![format!("{name}.tar")];
    if spec.iso || spec.netboot {
        out.push(iso_file(&b.iso));
        out.push(format!("{}.iso.sha256", b.iso));
    }
    if spec.netboot {
        out.extend(netboot_files(&b.netboot));
        if netboot_url(spec).is_some() {
            out.push(format!("{}.ipxe", b.netboot));
        }
    }
    if spec.cloud_image {
        out.push(format!("{}.raw", b.cloud_image));
    }
    if spec.azure_image {
        out.push(format!("{}-azure.vhd", b.azure_image));
    }
    if spec.gce_image {
        out.push(format!("{}.gce.raw.tar.gz", b.gce_image));
    }
    out
}

fn iso_file(base: &str) -> String {
    format!("{base}.iso")
}

/// The JSON manifest of the published files that `done` writes into the PVC next to them.
pub fn manifest(name: &str) -> String {
    format!("{name}.manifest.json")
}

/// Every file name a build of this artifact can write, whatever formats the spec selects, under
/// the artifact's name and under this spec's name overrides, and its manifest: the tarball step
/// removes them all, so a format dropped by a new generation leaves no stale file and a failed
/// rebuild no stale manifest. (Files under an override a previous generation used and this one
/// dropped are not known any more, and stay.)
pub fn all_outputs(spec: &OSArtifactSpec, name: &str) -> Vec<String> {
    let every = OSArtifactSpec {
        iso: true,
        netboot: true,
        netboot_url: Some("x".into()),
        cloud_image: true,
        azure_image: true,
        gce_image: true,
        ..Default::default()
    };
    let overridden = OSArtifactSpec {
        name_override: spec.name_override.clone(),
        ..every.clone()
    };
    let mut all = outputs(&every, name);
    for f in outputs(&overridden, name) {
        if !all.contains(&f) {
            all.push(f);
        }
    }
    all.push(manifest(name));
    all
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

fn shell(mut c: Container, script: String, args: Vec<String>) -> Container {
    c.command = Some(vec!["/bin/sh".into(), "-ec".into(), script, c.name.clone()]);
    c.args = (!args.is_empty()).then_some(args);
    c
}

/// Loop devices and mounts for the disk images need a privileged container.
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

fn push_env(c: &mut Container, vars: impl IntoIterator<Item = EnvVar>) {
    c.env.get_or_insert_with(Vec::new).extend(vars);
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
    /// Base names of each format's files.
    base: names::BaseNames,
    settings: &'a Settings,
    registry_auth: bool,
    config_keys: Vec<String>,
}

impl Ctx<'_> {
    fn arch(&self) -> Option<&'static str> {
        self.spec.arch.map(|a| a.as_str())
    }

    /// Steps that pull images read the merged credentials through `$DOCKER_CONFIG` (AuroraBoot)
    /// and `$REGISTRY_AUTH_FILE` (buildah, which reads a Docker config.json as well).
    fn pulls(&self, mut c: Container) -> Container {
        if self.registry_auth {
            let mut vars = vec![env("DOCKER_CONFIG", DOCKER_CONFIG_DIR)];
            if c.name == "buildah" {
                vars.push(env(
                    "REGISTRY_AUTH_FILE",
                    format!("{DOCKER_CONFIG_DIR}/{DOCKER_CONFIG_KEY}"),
                ));
            }
            push_env(&mut c, vars);
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

    /// `auroraboot unpack` of `source` into the rootfs, with its temporary files in the step's
    /// scratch directory.
    fn unpack(&self, name: &str, source: &str) -> Container {
        let mut args = strings(&["unpack", "--loglevel", "debug"]);
        if let Some(a) = self.arch() {
            args.extend(strings(&["--arch", a]));
        }
        // Flags first, then the positional source and target (AuroraBoot's CLI stops at the first positional).
        args.extend([source.to_string(), ROOTFS.to_string()]);
        let mut c = shell(
            step(name, &self.settings.auroraboot_image),
            scripts::unpack(),
            args,
        );
        c.env = Some(vec![env("TMPDIR", TMP)]);
        c.volume_mounts = Some(vec![
            scratch("rootfs", ROOTFS),
            scratch(&format!("work/{name}"), WORK),
        ]);
        c
    }

    /// The Dockerfile build: buildah writes the image as a docker archive to scratch, and
    /// `unpack` extracts it into the rootfs with AuroraBoot (`ocifile:`).
    fn buildah(&self) -> Vec<Container> {
        let mut args = strings(&["bud", "--layers=false"]);
        if let Some(a) = self.arch() {
            args.extend(["--platform".to_string(), format!("linux/{a}")]);
        }
        let image = format!("localhost/{}:latest", self.name);
        args.extend([
            "-f".to_string(),
            format!("{DOCKERFILE_DIR}/{DOCKERFILE_KEY}"),
            "-t".to_string(),
            image.clone(),
            WORKSPACE.to_string(),
        ]);
        let context = match self
            .spec
            .volume_bindings
            .as_ref()
            .and_then(|b| b.build_context.as_deref())
        {
            Some(v) => mount(v, WORKSPACE),
            // buildah needs a context directory even when the Dockerfile copies nothing.
            None => scratch("work/buildah/context", WORKSPACE),
        };
        let mut b = shell(
            step("buildah", &self.settings.buildah_image),
            scripts::buildah(),
            args,
        );
        b.env = Some(vec![
            // No nested namespaces or overlay mounts: RUN instructions run in a chroot and layers
            // are plain directories, which works in an unprivileged container.
            env("BUILDAH_ISOLATION", "chroot"),
            env("STORAGE_DRIVER", "vfs"),
            env("TMPDIR", TMP),
            env("IMAGE", image),
            env("ARCHIVE", IMAGE_ARCHIVE),
        ]);
        b.volume_mounts = Some(vec![
            context,
            mount_ro("dockerfile", DOCKERFILE_DIR),
            scratch("work/buildah", WORK),
            // The image store in scratch: charged to the pod's ephemeral storage, not to the
            // container's writable layer.
            scratch("work/buildah/containers", CONTAINERS_STORAGE),
            scratch("image", IMAGE_DIR),
        ]);
        b.security_context = Some(SecurityContext {
            allow_privilege_escalation: Some(true),
            capabilities: Some(Capabilities {
                add: Some(strings(&["SETUID", "SETGID"])),
                drop: None,
            }),
            ..Default::default()
        });

        let mut extract = self.unpack("unpack", &format!("ocifile:{IMAGE_ARCHIVE}"));
        push_env(&mut extract, [env("CONSUMED", IMAGE_ARCHIVE)]);
        extract
            .volume_mounts
            .get_or_insert_with(Vec::new)
            .push(scratch("image", IMAGE_DIR));
        vec![self.pulls(b), extract]
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
            scripts::release_files(),
            Vec::new(),
        );
        c.volume_mounts = Some(vec![
            mount_ro("config", CONFIG_DIR),
            scratch("rootfs", ROOTFS),
        ]);
        Some(c)
    }

    /// Copies the user's overlayRootfs onto the rootfs before the tarball, so every output has it.
    fn rootfs_overlay(&self) -> Option<Container> {
        let v = self.overlay_rootfs_binding()?;
        let mut c = shell(
            step("rootfs-overlay", &self.settings.auroraboot_image),
            scripts::rootfs_overlay(),
            Vec::new(),
        );
        c.volume_mounts = Some(vec![mount_ro(v, OVERLAY_ROOTFS), scratch("rootfs", ROOTFS)]);
        Some(c)
    }

    fn tarball(&self, outputs: &[String]) -> Container {
        let mut c = shell(
            step("tarball", &self.settings.auroraboot_image),
            scripts::tarball(),
            outputs.to_vec(),
        );
        let image_ref = self
            .spec
            .image_name
            .clone()
            .unwrap_or_else(|| format!("{}:latest", self.name));
        let mut envs = vec![
            env("NAME", self.name),
            env("IMAGE_REF", image_ref),
            env("TMPDIR", TMP),
        ];
        if let Some(a) = self.arch() {
            envs.push(env("ARCH", a));
        }
        c.env = Some(envs);
        c.volume_mounts = Some(vec![
            mount("artifacts", ARTIFACTS),
            // Read-write only for the chmod of the root directory.
            scratch("rootfs", ROOTFS),
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

    /// The ISO overlay is staged whenever there is one: AuroraBoot v0.24.0 cannot read a
    /// ConfigMap or Secret volume as an overlay (it copies kubelet's symlinks as symlinks).
    fn has_iso_overlay(&self) -> bool {
        self.has_grub() || self.overlay_iso_binding().is_some()
    }

    fn iso_overlay(&self) -> Option<Container> {
        if !self.has_iso_overlay() {
            return None;
        }
        let mut c = shell(
            step("iso-overlay", &self.settings.auroraboot_image),
            scripts::iso_overlay(),
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

    /// A step that runs AuroraBoot in its own scratch directory and publishes its outputs; `base`
    /// is the base name of its files (`$NAME`, which names the netboot files in the iPXE script).
    fn auroraboot_step(
        &self,
        name: &str,
        base: &str,
        args: Vec<String>,
        publish: Vec<(String, String)>,
        mut mounts: Vec<VolumeMount>,
    ) -> Container {
        let mut c = shell(
            step(name, &self.settings.auroraboot_image),
            scripts::run_and_publish(),
            args,
        );
        let publish = publish
            .into_iter()
            .map(|(glob, file)| format!("{glob}={file}"))
            .collect::<Vec<_>>()
            .join(" ");
        c.env = Some(vec![
            env("NAME", base),
            env("PUBLISH", publish),
            env("TMPDIR", TMP),
        ]);
        mounts.insert(0, mount("artifacts", ARTIFACTS));
        mounts.push(scratch(&format!("work/{name}"), WORK));
        c.volume_mounts = Some(mounts);
        c
    }

    /// Not privileged: AuroraBoot builds an ISO from a directory with rsync, mksquashfs,
    /// mkfs.vfat on a file, mcopy and xorriso, without loop devices or mounts.
    fn iso(&self) -> Container {
        let n = self.base.iso.as_str();
        // `build-iso` reads its own --loglevel; the global --debug does not reach it.
        let mut args = strings(&["build-iso", "--loglevel", "debug", "--override-name", n]);
        args.extend(strings(&["--date=false", "--output", WORK]));
        if let Some(a) = self.arch() {
            args.extend(strings(&["--arch", a]));
        }
        let mut mounts = vec![scratch("rootfs", ROOTFS)];
        if self.has_iso_overlay() {
            mounts.push(scratch("iso-overlay", OVERLAY_ISO));
            args.extend(strings(&["--overlay-iso", OVERLAY_ISO]));
        }
        args.extend(self.cloud_config_args());
        self.cloud_config_mount(&mut mounts);
        // The positional source comes last, after every flag.
        args.push(format!("dir:{ROOTFS}"));
        let publish = vec![
            (format!("{WORK}/{n}.iso"), format!("{n}.iso")),
            (format!("{WORK}/{n}.iso.sha256"), format!("{n}.iso.sha256")),
        ];
        let c = self.auroraboot_step("iso", n, args, publish, mounts);
        let r = self.spec.resources.as_ref().and_then(|r| r.iso.as_ref());
        with_resources(c, r)
    }

    /// Runs after `iso` (init containers are sequential), extracting from the published ISO.
    /// It only reads files from the ISO, so it is not privileged.
    fn netboot(&self) -> Container {
        let n = self.base.netboot.as_str();
        // `netboot` has its own --debug flag, which shadows the global one: it goes after the subcommand.
        let args = vec![
            "netboot".to_string(),
            "--debug".to_string(),
            format!("{ARTIFACTS}/{}", iso_file(&self.base.iso)),
            WORK.to_string(),
            n.to_string(),
        ];
        let publish = netboot_files(n)
            .into_iter()
            .map(|f| (format!("{WORK}/{f}"), f))
            .collect();
        let mut c = self.auroraboot_step("netboot", n, args, publish, Vec::new());
        if let Some(url) = netboot_url(self.spec) {
            push_env(&mut c, [env("NETBOOT_URL", url)]);
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
        (base, file): (&str, String),
        r: Option<&ResourceRequirements>,
    ) -> Container {
        // The top-level action is the one place where the global --debug takes effect.
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
        if self.spec.cloud_config_ref.is_none() {
            // Otherwise AuroraBoot writes a default cloud-config with user kairos/kairos into
            // the image: a known password on every machine built from it.
            set("no_default_cloud_config=true".into());
        }
        args.extend(self.cloud_config_args());
        let mut mounts = vec![scratch("rootfs", ROOTFS)];
        self.cloud_config_mount(&mut mounts);
        let publish = vec![(format!("{WORK}/{glob}"), file)];
        with_resources(
            privileged(self.auroraboot_step(name, base, args, publish, mounts)),
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

/// The build's deadline in seconds: `spec.buildTimeout` (validated before any plan is made), else
/// the operator's `--build-timeout`.
pub fn deadline_seconds(spec: &OSArtifactSpec, settings: &Settings) -> i64 {
    let secs = spec
        .build_timeout
        .as_deref()
        .and_then(|t| osartifact_shared::duration::parse_seconds(t).ok())
        .unwrap_or(settings.build_timeout);
    i64::try_from(secs).unwrap_or(i64::MAX)
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
        base: names::base_names(spec, &id.name),
    };
    let outputs = outputs(spec, &id.name);
    let mut init: Vec<Container> = spec.importers.clone();
    if spec.base_image_dockerfile.is_some() {
        init.extend(ctx.buildah());
    } else if let Some(image) = &spec.image_name {
        init.push(ctx.pulls(ctx.unpack("unpack", image)));
    }
    for (i, bundle) in spec.bundles.iter().enumerate() {
        init.push(ctx.pulls(ctx.unpack(&format!("bundle-{i}"), bundle)));
    }
    init.extend(ctx.release_files());
    init.extend(ctx.rootfs_overlay());
    init.push(ctx.tarball(&all_outputs(spec, &id.name)));
    if spec.iso || spec.netboot {
        init.extend(ctx.iso_overlay());
        init.push(ctx.iso());
    }
    if spec.netboot {
        init.push(ctx.netboot());
    }
    let res = spec.resources.as_ref();
    let b = &ctx.base;
    if spec.cloud_image {
        let r = res.and_then(|r| r.cloud_image.as_ref());
        let file = (b.cloud_image.as_str(), format!("{}.raw", b.cloud_image));
        init.push(ctx.disk("cloud-image", "disk.raw", "*.raw", file, r));
    }
    if spec.azure_image {
        let r = res.and_then(|r| r.azure_image.as_ref());
        let file = (
            b.azure_image.as_str(),
            format!("{}-azure.vhd", b.azure_image),
        );
        init.push(ctx.disk("azure-image", "disk.vhd", "*.vhd", file, r));
    }
    if spec.gce_image {
        let r = res.and_then(|r| r.gce_image.as_ref());
        let file = (
            b.gce_image.as_str(),
            format!("{}.gce.raw.tar.gz", b.gce_image),
        );
        init.push(ctx.disk("gce-image", "disk.gce", "*.tar.gz", file, r));
    }

    let mut done = shell(
        step("done", &settings.auroraboot_image),
        scripts::done(),
        outputs.clone(),
    );
    // Read-write for the manifest only: `done` is the one step that runs after every publishing
    // step whatever formats are selected, so it alone sees the complete set of files.
    done.env = Some(vec![env("MANIFEST", manifest(&id.name))]);
    done.volume_mounts = Some(vec![mount("artifacts", ARTIFACTS)]);
    // The manifest is the termination message: this policy reads the file whenever it is
    // non-empty, and only a failed `done` with an empty file falls back to the log tail.
    done.termination_message_policy = Some("FallbackToLogsOnError".into());

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
            // Kubernetes stops the pod (phase Failed, reason DeadlineExceeded) when the build runs
            // longer; the phase machine names the step that was running.
            active_deadline_seconds: Some(deadline_seconds(spec, settings)),
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
