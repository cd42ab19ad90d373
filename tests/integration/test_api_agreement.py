"""The API server and `locust-operator render` reject the same bad manifests.

Both read the one CRD; this proves the offline evaluation of its schema and
CEL rules matches the real API server, field by field.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from locust_operator.validation.validator import validate
from tests.support.cluster import Cluster
from tests.support.examples import EXAMPLE_TESTS, load_example
from tests.support.operator import install_crd
from tests.unit.bad_examples import BAD_EXAMPLES, RESERVED_VOLUME_NAMES, bad_manifest, with_volume


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> None:
    install_crd(cluster)


def _server_dry_run(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> tuple[int, str]:
    manifest = {**manifest, "metadata": {**manifest["metadata"], "namespace": namespace}}
    result = cluster.kubectl("create", "-n", namespace, "--dry-run=server", "-o", "name", "-f", "-",
                             input=yaml.safe_dump(manifest), check=False)
    return result.returncode, result.stderr


@pytest.mark.parametrize(("mutation", "field"), [pytest.param(m, f, id=i) for i, m, f, _ in BAD_EXAMPLES])
def test_api_server_and_render_reject_the_same_field(cluster: Cluster, namespace: str, mutation: Any,
                                                     field: str) -> None:
    manifest = bad_manifest(mutation)
    code, stderr = _server_dry_run(cluster, namespace, manifest)
    assert code != 0, "the API server accepted a manifest render rejects"
    assert field in stderr, f"API server error does not name {field}: {stderr}"
    _, problems = validate(manifest)
    assert field in [p.path for p in problems]


@pytest.mark.parametrize(("name", "volume", "reserved"), RESERVED_VOLUME_NAMES)
def test_api_server_and_render_agree_on_reserved_volume_names(cluster: Cluster, namespace: str, name: str,
                                                              volume: str, reserved: bool) -> None:
    manifest = with_volume(name, volume)
    code, stderr = _server_dry_run(cluster, namespace, manifest)
    assert (code != 0) is reserved, stderr
    assert ("spec.volumes" in stderr) is reserved, stderr
    assert bool(validate(manifest)[1]) is reserved


@pytest.mark.parametrize("example", EXAMPLE_TESTS)
def test_api_server_accepts_every_example(cluster: Cluster, namespace: str, example: str) -> None:
    code, stderr = _server_dry_run(cluster, namespace, load_example(example))
    assert code == 0, stderr
