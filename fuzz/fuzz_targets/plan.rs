//! `osartifact-operator plan`: YAML (or JSON) with OSArtifacts and Secrets in, the planned
//! objects out. Whatever the typed decode admits (the schema's types) must plan or fail with a
//! message; a plan must serialize and name its objects.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osartifact_fuzz::preview;
use osartifact_fuzz::settings::Settings;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok((yaml, problems)) = preview::render(text, "default", &Settings::default()) else {
        return;
    };
    for p in &problems {
        assert!(!p.is_empty());
    }
    if yaml.is_empty() {
        return;
    }
    let objects: Vec<serde_json::Value> =
        serde_saphyr::from_multiple(&yaml).expect("plan prints YAML it can read back");
    for o in objects {
        let name = o
            .pointer("/metadata/name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        assert!(
            !name.is_empty() && name.len() <= 253,
            "object name {name:?}"
        );
    }
});
