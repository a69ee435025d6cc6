//! Operator settings that shape the builder pod: the helper images. Each one is pinned by version by
//! default (reproducible, air-gap friendly with `IfNotPresent`) and can be overridden by flag or env.

use clap::Args;

/// AuroraBoot: unpacks images, writes the release files and the tarball, builds ISO, netboot and disk images.
pub const DEFAULT_AURORABOOT_IMAGE: &str = "quay.io/kairos/auroraboot:v0.24.0";
/// kaniko executor: builds the image from the rendered Dockerfile (no daemon, no privilege).
pub const DEFAULT_KANIKO_IMAGE: &str = "gcr.io/kaniko-project/executor:v1.23.2";
/// luet: unpacks the image tarball kaniko wrote into the rootfs directory.
pub const DEFAULT_EXTRACTOR_IMAGE: &str = "quay.io/luet/base:0.35.2";

/// Helper images of the builder pod.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// AuroraBoot image (unpack, release files, tarball, ISO, netboot, disk images).
    #[arg(long, env = "OSARTIFACT_AURORABOOT_IMAGE", default_value = DEFAULT_AURORABOOT_IMAGE)]
    pub auroraboot_image: String,
    /// kaniko executor image (Dockerfile builds).
    #[arg(long, env = "OSARTIFACT_KANIKO_IMAGE", default_value = DEFAULT_KANIKO_IMAGE)]
    pub kaniko_image: String,
    /// Image used to unpack kaniko's image tarball into the rootfs (its entrypoint must be `luet`).
    #[arg(long, env = "OSARTIFACT_EXTRACTOR_IMAGE", default_value = DEFAULT_EXTRACTOR_IMAGE)]
    pub extractor_image: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auroraboot_image: DEFAULT_AURORABOOT_IMAGE.into(),
            kaniko_image: DEFAULT_KANIKO_IMAGE.into(),
            extractor_image: DEFAULT_EXTRACTOR_IMAGE.into(),
        }
    }
}
