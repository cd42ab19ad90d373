"""The Gateway API's HTTPRoute CRD, from the Go module proxy (its release page is unreachable).

`sigs.k8s.io/gateway-api` ships its CRDs in the module itself
(config/crd/standard/), so `go mod download` fetches them the way the cluster
build fetches Kubernetes: into the project's Go module cache, once.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

MODULE = "sigs.k8s.io/gateway-api@v1.2.1"  # HTTPRoute v1 (standard channel)
HTTPROUTE_CRD = "config/crd/standard/gateway.networking.k8s.io_httproutes.yaml"


def httproute_crd() -> Path:
    """The HTTPRoute CRD file of MODULE, downloaded when it is not cached yet."""
    cache = Path(os.environ.get("LOCUST_OPERATOR_CACHE", Path.home() / ".cache" / "locust-operator"))
    env = {**os.environ, "GOMODCACHE": os.environ.get("LOCUST_OPERATOR_GOMODCACHE", str(cache / "gomod")),
           "GOFLAGS": "-mod=mod", "GO111MODULE": "on"}
    with tempfile.TemporaryDirectory() as scratch:  # outside any go.mod
        done = subprocess.run(["go", "mod", "download", "-json", MODULE], cwd=scratch, env=env,
                              capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"go mod download {MODULE} failed: {(done.stdout + done.stderr).strip()[-1000:]}")
    return Path(json.loads(done.stdout)["Dir"]) / HTTPROUTE_CRD
