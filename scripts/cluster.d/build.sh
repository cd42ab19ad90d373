# shellcheck shell=bash
# Building the pinned binaries (sourced by scripts/cluster): the Go build
# helpers the components' <c>_build use, the chart tools every checkout needs
# (helm, ct, yamllint, yamale), and the locked, cached build of a component list.
#
# Everything goes to a cache outside the repo, keyed by the versions
# (KEY_DIR, lib.sh); a binary is rebuilt only when its stamp names another
# version, so a warm build takes seconds.

CT_ETC_DIR="$KEY_DIR/ct-etc"

go_env() {
  export GOMODCACHE="${LOCUST_OPERATOR_GOMODCACHE:-$CACHE_ROOT/gomod}"
  export GOCACHE="${LOCUST_OPERATOR_GOCACHE:-$CACHE_ROOT/go-build}"
  export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
  # Checksums are verified against the module proxy's sum database as usual.
  mkdir -p "$GOMODCACHE" "$GOCACHE"
  command -v go >/dev/null || die "go is not on PATH (needed to build the binaries)"
}

# stamp_ok NAME VERSION: the cached binary exists and was built for VERSION.
stamp_ok() {
  [[ -x "$BIN_DIR/$1" && -f "$BIN_DIR/.stamp-$1" && "$(cat "$BIN_DIR/.stamp-$1")" == "$2" ]]
}

# install_bins TMPDIR VERSION NAME...: atomically move built binaries in place.
install_bins() {
  local tmp="$1" version="$2"; shift 2
  local name
  for name in "$@"; do
    [[ -x "$tmp/$name" ]] || die "build did not produce $name"
    mv -f "$tmp/$name" "$BIN_DIR/$name"
    printf '%s\n' "$version" > "$BIN_DIR/.stamp-$name.tmp"
    mv -f "$BIN_DIR/.stamp-$name.tmp" "$BIN_DIR/.stamp-$name"
  done
}

# new_module DIR MODPATH: fresh wrapper module (rebuilt every time: cheap).
new_module() {
  rm -rf "$1"; mkdir -p "$1"
  (cd "$1" && go mod init "$2" >/dev/null 2>&1)
}


# k8s_build MODDIR BINARY...: build k8s.io/kubernetes/cmd/BINARY... at
# KUBERNETES_VERSION from a generated wrapper module in SRC_DIR/MODDIR.
k8s_build() {
  local moddir="$1"; shift
  local bins=("$@") need=0 b
  for b in "${bins[@]}"; do stamp_ok "$b" "$KUBERNETES_VERSION" || need=1; done
  if (( ! need )); then log "${bins[*]} $KUBERNETES_VERSION: cached"; return; fi

  local v="${KUBERNETES_VERSION#v}" major minor staging
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  staging="v0.${v#*.}"   # v1.34.4 -> v0.34.4
  local mod="$SRC_DIR/$moddir"
  log "kubernetes $KUBERNETES_VERSION: generating wrapper module in $mod"
  new_module "$mod" "locust-operator.local/$moddir-bins"
  local upstream
  upstream="$(cd "$mod" && go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["GoMod"])')"
  {
    echo "module locust-operator.local/$moddir-bins"
    echo
    # go / godebug lines copied from the upstream go.mod
    grep -E '^(go|godebug) ' "$upstream"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    echo "replace ("
    # every staging module pinned at v0.0.0 upstream -> its published v0.x.y
    grep -E '^[[:space:]]*k8s\.io/[^[:space:]]+ v0\.0\.0([[:space:]]|$)' "$upstream" \
      | awk -v s="$staging" '{printf "\t%s => %s %s\n", $1, $1, s}' | sort -u
    echo ")"
  } > "$mod/go.mod"
  local pkgs=()
  for b in "${bins[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$b"); done
  {
    printf '//go:build tools\n\npackage tools\n\nimport (\n'
    printf '\t_ "%s"\n' "${pkgs[@]}"
    printf ')\n'
  } > "$mod/tools.go"
  log "kubernetes: resolving modules (go mod tidy)"
  (cd "$mod" && go mod tidy -e >/dev/null) || die "go mod tidy failed for kubernetes"

  local ldflags="-s -w" pkg
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  local tmp; tmp="$(mktemp -d "$KEY_DIR/tmp-$moddir.XXXXXX")"
  log "kubernetes: go build ${bins[*]} (cold: ~11 min on 2 cores for the control plane; with a warm Go build cache: ~30 s)"
  local t0=$SECONDS
  (cd "$mod" && go build -tags selinux,notest -trimpath -ldflags "$ldflags" -o "$tmp/" "${pkgs[@]}") \
    || { rm -rf "$tmp"; die "kubernetes build failed"; }
  install_bins "$tmp" "$KUBERNETES_VERSION" "${bins[@]}"
  rm -rf "$tmp"
  log "kubernetes: built ${bins[*]} in $((SECONDS - t0))s"
}

