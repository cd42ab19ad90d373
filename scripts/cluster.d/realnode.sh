# shellcheck shell=bash
# Component "realnode" (with --real-node only, last): a node that really runs
# pods: containerd, kubelet, kube-proxy and CoreDNS, in the network namespace
# of netns.sh (which starts first). Its configuration files: realnode-config.sh.
# Also the commands only a real node has: install-deps and import-image.

REALNODE_NAME="${REALNODE_NAME:-real-node}"
REALNODE_POD_CIDR="198.18.0.0/24"
REALNODE_POD_GW="198.18.0.1"
REALNODE_CLUSTER_CIDR="198.18.0.0/16"
REALNODE_DNS_IP="198.19.0.10"
# Where Debian's containernetworking-plugins puts the CNI plugins.
CNI_BIN_DIR="${CNI_BIN_DIR:-/usr/lib/cni}"
# The taint kwok nodes carry when a real node exists (pods that tolerate it
# and select type=kwok still run on kwok: the scale benchmarks).
KWOK_TAINT="kwok.x-k8s.io/node=fake:NoSchedule"
PAUSE_IMAGE="registry.k8s.io/pause:3.10-local"
REALNODE_PACKAGES=(containerd runc containernetworking-plugins iptables gcc libc6-dev)
# Kernel settings kubelet changes (whatever its config says); 'down' restores them.
REALNODE_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)

PROCS[realnode]="containerd kubelet kube-proxy coredns"

# What a cluster with a node that runs pods needs of the other components.
realnode_configure() {
  # The API server inside the namespace (nothing else is reachable there),
  # advertising the node IP, so pods reach it through the kubernetes Service.
  # shellcheck disable=SC2054  # the comma is part of the flag's value
  APISERVER_NET_ARGS=(--bind-address=0.0.0.0 --advertise-address="$REALNODE_IP"
                      --kubelet-preferred-address-types=InternalIP,Hostname)
  # kube-proxy reads EndpointSlices: the Services' endpoints are needed.
  [[ "$KCM_CONTROLLERS" == *,endpoints-controller* ]] \
    || KCM_CONTROLLERS+=",endpoints-controller,endpointslice-controller,endpointslice-mirroring-controller"
  # kwok's server on the fake nodes' InternalIP (an address in the namespace),
  # the API server's preferred address type here.
  KWOK_SERVER_IP="$KWOK_NODE_IP"
}

# ---------------------------------------------------------------------------
# build: kubelet, kube-proxy, CoreDNS, the pause image
# ---------------------------------------------------------------------------

realnode_build() {
  k8s_build k8s-node kubelet kube-proxy
  go_install_tool coredns "$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION" \
    "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  build_pause_image
}

realnode_built() { bins_present kubelet kube-proxy coredns && [[ -f "$KEY_DIR/images/pause.tar" ]]; }

# The pause container: pause.c from the pinned Kubernetes source, gcc -static,
# packed as a docker-archive tar that containerd imports (scripts/images.py).
build_pause_image() {
  local out="$KEY_DIR/images/pause.tar" stamp="$KUBERNETES_VERSION $PAUSE_IMAGE"
  if [[ -f "$out" && "$(cat "$out.stamp" 2>/dev/null)" == "$stamp" ]]; then
    log "pause image: cached"; return
  fi
  command -v gcc >/dev/null || die "gcc is missing (builds the pause image; apt-get install gcc, or: scripts/cluster install-deps)"
  local src tmp
  src="$(cd "$SRC_DIR" && GOFLAGS='' go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "pause.c not found in the Kubernetes module ($src)"
  mkdir -p "$KEY_DIR/images"
  tmp="$(mktemp -d "$KEY_DIR/tmp-pause.XXXXXX")"
  gcc -Os -Wall -Werror -static -DVERSION="$KUBERNETES_VERSION-local" -o "$tmp/pause" "$src" \
    || { rm -rf "$tmp"; die "gcc -static pause.c failed (is libc6-dev installed?)"; }
  python3 "$SCRIPTS_DIR/images.py" archive "$tmp/pause.tar" --tag "$PAUSE_IMAGE" \
    --file "$tmp/pause:/pause:0755" --entrypoint /pause --user 65535:65535 \
    || { rm -rf "$tmp"; die "writing the pause image failed"; }
  mv -f "$tmp/pause.tar" "$out"
  printf '%s\n' "$stamp" > "$out.stamp"
  rm -rf "$tmp"
  log "pause image: built $out ($PAUSE_IMAGE)"
}

# ---------------------------------------------------------------------------
# install-deps, import-image, preflight
# ---------------------------------------------------------------------------

