#!/usr/bin/env bash
# Prints what of the host the one-node cluster could change, one fact a line, so that two
# snapshots compare with diff: sysctls the kubelet, kube-proxy and the CNI plugins set, mounts,
# network links, routes, firewall rules, loop devices, cgroups and the cluster's processes.
#
#   bash e2e/node/host-state.sh > before; ...; bash e2e/node/host-state.sh > after; diff before after
#   bash e2e/node/host-state.sh --check BEFORE   # exit 1 with the differences when the host changed
#
# Kernel modules are left out: iptables may autoload netfilter modules, which cannot be unloaded
# safely and change no behaviour of the host by being loaded.
set -euo pipefail

snapshot() {
  local s
  for s in net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.ipv4.conf.all.forwarding \
    net.ipv6.conf.all.forwarding net.bridge.bridge-nf-call-iptables net.netfilter.nf_conntrack_max \
    kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom \
    kernel.keys.root_maxkeys kernel.keys.root_maxbytes fs.inotify.max_user_instances \
    fs.inotify.max_user_watches; do
    printf 'sysctl %s=%s\n' "$s" "$(sysctl -n "$s" 2>/dev/null || echo absent)"
  done
  awk '{print "mount", $5, $9}' /proc/self/mountinfo | sort
  ip -o link show | awk '{print "link", $2}' | sed 's/@.*//' | sort
  ip -4 route show table all | sed 's/^/route4 /' | sort
  ip -6 route show table all 2>/dev/null | grep -v '^local\|^multicast\|fe80::' | sed 's/^/route6 /' | sort || true
  if command -v iptables-save >/dev/null; then
    iptables-save 2>/dev/null | grep -v '^#' | sed -E 's/\[[0-9]+:[0-9]+\]//' | sed 's/^/iptables /' || true
  fi
  if command -v nft >/dev/null; then nft list ruleset 2>/dev/null | sed 's/^/nft /' || true; fi
  losetup -a -n -O NAME,BACK-FILE 2>/dev/null | sed 's/^/loop /' || true
  find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d 2>/dev/null | grep -v '^/sys/fs/cgroup/[^/]*/\(system.slice\|user.slice\|init.scope\)' | sed 's/^/cgroup /' | sort || true
  ps -eo comm= | grep -xE 'kubelet|containerd|containerd-shim.*|runc|kube-proxy|kube-scheduler|kube-apiserver|kube-controller|etcd|coredns|docker-registry|pause' | sed 's/^/process /' | sort || true
  local p
  for p in /tmp/hostpath_pv /var/lib/kubelet /var/lib/cni /var/lib/containers /var/log/pods \
    /var/log/containers /run/containerd /opt/containerd; do
    [[ -e $p ]] && echo "path $p" || true
  done
  # The suite's temp dirs (each test binary removes its own at exit).
  printf 'tmpdirs %s\n' "$(find /tmp -maxdepth 1 -name 'osartifact-e2e-*' 2>/dev/null | wc -l)"
}

if [[ ${1:-} == --check ]]; then
  before=${2:?usage: host-state.sh --check BEFORE}
  after=$(mktemp)
  # Processes and cgroups need a moment after the last test binary exits.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    snapshot >"$after"
    diff -q "$before" "$after" >/dev/null && break
    sleep 1
  done
  if ! diff -u "$before" "$after" >&2; then
    echo "host-state: the test run changed the host (lines above: - before, + after)" >&2
    rm -f "$after"
    exit 1
  fi
  rm -f "$after"
  echo "host-state: unchanged ($(wc -l <"$before") facts compared)" >&2
else
  snapshot
fi
