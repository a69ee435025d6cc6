//! `osartifact-operator plan -f FILE`: prints, as multi-document YAML, exactly the objects the
//! operator would create for each OSArtifact in the input, resolving Secrets from the same input.
//! It calls the same `plan::plan` as the controller; there is no second implementation.

use std::collections::BTreeMap;
use std::io::Read;

use k8s_openapi::api::core::v1::Secret;
use osartifact_shared::OSArtifact;
use osartifact_shared::secrets::{KnownSecrets, SecretLookup};
use serde_json::Value;

use crate::plan::{self, Identity};
use crate::settings::Settings;

/// UID shown for artifacts read from a file (the apiserver assigns the real one).
pub const PREVIEW_UID: &str = "00000000-0000-0000-0000-000000000000";

#[derive(clap::Args, Debug, Clone)]
pub struct PlanArgs {
    /// YAML file with OSArtifacts (and the Secrets they reference); `-` reads stdin.
    #[arg(short = 'f', long = "filename")]
    pub file: String,
    /// Namespace for objects that do not set one.
    #[arg(short = 'n', long, default_value = "default")]
    pub namespace: String,
    #[command(flatten)]
    pub settings: Settings,
}

/// Runs `plan`; returns the exit code (1 when an artifact cannot be built, 2 on unreadable input).
pub fn run(args: &PlanArgs) -> i32 {
    let text = if args.file == "-" {
        let mut s = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut s) {
            eprintln!("error: reading stdin: {e}");
            return 2;
        }
        s
    } else {
        match std::fs::read_to_string(&args.file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: reading {}: {e}", args.file);
                return 2;
            }
        }
    };
    match render(&text, &args.namespace, &args.settings) {
        Ok((yaml, problems)) => {
            print!("{yaml}");
            for p in &problems {
                eprintln!("error: {p}");
            }
            i32::from(!problems.is_empty())
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

/// The YAML of every planned object, and one line per artifact that cannot be built.
pub fn render(
    text: &str,
    default_ns: &str,
    settings: &Settings,
) -> Result<(String, Vec<String>), String> {
    let docs: Vec<Value> =
        serde_saphyr::from_str_multiple(text).map_err(|e| format!("parsing the input: {e}"))?;
    let docs: Vec<Value> = docs.into_iter().filter(|d| !d.is_null()).collect();
    let ns_of = |v: &Value| {
        v.pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or(default_ns)
            .to_string()
    };
    let mut secrets: BTreeMap<String, Vec<Secret>> = BTreeMap::new();
    for d in &docs {
        if d.get("kind").and_then(Value::as_str) == Some("Secret") {
            let s: Secret =
                serde_json::from_value(d.clone()).map_err(|e| format!("a Secret: {e}"))?;
            secrets.entry(ns_of(d)).or_default().push(s);
        }
    }
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for d in &docs {
        if d.get("kind").and_then(Value::as_str) != Some("OSArtifact") {
            continue;
        }
        let mut artifact: OSArtifact =
            serde_json::from_value(d.clone()).map_err(|e| format!("an OSArtifact: {e}"))?;
        let ns = ns_of(d);
        artifact.metadata.namespace = Some(ns.clone());
        artifact
            .metadata
            .uid
            .get_or_insert_with(|| PREVIEW_UID.into());
        artifact.metadata.generation.get_or_insert(1);
        let Some(id) = Identity::of(&artifact) else {
            problems.push("an OSArtifact without metadata.name".to_string());
            continue;
        };
        let mut known = KnownSecrets::new();
        for name in plan::secret_names(&artifact.spec) {
            let found = secrets
                .get(&ns)
                .and_then(|l| l.iter().find(|s| s.metadata.name.as_deref() == Some(&name)));
            match found {
                Some(s) => known.insert_secret(s),
                None => known.insert(name, SecretLookup::NotFound),
            }
        }
        match plan::plan(&artifact, &id, &known, settings) {
            Ok(p) => out.extend(objects(&p).map_err(|e| e.to_string())?),
            Err(e) => problems.push(format!("{ns}/{}: {} ({})", id.name, e, e.category())),
        }
    }
    let mut yaml = String::new();
    for v in out {
        yaml.push_str("---\n");
        yaml.push_str(&serde_saphyr::to_string(&v).map_err(|e| e.to_string())?);
    }
    Ok((yaml, problems))
}

/// The plan's objects in apply order (exporter Jobs last: they are created after the build).
pub fn objects(p: &plan::Plan) -> Result<Vec<Value>, serde_json::Error> {
    let mut v = vec![
        serde_json::to_value(&p.config_map)?,
        serde_json::to_value(&p.pvc)?,
    ];
    for s in &p.secrets {
        v.push(serde_json::to_value(s)?);
    }
    v.push(serde_json::to_value(&p.pod)?);
    for j in &p.exporters {
        v.push(serde_json::to_value(j)?);
    }
    Ok(v)
}
