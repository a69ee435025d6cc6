//! The parts of `admission.k8s.io/v1` AdmissionReview that the webhook reads and writes.
//!
//! Own types rather than kube-core's: kube-core's response has no `status.details.causes` (needed
//! for kubectl to print one line per violation) and serialises `patch` as a number array instead
//! of base64 (kube-rs/kube#1781).

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::authentication::v1::UserInfo;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const KIND: &str = "AdmissionReview";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewIn<'a> {
    #[serde(default)]
    pub api_version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(borrow)]
    pub request: Option<Request<'a>>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operation {
    Create,
    Update,
    Delete,
    Connect,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "CREATE",
            Operation::Update => "UPDATE",
            Operation::Delete => "DELETE",
            Operation::Connect => "CONNECT",
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Request<'a> {
    pub uid: String,
    #[serde(default)]
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub sub_resource: Option<String>,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    pub operation: Operation,
    #[serde(default)]
    pub user_info: UserInfo,
    /// Kept raw, borrowed from the request body, and decoded straight into typed structs (no
    /// intermediate `Value` tree, no copy).
    #[serde(default, borrow)]
    pub object: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub old_object: Option<&'a RawValue>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOut {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub response: Response,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Response {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Base64 (standard, padded) of an RFC 6902 JSON Patch, as the apiserver expects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub audit_annotations: BTreeMap<String, String>,
}

/// `metav1.Status`, as far as a denial needs it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    pub status: &'static str,
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusDetails {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    pub group: &'static str,
    pub kind: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StatusCause {
    pub reason: &'static str,
    pub message: String,
    pub field: String,
}

impl Response {
    pub fn allow(uid: &str) -> Self {
        Self {
            uid: uid.to_string(),
            allowed: true,
            ..Default::default()
        }
    }

    pub fn deny(uid: &str, status: Status) -> Self {
        Self {
            uid: uid.to_string(),
            allowed: false,
            status: Some(status),
            ..Default::default()
        }
    }

    /// Attaches a JSON Patch; an empty patch is omitted, because `patchType` without `patch`
    /// is rejected by the apiserver.
    pub fn with_patch(mut self, patch: &json_patch::Patch) -> Self {
        if patch.0.is_empty() {
            return self;
        }
        // Serialising a Patch of plain JSON values cannot fail.
        let bytes = serde_json::to_vec(patch).unwrap_or_default();
        self.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
        self.patch_type = Some("JSONPatch");
        self
    }

    pub fn into_review(self) -> ReviewOut {
        ReviewOut {
            api_version: API_VERSION,
            kind: KIND,
            response: self,
        }
    }
}

impl Status {
    pub fn failure(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: "Failure",
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }
}
