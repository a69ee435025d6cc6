//! Prints the CRD; `just generate` writes it to manifests/crd/.
fn main() {
    print!("{}", osartifact_shared::crd::crd_yaml());
}
