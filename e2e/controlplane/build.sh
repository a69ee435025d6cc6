#!/usr/bin/env bash
# Builds the local test cluster's binaries from Go modules:
#   kube-apiserver, kube-controller-manager, kubectl,
#   kube-scheduler, kubelet, kube-proxy                (k8s.io/kubernetes @ KUBERNETES_VERSION)
#   etcd                                               (go.etcd.io/etcd/server/v3 @ ETCD_VERSION)
#   coredns                                            (github.com/coredns/coredns @ COREDNS_VERSION)
# into ${OSARTIFACT_CACHE:-$HOME/.cache/osartifact}/controlplane/<k8s>-<etcd>/bin/.
#
# Idempotent: when the binaries and a stamp matching the versions exist, nothing is built.
# All progress goes to stderr; the last line on stdout is the bin directory.
#
# Environment:
#   OSARTIFACT_CACHE   cache root (default $HOME/.cache/osartifact)
#   FORCE_REBUILD=1    ignore the stamp and build again
# The Go module cache and build cache are the go command's defaults (GOMODCACHE, GOCACHE),
# so they are shared between runs and checkouts.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
: "${KUBERNETES_VERSION:?versions.env must set KUBERNETES_VERSION}"
: "${ETCD_VERSION:?versions.env must set ETCD_VERSION}"
: "${COREDNS_VERSION:?versions.env must set COREDNS_VERSION}"

# Bump when the way the binaries are built changes (flags, package list), to invalidate stamps.
BUILD_RECIPE=2

