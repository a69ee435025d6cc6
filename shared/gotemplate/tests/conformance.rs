//! Conformance of the template engine with Go's `text/template`.
//!
//! Runs the public sample (`shared/conformance/gotemplate/cases-with-expect.jsonl` next to the
//! workspace, skipped when absent) and our own corpus (`tests/corpus/cases.jsonl` with Go's
//! answers in `tests/corpus/expected.jsonl`, produced by `tests/oracle`).
//! Outputs must match byte for byte; errors must match in class (parse / exec); forbidden must
//! match, except that a Go parse error flagged `forbidden_token` may be reported as forbidden.

use std::collections::BTreeMap;

use base64::Engine;
use osartifact_gotemplate::{Limits, RenderError, render};
use serde_json::Value;

const PUBLIC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/conformance/gotemplate/cases-with-expect.jsonl"
);
const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/cases.jsonl");
const EXPECTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/expected.jsonl");

#[derive(Debug, PartialEq)]
enum Outcome {
    Output(Vec<u8>),
    Error(String),
    Forbidden,
}

fn expected_outcome(e: &Value) -> Option<Outcome> {
    if e.get("forbidden").and_then(Value::as_bool) == Some(true) {
        return Some(Outcome::Forbidden);
    }
    if let Some(class) = e.get("error").and_then(Value::as_str) {
        return Some(Outcome::Error(class.to_string()));
    }
    if let Some(b64) = e.get("output_base64").and_then(Value::as_str) {
        return base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .map(Outcome::Output);
    }
    e.get("output")
        .and_then(Value::as_str)
        .map(|s| Outcome::Output(s.as_bytes().to_vec()))
}

fn actual_outcome(case: &Value) -> Outcome {
    let src = case
        .get("template")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let values: BTreeMap<String, String> = case
        .get("values")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    match render("Dockerfile", src, &values, &Limits::default()) {
        Ok(out) => Outcome::Output(out),
        Err(RenderError::Forbidden { .. }) => Outcome::Forbidden,
        Err(RenderError::Template(e)) => Outcome::Error(e.class().to_string()),
    }
}

/// Checks (case, expected) pairs; returns the mismatch descriptions.
fn check(pairs: &[(Value, Value)]) -> Vec<String> {
    let mut failures = Vec::new();
    for (case, exp) in pairs {
        let name = case.get("name").and_then(Value::as_str).unwrap_or("?");
        let Some(want) = expected_outcome(exp) else {
            failures.push(format!("{name}: no expected outcome"));
            continue;
        };
        let got = actual_outcome(case);
        let lenient = exp.get("forbidden_token").and_then(Value::as_bool) == Some(true)
            && got == Outcome::Forbidden;
        if got != want && !lenient {
            let show = |o: &Outcome| match o {
                Outcome::Output(b) => format!("output {:?}", String::from_utf8_lossy(b)),
                other => format!("{other:?}"),
            };
            failures.push(format!(
                "{name}\n  want {}\n  got  {}",
                show(&want),
                show(&got)
            ));
        }
    }
    failures
}

fn read_jsonl(path: &str) -> Option<Vec<Value>> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(
        text.split('\n')
            .filter(|l| !l.trim().is_empty())
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
    )
}

fn report(label: &str, total: usize, failures: &[String]) {
    for f in failures {
        println!("FAIL {f}");
    }
    println!(
        "{label}: {} passed, {} failed",
        total - failures.len(),
        failures.len()
    );
}

#[test]
fn public_sample_matches_go() {
    let Some(cases) = read_jsonl(PUBLIC) else {
        println!("note: {PUBLIC} not found; skipping the public conformance sample");
        return;
    };
    let pairs: Vec<(Value, Value)> = cases
        .into_iter()
        .map(|c| (c.clone(), c.get("expect").cloned().unwrap_or(Value::Null)))
        .collect();
    let failures = check(&pairs);
    report("public sample", pairs.len(), &failures);
    assert!(!pairs.is_empty());
    assert!(failures.is_empty(), "{} mismatches with Go", failures.len());
}

#[test]
fn own_corpus_matches_go() {
    let (Some(cases), Some(expected)) = (read_jsonl(CASES), read_jsonl(EXPECTED)) else {
        panic!("corpus files missing: {CASES}, {EXPECTED}");
    };
    let by_name: BTreeMap<String, Value> = expected
        .into_iter()
        .filter_map(|e| Some((e.get("name")?.as_str()?.to_string(), e.clone())))
        .collect();
    let pairs: Vec<(Value, Value)> = cases
        .into_iter()
        .map(|c| {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            (c, by_name.get(&name).cloned().unwrap_or(Value::Null))
        })
        .collect();
    let failures = check(&pairs);
    report("own corpus", pairs.len(), &failures);
    assert!(pairs.len() >= 500, "corpus too small: {}", pairs.len());
    assert!(failures.is_empty(), "{} mismatches with Go", failures.len());
}
