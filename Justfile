# The project's commands. `just demo` runs the product locally; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# README command one: a local control plane with the webhook, the operator and the examples.
demo: setup
    cargo build --bins
    cargo run -q -p osartifact-e2e --bin demo

# README command two (what CI runs): formatting, lints, unit tests and the end-to-end suite.
test: setup lint
    cargo build --bins
    cargo test --workspace --no-fail-fast

# Formatting and clippy, warnings denied.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Installs what the tests need (idempotent) and builds the local control plane (cached).
setup:
    bash e2e/controlplane/install-tools.sh
    bash e2e/controlplane/build.sh >/dev/null

# Regenerate generated files (the CRD).
generate:
    cargo run -q -p osartifact-shared --example crdgen > manifests/crd/osartifacts.build.kairos.io.yaml
    cargo run -q -p osartifact-shared --example crdgen api-reference > docs/api.md

# ---- webhook (section owned by the webhook engineer) ----

# ---- operator (section owned by the operator engineer) ----

# ---- manifests (section owned by the manifests engineer) ----