# install-deps: the Debian packages the real node needs (CI runs it on a fresh
# machine; a no-op when they are installed). Never starts their services:
# Debian's containerd unit needs systemd, and up runs its own containerd.
realnode_install_deps() {
  local missing=() p
  for p in "${REALNODE_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if (( ${#missing[@]} == 0 )); then log "real-node packages installed: ${REALNODE_PACKAGES[*]}"; return; fi
  local sudo=()
  if (( EUID != 0 )); then
    command -v sudo >/dev/null || die "install-deps: missing ${missing[*]}; run as root (apt-get install ${missing[*]})"
    sudo=(sudo -n)
  fi
  log "apt-get install ${missing[*]}"
  "${sudo[@]}" apt-get update -qq >/dev/null
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
}

# import-image TAR: a docker-archive tar into the real node's containerd
# (namespace k8s.io, where the CRI plugin looks).
realnode_import_image() {
  local tar="${1:-}"
  [[ -f "$tar" ]] || die "import-image: no such file '$tar'"
  realnode_present || die "import-image: no real node in $CLUSTER_DIR (scripts/cluster up --real-node)"
  ctr --address "$RN_DIR/containerd.sock" -n k8s.io images import "$tar" >/dev/null \
    || die "ctr images import $tar failed"
}

# Every kernel feature and tool the node needs, each failing with a message
# that names it (never a silent skip). The namespace's own: netns_preflight.
realnode_preflight() {
  local t
  for t in containerd containerd-shim-runc-v2 runc ctr iptables; do
    command -v "$t" >/dev/null || die "--real-node: '$t' is not installed (scripts/cluster install-deps)"
  done
  for t in bridge host-local loopback portmap; do
    [[ -x "$CNI_BIN_DIR/$t" ]] || die "--real-node: CNI plugin $CNI_BIN_DIR/$t is missing (apt-get install containernetworking-plugins)"
  done
  grep -qw overlay /proc/filesystems || die "kernel feature missing: overlay filesystem (containerd's overlayfs snapshotter)"
  local c
  for c in cpu cpuacct cpuset memory pids devices freezer; do
    [[ -d /sys/fs/cgroup/$c ]] || grep -qw "$c" /sys/fs/cgroup/cgroup.controllers 2>/dev/null \
      || die "kernel feature missing: cgroup controller '$c' (not mounted under /sys/fs/cgroup)"
  done
  [[ -d /sys/fs/cgroup/cpu && -d /sys/fs/cgroup/memory ]] \
    || die "--real-node supports the cgroup v1 layout of the measured machines only (/sys/fs/cgroup/{cpu,memory,...})"
}

# ---------------------------------------------------------------------------
# start, health, stop
# ---------------------------------------------------------------------------

# What the node may change outside its state dir, so realnode_stop can restore
# it: kubelet's sysctls, and which default paths existed.
realnode_record_host() {
  local s
  : > "$RN_DIR/sysctl.saved"
  for s in "${REALNODE_SYSCTLS[@]}"; do
    printf '%s=%s\n' "$s" "$(sysctl -n "$s")" >> "$RN_DIR/sysctl.saved"
  done
  : > "$RN_DIR/paths.created"
  # Used whatever the flags say (see docs/local-cluster.md, "The real node").
  for s in /var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /var/lib/cni; do
    [[ -e "$s" ]] || echo "$s" >> "$RN_DIR/paths.created"
  done
}

# One cgroup per controller, named after the namespace (kubelet's cgroupRoot).
realnode_cgroups() {
  local d
  for d in /sys/fs/cgroup/*/; do
    d="${d%/}"
    [[ "$d" == */unified || ! -f "$d/cgroup.procs" ]] && continue
    mkdir -p "$d/$REALNODE_NETNS"
    if [[ -f "$d/cpuset.cpus" ]]; then
      cat "$d/cpuset.cpus" > "$d/$REALNODE_NETNS/cpuset.cpus"
      cat "$d/cpuset.mems" > "$d/$REALNODE_NETNS/cpuset.mems"
    fi
  done
}

# kubelet's serving certificate (the API server verifies it: pod logs, exec).
realnode_pki() {
  local p="$PKI_DIR"
  cat > "$p/kubelet.ext" <<EXT
subjectAltName=IP:$REALNODE_IP,DNS:$REALNODE_NAME
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment
basicConstraints=CA:FALSE
EXT
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$REALNODE_NAME" \
    -keyout "$p/kubelet.key" -out "$p/kubelet.csr" 2>/dev/null
  openssl x509 -req -in "$p/kubelet.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 365 -extfile "$p/kubelet.ext" -out "$p/kubelet.crt" 2>/dev/null
  chmod 0600 "$p/kubelet.key"
}

