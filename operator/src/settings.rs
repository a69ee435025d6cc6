//! Operator settings that shape the builder pod and the exporter Jobs: the helper images and the
//! default deadline. Each image is pinned by version by default (reproducible, air-gap friendly
//! with `IfNotPresent`); every setting can be overridden by flag or env.

use clap::Args;

/// AuroraBoot: unpacks images, writes the release files and the tarball, builds ISO, netboot and disk images.
pub const DEFAULT_AURORABOOT_IMAGE: &str = "quay.io/kairos/auroraboot:v0.24.0";
/// buildah: builds the image from the rendered Dockerfile (chroot isolation, vfs storage, no privilege).
pub const DEFAULT_BUILDAH_IMAGE: &str = "quay.io/buildah/stable:v1.43.1";

/// The deadline of a build, and of each export, when the artifact sets no `spec.buildTimeout`.
pub const DEFAULT_BUILD_TIMEOUT: &str = "3h";
/// [`DEFAULT_BUILD_TIMEOUT`] in seconds.
pub const DEFAULT_BUILD_TIMEOUT_SECONDS: u64 = 3 * 3600;

/// Helper images of the builder pod, and the default deadline.
#[derive(Args, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// AuroraBoot image (unpack, release files, tarball, ISO, netboot, disk images).
    #[arg(long, env = "OSARTIFACT_AURORABOOT_IMAGE", default_value = DEFAULT_AURORABOOT_IMAGE)]
    pub auroraboot_image: String,
    /// buildah image (Dockerfile builds; needs `/bin/sh` and `buildah` on PATH).
    #[arg(long, env = "OSARTIFACT_BUILDAH_IMAGE", default_value = DEFAULT_BUILDAH_IMAGE)]
    pub buildah_image: String,
    /// Longest time a builder pod, and each exporter Job, may run when the artifact sets no
    /// `spec.buildTimeout` (`3h`, `90m`, `1h30m`, `45s`; at most 720h). Held in seconds.
    #[arg(long, env = "OSARTIFACT_BUILD_TIMEOUT", default_value = DEFAULT_BUILD_TIMEOUT, value_parser = osartifact_shared::duration::parse_seconds)]
    pub build_timeout: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            auroraboot_image: DEFAULT_AURORABOOT_IMAGE.into(),
            buildah_image: DEFAULT_BUILDAH_IMAGE.into(),
            build_timeout: DEFAULT_BUILD_TIMEOUT_SECONDS,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: Settings,
    }

    #[test]
    fn build_timeout_flag_is_a_duration_defaulting_to_3h() {
        let default = Cli::try_parse_from(["x"]).map(|c| c.settings);
        assert_eq!(default.ok(), Some(Settings::default()));
        let set = Cli::try_parse_from(["x", "--build-timeout", "1h30m"]).map(|c| c.settings);
        assert_eq!(set.map(|s| s.build_timeout).ok(), Some(5400));
        assert!(Cli::try_parse_from(["x", "--build-timeout", "90"]).is_err());
    }
}
