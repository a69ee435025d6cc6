//! Differential: the engine against Go's text/template (the oracle in
//! shared/gotemplate/tests/oracle, run once as a child process and fed one case per line).
//! Outputs must match byte for byte, errors in class, forbidden as forbidden; what runs into a
//! budget is skipped (Go has none). `OSARTIFACT_GO_ORACLE` names the built oracle binary.
#![no_main]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use libfuzzer_sys::fuzz_target;
use osartifact_fuzz::{small_limits, template_values};
use osartifact_gotemplate::{RenderError, render};
use serde_json::{Value, json};

struct Oracle {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

fn oracle() -> &'static Mutex<Oracle> {
    static ORACLE: OnceLock<Mutex<Oracle>> = OnceLock::new();
    ORACLE.get_or_init(|| {
        let path = std::env::var("OSARTIFACT_GO_ORACLE")
            .expect("OSARTIFACT_GO_ORACLE names the Go oracle binary (fuzz/run.sh builds it)");
        let mut child = Command::new(path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("the Go oracle starts");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        Mutex::new(Oracle {
            _child: child,
            stdin,
            stdout,
        })
    })
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Output(Vec<u8>),
    Error(&'static str),
    Forbidden,
}

fn go(src: &str) -> (Outcome, bool) {
    let mut o = oracle().lock().expect("one fuzzing thread");
    let case = json!({"name": "fuzz", "template": src, "values": template_values()});
    writeln!(o.stdin, "{case}").expect("writing to the oracle");
    o.stdin.flush().expect("flushing to the oracle");
    let mut line = String::new();
    o.stdout.read_line(&mut line).expect("reading the oracle");
    let v: Value = serde_json::from_str(&line).expect("the oracle answers JSON");
    let lenient = v.get("forbidden_token").and_then(Value::as_bool) == Some(true);
    if v.get("forbidden").and_then(Value::as_bool) == Some(true) {
        return (Outcome::Forbidden, lenient);
    }
    match v.get("error").and_then(Value::as_str) {
        Some("parse") => return (Outcome::Error("parse"), lenient),
        Some("exec") => return (Outcome::Error("exec"), lenient),
        Some(other) => panic!("oracle could not read the case: {other}: {v}"),
        None => {}
    }
    if let Some(b64) = v.get("output_base64").and_then(Value::as_str) {
        let bytes = STANDARD.decode(b64).expect("the oracle writes base64");
        return (Outcome::Output(bytes), lenient);
    }
    let out = v.get("output").and_then(Value::as_str).expect("an output");
    (Outcome::Output(out.as_bytes().to_vec()), lenient)
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let ours = match render("Dockerfile", src, &template_values(), &small_limits()) {
        Ok(out) => Outcome::Output(out),
        Err(RenderError::Forbidden { .. }) => Outcome::Forbidden,
        // Go has no budgets, and may run for ever where we stop.
        Err(RenderError::Template(osartifact_gotemplate::TemplateError::Limit { .. })) => return,
        Err(RenderError::Template(e)) => Outcome::Error(e.class()),
    };
    let (theirs, lenient) = go(src);
    if ours != theirs && !(lenient && ours == Outcome::Forbidden) {
        panic!("differs from Go for {src:?}\n  go:   {theirs:?}\n  ours: {ours:?}");
    }
});
