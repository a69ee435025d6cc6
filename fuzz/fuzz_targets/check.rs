//! `osartifact-webhook check -f`: YAML text in, one line per problem and a summary out.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osartifact_shared::manifest;
use osartifact_webhook::check::check_documents;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // A parse error is exit code 2 in the command: a message, never a panic.
    let Ok(docs) = manifest::parse_documents("in.yaml", text) else {
        return;
    };
    let mut out = Vec::new();
    let code = check_documents(&docs, &mut out);
    assert!(code == 0 || code == 1, "exit code {code}");
    let out = String::from_utf8(out).expect("check writes UTF-8");
    let last = out.lines().last().unwrap_or_default();
    assert!(last.contains("OSArtifact(s) checked"), "no summary: {out}");
});
