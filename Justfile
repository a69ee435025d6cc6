# The project's commands. `just demo` runs the product locally; `just test` runs every test.

set shell := ["bash", "-euo", "pipefail", "-c"]

default:
    @just --list

# ==== Run ====

# README command one; as root. The nginx kustomization and the examples too, until Ctrl-C.
# The one-node cluster with the product installed from manifests/default as Pods.
[group('run')]
demo: setup static-bins
    cargo run -q -p osartifact-e2e --bin demo

# Print the objects the operator would create for the OSArtifacts (and Secrets) in FILE.
[group('run')]
plan-operator FILE:
    cargo run -q -p osartifact-operator -- plan -f {{FILE}}

# A CA and serving certificate (localhost, 127.0.0.1) for a local webhook, in DIR.
[group('run')]
webhook-certs dir="target/webhook-certs":
    cargo run -q -p osartifact-webhook -- certs bootstrap --out-dir {{dir}}

# Run the webhook as a local process against the cluster in KUBECONFIG (certs from webhook-certs).
[group('run')]
webhook-run dir="target/webhook-certs" *ARGS: (webhook-certs dir)
    cargo run -q -p osartifact-webhook -- serve --listen 127.0.0.1:9443 --admin-listen 127.0.0.1:8080 --tls-cert-file {{dir}}/tls.crt --tls-private-key-file {{dir}}/tls.key {{ARGS}}

# ==== Test ====

