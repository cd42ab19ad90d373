# shellcheck shell=bash
# Component "apiserver": kube-apiserver, token auth (pki.sh's static admin
# token) and RBAC, serving on 127.0.0.1:APISERVER_PORT.

PROCS[apiserver]="kube-apiserver"

# Network flags; the real node replaces them (realnode_configure). Without a
# node that runs pods: loopback only, and no endpoint for the kubernetes
# Service (no pod could use it).
APISERVER_NET_ARGS=(--bind-address=127.0.0.1 --advertise-address=127.0.0.1 --endpoint-reconciler-type=none)

# Every control-plane binary and kubectl, from the one Kubernetes module: one
# module resolution and one `go build` for all (most packages are shared), so
# this also builds what controllers.sh runs.
apiserver_build() {
  k8s_build k8s kube-apiserver kube-controller-manager kube-scheduler kubectl
}

apiserver_built() { bins_present kube-apiserver kubectl; }

apiserver_start() {
  local issuer="https://kubernetes.default.svc.cluster.local"
  proc_start kube-apiserver "$BIN_DIR/kube-apiserver" \
    --etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
    "${APISERVER_NET_ARGS[@]}" \
    --secure-port="$APISERVER_PORT" \
    --tls-cert-file="$PKI_DIR/serving.crt" \
    --tls-private-key-file="$PKI_DIR/serving.key" \
    --client-ca-file="$PKI_DIR/ca.crt" \
    --token-auth-file="$PKI_DIR/tokens.csv" \
    --authorization-mode=RBAC \
    --service-cluster-ip-range="$SERVICE_CIDR" \
    --service-account-issuer="$issuer" \
    --api-audiences="$issuer" \
    --service-account-key-file="$PKI_DIR/sa.pub" \
    --service-account-signing-key-file="$PKI_DIR/sa.key" \
    --kubelet-certificate-authority="$PKI_DIR/ca.crt" \
    --disable-admission-plugins=TaintNodesByCondition \
    --allow-privileged=true \
    --profiling=false
  wait_for "kube-apiserver /readyz" 180 apiserver_healthy
}

apiserver_healthy() { pid_is kube-apiserver && kubectl_ get --raw /readyz >/dev/null 2>&1; }

apiserver_stop() { proc_stop kube-apiserver; }
