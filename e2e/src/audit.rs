//! The operator's requests as the apiserver saw them, from the control plane's audit log
//! (`ControlPlane::audit_log`: the operator's identity only, one event per request).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// One request of the operator.
#[derive(Clone, Debug)]
pub struct Request {
    /// get, list, watch, create, patch, update, delete …
    pub verb: String,
    /// `resource` or `resource/subresource` (`osartifacts/status`).
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub received: Timestamp,
    pub code: Option<u16>,
}

impl Request {
    /// `verb resource`, the key requests are counted by.
    pub fn key(&self) -> String {
        format!("{} {}", self.verb, self.resource)
    }
}

/// Every request in the log at `path` (an absent log is empty).
pub fn read(path: &Path) -> Result<Vec<Request>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).context("an audit event")?;
            let r = &v["objectRef"];
            let s = |x: &Value| x.as_str().map(str::to_string);
            let mut resource = s(&r["resource"]).unwrap_or_default();
            if let Some(sub) = s(&r["subresource"]) {
                resource = format!("{resource}/{sub}");
            }
            Ok(Request {
                verb: s(&v["verb"]).unwrap_or_default(),
                resource,
                namespace: s(&r["namespace"]),
                name: s(&r["name"]),
                received: s(&v["requestReceivedTimestamp"])
                    .unwrap_or_default()
                    .parse()
                    .context("requestReceivedTimestamp")?,
                code: v["responseStatus"]["code"]
                    .as_u64()
                    .and_then(|c| u16::try_from(c).ok()),
            })
        })
        .collect()
}

/// Requests counted by `verb resource`.
pub fn count<'a>(requests: impl IntoIterator<Item = &'a Request>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in requests {
        *counts.entry(r.key()).or_insert(0) += 1;
    }
    counts
}
