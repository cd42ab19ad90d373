# shellcheck shell=bash
# What every component of scripts/cluster shares (sourced first): versions,
# cache and state paths, logging, and the process helpers. A component only
# runs processes through proc_start / proc_stop, so `down`, `status` and
# `restart` can treat every process alike, by its record in run/.
#
# The component interface (scripts/cluster picks the list, in start order):
#   <c>_start    start the component and return once it is healthy
#   <c>_healthy  exit 0 if it is up (status, `up` on an existing cluster)
#   <c>_stop     undo <c>_start; safe when it never (or only partly) started
# and, where a component needs them:
#   <c>_configure  adjust the shared settings below when <c> is in the list
#   <c>_preflight  fail early, before anything starts, naming what is missing
#   <c>_build / <c>_built   build its binaries (cached) / are they there
#   PROCS[<c>]     the processes it records in run/ (start order)

# shellcheck source=versions.env
source "$SCRIPTS_DIR/versions.env"

# Bump when the build recipe changes in a way that needs new binaries.
BUILD_RECIPE=1
CACHE_ROOT="${LOCUST_OPERATOR_CACHE:-$HOME/.cache/locust-operator}"
VERSIONS_KEY="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}_ct-${CT_VERSION}_r${BUILD_RECIPE}"
KEY_DIR="$CACHE_ROOT/$VERSIONS_KEY"
BIN_DIR="$KEY_DIR/bin"
SRC_DIR="$KEY_DIR/src"

CLUSTER_DIR="${CLUSTER_DIR:-$REPO_ROOT/.cluster}"
STATE_MARKER=".locust-operator-cluster"
RUN_DIR="$CLUSTER_DIR/run"
PKI_DIR="$CLUSTER_DIR/pki"
LOG_DIR="$CLUSTER_DIR/logs"
KUBECONFIG_FILE="$CLUSTER_DIR/kubeconfig"
# Everything 'up' creates in CLUSTER_DIR; 'down' removes only these, so other
# entries (e.g. the tests' nested .cluster/pytest-<pid> clusters) survive.
STATE_ENTRIES=(run pki logs etcd-data kubeconfig ports.env kwok-stages.yaml ready realnode "$STATE_MARKER")

# Addresses, sized for a burst of 1,000 LocustTests (3,000 pods, 1,000
# Services) so the cluster is not what a scale benchmark measures. All inside
# 198.18.0.0/15 (reserved for network benchmarks); kwok's pods never get
# traffic. Real pods use 198.18.0.0/24 and node IPs 198.18.255.0/24 (netns.sh),
# so kwok's fake pod IPs stay apart.
SERVICE_CIDR="${SERVICE_CIDR:-198.19.0.0/16}"
POD_CIDR="${POD_CIDR:-198.18.128.1/18}"
KWOK_NODE_IP="${KWOK_NODE_IP:-198.18.255.254}"
# The real node's IP (netns.sh). In the API server's certificate of every
# cluster (pki.sh): one recipe, whichever nodes exist.
REALNODE_IP="198.18.255.1"

# Shared settings a component's <c>_configure may change for the others (the
# real node moves every process into its network namespace).
NS_EXEC=()   # prefix of every process and in-cluster probe (nsenter --net=...)
COMPONENTS=()
declare -A PROCS=()

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

kubectl_() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# ns_run CMD...: CMD where the cluster's processes run (a probe of a port
# they listen on).
ns_run() { "${NS_EXEC[@]}" "$@"; }