# go_install_tool NAME VERSION PKG@VERSION [ldflags]: tools whose go.mod has no
# replace directives build directly with `go install pkg@version`.
go_install_tool() {
  local name="$1" version="$2" target="$3" ldflags="${4:-}"
  if stamp_ok "$name" "$version"; then log "$name $version: cached"; return; fi
  local tmp t0=$SECONDS; tmp="$(mktemp -d "$KEY_DIR/tmp-$name.XXXXXX")"
  log "$name $version: go install $target"
  # -mod=mod is not accepted by `go install pkg@version`.
  GOBIN="$tmp" GOFLAGS='' go install -trimpath -ldflags "-s -w $ldflags" "$target" \
    || { rm -rf "$tmp"; die "$name build failed"; }
  install_bins "$tmp" "$version" "$name"
  rm -rf "$tmp"
  log "$name: built in $((SECONDS - t0))s"
}

# wrapper_build NAME VERSION MODULE PKG [ldflags]: build PKG from a generated
# wrapper module that requires MODULE@VERSION. Used when `go install pkg@v`
# does not work: etcd's server module has (relative) replace directives, and
# for chart-testing the proxy answers 403 on @v/list, which `go install` and
# `go get` read for deprecation notices.
wrapper_build() {
  local name="$1" version="$2" module="$3" pkg="$4" ldflags="${5:-}"
  if stamp_ok "$name" "$version"; then log "$name $version: cached"; return; fi
  local mod="$SRC_DIR/$name" tmp t0=$SECONDS
  log "$name $version: building $pkg via wrapper module $mod"
  new_module "$mod" "locust-operator.local/$name-bin"
  printf '\nrequire %s %s\n' "$module" "$version" >> "$mod/go.mod"
  printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" > "$mod/tools.go"
  (cd "$mod" && go mod tidy -e >/dev/null) || die "resolving $module@$version failed"
  tmp="$(mktemp -d "$KEY_DIR/tmp-$name.XXXXXX")"
  (cd "$mod" && go build -trimpath -ldflags "-s -w $ldflags" -o "$tmp/$name" "$pkg") \
    || { rm -rf "$tmp"; die "$name build failed"; }
  install_bins "$tmp" "$version" "$name"
  rm -rf "$tmp"
  log "$name: built in $((SECONDS - t0))s"
}

# The chart tools: not part of a cluster, but built with it (tests/chart, scripts/lint-chart).
tools_build() {
  build_helm
  build_ct
  build_py_tools
}

tools_built() { bins_present helm ct; }

build_helm() {
  # Offline capabilities (helm template / lint) default to the cluster's minor.
  local v="${KUBERNETES_VERSION#v}" major minor x=""
  major="${v%%.*}"; minor="${v#*.}"; minor="${minor%%.*}"
  x+=" -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  x+=" -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
  local p
  for p in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    x+=" -X $p.k8sVersionMajor=$major -X $p.k8sVersionMinor=$minor"
  done
  go_install_tool helm "$HELM_VERSION+k8s$minor" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" "$x"
}

