//! Shared by the operator and the webhook: the OSArtifact API, its validation and defaulting,
//! the names of derived objects, and the rendering of Dockerfile templates (with the
//! `osartifact-gotemplate` engine).

pub mod crd;
pub mod defaults;
pub mod dockerfile;
pub mod duration;
pub mod manifest;
pub mod names;
pub mod secrets;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
pub mod validation;

pub use types::{ArtifactOutput, OSArtifact, OSArtifactSpec, OSArtifactStatus, Phase};
