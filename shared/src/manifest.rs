//! Reading OSArtifacts and Secrets from multi-document YAML, for the commands that work on files
//! (`osartifact-webhook check`, `osartifact-operator plan`) instead of a cluster.

use std::collections::BTreeMap;
use std::io::Read;

use k8s_openapi::api::core::v1::Secret;
use serde_json::Value;

use crate::secrets::{KnownSecrets, SecretLookup, referenced_secrets};
use crate::types::OSArtifact;

pub const API_VERSION: &str = "build.kairos.io/v1alpha2";
/// The namespace of an object that names none, as `kubectl apply` would use by default.
pub const DEFAULT_NAMESPACE: &str = "default";

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("{source_name}: cannot read: {error}")]
    Read {
        source_name: String,
        error: std::io::Error,
    },
    #[error("{source_name}: not valid YAML: {error}")]
    Yaml { source_name: String, error: String },
}

/// One YAML document and where it came from.
#[derive(Clone, Debug)]
pub struct Document {
    pub source: String,
    /// Position of the document in its file, from 1.
    pub index: usize,
    pub value: Value,
}

impl Document {
    pub fn kind(&self) -> &str {
        self.value.get("kind").and_then(Value::as_str).unwrap_or("")
    }

    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    pub fn namespace(&self) -> &str {
        self.value
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE)
    }

    /// How messages name the object: `OSArtifact default/hello`.
    pub fn display_name(&self) -> String {
        let meta = |k: &str| {
            self.value
                .pointer(&format!("/metadata/{k}"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let name = meta("name")
            .map(str::to_string)
            .or_else(|| meta("generateName").map(|g| format!("{g}*")));
        match name {
            Some(n) => format!("{} {}/{}", self.kind(), self.namespace(), n),
            None => format!("{} #{} in {}", self.kind(), self.index, self.source),
        }
    }

    pub fn is_osartifact(&self) -> bool {
        self.kind() == "OSArtifact" && self.api_version().starts_with("build.kairos.io/")
    }
}

/// Reads every document of every file (`-` is stdin), in order. Empty documents are skipped.
pub fn read_documents(paths: &[String]) -> Result<Vec<Document>, ManifestError> {
    let mut docs = Vec::new();
    for path in paths {
        let mut text = String::new();
        let source_name = if path == "-" {
            "<stdin>".to_string()
        } else {
            path.clone()
        };
        let read = if path == "-" {
            std::io::stdin().read_to_string(&mut text).map(|_| ())
        } else {
            std::fs::read_to_string(path).map(|t| text = t)
        };
        read.map_err(|error| ManifestError::Read {
            source_name: source_name.clone(),
            error,
        })?;
        docs.extend(parse_documents(&source_name, &text)?);
    }
    Ok(docs)
}

/// Splits YAML text into its documents.
pub fn parse_documents(source_name: &str, text: &str) -> Result<Vec<Document>, ManifestError> {
    let values: Vec<Value> =
        serde_saphyr::from_multiple(text).map_err(|e| ManifestError::Yaml {
            source_name: source_name.to_string(),
            error: e.to_string(),
        })?;
    Ok(values
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_null())
        .map(|(i, value)| Document {
            source: source_name.to_string(),
            index: i + 1,
            value,
        })
        .collect())
}

/// The invalid twin of an example OSArtifact (as JSON), used by the webhook benchmark and the
/// end-to-end suite: both image sources (the image reference itself invalid), and two volumes
/// named `artifacts`, a reserved name, so also a duplicate. Some of these faults the CRD's CEL
/// rules catch, some only the webhook.
pub fn invalid_twin(artifact: &Value) -> Value {
    let mut bad = artifact.clone();
    bad["spec"]["imageName"] =
        serde_json::json!("quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0@flavor");
    bad["spec"]["baseImageDockerfile"] = serde_json::json!({"name": "dockerfile"});
    bad["spec"]["volumes"] = serde_json::json!([
        {"name": "artifacts", "emptyDir": {}},
        {"name": "artifacts", "emptyDir": {}}
    ]);
    bad
}

/// Decodes an OSArtifact, naming the field of a type error (`spec.iso: invalid type: …`).
pub fn decode_artifact(doc: &Document) -> Result<OSArtifact, String> {
    let v = doc.value.clone();
    serde_path_to_error::deserialize::<_, OSArtifact>(v).map_err(|e| {
        let path = e.path().to_string();
        if path == "." || path.is_empty() {
            e.inner().to_string()
        } else {
            format!("{path}: {}", e.inner())
        }
    })
}

/// The Secrets of every namespace in the input.
#[derive(Debug, Default)]
pub struct SecretsByNamespace(BTreeMap<String, Vec<Secret>>);

impl SecretsByNamespace {
    pub fn from_documents(docs: &[Document]) -> Self {
        let mut out = Self::default();
        for doc in docs
            .iter()
            .filter(|d| d.kind() == "Secret" && d.api_version() == "v1")
        {
            if let Ok(secret) = serde_json::from_value::<Secret>(doc.value.clone()) {
                out.0
                    .entry(doc.namespace().to_string())
                    .or_default()
                    .push(secret);
            }
        }
        out
    }

    /// What an artifact in `namespace` would find: Secrets of the input are found, any other
    /// referenced Secret is not found.
    pub fn known_for(&self, artifact: &OSArtifact) -> KnownSecrets {
        let ns = artifact
            .metadata
            .namespace
            .as_deref()
            .filter(|s| !s.is_empty())
            .unwrap_or(DEFAULT_NAMESPACE);
        let mut known = KnownSecrets::new();
        for name in referenced_secrets(&artifact.spec) {
            known.insert(name, SecretLookup::NotFound);
        }
        for secret in self.0.get(ns).into_iter().flatten() {
            known.insert_secret(secret);
        }
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUT: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: df}
stringData: {Dockerfile: "FROM alpine"}
---
apiVersion: build.kairos.io/v1alpha2
kind: OSArtifact
metadata: {name: a}
spec:
  baseImageDockerfile: {name: df}
  cloudConfigRef: {name: cc}
---
"#;

    #[test]
    fn resolves_secrets_from_the_same_input() {
        let docs = parse_documents("in.yaml", INPUT).unwrap();
        assert_eq!(docs.len(), 2);
        let artifact = decode_artifact(&docs[1]).unwrap();
        let known = SecretsByNamespace::from_documents(&docs).known_for(&artifact);
        assert_eq!(known.value("df", "Dockerfile"), Some(&b"FROM alpine"[..]));
        assert_eq!(known.get("cc"), Some(&SecretLookup::NotFound));
        assert_eq!(docs[1].display_name(), "OSArtifact default/a");
    }

    #[test]
    fn type_errors_name_the_field() {
        let docs = parse_documents("in.yaml", "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {name: a}\nspec: {iso: [1]}\n").unwrap();
        let err = decode_artifact(&docs[0]).unwrap_err();
        assert!(err.starts_with("spec.iso: invalid type"), "{err}");
    }

    #[test]
    fn broken_yaml_is_an_error() {
        assert!(parse_documents("x", "a: [").is_err());
    }
}