build_ct() {
  wrapper_build ct "$CT_VERSION" github.com/helm/chart-testing/v3 github.com/helm/chart-testing/v3/ct \
    "-X github.com/helm/chart-testing/v3/ct/cmd.Version=$CT_VERSION"
  # ct's default lint config and Chart.yaml schema ship in the module.
  if [[ -f "$CT_ETC_DIR/.stamp" && "$(cat "$CT_ETC_DIR/.stamp")" == "$CT_VERSION" ]]; then return; fi
  local dir
  dir="$(cd "$SRC_DIR" && GOFLAGS='' go mod download -json "github.com/helm/chart-testing/v3@$CT_VERSION" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  rm -rf "$CT_ETC_DIR.tmp"; mkdir -p "$CT_ETC_DIR.tmp"
  cp "$dir/etc/chart_schema.yaml" "$dir/etc/lintconf.yaml" "$CT_ETC_DIR.tmp/"
  chmod 0644 "$CT_ETC_DIR.tmp/"*
  printf '%s\n' "$CT_VERSION" > "$CT_ETC_DIR.tmp/.stamp"
  rm -rf "$CT_ETC_DIR"; mv "$CT_ETC_DIR.tmp" "$CT_ETC_DIR"
  log "ct: copied etc/chart_schema.yaml and etc/lintconf.yaml to $CT_ETC_DIR"
}

# yamllint and yamale (ct runs them) from PyPI, in a venv linked into BIN_DIR.
build_py_tools() {
  local want="yamllint==$YAMLLINT_VERSION yamale==$YAMALE_VERSION"
  if stamp_ok yamllint "$want" && stamp_ok yamale "$want"; then
    log "yamllint $YAMLLINT_VERSION, yamale $YAMALE_VERSION: cached"; return
  fi
  log "yamllint $YAMLLINT_VERSION, yamale $YAMALE_VERSION: pip install into $KEY_DIR/venv"
  rm -rf "$KEY_DIR/venv"
  python3 -m venv "$KEY_DIR/venv" || die "python3 -m venv failed (install python3-venv)"
  "$KEY_DIR/venv/bin/pip" install --quiet --disable-pip-version-check \
    "yamllint==$YAMLLINT_VERSION" "yamale==$YAMALE_VERSION" || die "pip install failed"
  local name
  for name in yamllint yamale; do
    ln -sfn "../venv/bin/$name" "$BIN_DIR/$name"
    printf '%s\n' "$want" > "$BIN_DIR/.stamp-$name"
  done
}

# build_all: <c>_build of every chosen component, then the tools; one build at
# a time per cache key (e.g. two test sessions starting).
build_all() {
  local t0=$SECONDS
  log "cache: $KEY_DIR"
  mkdir -p "$BIN_DIR" "$SRC_DIR"
  (
    if ! flock -n 9; then
      log "another build holds $KEY_DIR/.build.lock; waiting for it"
      flock 9
    fi
    # Stale temp dirs from an interrupted build (we hold the build lock).
    rm -rf "$KEY_DIR"/tmp-* "$CT_ETC_DIR.tmp"
    go_env
    each build
    tools_build
  ) 9>"$KEY_DIR/.build.lock"
  log "build done in $((SECONDS - t0))s; binaries in $BIN_DIR"
}

# ensure_built: build first when a binary of a chosen component is missing.
ensure_built() {
  local c
  for c in "${COMPONENTS[@]}" tools; do
    if declare -F "${c}_built" >/dev/null && ! "${c}_built"; then
      log "binaries missing in $BIN_DIR: running 'build' first (a cold build takes ~20 min on 2 cores)"
      build_all
      return
    fi
  done
}

# bins_present NAME...: every binary is in BIN_DIR.
bins_present() {
  local b
  for b in "$@"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done
}
