# shellcheck shell=bash
# Component "kwok": fake nodes (KWOK_NODES, default 1) whose pods kwok moves
# through their lifecycle (scripts/kwok/stage-*.yaml) without running them,
# and kwok's server, which answers the API server's pod-log requests.

PROCS[kwok]="kwok"

# Where kwok's server listens; the real node moves it (realnode_configure).
KWOK_SERVER_IP=127.0.0.1

kwok_build() {
  go_install_tool kwok "$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
    "-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v}"
}

kwok_built() { bins_present kwok; }

# duration_ms 5s|500ms|2m|7 -> milliseconds (bare numbers are seconds)
duration_ms() {
  local d="$1"
  [[ "$d" =~ ^[0-9]+(ms|s|m)?$ ]] || return 1
  case "$d" in
    *ms) echo "${d%ms}" ;;
    *s)  echo $(( ${d%s} * 1000 )) ;;
    *m)  echo $(( ${d%m} * 60000 )) ;;
    *)   echo $(( d * 1000 )) ;;
  esac
}

# Render scripts/kwok/*.yaml into one kwok config (stages are multi-doc YAML).
render_kwok_stages() {
  local delay_ms f out="$CLUSTER_DIR/kwok-stages.yaml"
  delay_ms="$(duration_ms "${KWOK_POD_COMPLETE_DELAY:-5s}")" \
    || die "bad KWOK_POD_COMPLETE_DELAY=${KWOK_POD_COMPLETE_DELAY:-}"
  : > "$out"
  for f in "$SCRIPTS_DIR"/kwok/stage-*.yaml; do
    printf -- '---\n' >> "$out"
    sed "s/@POD_COMPLETE_DELAY_MS@/$delay_ms/g" "$f" >> "$out"
  done
  echo "$out"
}

# Pod logs (`kubectl logs`, the API server's pods/log subresource). With no
# kubelet, kwok's own server stands in for one: it answers the kubelet's
# /containerLogs/NS/POD/CONTAINER with the file that a Logs or ClusterLogs
# object (kwok.x-k8s.io/v1alpha1, watched because of --enable-crds) names.
# The API server finds it through each Node's status, as for a kubelet:
#  - address: --node-name=localhost gives the nodes a Hostname address
#    "localhost" (stage-node-initialize.yaml), the first of the API server's
#    default --kubelet-preferred-address-types (kwokctl does the same);
#  - port: --node-port sets daemonEndpoints.kubeletEndpoint.Port (same stage)
#    to the port of --server-address (KWOK_SERVER_IP);
#  - TLS: kwok serves the API server's own certificate (valid for 127.0.0.1
#    and localhost), which the API server verifies with
#    --kubelet-certificate-authority (without it, it would not verify at all).
# kwok only watches the CRDs, so they are applied before it starts.
# Everything lives in etcd and CLUSTER_DIR: 'down' needs no extra cleanup.
install_kwok_logs_crds() {
  log "installing kwok's Logs and ClusterLogs CRDs (pod logs for tests)"
  kubectl_ apply -f "$SCRIPTS_DIR/kwok/crd-logs.yaml" >/dev/null
  kubectl_ wait --for=condition=Established --timeout=60s \
    crd/logs.kwok.x-k8s.io crd/clusterlogs.kwok.x-k8s.io >/dev/null
}

kwok_start() {
  local port="$KWOK_SERVER_PORT" stages; stages="$(render_kwok_stages)"
  install_kwok_logs_crds
  proc_start kwok "$BIN_DIR/kwok" \
    --kubeconfig="$KUBECONFIG_FILE" \
    --config="$stages" \
    --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
    --cidr="$POD_CIDR" \
    --node-ip="$KWOK_NODE_IP" \
    --enable-crds=Logs,ClusterLogs \
    --server-address="$KWOK_SERVER_IP:$port" \
    --node-port="$port" \
    --node-name=localhost \
    --tls-cert-file="$PKI_DIR/serving.crt" \
    --tls-private-key-file="$PKI_DIR/serving.key"
  wait_for "kwok's server (pod logs)" 60 kwok_healthy
  local n="${KWOK_NODES:-1}" i
  log "creating $n fake node(s)"
  for ((i = 0; i < n; i++)); do
    sed "s/@NODE_NAME@/kwok-node-$i/g" "$SCRIPTS_DIR/kwok/node.yaml"
  done | kubectl_ apply -f - >/dev/null
  wait_for "fake nodes Ready" 120 kwok_nodes_ready
}

kwok_nodes_ready() {
  local want="${KWOK_NODES:-1}" ready
  ready="$(kubectl_ get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' \
    | grep -c '^True$')" || return 1
  (( ready >= want ))
}

kwok_healthy() {
  pid_is kwok \
    && ns_run curl -fsS --cacert "$PKI_DIR/ca.crt" "https://$KWOK_SERVER_IP:$KWOK_SERVER_PORT/healthz" >/dev/null 2>&1
}

# The fake nodes and pods live in etcd, the CRDs too: they go with the cluster.
kwok_stop() { proc_stop kwok; }
