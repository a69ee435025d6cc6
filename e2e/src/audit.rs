//! The operator's requests as the apiserver saw them, from the control plane's audit log
//! (`ControlPlane::audit_log`: the operator's identity and the users in [`AUDITED_GROUP`] only,
//! one event per request).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use k8s_openapi::jiff::Timestamp;
use serde_json::Value;

/// Users in this group are audited like the operator (tests that run the operator as users of
/// their own).
pub const AUDITED_GROUP: &str = "osartifact-e2e:audited";

/// One request of the operator.
#[derive(Clone, Debug)]
pub struct Request {
    /// The user who sent it.
    pub user: String,
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
        .map(parse)
        .collect()
}

fn parse(line: &str) -> Result<Request> {
    let v: Value = serde_json::from_str(line).context("an audit event")?;
    let r = &v["objectRef"];
    let s = |x: &Value| x.as_str().map(str::to_string);
    let mut resource = s(&r["resource"]).unwrap_or_default();
    if let Some(sub) = s(&r["subresource"]) {
        resource = format!("{resource}/{sub}");
    }
    Ok(Request {
        user: s(&v["user"]["username"]).unwrap_or_default(),
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
}

/// Reads a growing audit log from where the last call stopped, so pollers parse each event once
/// rather than the whole log on every poll.
#[derive(Debug)]
pub struct Tail {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
}

impl Tail {
    /// From the log's current end: only requests logged from now on.
    pub fn from_end(path: &Path) -> Self {
        let offset = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        Self {
            path: path.to_path_buf(),
            offset,
            partial: Vec::new(),
        }
    }

    /// The requests logged since the last call (a line still being written waits for the next).
    pub fn next_requests(&mut self) -> Result<Vec<Request>> {
        let mut f = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e).with_context(|| format!("opening {}", self.path.display())),
        };
        f.seek(SeekFrom::Start(self.offset))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        self.offset += buf.len() as u64;
        self.partial.extend_from_slice(&buf);
        let Some(end) = self.partial.iter().rposition(|b| *b == b'\n') else {
            return Ok(Vec::new());
        };
        let complete: Vec<u8> = self.partial.drain(..=end).collect();
        String::from_utf8_lossy(&complete)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(parse)
            .collect()
    }
}

/// Requests counted by `verb resource`.
pub fn count<'a>(requests: impl IntoIterator<Item = &'a Request>) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for r in requests {
        *counts.entry(r.key()).or_insert(0) += 1;
    }
    counts
}
