#!/usr/bin/env bash
# Installs what building and testing this project needs on a fresh Debian machine
# (idempotent; every step is skipped when its tool is already there).
#
# Usage: bash e2e/controlplane/install-tools.sh [step...]
#   steps: apt just rust go   (default: all of them, in that order)
#     apt   Debian packages: nginx curl jq openssl ca-certificates (apt-get update only if one is missing)
#     just  the `just` command runner (cargo install --locked, pinned version)
#     rust  rustfmt and clippy components (rustup; nothing is fetched when present)
#     go    checks that a Go >= GO_MIN is on PATH (needed by build.sh; never downloads a toolchain)
set -euo pipefail

JUST_VERSION=1.59.0
GO_MIN=1.26
APT_PACKAGES=(nginx curl jq openssl ca-certificates)

log() { printf '[install-tools] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

as_root() {
  if (( EUID == 0 )); then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root (or sudo) to run: $*"
  fi
}

step_apt() {
  local missing=() p
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
  done
  if (( ${#missing[@]} == 0 )); then
    log "apt: all present (${APT_PACKAGES[*]})"
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
(( ${#steps[@]} )) || steps=(apt just rust go)
for s in "${steps[@]}"; do
  case $s in
    apt|just|rust|go) "step_$s" ;;
    *) die "unknown step '$s' (apt just rust go)" ;;
  esac
done
