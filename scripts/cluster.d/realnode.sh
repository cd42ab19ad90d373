# shellcheck shell=bash
# The real node of `scripts/cluster up --real-node` (sourced by scripts/cluster).
#
# One network namespace ("locust-rn", /run/netns/locust-rn) holds the whole
# cluster's network: etcd, the API server, controller-manager, scheduler, kwok,
# containerd, kubelet, kube-proxy and CoreDNS run in it (nsenter --net), and
# every pod gets its own namespace behind the bridge "rn0" in it. No default
# route, nothing on the host's interfaces: no packet can leave. The host reaches
# the API server through one forwarder (nsforward.py) listening on host
# 127.0.0.1:<APISERVER_PORT>, so kubeconfig, kubectl, helm and the tests are
# unchanged. See docs/local-cluster.md, "The real node".
#
# Addresses (all inside 198.18.0.0/15):
#   198.18.255.1/32  node IP, on veth "rn-node" (peer "rn-peer", both in the ns);
#                    the API server advertises it (kubernetes Service endpoint)
#   198.18.0.0/24    real pods (bridge rn0, gateway 198.18.0.1, host-local IPAM)
#   198.18.128.0/18  kwok's fake pod IPs (never carry traffic)
#   198.18.255.254   kwok's fake node IP
#   198.19.0.0/16    Services; 198.19.0.10 is kube-dns (CoreDNS)

REALNODE_NETNS="locust-rn"
REALNODE_NETNS_PATH="/run/netns/$REALNODE_NETNS"
REALNODE_NAME="${REALNODE_NAME:-real-node}"
REALNODE_IP="198.18.255.1"
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
# Components of the node, in start order (stopped in reverse, before the control plane).
REALNODE_COMPONENTS=(containerd kubelet kube-proxy coredns)
# Kernel settings kubelet changes (whatever its config says); 'down' restores them.
REALNODE_SYSCTLS=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)

RN_DIR="$CLUSTER_DIR/realnode"

# ---------------------------------------------------------------------------
# build: kubelet, kube-proxy, CoreDNS, the pause image
# ---------------------------------------------------------------------------

realnode_binaries_present() {
  local b
  for b in kubelet kube-proxy coredns; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
  [[ -f "$KEY_DIR/images/pause.tar" ]]
}

# The pause container: pause.c from the pinned Kubernetes source, gcc -static,
# packed as a docker-archive tar that containerd imports (scripts/images.py).
build_pause_image() {
  local out="$KEY_DIR/images/pause.tar" stamp="$KUBERNETES_VERSION $PAUSE_IMAGE"
  if [[ -f "$out" && "$(cat "$out.stamp" 2>/dev/null)" == "$stamp" ]]; then
    log "pause image: cached"; return
  fi
  command -v gcc >/dev/null || die "gcc is missing (builds the pause image; apt-get install gcc, or: scripts/cluster install-deps)"
  local src tmp
  src="$(cd "$SRC_DIR" && GOFLAGS= go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')/build/pause/linux/pause.c"
  [[ -f "$src" ]] || die "pause.c not found in the Kubernetes module ($src)"
  mkdir -p "$KEY_DIR/images"
  tmp="$(mktemp -d "$KEY_DIR/tmp-pause.XXXXXX")"
  gcc -Os -Wall -Werror -static -DVERSION="$KUBERNETES_VERSION-local" -o "$tmp/pause" "$src" \
    || { rm -rf "$tmp"; die "gcc -static pause.c failed (is libc6-dev installed?)"; }
  python3 "$SCRIPTS_DIR/images.py" archive "$tmp/pause.tar" --tag "$PAUSE_IMAGE" \
    --file "$tmp/pause:/pause:0755" --entrypoint /pause --user 65535:65535
  mv -f "$tmp/pause.tar" "$out"
  printf '%s\n' "$stamp" > "$out.stamp"
  rm -rf "$tmp"
  log "pause image: built $out ($PAUSE_IMAGE)"
}

build_realnode() {
  k8s_build k8s-node kubelet kube-proxy
  go_install_tool coredns "$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION" \
    "-X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION"
  build_pause_image
}

# ---------------------------------------------------------------------------
# install-deps, preflight
# ---------------------------------------------------------------------------

