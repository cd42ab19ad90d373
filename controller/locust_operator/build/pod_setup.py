"""What a test's pods need before Locust starts: files from git, Python packages, import paths (pure).

Both are init containers of the master and worker pods: `fetch-test-files`
(spec.testFiles.git, the operator's git image) and `install-requirements`
(spec.python, pip of the test's own image, so the interpreter and ABI match).
They are hardened like the Locust containers, get the operator's init
container resources, and end with FallbackToLogsOnError so that a failure's
last lines reach the pod's status (rules/crash.py reads them), as does the
commit fetched (written to the termination log, recorded in the status).
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from typing import Any

from locust_operator.api.config import OperatorConfig
from locust_operator.api.contract import FETCH_CONTAINER, INSTALL_CONTAINER, LOAD_SHAPE_ANNOTATION
from locust_operator.build.load_shape import SHAPE_DIR, SHAPE_FILE

OPERATOR_DIR = "/opt/locust-operator"
# The library ConfigMap, mounted a second time as the package `lib` under this
# directory, so the Go operator's `from lib.helper import ...` works for any libMountPath.
LIB_PACKAGE_DIR = f"{OPERATOR_DIR}/import"
PACKAGES_DIR = f"{OPERATOR_DIR}/python"  # pip install --target, on PYTHONPATH
REQUIREMENTS_DIR = f"{OPERATOR_DIR}/requirements"
GIT_DIR = f"{OPERATOR_DIR}/git"  # the fetched repository is GIT_DIR/repo
GIT_SECRET_DIR = f"{OPERATOR_DIR}/git-secret"

LIB_VOLUME, PACKAGES_VOLUME, REQUIREMENTS_VOLUME = "locust-lib", "python-packages", "python-requirements"
GIT_VOLUME, GIT_SECRET_VOLUME = "test-files-git", "git-credentials"

# POSIX sh (the git image may be Alpine's busybox or Debian's dash). Depth 1 by
# `fetch` of the ref, which takes a branch, a tag or a commit SHA alike, tried four
# times 1, 2 and 4 s apart (a pod's network or DNS may not answer at its first seconds;
# seen twice in CI under load);
# the user values arrive as environment variables, never inside the script.
FETCH_SCRIPT = f"""set -eu
export HOME={GIT_DIR}/home
mkdir -p "$HOME"
dest={GIT_DIR}/repo
git init -q "$dest"
cd "$dest"
git remote add origin "$GIT_URL"
if [ -n "${{GIT_TOKEN:-}}" ]; then
  git config credential.helper \
'!f() {{ echo "username=${{GIT_USERNAME:-git}}"; echo "password=$GIT_TOKEN"; }}; f'
fi
if [ -f {GIT_SECRET_DIR}/ssh-privatekey ]; then
  cp {GIT_SECRET_DIR}/ssh-privatekey "$HOME/id" && chmod 600 "$HOME/id"
  if [ -f {GIT_SECRET_DIR}/known_hosts ]; then
    hosts="-o UserKnownHostsFile={GIT_SECRET_DIR}/known_hosts -o StrictHostKeyChecking=yes"
  else
    hosts="-o UserKnownHostsFile=$HOME/known_hosts -o StrictHostKeyChecking=accept-new"
  fi
  export GIT_SSH_COMMAND="ssh -i $HOME/id -o IdentitiesOnly=yes $hosts"
fi
attempt=1
delay=1
until git fetch -q --depth 1 origin "${{GIT_REF:-HEAD}}"; do
  status=$?
  if [ "$attempt" -ge 4 ]; then exit "$status"; fi
  echo "fetch attempt $attempt failed (exit $status); again in $delay s" >&2
  sleep "$delay"
  attempt=$((attempt + 1))
  delay=$((delay * 2))
done
git -c advice.detachedHead=false checkout -q FETCH_HEAD
commit=$(git rev-parse HEAD)
if [ -n "${{GIT_PATH:-}}" ] && [ ! -d "$dest/$GIT_PATH" ]; then
  echo "fatal: path '$GIT_PATH' is not a directory of the repository at $commit" >&2
  exit 1
