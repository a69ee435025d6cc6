//! Reconcile errors. Each has a PascalCase `category()`: the Event reason and the metric label.
//! User-fixable problems become `phase: Error` and are not retried; transient API errors are
//! returned to the controller, which backs off per object.

use crate::plan::PlanError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The spec, a referenced Secret or the Dockerfile template is wrong.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// An object with a derived name exists but is not controlled by this artifact.
    #[error(
        "{kind} {name:?} already exists and is not owned by this OSArtifact ({owner}); the operator never adopts or overwrites it: delete or rename it, then set the build.kairos.io/retry annotation to a new value"
    )]
    InTheWay {
        kind: &'static str,
        name: String,
        owner: String,
    },
    /// The API refused an object for a reason only the user can fix (Pod Security, quota, invalid field).
    #[error(
        "the API refused {kind} {name:?}: {message}; fix the cause (for example the namespace's Pod Security level or quota), then set the build.kairos.io/retry annotation to a new value"
    )]
    Refused {
        kind: &'static str,
        name: String,
        message: String,
    },
    /// A request failed in a way that may succeed later.
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error("the OSArtifact has no {0} (not stored by the apiserver?)")]
    MissingMetadata(&'static str),
    /// The watches stopped before every cache was filled (shutdown or lost lease).
    #[error("the operator's caches are not filled yet")]
    NotSynced,
}

impl Error {
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube {
            action: action.into(),
            source,
        }
    }

    pub fn category(&self) -> &'static str {
        match self {
            Error::Plan(e) => e.category(),
            Error::InTheWay { .. } => "ObjectInTheWay",
            Error::Refused { .. } => "Refused",
            Error::Kube { .. } => "KubeApi",
            Error::MissingMetadata(_) => "InvalidObject",
            Error::NotSynced => "NotSynced",
        }
    }

    /// True when the user must act; false when a retry may help.
    pub fn is_user_fixable(&self) -> bool {
        !matches!(self, Error::Kube { .. } | Error::NotSynced)
    }
}
