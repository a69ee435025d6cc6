#!/usr/bin/env bash
# Smoke test of the locally built control plane: starts etcd, kube-apiserver and
# kube-controller-manager on free loopback ports, checks with kubectl that
#   - the API is up and RBAC/authn work (token and client certificate),
#   - a namespace can be created (and deleted: the namespace controller runs),
#   - a Job creates a Pod (it stays Pending: there are no nodes),
#   - deleting an owner garbage-collects a child with an ownerReference (also when the
#     owner is a custom resource whose CRD was installed before the controller-manager),
# then tears everything down. Certificates come from openssl (this script only).
#
# Usage: bash e2e/controlplane/smoke.sh        (builds the binaries first if needed)
#   OSARTIFACT_CONTROLPLANE_BIN=dir  use binaries from dir instead of running build.sh
#   KEEP_SMOKE_DIR=1                 keep the temp dir (logs, certs, kubeconfigs)
#   SMOKE_APISERVER_FLAGS / SMOKE_KCM_FLAGS   extra flags (word-split) for experiments
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
log() { printf '[controlplane/smoke %5ss] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
T0=$(date +%s)

if [[ -n ${OSARTIFACT_CONTROLPLANE_BIN:-} ]]; then
  BIN=$OSARTIFACT_CONTROLPLANE_BIN
else
  BIN=$(bash "$here/build.sh" | tail -n1)
fi
for b in etcd kube-apiserver kube-controller-manager kubectl; do
  [[ -x $BIN/$b ]] || { log "missing $BIN/$b"; exit 1; }
done
command -v openssl >/dev/null || { log "openssl is needed"; exit 1; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/osartifact-smoke.XXXXXX")
PIDS=()
NAMES=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  # Stop in reverse start order (controller-manager, apiserver, etcd), each with SIGTERM
  # and up to 10 s to exit before SIGKILL; only the processes this script started.
  local i pid t
  for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
    pid=${PIDS[i]}
    t=$(date +%s%N)
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null && log "had to SIGKILL ${NAMES[i]}"
    wait "$pid" 2>/dev/null || true
    log "stopped ${NAMES[i]} in $(( ($(date +%s%N) - t) / 1000000 ))ms"
  done
  if (( rc != 0 )); then
    log "FAILED (exit $rc); last log lines:"
    for f in "$DIR"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 25 "$f" >&2; }; done
  fi
  if [[ ${KEEP_SMOKE_DIR:-0} == 1 || $rc != 0 ]]; then log "kept $DIR"; else rm -rf "$DIR"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free TCP port on 127.0.0.1: ask the kernel (bind to port 0) when python3 is there,
# otherwise probe random high ports. Ports are not reserved, so a race is possible.
free_port() {
  if command -v python3 >/dev/null; then
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
    return
  fi
  local p
  while :; do
    p=$(( 20000 + RANDOM % 40000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

wait_for() { # wait_for <seconds> <description> <command...>
  local secs=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + secs ))
  until "$@" >/dev/null 2>&1; do
    if (( $(date +%s) >= deadline )); then log "timed out after ${secs}s waiting for $what"; return 1; fi
    sleep 0.2
  done
}

# ------------------------------------------------------------------ certificates
cd "$DIR"
mkdir -p pki etcd-data
ossl() { openssl "$@" 2>/dev/null; }
ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -keyout pki/ca.key -out pki/ca.crt -subj "/CN=osartifact-smoke-ca"
sign() { # sign <name> <subject> <extensions>
  ossl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "pki/$1.key" -out "pki/$1.csr" -subj "$2"
  printf '%b' "$3" >"pki/$1.ext"
  ossl x509 -req -in "pki/$1.csr" -CA pki/ca.crt -CAkey pki/ca.key -CAcreateserial \
    -days 2 -out "pki/$1.crt" -extfile "pki/$1.ext"
}
sign apiserver "/CN=kube-apiserver" \
  'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature'
sign admin "/O=system:masters/CN=cert-admin" \
  'extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature'
# Service-account token signing key pair (RSA: RS256 tokens).
ossl genrsa -out pki/sa.key 2048
ossl rsa -in pki/sa.key -pubout -out pki/sa.pub
ADMIN_TOKEN=$(ossl rand -hex 16)
KCM_TOKEN=$(ossl rand -hex 16)
# token,user,uid,"group1,group2"
cat >pki/tokens.csv <<CSV
${ADMIN_TOKEN},admin,admin-uid,"system:masters"
${KCM_TOKEN},system:kube-controller-manager,kcm-uid
CSV
log "certificates and tokens written"

ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port)
API_PORT=$(free_port); KCM_PORT=$(free_port)
API=https://127.0.0.1:$API_PORT

kubeconfig() { # kubeconfig <file> <user-yaml>
  cat >"$1" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: $API
    certificate-authority: $DIR/pki/ca.crt
users:
- name: user
  user:
$2
contexts:
- name: local
  context: {cluster: local, user: user}
current-context: local
YAML
}
kubeconfig admin.kubeconfig "    token: ${ADMIN_TOKEN}"
kubeconfig kcm.kubeconfig "    token: ${KCM_TOKEN}"
kubeconfig cert-admin.kubeconfig "    client-certificate: $DIR/pki/admin.crt
    client-key: $DIR/pki/admin.key"
k() { "$BIN/kubectl" --kubeconfig="$DIR/admin.kubeconfig" --request-timeout=20s "$@"; }

# ------------------------------------------------------------------ etcd
log "starting etcd on 127.0.0.1:$ETCD_PORT"
"$BIN/etcd" \
  --name=smoke \
  --data-dir="$DIR/etcd-data" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="smoke=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true \
  --log-level=warn \
  >etcd.log 2>&1 &
PIDS+=($!); NAMES+=(etcd)
wait_for 30 "etcd health" curl -sf "http://127.0.0.1:$ETCD_PORT/health"
T_ETCD=$(( $(date +%s) - T0 ))
log "etcd healthy"

# ------------------------------------------------------------------ kube-apiserver
log "starting kube-apiserver on $API"
T_API0=$(date +%s)
"$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" \
  --bind-address=127.0.0.1 \
  --secure-port="$API_PORT" \
  --advertise-address=127.0.0.1 \
  --endpoint-reconciler-type=none \
  --tls-cert-file="$DIR/pki/apiserver.crt" \
  --tls-private-key-file="$DIR/pki/apiserver.key" \
  --client-ca-file="$DIR/pki/ca.crt" \
  --token-auth-file="$DIR/pki/tokens.csv" \
  --authorization-mode=RBAC \
  --service-account-issuer="$API" \
  --service-account-key-file="$DIR/pki/sa.pub" \
  --service-account-signing-key-file="$DIR/pki/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 \
  --disable-admission-plugins=ServiceAccount \
  --allow-privileged=true \
  --enable-priority-and-fairness=false \
  --profiling=false \
  --cert-dir="$DIR/apiserver-certs" \
  ${SMOKE_APISERVER_FLAGS:-} \
  >kube-apiserver.log 2>&1 &
PIDS+=($!); NAMES+=(kube-apiserver)
wait_for 90 "kube-apiserver /readyz" curl -sf --cacert pki/ca.crt -H "Authorization: Bearer $ADMIN_TOKEN" "$API/readyz"
T_API=$(( $(date +%s) - T_API0 ))
log "kube-apiserver ready after ${T_API}s"

# CRDs go in BEFORE the controller-manager starts: its garbage collector learns about new
# resource types only by re-reading discovery every 30 s, so the owner of a CR created
# after kcm start cascades only after 30-45 s. Installed first, it cascades in ~1 s.
k apply -f - >&2 <<YAML
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.smoke.osartifact.example
spec:
  group: smoke.osartifact.example
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
YAML
k wait --for=condition=Established --timeout=30s crd/widgets.smoke.osartifact.example >&2

# ------------------------------------------------------------------ kube-controller-manager
log "starting kube-controller-manager (secure port $KCM_PORT)"
T_KCM0=$(date +%s)
"$BIN/kube-controller-manager" \
  --kubeconfig="$DIR/kcm.kubeconfig" \
  --authentication-kubeconfig="$DIR/kcm.kubeconfig" \
  --authorization-kubeconfig="$DIR/kcm.kubeconfig" \
  --bind-address=127.0.0.1 \
  --secure-port="$KCM_PORT" \
  --cert-dir="$DIR/kcm-certs" \
  --leader-elect=false \
  --authentication-skip-lookup=true \
  --use-service-account-credentials=true \
  --service-account-private-key-file="$DIR/pki/sa.key" \
  --root-ca-file="$DIR/pki/ca.crt" \
  --controllers='*' \
  --profiling=false \
  ${SMOKE_KCM_FLAGS:-} \
  >kube-controller-manager.log 2>&1 &
PIDS+=($!); NAMES+=(kube-controller-manager)
wait_for 60 "kube-controller-manager /healthz" curl -sfk "https://127.0.0.1:$KCM_PORT/healthz"
T_KCM=$(( $(date +%s) - T_KCM0 ))
log "kube-controller-manager healthy after ${T_KCM}s"

# ------------------------------------------------------------------ checks
k version >&2
# /version carries the ldflags set by build.sh (gitVersion, gitMajor, gitMinor).
source "$here/versions.env"
minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
ver=$(k get --raw /version)
grep -q "\"gitVersion\": *\"${KUBERNETES_VERSION}\"" <<<"$ver"
grep -q "\"major\": *\"1\"" <<<"$ver"
grep -q "\"minor\": *\"${minor}\"" <<<"$ver"
[[ $(k auth whoami -o jsonpath='{.status.userInfo.username}') == admin ]]
[[ $("$BIN/kubectl" --kubeconfig="$DIR/cert-admin.kubeconfig" auth whoami -o jsonpath='{.status.userInfo.username}') == cert-admin ]]
# Anonymous requests are on by default: health and version endpoints are public, the rest is 403.
anon_code() { curl -s -o /dev/null -w '%{http_code}' --cacert "$DIR/pki/ca.crt" "$API$1"; }
[[ $(anon_code /readyz) == 200 && $(anon_code /version) == 200 && $(anon_code /api/v1/namespaces) == 403 ]]
log "token and client-certificate authentication work; anonymous: /readyz 200, /api/v1/namespaces 403"

NS=smoke-$(date +%s)
k create namespace "$NS" >&2
log "namespace $NS created"

# The serviceaccount controller creates the default ServiceAccount in new namespaces.
wait_for 30 "default ServiceAccount in $NS" k -n "$NS" get serviceaccount default

k -n "$NS" apply -f - >&2 <<YAML
apiVersion: batch/v1
kind: Job
metadata:
  name: smoke
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: c
        image: registry.invalid/none:latest
        command: ["true"]
YAML
job_pod() { [[ -n $(k -n "$NS" get pods -l batch.kubernetes.io/job-name=smoke -o name) ]]; }
T_JOB0=$(date +%s)
wait_for 60 "a Pod created by the Job controller" job_pod
log "Job created a Pod after $(( $(date +%s) - T_JOB0 ))s: $(k -n "$NS" get pods -l batch.kubernetes.io/job-name=smoke -o jsonpath='{.items[0].metadata.name} phase={.items[0].status.phase}')"

k -n "$NS" create configmap owner --from-literal=a=b >&2
OWNER_UID=$(k -n "$NS" get configmap owner -o jsonpath='{.metadata.uid}')
k -n "$NS" apply -f - >&2 <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: child
  ownerReferences:
  - apiVersion: v1
    kind: ConfigMap
    name: owner
    uid: ${OWNER_UID}
data: {a: b}
YAML
k -n "$NS" delete configmap owner --wait=true >&2
child_gone() { ! k -n "$NS" get configmap child >/dev/null 2>&1; }
T_GC0=$(date +%s)
wait_for 90 "garbage collection of the child ConfigMap" child_gone
log "garbage collector deleted the child after $(( $(date +%s) - T_GC0 ))s"

k -n "$NS" apply -f - >&2 <<YAML
apiVersion: smoke.osartifact.example/v1
kind: Widget
metadata:
  name: w
YAML
W_UID=$(k -n "$NS" get widget w -o jsonpath='{.metadata.uid}')
k -n "$NS" apply -f - >&2 <<YAML
apiVersion: v1
kind: ConfigMap
metadata:
  name: widget-child
  ownerReferences:
  - apiVersion: smoke.osartifact.example/v1
    kind: Widget
    name: w
    uid: ${W_UID}
    controller: true
    blockOwnerDeletion: true
data: {a: b}
YAML
T_CRGC0=$(date +%s)
k -n "$NS" delete widget w --wait=true --timeout=90s >&2
cr_child_gone() { ! k -n "$NS" get configmap widget-child >/dev/null 2>&1; }
wait_for 90 "garbage collection of the child of a custom resource" cr_child_gone
log "garbage collector deleted the child of a CR (CRD installed before kcm start) after $(( $(date +%s) - T_CRGC0 ))s"

T_NS0=$(date +%s)
k delete namespace "$NS" --wait=true --timeout=90s >&2
log "namespace deleted (namespace controller) after $(( $(date +%s) - T_NS0 ))s"

log "SMOKE OK: etcd up at ${T_ETCD}s, apiserver ready in ${T_API}s, controller-manager healthy in ${T_KCM}s"
