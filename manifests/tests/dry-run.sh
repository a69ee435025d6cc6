#!/usr/bin/env bash
# Server-side validation of every kustomization under manifests/ against a real kube-apiserver:
# each one is rendered with `kubectl kustomize` (offline) and sent with
#   kubectl apply --dry-run=server --validate=strict
# so the apiserver checks every object against the schemas of its release, runs admission
# (including CEL in webhook matchConditions and the CRD's own rules) and persists nothing.
#
# Usage: manifests/tests/dry-run.sh KUBECONFIG
#   KUBECTL=path   kubectl to use (default: kubectl on PATH); its kustomize renders the files.
#
# Real (not dry-run) changes it makes, because later objects need them to exist:
#   - applies the CRD with a client-side `kubectl apply` (this also proves that the CRD fits
#     the last-applied-configuration annotation) and waits until it is Established;
#   - applies the Namespace osartifact-system (manifests/default/namespace.yaml).
# The webhook configurations are only dry-run, so the samples are not sent to a webhook, unless
# the cluster already has osartifact-validating/-mutating registered: then the webhook must be
# serving (failurePolicy Fail), and the samples also pass through it.
# Kustomizations without a namespace (nginx, samples) go to the kubeconfig's namespace
# (normally `default`). Objects of cert-manager.io are skipped, with a note, when the cluster
# does not serve that API group.
# Exit status: 0 when every kustomization passed, 1 otherwise (all are tried), 2 on bad usage.
set -euo pipefail

if [[ $# -ne 1 || ! -f $1 ]]; then
  echo "usage: $0 KUBECONFIG" >&2
  exit 2
fi
export KUBECONFIG=$1
KUBECTL=${KUBECTL:-kubectl}
manifests=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { printf '[manifests/dry-run] %s\n' "$*" >&2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/osartifact-dry-run.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 1. The CRD for real, client-side, so the custom resources in the samples can be validated.
# A failure here is reported at the end; the other kustomizations are still checked.
failed=()
passed=0
log "applying the CRD (client-side apply)"
if "$KUBECTL" apply -k "$manifests/crd" >&2 &&
  "$KUBECTL" wait --for=condition=Established --timeout=60s crd/osartifacts.build.kairos.io >&2; then
  log "ok   crd (client-side apply, Established)"
else
  log "FAIL crd: the CRD could not be applied client-side (see above)"
  failed+=("crd(client-side-apply)")
fi

# 2. The install namespace for real: namespaced objects can only be dry-run into an existing one.
log "applying the namespace"
"$KUBECTL" apply -f "$manifests/default/namespace.yaml" >&2

have_cert_manager=0
if [[ -n $("$KUBECTL" api-resources --api-group=cert-manager.io -o name 2>/dev/null) ]]; then
  have_cert_manager=1
fi

# 3. Every kustomization, in a stable order.
while IFS= read -r kfile; do
  dir=$(dirname "$kfile")
  rel=${dir#"$manifests"/}
  rendered=$work/${rel//\//_}.yaml
  if ! "$KUBECTL" kustomize "$dir" >"$rendered"; then
    log "FAIL $rel: kustomize build failed"
    failed+=("$rel")
    continue
  fi
  if (( ! have_cert_manager )); then
    # Documents are separated by `---` lines in kustomize output; drop the cert-manager ones.
    awk -v out="$rendered.filtered" -v skipped="$rendered.skipped" '
      function flush() {
        if (doc != "") {
          if (doc ~ /(^|\n)apiVersion: cert-manager\.io\//) { print kind >> skipped }
          else { printf "---\n%s", doc >> out }
        }
        doc = ""; kind = ""
      }
      /^---$/ { flush(); next }
      /^kind: / { kind = $2 }
      { doc = doc $0 "\n" }
      END { flush() }
    ' "$rendered"
    if [[ -s $rendered.skipped ]]; then
      log "note $rel: cert-manager.io is not served here; skipped $(sort "$rendered.skipped" | uniq -c | awk '{printf "%s %s ", $1, $2}')"
    fi
    rendered=$rendered.filtered
  fi
  if "$KUBECTL" apply --dry-run=server --validate=strict -f "$rendered" >"$work/out" 2>&1; then
    log "ok   $rel ($(grep -c . "$work/out") objects)"
    passed=$((passed + 1))
  else
    log "FAIL $rel:"
    sed 's/^/    /' "$work/out" >&2
    failed+=("$rel")
  fi
done < <(find "$manifests" -name kustomization.yaml -not -path '*/tests/*' | LC_ALL=C sort)

if (( ${#failed[@]} )); then
  log "${#failed[@]} failed: ${failed[*]} (${passed} passed)"
  exit 1
fi
log "all ${passed} kustomizations passed server-side dry-run"