# install-deps: the Debian packages the real node needs (CI runs it on a fresh
# machine; a no-op when they are installed). Never starts their services:
# Debian's containerd unit needs systemd, and up runs its own containerd.
cmd_install_deps() {
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

# realnode_preflight: every kernel feature and tool the node needs, each
# failing with a message that names it (never a silent skip).
realnode_preflight() {
  (( EUID == 0 )) || die "--real-node needs root (network namespaces, mounts, cgroups)"
  local t
  for t in containerd containerd-shim-runc-v2 runc ctr iptables nsenter ip mountpoint; do
    command -v "$t" >/dev/null || die "--real-node: '$t' is not installed (scripts/cluster install-deps)"
  done
  for t in bridge host-local loopback portmap; do
    [[ -x "$CNI_BIN_DIR/$t" ]] || die "--real-node: CNI plugin $CNI_BIN_DIR/$t is missing (apt-get install containernetworking-plugins)"
  done
  grep -qw overlay /proc/filesystems || die "kernel feature missing: overlay filesystem (containerd's overlayfs snapshotter)"
  [[ -e /proc/self/ns/net ]] || die "kernel feature missing: network namespaces (CONFIG_NET_NS)"
  if [[ -e "$REALNODE_NETNS_PATH" ]]; then
    die "network namespace $REALNODE_NETNS exists: another real node runs on this machine (one per machine; 'scripts/cluster down' with its CLUSTER_DIR, or 'ip netns del $REALNODE_NETNS' if it is a leftover)"
  fi
  local c
  for c in cpu cpuacct cpuset memory pids devices freezer; do
    [[ -d /sys/fs/cgroup/$c ]] || grep -qw "$c" /sys/fs/cgroup/cgroup.controllers 2>/dev/null \
      || die "kernel feature missing: cgroup controller '$c' (not mounted under /sys/fs/cgroup)"
  done
  [[ -d /sys/fs/cgroup/cpu && -d /sys/fs/cgroup/memory ]] \
    || die "--real-node supports the cgroup v1 layout of the measured machines only (/sys/fs/cgroup/{cpu,memory,...})"
}

# Probes that need the namespace: run right after creating it.
realnode_preflight_netns() {
  ns_exec ip link add rn-probe0 type veth peer name rn-probe1 2>/dev/null \
    || die "kernel feature missing: veth links (CONFIG_VETH)"
  ns_exec ip link del rn-probe0
  ns_exec ip link add rn-probe type bridge 2>/dev/null || die "kernel feature missing: Linux bridge (CONFIG_BRIDGE)"
  ns_exec ip link del rn-probe
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] \
    || die "kernel feature missing: bridge netfilter (br_netfilter: /proc/sys/net/bridge/bridge-nf-call-iptables; modprobe br_netfilter)"
  ns_exec iptables -t nat -S >/dev/null 2>&1 \
    || die "kernel feature missing: iptables nat table (nf_tables / iptable_nat: 'iptables -t nat -S' failed in the namespace)"
}

# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------

# ns_exec CMD...: run CMD in the cluster's network namespace (same mount
# namespace as the host: containerd must see kubelet's volume mounts, so no
# `ip netns exec`, which makes a mount namespace of its own).
ns_exec() { nsenter --net="$REALNODE_NETNS_PATH" "$@"; }

# in_ns CMD...: ns_exec when this is a real-node cluster, else run CMD as is.
in_ns() {
  if (( REAL_NODE )); then ns_exec "$@"; else "$@"; fi
}

realnode_detect() {
  if [[ -f "$RN_DIR/.realnode" ]]; then REAL_NODE=1; fi
}

realnode_components() {  # idempotent
  [[ " ${COMPONENTS[*]} " == *" kubelet "* ]] && return 0
  COMPONENTS=(apiserver-forward "${COMPONENTS[@]}" "${REALNODE_COMPONENTS[@]}")
}

# import-image TAR: a docker-archive tar into the real node's containerd
# (namespace k8s.io, where the CRI plugin looks).
cmd_import_image() {
  local tar="${1:-}"
  [[ -f "$tar" ]] || die "import-image: no such file '$tar'"
  realnode_detect
  (( REAL_NODE )) || die "import-image: no real node in $CLUSTER_DIR (scripts/cluster up --real-node)"
  realnode_import_image "$tar"
  log "imported $tar"
}

# ---------------------------------------------------------------------------
# up
# ---------------------------------------------------------------------------