# each HOOK [reverse]: <c>_HOOK for every component that defines it.
each() {
  local hook="$1" order=("${COMPONENTS[@]}") c i
  if [[ "${2:-}" == reverse ]]; then
    order=(); for ((i = ${#COMPONENTS[@]} - 1; i >= 0; i--)); do order+=("${COMPONENTS[$i]}"); done
  fi
  for c in "${order[@]}"; do
    if declare -F "${c}_$hook" >/dev/null; then "${c}_$hook"; fi
  done
}

# all_procs: every recorded process of the chosen components, start order.
all_procs() {
  local c
  for c in "${COMPONENTS[@]}"; do
    # shellcheck disable=SC2086  # a space-separated list of names
    if [[ -n "${PROCS[$c]:-}" ]]; then printf '%s\n' ${PROCS[$c]}; fi
  done
}

free_ports() {  # free_ports N: N distinct free TCP ports on 127.0.0.1
  python3 - "$1" <<'PY'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# pid_is NAME: the recorded PID of NAME is alive and runs the recorded binary.
pid_is() {
  local name="$1" pid exe
  [[ -f "$RUN_DIR/$name.pid" && -f "$RUN_DIR/$name.exe" ]] || return 1
  pid="$(cat "$RUN_DIR/$name.pid")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  exe="$(readlink "/proc/$pid/exe" 2>/dev/null)" || return 1
  [[ "${exe% (deleted)}" == "$(cat "$RUN_DIR/$name.exe")" ]]
}

procs_alive() {  # procs_alive NAME...: every one runs
  local p
  for p in "$@"; do pid_is "$p" || return 1; done
}

# proc_start NAME BINARY ARGS...: run BINARY in the background (behind
# NS_EXEC), record PID, binary, arguments and prefix in run/ for pid_is,
# proc_stop and proc_restart.
proc_start() {
  local name="$1" bin="$2"; shift 2
  local exe; exe="$(readlink -f "$bin")"
  log "starting $name (log: $LOG_DIR/$name.log)"
  nohup "${NS_EXEC[@]}" "$exe" "$@" </dev/null >"$LOG_DIR/$name.log" 2>&1 &
  local pid=$!
  echo "$pid" > "$RUN_DIR/$name.pid"
  echo "$exe" > "$RUN_DIR/$name.exe"
  printf '%s\n' "$*" > "$RUN_DIR/$name.args"
  printf '%s\n' "${NS_EXEC[*]}" > "$RUN_DIR/$name.prefix"
  if (( ${#NS_EXEC[@]} )); then  # the prefix execs the binary: wait for it (pid_is checks the binary)
    local prefix i; prefix="$(readlink -f "$(command -v "${NS_EXEC[0]}")")"
    for ((i = 0; i < 50; i++)); do
      [[ "$(readlink "/proc/$pid/exe" 2>/dev/null)" == "$prefix" ]] || break
      sleep 0.05
    done
  fi
}

# proc_stop NAME: stop the recorded process of NAME (TERM, then KILL after 20 s).
proc_stop() {
  local c="$1" pid
  [[ -f "$RUN_DIR/$c.pid" ]] || return 0
  pid="$(cat "$RUN_DIR/$c.pid")"
  if ! pid_is "$c"; then
    log "$c (pid $pid) is not running"
    rm -f "$RUN_DIR/$c.pid"; return 0
  fi
  log "stopping $c (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 20))
  while pid_is "$c" && (( SECONDS < deadline )); do sleep 0.2; done
  if pid_is "$c"; then
    log "$c (pid $pid) did not exit after SIGTERM; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    while pid_is "$c"; do sleep 0.2; done
  fi
  rm -f "$RUN_DIR/$c.pid"
}

procs_stop() {  # procs_stop NAME...: in reverse order
  local i
  for ((i = $#; i >= 1; i--)); do proc_stop "${!i}"; done
}

# proc_restart NAME: stop it, start the same binary with the same arguments
# and prefix (fault tests: an API server or etcd restart under an operator).
proc_restart() {
  local c="$1" args NS_EXEC=("${NS_EXEC[@]}")
  read -r -a args < "$RUN_DIR/$c.args"
  if [[ -f "$RUN_DIR/$c.prefix" ]]; then read -r -a NS_EXEC < "$RUN_DIR/$c.prefix"; fi
  proc_stop "$c"
  mv -f "$LOG_DIR/$c.log" "$LOG_DIR/$c.log.$(date +%s)"
  proc_start "$c" "$(cat "$RUN_DIR/$c.exe")" "${args[@]}"
}

# wait_for DESCRIPTION TIMEOUT_S COMMAND...: poll COMMAND until it succeeds,
# failing early if a started process died (its log tail says why).
wait_for() {
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout)) c
  until "$@" >/dev/null 2>&1; do
    for c in $(all_procs); do
      if [[ -f "$RUN_DIR/$c.pid" ]] && ! pid_is "$c"; then
        log "$c exited; last lines of $LOG_DIR/$c.log:"
        tail -n 25 "$LOG_DIR/$c.log" >&2 || true
        return 1
      fi
    done
    if (( SECONDS >= deadline )); then log "timed out after ${timeout}s waiting for $what"; return 1; fi
    sleep 0.5
  done
}