realnode_node_ready() {
  [[ "$(kubectl_ get node "$REALNODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == "True" ]]
}

realnode_start() {
  # From here on realnode_stop cleans up (cgroups, leftovers) after this node.
  mkdir -p "$RN_DIR/node"
  realnode_record_host
  # Ordinary pods (README, examples, helm install) go to the real node; a pod
  # that tolerates this taint and selects type=kwok runs on kwok.
  kubectl_ taint nodes -l type=kwok "$KWOK_TAINT" --overwrite >/dev/null
  realnode_cgroups
  realnode_pki
  realnode_write_configs
  proc_start containerd "$(command -v containerd)" --config "$RN_DIR/containerd.toml" --log-level warn
  wait_for "containerd" 60 ctr --address "$RN_DIR/containerd.sock" version
  realnode_import_image "$KEY_DIR/images/pause.tar"
  proc_start kubelet "$BIN_DIR/kubelet" \
    --config="$RN_DIR/kubelet.yaml" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --root-dir="$RN_DIR/kubelet" \
    --cert-dir="$RN_DIR/kubelet/pki" \
    --hostname-override="$REALNODE_NAME" \
    --node-ip="$REALNODE_IP" \
    --node-labels="type=real" \
    --v=1
  proc_start kube-proxy "$BIN_DIR/kube-proxy" --config="$RN_DIR/kube-proxy.yaml" --v=1
  realnode_dns_service
  proc_start coredns "$BIN_DIR/coredns" -conf "$RN_DIR/Corefile"
  wait_for "real node $REALNODE_NAME Ready" 120 realnode_node_ready
  wait_for "CoreDNS ready" 60 ns_run curl -fsS http://127.0.0.1:8181/ready
}

realnode_healthy() { procs_alive containerd kubelet kube-proxy coredns; }

# PIDs of processes in the node's cgroups (containers, shims left behind).
realnode_cgroup_pids() {
  find /sys/fs/cgroup/pids/"$REALNODE_NETNS" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u
}

# PIDs of containerd shims started by our containerd (their -address is ours).
realnode_shim_pids() {
  local f pid
  for f in /proc/[0-9]*/cmdline; do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    tr '\0' ' ' 2>/dev/null < "$f" | grep -q -- "containerd-shim.*-address $RN_DIR/containerd.sock" && echo "$pid"
  done
  return 0
}

realnode_stop() {
  # The pods first, with a short grace period while kubelet still runs (a PID 1
  # that ignores SIGTERM otherwise costs 30 s).
  if pid_is kubelet && pid_is kube-apiserver; then
    log "real node: deleting its pods"
    kubectl_ delete pods -A --field-selector "spec.nodeName=$REALNODE_NAME" \
      --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1 || true
  fi
  procs_stop containerd kubelet kube-proxy coredns
  # Only a node this cluster started: the cgroups' name is the same on every run.
  [[ -d "$RN_DIR/node" ]] || return 0
  local pid m s v
  # Leftovers: shims (they outlive containerd) and container processes.
  for pid in $(realnode_shim_pids) $(realnode_cgroup_pids); do
    log "real node: killing leftover pid $pid ($(tr '\0' ' ' 2>/dev/null < "/proc/$pid/cmdline" | cut -c1-80))"
    kill -KILL "$pid" 2>/dev/null || true
  done
  # Mounts under the state dir (overlay rootfs, shm, pod netns, volumes), deepest first.
  for _ in 1 2 3; do
    local mounts=()
    mapfile -t mounts < <(awk -v d="$RN_DIR/" 'index($5, d) == 1 {print $5}' /proc/self/mountinfo | sort -r)
    (( ${#mounts[@]} )) || break
    for m in "${mounts[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
  done
  # cgroups, deepest first (empty by now).
  local d
  for d in /sys/fs/cgroup/*/"$REALNODE_NETNS"; do
    [[ -d "$d" ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || log "WARNING: could not remove cgroup $d"
  done
  # Kernel settings kubelet changed.
  if [[ -f "$RN_DIR/sysctl.saved" ]]; then
    while IFS='=' read -r s v; do
      [[ "$(sysctl -n "$s")" == "$v" ]] || { log "real node: restoring $s=$v"; sysctl -q -w "$s=$v"; }
    done < "$RN_DIR/sysctl.saved"
  fi
  # Default paths kubelet/containerd used although ours are configured.
  if [[ -f "$RN_DIR/paths.created" ]]; then
    while read -r s; do rm -rf "$s"; done < <(sort -r "$RN_DIR/paths.created")
  fi
  rm -rf "$RN_DIR/node"
}