# realnode_record_host: what the node may change outside its state dir, so
# 'down' can restore it: kubelet's sysctls, and which default paths existed.
realnode_record_host() {
  local s
  : > "$RN_DIR/sysctl.saved"
  for s in "${REALNODE_SYSCTLS[@]}"; do
    printf '%s=%s\n' "$s" "$(sysctl -n "$s")" >> "$RN_DIR/sysctl.saved"
  done
  : > "$RN_DIR/paths.created"
  # Used whatever the flags say (see docs/local-cluster.md, "The real node").
  for s in /run/netns /var/lib/kubelet /var/log/containers /var/log/pods /run/containerd /var/lib/cni; do
    [[ -e "$s" ]] || echo "$s" >> "$RN_DIR/paths.created"
  done
  if mountpoint -q /run/netns 2>/dev/null; then : ; else echo "mount:/run/netns" >> "$RN_DIR/paths.created"; fi
}

realnode_netns() {
  log "real node: network namespace $REALNODE_NETNS (node IP $REALNODE_IP, pods $REALNODE_POD_CIDR)"
  ip netns add "$REALNODE_NETNS" || die "ip netns add $REALNODE_NETNS failed (network namespaces)"
  echo "$REALNODE_NETNS" > "$RN_DIR/netns"
  realnode_preflight_netns
  ns_exec ip link set lo up
  ns_exec ip link add rn-node type veth peer name rn-peer
  ns_exec ip addr add "$REALNODE_IP/32" dev rn-node
  ns_exec ip link set rn-peer up
  ns_exec ip link set rn-node up
  # The node's own processes reach ClusterIPs (kube-proxy's OUTPUT DNAT needs a route first).
  ns_exec ip route add "$SERVICE_CIDR" dev rn-node
  # kwok's fake node IP: kwok's server (pod logs of kwok pods) listens on it.
  ns_exec ip addr add "$KWOK_NODE_IP/32" dev lo
  ns_exec sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 \
    || die "setting net.ipv4.ip_forward / net.bridge.bridge-nf-call-iptables in the namespace failed"
}

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

