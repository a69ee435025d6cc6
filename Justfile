# The project's commands. `just demo` runs the product locally; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# Regenerate generated files (the CRD).
generate:
    cargo run -q -p osartifact-shared --example crdgen > manifests/crd/osartifacts.build.kairos.io.yaml

# ---- webhook (section owned by the webhook engineer) ----

# ---- operator (section owned by the operator engineer) ----

# ---- manifests (section owned by the manifests engineer) ----
