# shellcheck shell=bash
# The real node's configuration files (sourced by scripts/cluster; used by
# realnode_start in realnode.sh): containerd, the CNI network, kubelet,
# kube-proxy, CoreDNS, and the kube-dns Service. Every path is under RN_DIR,
# so `down` removes them with the node.

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