realnode_write_configs() {
  local rn="$RN_DIR"
  mkdir -p "$rn/cni/net.d" "$rn/cni/ipam" "$rn/cni/cache" "$rn/containerd" "$rn/kubelet" "$rn/pod-logs"
  cat > "$rn/containerd.toml" <<TOML
version = 2
root = "$rn/containerd/root"
state = "$rn/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "$rn/containerd.sock"
[ttrpc]
  address = "$rn/containerd-ttrpc.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$rn/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Required here: processes lack CAP_SYS_RESOURCE, and without it every
  # sandbox fails with "can't get final child's PID from pipe: EOF".
  restrict_oom_score_adj = true
  enable_selinux = false
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$rn/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$rn/cni/net.d"
    max_conf_num = 1
TOML
  cat > "$rn/cni/net.d/10-locust-rn.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "locust-rn",
  "plugins": [
    {
      "type": "bridge", "bridge": "rn0", "isGateway": true, "hairpinMode": true, "ipMasq": false,
      "ipam": {
        "type": "host-local", "dataDir": "$rn/cni/ipam",
        "ranges": [[{"subnet": "$REALNODE_POD_CIDR", "gateway": "$REALNODE_POD_GW"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  cat > "$rn/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $REALNODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI_DIR/kubelet.crt
tlsPrivateKeyFile: $PKI_DIR/kubelet.key
rotateCertificates: false
serverTLSBootstrap: false
# Test cluster only: the API server is the only client that can reach it.
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$rn/containerd.sock
cgroupDriver: cgroupfs
cgroupRoot: /$REALNODE_NETNS
cgroupsPerQOS: true
enforceNodeAllocatable: ["none"]
failSwapOn: false
failCgroupV1: false
protectKernelDefaults: false
clusterDNS: [$REALNODE_DNS_IP]
clusterDomain: cluster.local
resolvConf: ""
podLogsDir: $rn/pod-logs
volumePluginDir: $rn/volume-plugins
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
YAML
  cat > "$rn/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $KUBECONFIG_FILE}
hostnameOverride: $REALNODE_NAME
bindAddress: $REALNODE_IP
clusterCIDR: $REALNODE_CLUSTER_CIDR
detectLocalMode: ClusterCIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$REALNODE_IP/32"]
# Leave the (global) conntrack table size and timeouts alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  cat > "$rn/Corefile" <<CORE
.:53 {
    bind $REALNODE_IP
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_FILE
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
    loop
    reload
}
CORE
}

# kube-dns: a Service at REALNODE_DNS_IP whose endpoint is CoreDNS on the
# node IP (CoreDNS runs as a process in the namespace, not as a pod).
realnode_dns_service() {
  kubectl_ apply -f - >/dev/null <<YAML
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  clusterIP: $REALNODE_DNS_IP
  ports:
  - {name: dns, port: 53, protocol: UDP, targetPort: 53}
  - {name: dns-tcp, port: 53, protocol: TCP, targetPort: 53}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kube-dns-coredns
  namespace: kube-system
  labels:
    kubernetes.io/service-name: kube-dns
    endpointslice.kubernetes.io/managed-by: locust-operator-local-cluster
addressType: IPv4
ports:
- {name: dns, port: 53, protocol: UDP}
- {name: dns-tcp, port: 53, protocol: TCP}
endpoints:
- addresses: ["$REALNODE_IP"]
  conditions: {ready: true}
  nodeName: $REALNODE_NAME
YAML
}

realnode_node_ready() {
  [[ "$(kubectl_ get node "$REALNODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" == "True" ]]
}

realnode_import_image() {  # realnode_import_image TAR
  ctr --address "$RN_DIR/containerd.sock" -n k8s.io images import "$1" >/dev/null \
    || die "ctr images import $1 failed"
}

# The node, once the control plane runs (namespace already made by realnode_up_early).
realnode_up() {
  realnode_cgroups
  realnode_write_configs
  start_bin containerd "$(command -v containerd)" --config "$RN_DIR/containerd.toml" --log-level warn
  wait_for "containerd" 60 ctr --address "$RN_DIR/containerd.sock" version
  realnode_import_image "$KEY_DIR/images/pause.tar"
  start_bin kubelet "$BIN_DIR/kubelet" \
    --config="$RN_DIR/kubelet.yaml" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --root-dir="$RN_DIR/kubelet" \
    --cert-dir="$RN_DIR/kubelet/pki" \
    --hostname-override="$REALNODE_NAME" \
    --node-ip="$REALNODE_IP" \
    --node-labels="type=real" \
    --v=1
  start_bin kube-proxy "$BIN_DIR/kube-proxy" --config="$RN_DIR/kube-proxy.yaml" --v=1
  realnode_dns_service
  start_bin coredns "$BIN_DIR/coredns" -conf "$RN_DIR/Corefile"
  wait_for "real node $REALNODE_NAME Ready" 120 realnode_node_ready
  wait_for "CoreDNS ready" 60 ns_exec curl -fsS http://127.0.0.1:8181/ready
}

# Before the control plane: record, namespace, forwarder (the control plane
# itself starts inside the namespace).
realnode_up_early() {
  mkdir -p "$RN_DIR"
  touch "$RN_DIR/.realnode"
  realnode_record_host
  realnode_netns
  realnode_pki
  # The interpreter itself (python3 may be a shim script), so pid_is can check it.
  local py; py="$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')"
  start_bin apiserver-forward "$py" \
    "$SCRIPTS_DIR/cluster.d/nsforward.py" --netns "$REALNODE_NETNS_PATH" \
    --listen "127.0.0.1:$1" --connect "127.0.0.1:$1"
}

# ---------------------------------------------------------------------------
# down
# ---------------------------------------------------------------------------

# realnode_drain: delete the real node's pods with a short grace period while
# kubelet still runs (a PID 1 that ignores SIGTERM otherwise costs 30 s).
realnode_drain() {
  pid_is kubelet && pid_is kube-apiserver || return 0
  log "real node: deleting its pods"
  kubectl_ delete pods -A --field-selector "spec.nodeName=$REALNODE_NAME" \
    --grace-period=1 --wait=true --timeout=60s >/dev/null 2>&1 || true
}

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

realnode_down() {
  [[ -d "$RN_DIR" ]] || return 0
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
  # The namespace takes its links (rn0, veths) and iptables chains with it.
  if [[ -e "$REALNODE_NETNS_PATH" && -f "$RN_DIR/netns" ]]; then
    ip netns del "$REALNODE_NETNS" || log "WARNING: ip netns del $REALNODE_NETNS failed"
  fi
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
  # Default paths kubelet/containerd/ip used although ours are configured.
  if [[ -f "$RN_DIR/paths.created" ]]; then
    while read -r s; do
      case "$s" in
        mount:*) s="${s#mount:}"
                 if mountpoint -q "$s" && [[ -z "$(ls -A "$s")" ]]; then umount "$s" || true; fi ;;
        /run/netns) rmdir "$s" 2>/dev/null || true ;;  # other namespaces may have appeared
        *) rm -rf "$s" ;;
      esac
    done < <(sort -r "$RN_DIR/paths.created")
  fi
  rm -rf "$RN_DIR"
}
