# shellcheck shell=bash
# ensure_venv: a cached Python venv with the package and its test dependencies.
# Keyed by pyproject.toml (a dependency change builds a new one); the package
# itself is installed editable each time, so the venv runs this checkout.
# Sets VENV and puts its bin/ first on PATH.
ensure_venv() {
  local cache="${LOCUST_OPERATOR_CACHE:-$HOME/.cache/locust-operator}"
  local python="${PYTHON:-python3}"
  local key
  key="$("$python" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml","rb").read()).hexdigest()[:12])')"
  VENV="$cache/venv-$key"
  if [[ ! -f "$VENV/.complete" ]]; then
    printf '[venv] creating %s (first run: a minute or two)\n' "$VENV"
    rm -rf "$VENV"  # an interrupted earlier attempt (venvs cannot be moved into place)
    "$python" -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet '.[test]'
    touch "$VENV/.complete"
  fi
  "$VENV/bin/pip" install --quiet --no-deps --force-reinstall -e .
  export PATH="$VENV/bin:$PATH"
}
