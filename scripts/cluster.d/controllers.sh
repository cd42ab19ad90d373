# shellcheck shell=bash
# Component "controllers": kube-controller-manager and kube-scheduler (built
# by apiserver_build), loopback only, no leader election (one of each).

PROCS[controllers]="kube-controller-manager kube-scheduler"

# Only the controllers the tests and the operator need. The real node adds
# the endpoint controllers (realnode_configure): kube-proxy reads EndpointSlices.
KCM_CONTROLLERS="job-controller,garbage-collector-controller,ttl-after-finished-controller,serviceaccount-token-controller,serviceaccount-controller,namespace-controller,deployment-controller,replicaset-controller,root-ca-certificate-publisher-controller"
# API client limits (their defaults, 20/30 and 50/100 requests/s, throttle the
# Job controller to ~70 s per 100 tests).
KCM_API_QPS="${KCM_API_QPS:-500}"
KCM_API_BURST="${KCM_API_BURST:-1000}"
KCM_JOB_SYNCS="${KCM_JOB_SYNCS:-20}"

controllers_built() { bins_present kube-controller-manager kube-scheduler; }

controllers_start() {
  proc_start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" \
    --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 \
    --secure-port="$CONTROLLER_MANAGER_PORT" \
    --leader-elect=false \
    --controllers="$KCM_CONTROLLERS" \
    --service-account-private-key-file="$PKI_DIR/sa.key" \
    --root-ca-file="$PKI_DIR/ca.crt" \
    --use-service-account-credentials=false \
    --kube-api-qps="$KCM_API_QPS" \
    --kube-api-burst="$KCM_API_BURST" \
    --concurrent-job-syncs="$KCM_JOB_SYNCS" \
    --profiling=false
  proc_start kube-scheduler "$BIN_DIR/kube-scheduler" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --kube-api-qps="$KCM_API_QPS" \
    --kube-api-burst="$KCM_API_BURST" \
    --authentication-kubeconfig="$KUBECONFIG_FILE" \
    --authorization-kubeconfig="$KUBECONFIG_FILE" \
    --bind-address=127.0.0.1 \
    --secure-port="$SCHEDULER_PORT" \
    --leader-elect=false \
    --profiling=false
  # Not waited for: nothing needs them before the nodes are Ready (kwok_start
  # waits that long), and wait_for notices if either dies meanwhile.
}

controllers_healthy() { procs_alive kube-controller-manager kube-scheduler; }

controllers_stop() { procs_stop kube-controller-manager kube-scheduler; }