fi
printf '%s' "$commit" > /dev/termination-log
echo "fetched ${{GIT_REF:-HEAD}} of $GIT_URL: $commit"
"""

# With spec.python.credentialsSecretRef: pip's index URLs get the Secret's username
# and password (URL-quoted) here, inside the pod, so they never appear in its spec.
INSTALL_WITH_CREDENTIALS = """import os, runpy, sys, urllib.parse
user = urllib.parse.quote(os.environ["PIP_INDEX_USERNAME"], safe="")
password = urllib.parse.quote(os.environ["PIP_INDEX_PASSWORD"], safe="")
args = sys.argv[1:]
for i, arg in enumerate(args[:-1]):
    if arg in ("--index-url", "--extra-index-url"):
        scheme, rest = args[i + 1].split("://", 1)
        args[i + 1] = f"{scheme}://{user}:{password}@{rest}"
sys.argv = ["pip", *args]
runpy.run_module("pip", run_name="__main__")
"""


def _secret_env(name: str, secret: str, key: str, optional: bool = False) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": key}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _init_container(name: str, image: str, pull_policy: str, command: list[str], env: list[dict[str, Any]],
                    mounts: list[dict[str, Any]], config: OperatorConfig,
                    security: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name, "image": image, "imagePullPolicy": pull_policy, "command": command,
        "resources": config.initContainers.resources, "securityContext": security,
        "terminationMessagePolicy": "FallbackToLogsOnError", "volumeMounts": mounts}
    if env:
        container["env"] = env
    return container


def is_ssh(url: str) -> bool:
    return url.startswith("ssh://") or "://" not in url


def fetch_container(spec: Mapping[str, Any], config: OperatorConfig,
                    security: dict[str, Any]) -> dict[str, Any] | None:
    git = (spec.get("testFiles") or {}).get("git")
    if not git:
        return None
    env = [{"name": "GIT_URL", "value": git["url"]}]
    if git.get("ref"):
        env.append({"name": "GIT_REF", "value": git["ref"]})
    if git.get("path"):
        env.append({"name": "GIT_PATH", "value": git["path"].strip("/")})
    mounts: list[dict[str, Any]] = [{"name": GIT_VOLUME, "mountPath": GIT_DIR}]
    if git.get("secretRef") and is_ssh(git["url"]):
        mounts.append({"name": GIT_SECRET_VOLUME, "mountPath": GIT_SECRET_DIR, "readOnly": True})
    elif git.get("secretRef"):
        env += [_secret_env("GIT_USERNAME", git["secretRef"], "username", optional=True),
                _secret_env("GIT_TOKEN", git["secretRef"], "token")]
    return _init_container(FETCH_CONTAINER, config.initContainers.gitImage,
                           config.initContainers.gitPullPolicy, ["sh", "-c", FETCH_SCRIPT], env, mounts,
                           config, security)


def pip_arguments(python: Mapping[str, Any]) -> list[str]:
    """`pip install` into the packages volume; requirement strings are never options (the CRD)."""
    args = ["install", "--no-cache-dir", "--disable-pip-version-check", "--no-input",
            "--no-warn-script-location", "--target", PACKAGES_DIR]
    if python.get("indexUrl"):
        args += ["--index-url", python["indexUrl"]]
    for url in python.get("extraIndexUrls") or []:
        args += ["--extra-index-url", url]
    for host in python.get("trustedHosts") or []:
        args += ["--trusted-host", host]
    ref = python.get("requirementsConfigMapRef")
    if ref:
        args += ["--requirement", f"{REQUIREMENTS_DIR}/{ref.get('key', 'requirements.txt')}"]
    return args + list(python.get("requirements") or [])


def install_container(spec: Mapping[str, Any], config: OperatorConfig,
                      security: dict[str, Any]) -> dict[str, Any] | None:
    python = spec.get("python")
    if not python:
        return None
    mounts: list[dict[str, Any]] = [{"name": PACKAGES_VOLUME, "mountPath": PACKAGES_DIR}]
    if python.get("requirementsConfigMapRef"):
        mounts.append({"name": REQUIREMENTS_VOLUME, "mountPath": REQUIREMENTS_DIR, "readOnly": True})
    env: list[dict[str, Any]] = []
    command = ["python3", "-m", "pip", *pip_arguments(python)]
    secret = python.get("credentialsSecretRef")
    if secret:
        env = [_secret_env("PIP_INDEX_USERNAME", secret, "username"),
               _secret_env("PIP_INDEX_PASSWORD", secret, "password")]
        command = ["python3", "-c", INSTALL_WITH_CREDENTIALS, *pip_arguments(python)]
    return _init_container(INSTALL_CONTAINER, spec["image"], spec["imagePullPolicy"], command, env, mounts,
                           config, security)


def init_containers(spec: Mapping[str, Any], config: OperatorConfig,
                    security: dict[str, Any]) -> list[dict[str, Any]]:
    """The init containers of both roles, in order: the files, then the packages."""
    return [c for c in (fetch_container(spec, config, security), install_container(spec, config, security))
            if c is not None]


def _empty_dir(name: str, config: OperatorConfig) -> dict[str, Any]:
    return {"name": name, "emptyDir": {"sizeLimit": config.initContainers.volumeSizeLimit}}


def setup_volumes(spec: Mapping[str, Any], config: OperatorConfig) -> list[dict[str, Any]]:
    """The volumes the init containers fill or read."""
    volumes: list[dict[str, Any]] = []
    git = (spec.get("testFiles") or {}).get("git")
    if git:
        volumes.append(_empty_dir(GIT_VOLUME, config))
        if git.get("secretRef") and is_ssh(git["url"]):
            volumes.append({"name": GIT_SECRET_VOLUME,
                            "secret": {"secretName": git["secretRef"], "defaultMode": 0o440}})
    python = spec.get("python")
    if python:
        volumes.append(_empty_dir(PACKAGES_VOLUME, config))
        ref = python.get("requirementsConfigMapRef")
        if ref:
            key = ref.get("key", "requirements.txt")
            volumes.append({"name": REQUIREMENTS_VOLUME, "configMap": {
                "name": ref["name"], "items": [{"key": key, "path": key}]}})
    return volumes


def setup_mounts(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Mounts of the Locust containers: the fetched files, the packages, the lib as package `lib`."""
    files = spec.get("testFiles") or {}
    mounts: list[dict[str, Any]] = []
    git = files.get("git")
    if git:
        sub = posixpath.join("repo", git["path"].strip("/")) if git.get("path") else "repo"
        mounts.append({"name": GIT_VOLUME, "mountPath": files["srcMountPath"], "subPath": sub,
                       "readOnly": True})
    if files.get("libConfigMapRef"):
        mounts.append({"name": LIB_VOLUME, "mountPath": f"{LIB_PACKAGE_DIR}/lib", "readOnly": True})
    if spec.get("python"):
        mounts.append({"name": PACKAGES_VOLUME, "mountPath": PACKAGES_DIR, "readOnly": True})
    return mounts


