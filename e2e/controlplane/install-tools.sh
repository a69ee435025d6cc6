#!/usr/bin/env bash
# Installs what building and testing this project needs on a fresh Debian machine
# (idempotent; every step is skipped when its tool is already there).
#
# Usage: bash e2e/controlplane/install-tools.sh [step...]
#   steps: apt node just rust go   (default: all of them, in that order)
#     apt   Debian packages: nginx curl jq openssl ca-certificates g++ (libFuzzer for `just fuzz`; apt-get update only if one is missing)
#     node  the one-node cluster's Debian packages (containerd, runc, CNI plugins, iptables, skopeo,
#           the builder pod's tools: xorriso, squashfs-tools, buildah, ...; versions in versions.env) and docker-registry unpacked into the cache (not installed:
#           its package scripts would start a registry on the host)
#     just  the `just` command runner (cargo install --locked, pinned version)
#     rust  rustfmt and clippy components (rustup; nothing is fetched when present)
#     go    checks that a Go >= GO_MIN is on PATH (needed by build.sh; never downloads a toolchain)
set -euo pipefail

JUST_VERSION=1.59.0
GO_MIN=1.26
APT_PACKAGES=(nginx curl jq openssl ca-certificates g++)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
NODE_PACKAGES=(containerd runc containernetworking-plugins iptables conntrack socat busybox-static
  skopeo apache2-utils gcc libc6-dev iproute2 util-linux
  # The builder pod's real tools, copied into its helper images with their libraries: the
  # AuroraBoot stand-in's file-system tools, and buildah for Dockerfile builds.
  bash coreutils tar gzip sed grep findutils xorriso squashfs-tools mtools dosfstools gdisk
  e2fsprogs buildah)

log() { printf '[install-tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() {
  if (( EUID == 0 )); then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  if (( ${#missing[@]} == 0 )); then
    log "apt: all present ($*)"
    return
  fi
  command -v apt-get >/dev/null 2>&1 || die "missing packages ${missing[*]} and no apt-get: install them by hand"
  log "apt: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  as_root apt-get update -qq
  # Do not let package scripts start daemons (nginx would start on port 80); tests start
  # their own instances. policy-rc.d is only added (and removed) if it is not there already.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
    added_policy=1
  fi
  local rc=0
  as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null || rc=$?
  (( added_policy )) && as_root rm -f "$policy"
  (( rc == 0 )) || die "apt-get install failed ($rc)"
}

step_apt() { apt_install "${APT_PACKAGES[@]}"; }

# Checks that an installed Debian package has the major.minor versions.env names.
check_version() {
  local pkg=$1 want=$2 have
  have=$(dpkg-query -W -f='${Version}' "$pkg")
  [[ $have == "$want".* || $have == "$want"~* || $have == "$want"+* ]] \
    || die "$pkg $have is installed, versions.env expects $want.x"
}

step_node() {
  apt_install "${NODE_PACKAGES[@]}"
  check_version containerd "$CONTAINERD_DEBIAN"
  check_version runc "$RUNC_DEBIAN"
  local root=${OSARTIFACT_CACHE:-$HOME/.cache/osartifact}/node
  local stamp=$root/.docker-registry
  if [[ -x $root/root/usr/bin/docker-registry && "$(cat "$stamp" 2>/dev/null)" == "$DOCKER_REGISTRY_DEBIAN" ]]; then
    log "node: docker-registry $DOCKER_REGISTRY_DEBIAN present"
    return
  fi
  log "node: unpacking docker-registry $DOCKER_REGISTRY_DEBIAN into $root"
  local tmp
  tmp=$(mktemp -d)
  # apt-get download writes to the current directory; _apt cannot read a private mktemp dir.
  chmod 755 "$tmp"
  (cd "$tmp" && apt-get download -qq "docker-registry" >&2) || {
    as_root apt-get update -qq
    (cd "$tmp" && apt-get download -qq "docker-registry" >&2)
  }
  local deb
  deb=$(ls "$tmp"/docker-registry_*.deb)
  [[ $(dpkg-deb -f "$deb" Version) == "$DOCKER_REGISTRY_DEBIAN"* ]] \
    || die "docker-registry $(dpkg-deb -f "$deb" Version) downloaded, versions.env expects $DOCKER_REGISTRY_DEBIAN"
  rm -rf "$root/root"
  mkdir -p "$root"
  dpkg-deb -x "$deb" "$root/root"
  rm -rf "$tmp"
  echo "$DOCKER_REGISTRY_DEBIAN" >"$stamp"
}

step_just() {
  if command -v just >/dev/null 2>&1 && just --version >/dev/null 2>&1; then
    log "just: $(just --version)"
    return
  fi
  command -v cargo >/dev/null 2>&1 || die "cargo is needed to install just"
  log "just: cargo install --locked just@${JUST_VERSION} (a few minutes on 2 cores)"
  # Own target dir (not the project's CARGO_TARGET_DIR); binary goes to ~/.cargo/bin.
  env -u CARGO_TARGET_DIR cargo install --locked --quiet "just@${JUST_VERSION}"
  command -v just >/dev/null 2>&1 || die "just was installed but is not on PATH (add \$HOME/.cargo/bin to PATH)"
  log "just: $(just --version)"
}

step_rust() {
  command -v cargo >/dev/null 2>&1 || die "cargo is needed (install Rust with rustup)"
  local want=()
  cargo fmt --version >/dev/null 2>&1 || want+=(rustfmt)
  cargo clippy --version >/dev/null 2>&1 || want+=(clippy)
  if (( ${#want[@]} == 0 )); then
    log "rust: rustfmt and clippy present ($(cargo --version))"
    return
  fi
  command -v rustup >/dev/null 2>&1 || die "missing ${want[*]} and no rustup to add them"
  log "rust: rustup component add ${want[*]}"
  rustup component add "${want[@]}"
}

step_go() {
  command -v go >/dev/null 2>&1 || die "Go >= ${GO_MIN} must be on PATH to build the test control plane"
  local v
  v=$(GOTOOLCHAIN=local go env GOVERSION)   # e.g. go1.26.8
  v=${v#go}
  local major=${v%%.*} rest=${v#*.}; local minor=${rest%%.*}
  local want_major=${GO_MIN%%.*} want_minor=${GO_MIN#*.}
  if (( major < want_major || (major == want_major && minor < want_minor) )); then
    die "Go $v is too old; build.sh needs Go >= ${GO_MIN}"
  fi
  log "go: go$v"
}

steps=("$@")
(( ${#steps[@]} )) || steps=(apt node just rust go)
for s in "${steps[@]}"; do
  case $s in
    apt|node|just|rust|go) "step_$s" ;;
    *) die "unknown step '$s' (apt node just rust go)" ;;
  esac
done
