#!/usr/bin/env bash
# Builds the GitOps clients the e2e tests drive, from Go modules:
#   helm        helm.sh/helm/v4/cmd/helm @ HELM_VERSION
#   flux-apply  this module (Flux's apply engine and health check, github.com/fluxcd/pkg/ssa,
#               pinned in go.mod)
#   argo-diff   argo-diff/, its own module (the apply Argo CD's sync runs, and its three-way and
#               server-side diffs, github.com/argoproj/gitops-engine at the revision Argo CD 3.2.0 requires,
#               on the Kubernetes 1.34 libraries that revision was built with)
# into ${OSARTIFACT_CACHE:-$HOME/.cache/osartifact}/gitops/<key>/bin, where <key> is a hash of
# everything that goes into them (this script, go.mod, go.sum, the sources, the Go version), so
# a warm run builds nothing and a change rebuilds into a new directory.
# Progress goes to stderr; the last line on stdout is the bin directory.
set -euo pipefail

HELM_VERSION=v4.3.2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[gitops/build] %s\n' "$*" >&2; }
command -v go >/dev/null 2>&1 || { log "ERROR: the go command is not on PATH"; exit 1; }

# This machine's Go only; static binaries.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-buildvcs=false"

key=$( { echo "helm=$HELM_VERSION"; go env GOVERSION
         cd "$here" && find . -type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name build.sh \) \
           | LC_ALL=C sort | xargs sha256sum; } | sha256sum | cut -c1-16)
cache_root=${OSARTIFACT_CACHE:-$HOME/.cache/osartifact}
bin=$cache_root/gitops/$key/bin
if [[ -x $bin/helm && -x $bin/flux-apply && -x $bin/argo-diff && -f $bin/.stamp ]]; then
  log "up to date: $bin"
  echo "$bin"
  exit 0
fi

mkdir -p "$bin"
exec 9>"$bin/.lock"
flock 9
if [[ ! -f $bin/.stamp ]]; then
  t0=$(date +%s)
  log "building helm $HELM_VERSION"
  GOBIN=$bin go install -trimpath -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
  log "helm built in $(( $(date +%s) - t0 ))s"
  t0=$(date +%s)
  log "building flux-apply"
  (cd "$here" && go build -trimpath -ldflags "-s -w" -o "$bin/flux-apply" ./flux-apply) >&2
  log "flux-apply built in $(( $(date +%s) - t0 ))s"
  t0=$(date +%s)
  log "building argo-diff"
  (cd "$here/argo-diff" && go build -trimpath -ldflags "-s -w" -o "$bin/argo-diff" .) >&2
  log "argo-diff built in $(( $(date +%s) - t0 ))s"
  "$bin/helm" version >&2
  date -u +%FT%TZ >"$bin/.stamp"
fi
echo "$bin"
