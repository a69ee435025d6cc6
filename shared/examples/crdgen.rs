//! Prints the CRD (default) or, with `api-reference`, the Markdown API reference; `just generate`
//! writes them to manifests/crd/ and docs/.
fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("api-reference") => print!("{}", osartifact_shared::crd::api_reference_markdown()),
        _ => print!("{}", osartifact_shared::crd::crd_yaml()),
    }
}
