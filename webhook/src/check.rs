//! `osartifact-webhook check -f FILE…`: validates every OSArtifact in multi-document YAML with the
//! rules the webhook applies at admission, resolving Secret references against the Secrets in the
//! same input. One line per problem; exit 0 when everything is admissible (warnings allowed),
//! 1 when anything would be denied, 2 when the input cannot be read or parsed.

use std::io::Write;

use osartifact_shared::crd::unknown_fields;
use osartifact_shared::manifest::{self, API_VERSION, Document, SecretsByNamespace};
use osartifact_shared::validation::{Mode, validate};

/// Flags of `check`.
#[derive(clap::Args, Debug, Clone)]
pub struct CheckArgs {
    /// YAML file with one or more documents; `-` reads stdin. Repeatable.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<String>,
}

/// Runs the check and returns the process exit code.
pub fn run(args: &CheckArgs) -> i32 {
    let docs = match manifest::read_documents(&args.files) {
        Ok(docs) => docs,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let outcome = check_documents(&docs, &mut out);
    let _ = out.flush();
    outcome
}

/// Checks parsed documents, writing one line per problem; returns the exit code (0 or 1).
pub fn check_documents(docs: &[Document], out: &mut impl Write) -> i32 {
    let secrets = SecretsByNamespace::from_documents(docs);
    let mut denied = 0usize;
    let mut checked = 0usize;
    for doc in docs.iter().filter(|d| d.is_osartifact()) {
        checked += 1;
        let who = format!("{}: {}", doc.source, doc.display_name());
        let mut errors = Vec::new();
        if doc.api_version() != API_VERSION {
            errors.push(format!(
                "apiVersion: Unsupported value: {:?}: supported values: {API_VERSION:?}",
                doc.api_version()
            ));
        }
        for path in unknown_fields(&doc.value) {
            errors.push(format!("{path}: unknown field (check the spelling against `kubectl explain osartifact.spec`)"));
        }
        let meta = &doc.value["metadata"];
        if meta
            .get("name")
            .and_then(|n| n.as_str())
            .is_none_or(str::is_empty)
            && meta
                .get("generateName")
                .and_then(|n| n.as_str())
                .is_none_or(str::is_empty)
        {
            errors.push("metadata.name: Required value: name or generateName is required".into());
        }
        match manifest::decode_artifact(doc) {
            Ok(artifact) => {
                let report = validate(&artifact, &secrets.known_for(&artifact), Mode::Admission);
                errors.extend(report.errors.iter().map(ToString::to_string));
                for w in &report.warnings {
                    let _ = writeln!(out, "warning: {who}: {w}");
                }
            }
            Err(e) => errors.push(e),
        }
        for e in &errors {
            let _ = writeln!(out, "{who}: {e}");
        }
        if !errors.is_empty() {
            denied += 1;
        }
    }
    let _ = writeln!(
        out,
        "{checked} OSArtifact(s) checked, {} admissible, {denied} would be denied",
        checked - denied
    );
    i32::from(denied > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(yaml: &str) -> (i32, String) {
        let docs = manifest::parse_documents("in.yaml", yaml).unwrap();
        let mut out = Vec::new();
        let code = check_documents(&docs, &mut out);
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn admissible_with_warning() {
        let (code, out) = check(
            "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {name: a}\nspec:\n  imageName: quay.io/kairos/opensuse:leap-15.6-core-amd64-generic-v3.6.0\n  baseImageDockerfile: null\n",
        );
        assert_eq!(code, 0, "{out}");
        assert!(
            out.contains("warning: in.yaml: OSArtifact default/a: spec: no output selected"),
            "{out}"
        );
    }

    #[test]
    fn denied_lines_name_object_and_field() {
        let (code, out) = check(
            "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {name: a, namespace: ns}\nspec:\n  isoo: true\n  iso: true\n  baseImageDockerfile: {name: missing}\n",
        );
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("in.yaml: OSArtifact ns/a: spec.isoo: unknown field"),
            "{out}"
        );
        assert!(out.contains("warning: in.yaml: OSArtifact ns/a: spec.baseImageDockerfile.name: Secret \"missing\" not found"), "{out}");
    }

    #[test]
    fn type_errors_deny() {
        let (code, out) = check(
            "apiVersion: build.kairos.io/v1alpha2\nkind: OSArtifact\nmetadata: {name: a}\nspec: {imageName: x, iso: maybe}\n",
        );
        assert_eq!(code, 1, "{out}");
        assert!(
            out.contains("OSArtifact default/a: spec.iso: invalid type"),
            "{out}"
        );
    }
}
