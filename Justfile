# The project's commands. `just demo` runs the product locally; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# README command one (as root): the one-node cluster with the product installed from
# manifests/default as Pods, the nginx kustomization and the examples.
demo: setup static-bins
    cargo run -q -p osartifact-e2e --bin demo

# README command two (what CI runs): formatting, lints, unit tests and the end-to-end suite,
# including the one-node cluster; fails if the run left the host changed (e2e/node/host-state.sh).
test: setup lint static-bins
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --bins
    before=$(mktemp)
    trap 'rm -f "$before"' EXIT
    bash e2e/node/host-state.sh >"$before"
    rc=0
    cargo test --workspace --no-fail-fast || rc=$?
    bash e2e/node/host-state.sh --check "$before" || { (( rc )) || rc=1; }
    exit "$rc"

# The operator and webhook linked statically (glibc, release), for the one-node cluster's images.
static-bins:
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target x86_64-unknown-linux-gnu -p osartifact-operator -p osartifact-webhook --bin osartifact-operator --bin osartifact-webhook

# Formatting and clippy, warnings denied.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Installs what the tests need (idempotent) and builds the local cluster's binaries (cached).
setup:
    bash e2e/controlplane/install-tools.sh
    bash e2e/controlplane/build.sh >/dev/null

# Regenerate generated files (the CRD).
generate:
    cargo run -q -p osartifact-shared --example crdgen > manifests/crd/osartifacts.build.kairos.io.yaml
    cargo run -q -p osartifact-shared --example crdgen api-reference > docs/api.md

# ---- webhook (section owned by the webhook engineer) ----
# Webhook and certificate tests (router goldens, TLS handshakes, rotation).
test-webhook:
    cargo test -p osartifact-webhook -p osartifact-certs

# Rewrite the webhook's golden AdmissionReview responses after an intended change; review the diff.
update-webhook-goldens:
    UPDATE_GOLDEN=1 cargo test -p osartifact-webhook --test router

# Load test: the webhook vs a fixed-body TLS server on the same stack, release build.
bench-webhook *ARGS:
    cargo run --release -q -p osartifact-webhook --bin bench-webhook -- {{ARGS}}

# A CA and serving certificate (localhost, 127.0.0.1) for a local webhook, in DIR.
webhook-certs dir="target/webhook-certs":
    cargo run -q -p osartifact-webhook -- certs bootstrap --out-dir {{dir}}

# Run the webhook as a local process against the cluster in KUBECONFIG (certs from webhook-certs).
webhook-run dir="target/webhook-certs" *ARGS: (webhook-certs dir)
    cargo run -q -p osartifact-webhook -- serve --listen 127.0.0.1:9443 --admin-listen 127.0.0.1:8080 --tls-cert-file {{dir}}/tls.crt --tls-private-key-file {{dir}}/tls.key {{ARGS}}


# ---- operator (section owned by the operator engineer) ----

# Operator unit and mocked-API tests.
test-operator:
    cargo test -p osartifact-operator

# Print the objects the operator would create for the OSArtifacts (and Secrets) in FILE.
plan-operator FILE:
    cargo run -q -p osartifact-operator -- plan -f {{FILE}}

# Benchmark on the local control plane: 500 OSArtifacts to Building, then to Ready, against a
# baseline that makes the same writes directly; and the operator's peak RSS (release build).
bench-operator *ARGS: setup
    cargo build --release -q --bins
    OSARTIFACT_E2E_PROFILE=release cargo run --release -q -p osartifact-e2e --bin bench-operator -- {{ARGS}}

# ---- manifests (section owned by the manifests engineer) ----

# Container engine for `images`: docker, podman or buildah, the first that works (override with ENGINE=...).
engine := env_var_or_default("ENGINE", "")

# Build the operator and webhook images as REGISTRY/osartifact-{operator,webhook}:TAG.
images registry="ghcr.io/kairos-io" tag="dev":
    #!/usr/bin/env bash
    set -euo pipefail
    engine="{{ engine }}"
    if [[ -z $engine ]]; then
      for e in docker podman buildah; do
        if command -v "$e" >/dev/null 2>&1 && "$e" info >/dev/null 2>&1; then engine=$e; break; fi
      done
    fi
    if [[ -z $engine ]]; then
      echo "just images: no working container engine (docker, podman or buildah; a docker client" >&2
      echo "needs a running daemon). Install one, or set ENGINE=... to choose it." >&2
      exit 1
    fi
    for b in operator webhook; do
      ref="{{ registry }}/osartifact-$b:{{ tag }}"
      echo "==> $engine: $ref (images/$b.Dockerfile)" >&2
      case $engine in
        docker) DOCKER_BUILDKIT=1 docker build -f "images/$b.Dockerfile" -t "$ref" . ;;
        podman) podman build -f "images/$b.Dockerfile" --ignorefile "images/$b.Dockerfile.dockerignore" -t "$ref" . ;;
        buildah) buildah build -f "images/$b.Dockerfile" --ignorefile "images/$b.Dockerfile.dockerignore" -t "$ref" . ;;
        *) echo "just images: unknown engine '$engine' (docker, podman, buildah)" >&2; exit 1 ;;
      esac
    done

# Point manifests/default at REGISTRY/osartifact-{operator,webhook}:TAG (edits its `images:` entries).
manifests-set-image registry tag:
    for b in operator webhook; do \
      sed -i -e "/- name: osartifact-$b\$/,/newTag:/{s|newName: .*|newName: {{ registry }}/osartifact-$b|;s|newTag: .*|newTag: {{ tag }}|}" \
        manifests/default/kustomization.yaml; \
    done
    grep -A2 -- '- name: osartifact-' manifests/default/kustomization.yaml

# Render every kustomization under manifests/ (offline; fails on the first that does not build).
manifests-build:
    for k in $(find manifests -name kustomization.yaml | LC_ALL=C sort); do d=$(dirname "$k"); echo "==> $d" >&2; kubectl kustomize "$d" >/dev/null; done

# Manifest tests: offline rendering and policy checks, and the real-nginx upload test.
manifests-test:
    cargo test -p osartifact-e2e --test manifests --test nginx

# Server-side dry-run of every kustomization against the cluster in KUBECONFIG (see manifests/tests/dry-run.sh).
manifests-dry-run kubeconfig:
    bash manifests/tests/dry-run.sh {{ kubeconfig }}

# ---- e2e (section owned by the e2e engineer) ----

# The end-to-end suite only (local control plane; see docs/testing.md).
e2e:
    cargo build --bins
    cargo test -p osartifact-e2e --no-fail-fast