log() { printf '[controlplane/build] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v go >/dev/null 2>&1 || die "the go command is not on PATH (Go >= 1.26 is needed)"

cache_root=${OSARTIFACT_CACHE:-$HOME/.cache/osartifact}
work=$cache_root/controlplane/${KUBERNETES_VERSION}-${ETCD_VERSION}-${COREDNS_VERSION}
bin=$work/bin
stamp=$bin/.stamp
binaries=(kube-apiserver kube-controller-manager kubectl kube-scheduler kubelet kube-proxy etcd coredns)
want_stamp="kubernetes=${KUBERNETES_VERSION} etcd=${ETCD_VERSION} coredns=${COREDNS_VERSION} recipe=${BUILD_RECIPE}"

is_built() {
  [[ -f $stamp && "$(cat "$stamp")" == "$want_stamp" ]] || return 1
  local b
  for b in "${binaries[@]}"; do [[ -x $bin/$b ]] || return 1; done
}

if [[ ${FORCE_REBUILD:-0} != 1 ]] && is_built; then
  log "up to date: $want_stamp"
  echo "$bin"
  exit 0
fi

mkdir -p "$work"
# Serialise concurrent builds of the same versions (e.g. two shells running `just test`).
exec 9>"$work/.lock"
if command -v flock >/dev/null 2>&1; then
  log "waiting for build lock" && flock 9
  if [[ ${FORCE_REBUILD:-0} != 1 ]] && is_built; then
    log "up to date (built by another process): $want_stamp"
    echo "$bin"
    exit 0
  fi
fi

# Use this machine's Go; never download another toolchain. Resolve missing requirements
# of the generated wrapper modules on the fly (-mod=mod). Static binaries, no C toolchain.
export GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"
export CGO_ENABLED=0

go_version=$(go env GOVERSION)
log "using $go_version; building $want_stamp into $bin"

k8s_minor_patch=${KUBERNETES_VERSION#v1.}            # e.g. 36.5
staging_version=v0.${k8s_minor_patch}                 # e.g. v0.36.5
k8s_major=1
k8s_minor=${k8s_minor_patch%%.*}                       # e.g. 36

start=$(date +%s)
rm -f "$stamp"
mkdir -p "$bin"

# ---------------------------------------------------------------- kubernetes
# k8s.io/kubernetes requires its staging modules at v0.0.0 and relies on local replace
# directives that do not apply to dependents, so a wrapper module replaces every staging
# module by its published version. The list is generated from the release's own go.mod.
src=$work/src/kubernetes
mkdir -p "$src"
cat >"$src/go.mod" <<GOMOD
module osartifact.invalid/controlplane/kubernetes

go 1.26.0

require k8s.io/kubernetes ${KUBERNETES_VERSION}
GOMOD
rm -f "$src/go.sum"
log "downloading k8s.io/kubernetes@${KUBERNETES_VERSION}"
k8s_info=$(cd "$src" && go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}")
k8s_gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p' <<<"$k8s_info")
k8s_time=$(sed -n 's/^[[:space:]]*"Time": "\(.*\)",\{0,1\}$/\1/p' <<<"$k8s_info")
[[ -f $k8s_gomod ]] || die "could not locate go.mod of k8s.io/kubernetes@${KUBERNETES_VERSION}"
mapfile -t staging < <(grep -E '^[[:space:]]+k8s\.io/[^[:space:]]+ v0\.0\.0$' "$k8s_gomod" | awk '{print $1}' | sort -u)
(( ${#staging[@]} > 10 )) || die "found only ${#staging[@]} staging modules in $k8s_gomod"
{
  echo
  for m in "${staging[@]}"; do echo "replace $m => $m $staging_version"; done
} >>"$src/go.mod"
log "wrapper module replaces ${#staging[@]} staging modules with $staging_version"

build_date=${k8s_time:-1970-01-01T00:00:00Z}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=${KUBERNETES_VERSION}"
  ldflags+=" -X $pkg.gitMajor=${k8s_major}"
  ldflags+=" -X $pkg.gitMinor=${k8s_minor}"
  ldflags+=" -X $pkg.gitTreeState=archive"
  ldflags+=" -X $pkg.buildDate=${build_date}"
done

log "building the control plane and node binaries (cold: about 8 min on 2 cores)"
t0=$(date +%s)
(cd "$src" && go build -trimpath -ldflags "$ldflags" -o "$bin/" \
  k8s.io/kubernetes/cmd/kube-apiserver \
  k8s.io/kubernetes/cmd/kube-controller-manager \
  k8s.io/kubernetes/cmd/kubectl \
  k8s.io/kubernetes/cmd/kube-scheduler \
  k8s.io/kubernetes/cmd/kubelet \
  k8s.io/kubernetes/cmd/kube-proxy) >&2
log "kubernetes binaries built in $(( $(date +%s) - t0 ))s"

# ---------------------------------------------------------------- etcd
# The root package of go.etcd.io/etcd/server/v3 is `package main` (calls etcdmain.Main).
src=$work/src/etcd
mkdir -p "$src"
cat >"$src/go.mod" <<GOMOD
module osartifact.invalid/controlplane/etcd

go 1.26.0

require go.etcd.io/etcd/server/v3 ${ETCD_VERSION}
GOMOD
rm -f "$src/go.sum"
log "building etcd"
t0=$(date +%s)
(cd "$src" && go build -trimpath \
  -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_VERSION}" \
  -o "$bin/etcd" go.etcd.io/etcd/server/v3) >&2
log "etcd built in $(( $(date +%s) - t0 ))s"

# ---------------------------------------------------------------- coredns
# The cluster DNS of the one-node test cluster. The module's root package is `package main`.
src=$work/src/coredns
mkdir -p "$src"
cat >"$src/go.mod" <<GOMOD
module osartifact.invalid/controlplane/coredns

go 1.26.0

require github.com/coredns/coredns ${COREDNS_VERSION}
GOMOD
rm -f "$src/go.sum"
log "building coredns"
t0=$(date +%s)
(cd "$src" && go build -trimpath -ldflags "-s -w" -o "$bin/coredns" github.com/coredns/coredns) >&2
log "coredns built in $(( $(date +%s) - t0 ))s"

# ---------------------------------------------------------------- check
"$bin/kube-apiserver" --version >&2
"$bin/kubectl" version --client >&2
"$bin/etcd" --version >&2
"$bin/kubelet" --version >&2
"$bin/coredns" -version >&2
"$bin/kube-apiserver" --version | grep -qF "${KUBERNETES_VERSION}" \
  || die "kube-apiserver does not report ${KUBERNETES_VERSION}"

echo "$want_stamp" >"$stamp"
log "done in $(( $(date +%s) - start ))s (built with $go_version)"
ls -l "$bin" >&2
echo "$bin"
