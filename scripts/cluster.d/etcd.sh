# shellcheck shell=bash
# Component "etcd": one member on loopback, data in CLUSTER_DIR/etcd-data.
# fsync is off: the data is thrown away with the cluster, and fsync latency
# on a shared 2-core machine would slow every API write.

PROCS[etcd]="etcd"

etcd_build() {
  # etcd's server module has (relative) replace directives: a wrapper module.
  wrapper_build etcd "$ETCD_VERSION" go.etcd.io/etcd/server/v3 go.etcd.io/etcd/server/v3
}

etcd_built() { bins_present etcd; }

etcd_start() {
  local client="$ETCD_CLIENT_PORT" peer="$ETCD_PEER_PORT"
  proc_start etcd "$BIN_DIR/etcd" \
    --name=default \
    --data-dir="$CLUSTER_DIR/etcd-data" \
    --listen-client-urls="http://127.0.0.1:$client" \
    --advertise-client-urls="http://127.0.0.1:$client" \
    --listen-peer-urls="http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls="http://127.0.0.1:$peer" \
    --initial-cluster="default=http://127.0.0.1:$peer" \
    --unsafe-no-fsync=true \
    --log-level=warn
  wait_for "etcd" 60 etcd_healthy
}

etcd_healthy() {
  pid_is etcd && ns_run curl -fsS "http://127.0.0.1:$ETCD_CLIENT_PORT/health" >/dev/null 2>&1
}

etcd_stop() { proc_stop etcd; }
