//! Writes children under the operator's one field manager without adopting anything: an object
//! with the derived name that this artifact does not control (another owner, or none) is never
//! overwritten. A child the caches do not show is created (POST), which the apiserver refuses
//! atomically when any object has that name, so the ownership check costs a read only when
//! something is in the way; a child the caches show as ours is updated with forced server-side
//! apply.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use kube::{Resource, ResourceExt};
use osartifact_shared::names::FIELD_MANAGER;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::errors::Error;

/// True when `obj` belongs to the artifact `uid` (see `plan::is_ours`: its controller, or, for a
/// retained PVC, its UID label).
pub fn controlled_by<K: Resource>(obj: &K, uid: &str) -> bool {
    crate::plan::is_ours(obj.meta(), uid)
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

/// `Err(InTheWay)` when `obj` is not controlled by the artifact `uid`.
pub fn check_owned<K: Resource<DynamicType = ()>>(obj: &K, uid: &str) -> Result<(), Error> {
    if controlled_by(obj, uid) {
        return Ok(());
    }
    Err(Error::InTheWay {
        kind: kind::<K>(),
        name: obj.meta().name.clone().unwrap_or_default(),
        owner: owner_description(obj),
    })
}

/// Reads a child live; `Err(InTheWay)` when it exists but is not ours.
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

/// A namespaced child kind the operator writes.
pub trait Child:
    Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + DeserializeOwned
    + Serialize
    + Debug
{
}

impl<K> Child for K where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + Serialize
        + Debug
{
}

/// Creates `desired`, which the caches do not show. When the name is taken, a live read says
/// by whom: this artifact (an object the watches have not delivered yet), which is then applied
/// over, or anyone else (`InTheWay`). Returns the stored object.
pub async fn create<K: Child>(api: &Api<K>, desired: &K, uid: &str) -> Result<K, Error> {
    let name = desired.name_any();
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    match api.create(&pp, desired).await {
        Ok(created) => Ok(created),
        Err(kube::Error::Api(s)) if s.code == 409 && s.reason == "AlreadyExists" => {
            get_owned(api, &name, uid).await?;
            apply(api, desired).await
        }
        Err(e) => Err(refused_or_transient(kind::<K>(), &name, e)),
    }
}

/// Forced server-side apply of `desired` over a child known to be this artifact's. Returns the
/// stored object.
pub async fn apply<K: Child>(api: &Api<K>, desired: &K) -> Result<K, Error> {
    let name = desired.name_any();
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
pub async fn delete<K>(api: &Api<K>, meta: &ObjectMeta) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let name = meta.name.clone().unwrap_or_default();
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: meta.uid.clone(),
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
