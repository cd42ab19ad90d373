# shellcheck shell=bash
# Component "pki": a throw-away CA, the API server's serving certificate, the
# service-account keypair, a static admin token and the admin kubeconfig.
# Files only (in CLUSTER_DIR/pki and kubeconfig): `down` removes them with the
# rest of the state.

# first_service_ip: the kubernetes Service's address (first of SERVICE_CIDR).
first_service_ip() {
  python3 -c 'import ipaddress, sys; print(next(ipaddress.ip_network(sys.argv[1]).hosts()))' "$SERVICE_CIDR"
}

make_pki() {
  mkdir -p "$PKI_DIR"
  local p="$PKI_DIR"
  log "generating throw-away CA, serving cert and service-account keys in $p"
  openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=locust-operator-local-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  cat > "$p/serving.ext" <<EXT
subjectAltName=IP:127.0.0.1,IP:$(first_service_ip),IP:$KWOK_NODE_IP,IP:${REALNODE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
keyUsage=critical,digitalSignature,keyEncipherment
basicConstraints=CA:FALSE
EXT
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$p/serving.key" -out "$p/serving.csr" 2>/dev/null
  openssl x509 -req -in "$p/serving.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 365 -extfile "$p/serving.ext" -out "$p/serving.crt" 2>/dev/null
  # Service-account token signing keypair (TokenRequest / kubectl create token).
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  # Static admin token (group system:masters) for every client we run.
  local token; token="$(openssl rand -hex 32)"
  printf '%s,admin,admin,system:masters\n' "$token" > "$p/tokens.csv"
  printf '%s\n' "$token" > "$p/admin.token"
  chmod 0600 "$p"/*.key "$p/tokens.csv" "$p/admin.token"
}

write_kubeconfig() {
  local port="$1" ca token
  ca="$(base64 -w0 < "$PKI_DIR/ca.crt")"
  token="$(cat "$PKI_DIR/admin.token")"
  umask 077
  cat > "$KUBECONFIG_FILE" <<KC
apiVersion: v1
kind: Config
clusters:
- name: locust-operator-local
  cluster:
    server: https://127.0.0.1:$port
    certificate-authority-data: $ca
users:
- name: admin
  user:
    token: $token
contexts:
- name: locust-operator-local
  context:
    cluster: locust-operator-local
    user: admin
    namespace: default
current-context: locust-operator-local
KC
  umask 022
}

pki_start() {
  make_pki
  write_kubeconfig "$APISERVER_PORT"
}

pki_healthy() {
  [[ -f "$PKI_DIR/ca.crt" && -f "$PKI_DIR/serving.crt" && -f "$PKI_DIR/tokens.csv" && -f "$KUBECONFIG_FILE" ]]
}

pki_stop() { :; }  # nothing runs; the files go with the state dir
