# shellcheck shell=bash
# Component "netns" (with --real-node only, before etcd): the network
# namespace that holds the whole cluster's network, and the host's way in.
#
# One network namespace ("locust-rn", /run/netns/locust-rn) holds the whole
# cluster's network: etcd, the API server, controller-manager, scheduler, kwok,
# containerd, kubelet, kube-proxy and CoreDNS run in it (NS_EXEC, set here),
# and every pod gets its own namespace behind the bridge "rn0" in it. No
# default route, nothing on the host's interfaces: no packet can leave. The
# host reaches the API server through one forwarder (nsforward.py) listening on
# host 127.0.0.1:<APISERVER_PORT>, so kubeconfig, kubectl, helm and the tests
# are unchanged. See docs/local-cluster.md, "The real node".
#
# Addresses (all inside 198.18.0.0/15):
#   198.18.255.1/32  node IP (REALNODE_IP), on veth "rn-node" (peer "rn-peer",
#                    both in the ns); the API server advertises it
#   198.18.0.0/24    real pods (bridge rn0, gateway 198.18.0.1, host-local IPAM)
#   198.18.128.0/18  kwok's fake pod IPs (never carry traffic)
#   198.18.255.254   kwok's fake node IP
#   198.19.0.0/16    Services; 198.19.0.10 is kube-dns (CoreDNS)

REALNODE_NETNS="locust-rn"
REALNODE_NETNS_PATH="/run/netns/$REALNODE_NETNS"
# The real node's state (this component's and realnode.sh's).
RN_DIR="$CLUSTER_DIR/realnode"

PROCS[netns]="apiserver-forward"

# realnode_present: CLUSTER_DIR holds a cluster started with --real-node.
realnode_present() { [[ -f "$RN_DIR/.realnode" ]]; }

netns_configure() {
  # Same mount namespace as the host (containerd must see kubelet's volume
  # mounts), so nsenter --net, not `ip netns exec`, which makes its own.
  NS_EXEC=(nsenter --net="$REALNODE_NETNS_PATH")
}

netns_preflight() {
  (( EUID == 0 )) || die "--real-node needs root (network namespaces, mounts, cgroups)"
  local t
  for t in nsenter ip mountpoint; do
    command -v "$t" >/dev/null || die "--real-node: '$t' is not installed (scripts/cluster install-deps)"
  done
  [[ -e /proc/self/ns/net ]] || die "kernel feature missing: network namespaces (CONFIG_NET_NS)"
  if [[ -e "$REALNODE_NETNS_PATH" ]]; then
    die "network namespace $REALNODE_NETNS exists: another real node runs on this machine (one per machine; 'scripts/cluster down' with its CLUSTER_DIR, or 'ip netns del $REALNODE_NETNS' if it is a leftover)"
  fi
}

# Probes that need the namespace: run right after creating it.
netns_probe() {
  ns_run ip link add rn-probe0 type veth peer name rn-probe1 2>/dev/null \
    || die "kernel feature missing: veth links (CONFIG_VETH)"
  ns_run ip link del rn-probe0
  ns_run ip link add rn-probe type bridge 2>/dev/null || die "kernel feature missing: Linux bridge (CONFIG_BRIDGE)"
  ns_run ip link del rn-probe
  [[ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]] \
    || die "kernel feature missing: bridge netfilter (br_netfilter: /proc/sys/net/bridge/bridge-nf-call-iptables; modprobe br_netfilter)"
  ns_run iptables -t nat -S >/dev/null 2>&1 \
    || die "kernel feature missing: iptables nat table (nf_tables / iptable_nat: 'iptables -t nat -S' failed in the namespace)"
}

netns_start() {
  mkdir -p "$RN_DIR"
  touch "$RN_DIR/.realnode"
  # What `ip netns add` may create on the host, so netns_stop can undo it.
  : > "$RN_DIR/netns.created"
  [[ -e /run/netns ]] || echo /run/netns >> "$RN_DIR/netns.created"
  mountpoint -q /run/netns 2>/dev/null || echo "mount:/run/netns" >> "$RN_DIR/netns.created"

  log "real node: network namespace $REALNODE_NETNS (node IP $REALNODE_IP, pods $REALNODE_POD_CIDR)"
  ip netns add "$REALNODE_NETNS" || die "ip netns add $REALNODE_NETNS failed (network namespaces)"
  echo "$REALNODE_NETNS" > "$RN_DIR/netns"
  netns_probe
  ns_run ip link set lo up
  ns_run ip link add rn-node type veth peer name rn-peer
  ns_run ip addr add "$REALNODE_IP/32" dev rn-node
  ns_run ip link set rn-peer up
  ns_run ip link set rn-node up
  # The node's own processes reach ClusterIPs (kube-proxy's OUTPUT DNAT needs a route first).
  ns_run ip route add "$SERVICE_CIDR" dev rn-node
  # kwok's fake node IP: kwok's server (pod logs of kwok pods) listens on it.
  ns_run ip addr add "$KWOK_NODE_IP/32" dev lo
  ns_run sysctl -q -w net.ipv4.ip_forward=1 net.bridge.bridge-nf-call-iptables=1 \
    || die "setting net.ipv4.ip_forward / net.bridge.bridge-nf-call-iptables in the namespace failed"

  # The forwarder alone runs on the host (no NS_EXEC); it joins the namespace
  # itself after listening. The interpreter itself (python3 may be a shim
  # script), so pid_is can check it.
  local NS_EXEC=() py; py="$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')"
  proc_start apiserver-forward "$py" \
    "$SCRIPTS_DIR/cluster.d/nsforward.py" --netns "$REALNODE_NETNS_PATH" \
    --listen "127.0.0.1:$APISERVER_PORT" --connect "127.0.0.1:$APISERVER_PORT"
}

netns_healthy() { [[ -e "$REALNODE_NETNS_PATH" ]] && pid_is apiserver-forward; }

# After every process in the namespace has stopped (it is first in the list).
netns_stop() {
  proc_stop apiserver-forward
  [[ -d "$RN_DIR" ]] || return 0
  # The namespace takes its links (rn0, veths) and iptables chains with it.
  # Only ours: RN_DIR/netns is written once `ip netns add` succeeded.
  if [[ -e "$REALNODE_NETNS_PATH" && -f "$RN_DIR/netns" ]]; then
    ip netns del "$REALNODE_NETNS" || log "WARNING: ip netns del $REALNODE_NETNS failed"
  fi
  local s
  if [[ -f "$RN_DIR/netns.created" ]]; then
    while read -r s; do
      case "$s" in
        mount:*) s="${s#mount:}"
                 if mountpoint -q "$s" && [[ -z "$(ls -A "$s")" ]]; then umount "$s" || true; fi ;;
        *) rmdir "$s" 2>/dev/null || true ;;  # other namespaces may have appeared
      esac
    done < <(sort -r "$RN_DIR/netns.created")
  fi
  rm -rf "$RN_DIR"
}