def python_path(spec: Mapping[str, Any]) -> list[str]:
    """Directories the operator puts first on PYTHONPATH (empty: it sets none)."""
    files = spec.get("testFiles") or {}
    path = [files["libMountPath"], LIB_PACKAGE_DIR] if files.get("libConfigMapRef") else []
    return path + ([PACKAGES_DIR] if spec.get("python") else [])


def with_python_path(env: list[dict[str, Any]], spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """`env` with the operator's PYTHONPATH, keeping the user's after it.

    A user's PYTHONPATH value is merged into one entry; one from a Secret or
    ConfigMap is kept and referenced with Kubernetes' `$(PYTHONPATH)` expansion
    (an entry sees the variables defined before it).
    """
    ours = ":".join(python_path(spec))
    if not ours:
        return env
    theirs = [e for e in env if e.get("name") == "PYTHONPATH"]
    if not theirs:
        return [*env, {"name": "PYTHONPATH", "value": ours}]
    last = theirs[-1]
    if "valueFrom" in last:
        return [*env, {"name": "PYTHONPATH", "value": f"{ours}:$(PYTHONPATH)"}]
    # Kubernetes keeps the last of duplicate names: that one is merged, in its place.
    merged = {"name": "PYTHONPATH", "value": f"{ours}:{last['value']}" if last.get("value") else ours}
    return [merged if e is last else e for e in env if e is last or e.get("name") != "PYTHONPATH"]


def load_shape_volume() -> tuple[dict[str, Any], dict[str, Any]]:
    """The master's volume and mount of the generated LoadTestShape (spec.loadShape).

    The file is the pod's annotation, written into the pod by the kubelet: no
    object to create or own, nothing more for the RBAC.
    """
    item = {"path": SHAPE_FILE, "fieldRef": {"fieldPath": f"metadata.annotations['{LOAD_SHAPE_ANNOTATION}']"}}
    return ({"name": "load-shape", "downwardAPI": {"items": [item]}},
            {"name": "load-shape", "mountPath": SHAPE_DIR, "readOnly": True})
