//! Operator settings that shape the builder pod: the helper images. Each one is pinned by version by
//! default (reproducible, air-gap friendly with `IfNotPresent`) and can be overridden by flag or env.

use clap::Args;

/// AuroraBoot: unpacks images, writes the release files and the tarball, builds ISO, netboot and disk images.
pub const DEFAULT_AURORABOOT_IMAGE: &str = "quay.io/kairos/auroraboot:v0.24.0";
/// buildah: builds the image from the rendered Dockerfile (chroot isolation, vfs storage, no privilege).
pub const DEFAULT_BUILDAH_IMAGE: &str = "quay.io/buildah/stable:v1.43.1";

/// Helper images of the builder pod.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// AuroraBoot image (unpack, release files, tarball, ISO, netboot, disk images).
    #[arg(long, env = "OSARTIFACT_AURORABOOT_IMAGE", default_value = DEFAULT_AURORABOOT_IMAGE)]
    pub auroraboot_image: String,
    /// buildah image (Dockerfile builds; needs `/bin/sh` and `buildah` on PATH).
    #[arg(long, env = "OSARTIFACT_BUILDAH_IMAGE", default_value = DEFAULT_BUILDAH_IMAGE)]
    pub buildah_image: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auroraboot_image: DEFAULT_AURORABOOT_IMAGE.into(),
            buildah_image: DEFAULT_BUILDAH_IMAGE.into(),
        }
    }
}