# Fails if the run left the host changed (e2e/node/host-state.sh). README command two, what CI runs.
# Every test: formatting, lints, unit tests, the end-to-end suite and the one-node cluster.
[group('test')]
test: setup lint static-bins
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --bins
    # Built first, with the feature sets of the runs below, so the concurrent runs build nothing.
    cargo test --workspace --exclude osartifact-e2e --no-run -q
    cargo test -p osartifact-e2e --lib --bins --tests --no-run -q
    before=$(mktemp)
    node_log=$(mktemp)
    lane_log=$(mktemp)
    trap 'rm -f "$before" "$node_log" "$lane_log"' EXIT
    bash e2e/node/host-state.sh >"$before"
    # Three lanes side by side: the one-node cluster's test binaries (those declaring
    # `cluster_namespaces!`) one after another, and the loopback binaries split in two. The
    # loopback tests mostly wait on their apiservers, so the lanes share the two cores well.
    node=() lane1=() lane2=()
    for f in e2e/tests/*.rs; do
        t=$(basename "$f" .rs)
        if grep -q 'cluster_namespaces!' "$f"; then node+=(--test "$t")
        elif (( ${#lane1[@]} <= ${#lane2[@]} )); then lane1+=(--test "$t")
        else lane2+=(--test "$t"); fi
    done
    cargo test -p osartifact-e2e --no-fail-fast "${node[@]}" >"$node_log" 2>&1 &
    node_pid=$!
    cargo test -p osartifact-e2e --no-fail-fast "${lane1[@]}" >"$lane_log" 2>&1 &
    lane_pid=$!
    rc=0
    cargo test --workspace --exclude osartifact-e2e --no-fail-fast || rc=$?
    cargo test -p osartifact-e2e --no-fail-fast --lib --bins "${lane2[@]}" || rc=$?
    cargo test -p osartifact-e2e --doc || rc=$?
    wait "$lane_pid" || rc=$?
    echo "==== the other half of the loopback test binaries"
    cat "$lane_log"
    wait "$node_pid" || rc=$?
    echo "==== the one-node cluster's test binaries"
    cat "$node_log"
    bash e2e/node/host-state.sh --check "$before" || { (( rc )) || rc=1; }
    exit "$rc"

# Formatting and clippy, warnings denied.
[group('test')]
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# Installs what the tests need (idempotent) and builds the local cluster's binaries, helm and flux-apply (cached).
[group('test')]
setup:
    bash e2e/controlplane/install-tools.sh
    bash e2e/controlplane/build.sh >/dev/null
    bash e2e/gitops/build.sh >/dev/null

# The operator, the webhook and the AuroraBoot stand-in linked statically (glibc, release), for
# the one-node cluster's images.
[group('test')]
static-bins:
    RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target x86_64-unknown-linux-gnu -p osartifact-operator -p osartifact-webhook -p osartifact-standin --bin osartifact-operator --bin osartifact-webhook --bin osartifact-standin

# The end-to-end suite only (local control plane; see docs/testing.md).
[group('test')]
e2e:
    cargo build --bins
    cargo test -p osartifact-e2e --no-fail-fast

# Operator unit and mocked-API tests.
[group('test')]
test-operator:
    cargo test -p osartifact-operator

# Webhook and certificate tests (router goldens, TLS handshakes, rotation).
[group('test')]
test-webhook:
    cargo test -p osartifact-webhook -p osartifact-certs

# Manifest tests: offline rendering and policy checks, and the real-nginx upload test.
[group('test')]
manifests-test:
    cargo test -p osartifact-e2e --test manifests --test nginx

# Server-side dry-run of every kustomization against the cluster in KUBECONFIG (see manifests/tests/dry-run.sh).
[group('test')]
manifests-dry-run kubeconfig:
    bash manifests/tests/dry-run.sh {{ kubeconfig }}

# Rewrite the webhook's golden AdmissionReview responses after an intended change; review the diff.
[group('test')]
update-webhook-goldens:
    UPDATE_GOLDEN=1 cargo test -p osartifact-webhook --test router

# Coverage-guided fuzzing (libFuzzer on stable Rust; see docs/testing.md#fuzzing): every target, or
# those named, for SECONDS each. A crash fails the run and leaves its input under the target dir.
[group('test')]
fuzz seconds="180" *TARGETS:
    bash fuzz/run.sh --seconds {{seconds}} {{TARGETS}}

# What CI runs: the fuzz crate's formatting, then five seconds of each target.
[group('test')]
fuzz-smoke:
    cargo fmt --manifest-path fuzz/Cargo.toml -- --check
    bash fuzz/run.sh --smoke

# ==== Generate ====

# Regenerate generated files (the CRD, also into the Helm chart's crds/).
[group('generate')]
generate:
    cargo run -q -p osartifact-shared --example crdgen > manifests/crd/osartifacts.build.kairos.io.yaml
    cp manifests/crd/osartifacts.build.kairos.io.yaml manifests/helm/osartifact/crds/
    cargo run -q -p osartifact-shared --example crdgen api-reference > docs/api.md

# ==== Bench ====

# Then the latency the apiserver observes (bench-admission). Release builds; the Go one from the module proxy.
# The webhook vs a controller-runtime webhook (Go baseline) and a fixed-body server, over TLS.
[group('bench')]
bench-webhook *ARGS: setup
    #!/usr/bin/env bash
    set -euo pipefail
    cargo build --release -q -p osartifact-webhook --bins
    target=$(cd "${CARGO_TARGET_DIR:-target}" && pwd)
    (cd webhook/bench/go-baseline && go build -trimpath -o "$target/release/go-baseline-webhook" .)
    "$target/release/bench-webhook" --go-baseline "$target/release/go-baseline-webhook" {{ARGS}}
    just bench-admission

# In the same run: with the authorization cache off, and without the webhook (client-side baseline).
# Webhook latency as the apiserver sees it (its admission duration metric), release build.
[group('bench')]
bench-admission *ARGS: setup
    cargo build --release -q --bins
    OSARTIFACT_E2E_PROFILE=release cargo run --release -q -p osartifact-e2e --bin bench-admission -- {{ARGS}}

# A baseline makes the same writes directly; also the operator's peak RSS (release build).
# Benchmark on the local control plane: 500 OSArtifacts to Building, then to Ready.
[group('bench')]
bench-operator *ARGS: setup
    cargo build --release -q --bins
    OSARTIFACT_E2E_PROFILE=release cargo run --release -q -p osartifact-e2e --bin bench-operator -- {{ARGS}}

# As root. Real ISO builds on the one-node cluster (default 50, 5 at a time): wall, pod run and operator reaction times.
[group('bench')]
bench-builds *ARGS: setup static-bins
    cargo build --release -q --bins
    OSARTIFACT_E2E_PROFILE=release cargo run --release -q -p osartifact-e2e --bin bench-builds -- {{ARGS}}

# ==== Images and manifests ====

# Container engine for `images`: docker, podman or buildah, the first that works (override with ENGINE=...).
engine := env_var_or_default("ENGINE", "")

# Build the operator and webhook images as REGISTRY/osartifact-{operator,webhook}:TAG.
[group('images')]
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
      echo "==> $engine: $ref (images/Dockerfile, target osartifact-$b)" >&2
      case $engine in
        docker) DOCKER_BUILDKIT=1 docker build -f images/Dockerfile --target "osartifact-$b" -t "$ref" . ;;
        podman) podman build -f images/Dockerfile --target "osartifact-$b" --ignorefile images/Dockerfile.dockerignore -t "$ref" . ;;
        buildah) buildah build -f images/Dockerfile --target "osartifact-$b" --ignorefile images/Dockerfile.dockerignore -t "$ref" . ;;
        *) echo "just images: unknown engine '$engine' (docker, podman, buildah)" >&2; exit 1 ;;
      esac
    done

# Point manifests/default (its `images:` entries) and the Helm chart's values at REGISTRY/osartifact-{operator,webhook}:TAG.
[group('images')]
manifests-set-image registry tag:
    for b in operator webhook; do \
      sed -i -e "/- name: osartifact-$b\$/,/newTag:/{s|newName: .*|newName: {{ registry }}/osartifact-$b|;s|newTag: .*|newTag: {{ tag }}|}" \
        manifests/default/kustomization.yaml; \
      sed -i -e "/^$b:/,/^[a-z]/{s|repository: .*|repository: {{ registry }}/osartifact-$b|;s|tag: .*|tag: {{ tag }}|}" \
        manifests/helm/osartifact/values.yaml; \
    done
    grep -A2 -- '- name: osartifact-' manifests/default/kustomization.yaml

# Render every kustomization under manifests/ (offline; fails on the first that does not build).
[group('images')]
manifests-build:
    for k in $(find manifests -name kustomization.yaml | LC_ALL=C sort); do d=$(dirname "$k"); echo "==> $d" >&2; kubectl kustomize "$d" >/dev/null; done
