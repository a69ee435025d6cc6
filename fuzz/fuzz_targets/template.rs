//! The template engine: lexer, parser, forbidden-action check and executor on any source.
//! Never a panic; every error has a position; budgets hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use osartifact_fuzz::{small_limits, template_values};
use osartifact_gotemplate::Template;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let limits = small_limits();
    let t = match Template::parse("Dockerfile", src) {
        Ok(t) => t,
        Err(e) => {
            assert!(e.line() >= 1, "{e}");
            assert!(!e.message().is_empty(), "{e}");
            return;
        }
    };
    // Forbidden templates are refused before they run, but executing the main tree must be
    // safe as well.
    let _ = t.check_forbidden();
    match t.execute(&template_values(), &limits) {
        Ok(out) => assert!(out.len() <= limits.max_output_bytes),
        Err(e) => {
            assert!(e.line() >= 1, "{e}");
            assert!(!e.message().is_empty(), "{e}");
        }
    }
});
