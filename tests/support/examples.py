"""The repository's examples and the base LocustTest the tests build on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# Every example LocustTest (configmaps.yaml and demo-target.yaml hold what they need,
# v1/ is for migrate).
EXAMPLE_TESTS = sorted(p.stem for p in EXAMPLES.glob("*.yaml")
                       if p.stem not in ("configmaps", "demo-target"))


BASE_TEST: dict[str, Any] = {
    "apiVersion": "locust.io/v2",
    "kind": "LocustTest",
    "metadata": {"name": "demo", "namespace": "load"},
    "spec": {
        "image": "locustio/locust:2.43.3",
        "master": {"command": "--locustfile /lotest/src/demo.py --host http://target -u 10 -r 2"},
        "worker": {"command": "--locustfile /lotest/src/demo.py", "replicas": 3},
        "testFiles": {"configMapRef": "demo-locustfile"},
    },
}



def load_example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    return loaded
