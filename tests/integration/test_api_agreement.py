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
from tests.support.examples import EXAMPLE_TESTS, EXAMPLES, load_example
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


def _schedule(**spec: Any) -> dict[str, Any]:
    manifest: dict[str, Any] = yaml.safe_load((EXAMPLES / "schedules" / "nightly.yaml").read_text())
    manifest["spec"].update(spec)
    return manifest


def _without_image(manifest: dict[str, Any]) -> dict[str, Any]:
    del manifest["spec"]["template"]["spec"]["image"]
    return manifest


def _named(manifest: dict[str, Any], name: str) -> dict[str, Any]:
    manifest["metadata"]["name"] = name
    return manifest


# LocustTestSchedule: the cron line, the zone, the template (the LocustTest's own rules), the name.
SCHEDULE_CASES = [
    pytest.param(_schedule(schedule="61 3 * * *"), "spec.schedule", id="minute-out-of-range"),
    pytest.param(_schedule(schedule="0 3 * *"), "spec.schedule", id="four-fields"),
    pytest.param(_schedule(schedule="@reboot"), "spec.schedule", id="reboot-macro"),
    pytest.param(_schedule(schedule="0 0 3 * * *"), "spec.schedule", id="seconds-field"),
    pytest.param(_schedule(timeZone="Mars/Base"), "spec.timeZone", id="unknown-zone"),
    pytest.param(_schedule(concurrencyPolicy="Sometimes"), "spec.concurrencyPolicy", id="policy"),
    pytest.param(_schedule(failedRunsHistoryLimit=101), "spec.failedRunsHistoryLimit", id="history-limit"),
    pytest.param(_without_image(_schedule()), "spec.template.spec.image", id="template-without-image"),
    pytest.param(_schedule(template={"spec": {**_schedule()["spec"]["template"]["spec"],
                                              "baseline": {"run": "x", "medianOf": 2}}}),
                 "spec.template.spec.baseline.medianOf", id="template-baseline-exclusive"),
    pytest.param(_named(_schedule(), "a" * 43), "metadata.name", id="name-too-long"),
    pytest.param(_named(_schedule(), "1nightly"), "metadata.name", id="name-starts-with-a-digit"),
]


@pytest.mark.parametrize(("manifest", "field"), SCHEDULE_CASES)
def test_api_server_and_render_reject_the_same_schedule_field(cluster: Cluster, namespace: str,
                                                              manifest: dict[str, Any], field: str) -> None:
    code, stderr = _server_dry_run(cluster, namespace, manifest)
    assert code != 0, "the API server accepted a schedule render rejects"
    assert field in stderr, f"API server error does not name {field}: {stderr}"
    _, problems = validate(manifest)
    assert field in [p.path for p in problems], problems


@pytest.mark.parametrize("schedule", ["0 3 * * *", "*/15 9-17 * JAN-mar mon-FRI", "@daily",
                                      "0,30 1-5/2 1 */2 0"])
def test_api_server_and_render_accept_the_same_schedules(cluster: Cluster, namespace: str,
                                                         schedule: str) -> None:
    manifest = _schedule(schedule=schedule)
    code, stderr = _server_dry_run(cluster, namespace, manifest)
    assert code == 0, stderr
    assert validate(manifest)[1] == []
