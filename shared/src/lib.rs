//! Shared by the operator and the webhook: the OSArtifact API, its validation and defaulting,
//! the names of derived objects, and a Go `text/template` engine for Dockerfiles.

pub mod crd;
pub mod defaults;
pub mod dockerfile;
pub mod manifest;
pub mod names;
pub mod secrets;
pub mod template;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod types;
pub mod validation;

pub use types::{OSArtifact, OSArtifactSpec, OSArtifactStatus, Phase};
