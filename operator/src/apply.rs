//! Writes children with forced server-side apply under the operator's one field manager, after
//! checking ownership: an object with the derived name that this artifact does not control (another
//! owner, or none) is never adopted or overwritten.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::{Resource, ResourceExt};
use osartifact_shared::names::FIELD_MANAGER;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::Error;

/// True when `obj` has a controller owner reference to `uid`.
pub fn controlled_by<K: Resource>(obj: &K, uid: &str) -> bool {
    obj.meta()
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

fn owner_description<K: Resource>(obj: &K) -> String {
    match obj
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
    {
        Some(o) => format!("controlled by {} {} uid {}", o.kind, o.name, o.uid),
        None => "it has no controller".into(),
    }
}

/// Reads a child; `Err(InTheWay)` when it exists but is not ours.
pub async fn get_owned<K>(api: &Api<K>, name: &str, uid: &str) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let existing = api
        .get_opt(name)
        .await
        .map_err(|e| Error::kube(format!("reading {} {name}", kind::<K>()), e))?;
    match existing {
        Some(obj) if !controlled_by(&obj, uid) => Err(Error::InTheWay {
            kind: kind::<K>(),
            name: name.into(),
            owner: owner_description(&obj),
        }),
        other => Ok(other),
    }
}

fn kind<K: Resource<DynamicType = ()>>() -> &'static str {
    // Static kind names for messages; `K::kind` is a Cow tied to the dynamic type.
    match K::kind(&()).as_ref() {
        "Pod" => "Pod",
        "Job" => "Job",
        "ConfigMap" => "ConfigMap",
        "Secret" => "Secret",
        "PersistentVolumeClaim" => "PersistentVolumeClaim",
        _ => "object",
    }
}

/// Forced server-side apply of `desired` after the ownership check. Returns the stored object.
pub async fn apply<K>(api: &Api<K>, desired: &K, uid: &str) -> Result<K, Error>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug,
{
    let name = desired.name_any();
    get_owned(api, &name, uid).await?;
    let pp = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&name, &pp, &Patch::Apply(desired))
        .await
        .map_err(|e| refused_or_transient(kind::<K>(), &name, e))
}

/// 4xx answers other than conflicts and throttling will not change by retrying: the user must act.
pub fn refused_or_transient(kind: &'static str, name: &str, e: kube::Error) -> Error {
    match &e {
        kube::Error::Api(s) if matches!(s.code, 400 | 403 | 422) => Error::Refused {
            kind,
            name: name.into(),
            message: s.message.clone(),
        },
        _ => Error::kube(format!("applying {kind} {name}"), e),
    }
}

/// Deletes a child, only if it is still the object we saw (UID precondition), with its dependents.
pub async fn delete<K>(api: &Api<K>, obj: &K) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let name = obj.name_any();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: obj.meta().uid.clone(),
            resource_version: None,
        }),
        propagation_policy: Some(PropagationPolicy::Background),
        ..Default::default()
    };
    match api.delete(&name, &dp).await {
        Ok(_) => Ok(()),
        // Already gone, or replaced by another object (precondition failed): nothing of ours to delete.
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => Ok(()),
        Err(e) => Err(Error::kube(format!("deleting {} {name}", kind::<K>()), e)),
    }
}
