"""Invalid LocustTests and the field each must be rejected for.

Shared by the unit tests (render must reject them) and the integration tests
(the API server must reject them too, for the same field).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tests.support.examples import BASE_TEST

Mutation = Callable[[dict[str, Any]], None]


def _set(path: str, value: Any) -> Mutation:
    def mutate(test: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = test
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return mutate


def _drop(path: str) -> Mutation:
    def mutate(test: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = test
        for key in parents:
            node = node[key]
        del node[last]

    return mutate


# (id, mutation, field path named in the error, words of the message)
BAD_EXAMPLES: list[tuple[str, Mutation, str, str]] = [
    ("replicas-0", _set("spec.worker.replicas", 0), "spec.worker.replicas", ">= 1"),
    ("replicas-501", _set("spec.worker.replicas", 501), "spec.worker.replicas", "<= 500"),
    ("replicas-string", _set("spec.worker.replicas", "3"), "spec.worker.replicas", "integer"),
    ("missing-image", _drop("spec.image"), "spec.image", "required"),
    ("missing-master-command", _drop("spec.master.command"), "spec.master.command", "required"),
    ("missing-replicas", _drop("spec.worker.replicas"), "spec.worker.replicas", "required"),
    ("name-too-long", _set("metadata.name", "n" * 57), "metadata.name", "at most 56"),
    ("bad-pull-policy", _set("spec.imagePullPolicy", "Sometimes"), "spec.imagePullPolicy",
     "Always, IfNotPresent, Never"),
    ("bad-otel-protocol", _set("spec.observability", {"openTelemetry": {
        "enabled": True, "endpoint": "http://c:4317", "protocol": "udp"}}),
     "spec.observability.openTelemetry.protocol", "grpc, http/protobuf"),
    ("bad-mount-target", _set("spec.volumes", [{"name": "v", "emptyDir": {}}]) , "", ""),
    ("otel-without-endpoint", _set("spec.observability", {"openTelemetry": {"enabled": True}}),
     "spec.observability.openTelemetry.endpoint", "required when enabled"),
    # The run ceiling: at least a second, at most 366 days.
    ("max-duration-0", _set("spec.maxDurationSeconds", 0), "spec.maxDurationSeconds", ">= 1"),
    ("max-duration-over-a-year", _set("spec.maxDurationSeconds", 31622401), "spec.maxDurationSeconds",
     "<= 31622400"),
    # Thresholds: decimals are strings with a pattern, times are non-negative integers.
    ("threshold-fail-ratio-over-1", _set("spec.thresholds", {"maxFailRatio": "1.5"}),
     "spec.thresholds.maxFailRatio", "must match"),
    ("threshold-negative-rps", _set("spec.thresholds", {"minRps": "-1"}), "spec.thresholds.minRps",
     "must match"),
    ("threshold-negative-p95", _set("spec.thresholds", {"responseTimeMs": {"p95": -1}}),
     "spec.thresholds.responseTimeMs.p95", ">= 0"),
    ("threshold-duplicate-request", _set("spec.thresholds", {"perRequest": [{"name": "/a"}, {"name": "/a"}]}),
     "spec.thresholds.perRequest", "unique by name and method"),
    ("threshold-request-without-name", _set("spec.thresholds", {"perRequest": [{"method": "GET"}]}),
     "spec.thresholds.perRequest[0].name", "required"),
    ("volume-mount-overlaps-src", lambda t: (
        _set("spec.volumes", [{"name": "data", "emptyDir": {}}])(t),
        _set("spec.volumeMounts", [{"name": "data", "mountPath": "/lotest/src/data"}])(t)),
     "spec.volumeMounts", "overlap testFiles.srcMountPath"),
    ("secret-mount-overlaps-lib", lambda t: (
        _set("spec.testFiles.libConfigMapRef", "lib")(t),
        _set("spec.env", {"secretMounts": [{"name": "s", "mountPath": "/opt/locust"}]})(t)),
     "spec.env.secretMounts", "overlap testFiles.libMountPath"),
    ("volume-named-secret-prefix", lambda t: (
        _set("spec.volumes", [{"name": "secret-x", "emptyDir": {}}])(t)),
     "spec.volumes", "must not start with 'secret-'"),
    ("volume-named-locust-lib", _set("spec.volumes", [{"name": "locust-lib", "emptyDir": {}}]),
     "spec.volumes", "'locust-lib'"),
    ("volume-named-like-master", _set("spec.volumes", [{"name": "demo-master", "emptyDir": {}}]),
     "spec.volumes", "'<name>-master'"),
    # A dotted test name: the children (and their volumes) are named with dashes.
    ("volume-named-like-dotted-worker", lambda t: (
        _set("metadata.name", "my-test.v2")(t),
        _set("spec.volumes", [{"name": "my-test-v2-worker", "emptyDir": {}}])(t)),
     "spec.volumes", "'<name>-worker'"),
    ("mount-without-volume", _set("spec.volumeMounts", [{"name": "nope", "mountPath": "/data"}]),
     "spec.volumeMounts", "must name a volume"),
    ("unbalanced-quote", _set("spec.master.command", "--host 'http://a b"), "spec.master.command",
     "unbalanced quote"),
    ("unknown-field", _set("spec.workers", 3), "spec.workers", "unknown field"),
    ("bad-mount-target-enum", lambda t: (
        _set("spec.volumes", [{"name": "data", "emptyDir": {}}])(t),
        _set("spec.volumeMounts", [{"name": "data", "mountPath": "/data", "target": "all"}])(t)),
     "spec.volumeMounts[0].target", "master, worker, both"),
    ("negative-autoquit", _set("spec.master.autoquit", {"timeout": -1}),
     "spec.master.autoquit.timeout", ">= 0"),
    ("bad-toleration-type", _set("spec.scheduling", {"tolerations": "all"}),
     "spec.scheduling.tolerations", "array"),
    # Tests without an image: files from git, Python packages, load stages.
    ("git-and-configmap", _set("spec.testFiles", {"configMapRef": "src", "git": {"url": "https://g/r.git"}}),
     "spec.testFiles.git", "mutually exclusive"),
    ("git-without-url", _set("spec.testFiles", {"git": {"ref": "main"}}), "spec.testFiles.git.url",
     "required"),
    ("git-bad-url", _set("spec.testFiles", {"git": {"url": "file:///etc"}}), "spec.testFiles.git.url",
     "must match"),
    ("git-ref-option", _set("spec.testFiles", {"git": {"url": "https://g/r.git", "ref": "--upload-pack=x"}}),
     "spec.testFiles.git.ref", "must match"),
    ("git-path-escapes", _set("spec.testFiles", {"git": {"url": "https://g/r.git", "path": "a/../../etc"}}),
     "spec.testFiles.git.path", "no '..'"),
    ("python-empty", _set("spec.python", {"indexUrl": "https://pypi/simple/"}), "spec.python",
     "requirements or requirementsConfigMapRef is required"),
    ("python-requirement-option", _set("spec.python", {"requirements": ["--index-url=http://evil/"]}),
     "spec.python.requirements[0]", "must match"),
    ("python-index-with-password", _set("spec.python", {"requirements": ["x"],
                                                          "indexUrl": "https://u:p@pypi/simple/"}),
     "spec.python.indexUrl", "must match"),
    ("python-too-many-requirements", _set("spec.python", {"requirements": ["x"] * 101}),
     "spec.python.requirements", "at most 100"),
    ("stages-not-increasing", _set("spec.loadShape", {"stages": [
        {"duration": 60, "users": 10, "spawnRate": 5}, {"duration": 30, "users": 20, "spawnRate": 5}]}),
     "spec.loadShape.stages", "strictly increasing durations"),
    ("stages-same-duration", _set("spec.loadShape", {"stages": [
        {"duration": 30, "users": 10, "spawnRate": 5}, {"duration": 30, "users": 20, "spawnRate": 5}]}),
     "spec.loadShape.stages", "strictly increasing durations"),
    ("stage-zero-spawn-rate",
     _set("spec.loadShape", {"stages": [{"duration": 30, "users": 1, "spawnRate": 0}]}),
     "spec.loadShape.stages[0].spawnRate", "greater than 0"),
    ("stage-negative-users",
     _set("spec.loadShape", {"stages": [{"duration": 30, "users": -1, "spawnRate": 1}]}),
     "spec.loadShape.stages[0].users", ">= 0"),
    ("stages-empty", _set("spec.loadShape", {"stages": []}), "spec.loadShape.stages", "non-empty"),
    ("processes-zero", _set("spec.worker.processes", 0), "spec.worker.processes", "from 1 to 64, or auto"),
    ("processes-too-many", _set("spec.worker.processes", 65), "spec.worker.processes", "from 1 to 64"),
    ("processes-a-word", _set("spec.worker.processes", "four"), "spec.worker.processes", "or auto"),
    ("web-path-root", _set("spec.webUI", {"path": "/"}), "spec.webUI.path", "at least 2"),
    ("web-path-trailing-slash", _set("spec.webUI", {"path": "/locust/"}), "spec.webUI.path", "must match"),
    ("web-path-relative", _set("spec.webUI", {"path": "locust/x"}), "spec.webUI.path", "must match"),
    ("web-ingress-without-host", _set("spec.webUI", {"ingress": {"className": "nginx"}}),
     "spec.webUI.ingress.host", "required"),
    ("web-ingress-host-uppercase", _set("spec.webUI", {"ingress": {"host": "Locust.Example.com"}}),
     "spec.webUI.ingress.host", "must match"),
    ("web-route-without-parents", _set("spec.webUI", {"httpRoute": {"parentRefs": []}}),
     "spec.webUI.httpRoute.parentRefs", "non-empty"),
    ("web-basic-auth-without-ingress",
     _set("spec.webUI", {"auth": {"basicAuthSecretRef": "htpasswd"},
                         "httpRoute": {"parentRefs": [{"name": "gw"}]}}),
     "spec.webUI.auth.basicAuthSecretRef", "set webUI.ingress"),
    ("web-keep-too-long", _set("spec.webUI", {"keepAfterRun": 86401}), "spec.webUI.keepAfterRun", "<= 86400"),
    ("processes-in-the-worker-command",
     _set("spec.worker.command", "--locustfile /lotest/src/demo.py --processes 4"),
     "spec.worker", "--processes is set by spec.worker.processes"),
    ("processes-in-worker-extra-args", _set("spec.worker.extraArgs", ["--processes=-1"]),
     "spec.worker", "remove it from worker.command and worker.extraArgs"),
    ("volume-named-python-packages", _set("spec.volumes", [{"name": "python-packages", "emptyDir": {}}]),
     "spec.volumes", "'python-packages'"),
]
# A valid volume without a mount is fine: drop that placeholder row.
BAD_EXAMPLES = [row for row in BAD_EXAMPLES if row[2]]


# (test name, volume name, whether the volume name is reserved): the children,
# and so their volumes, are named with the test name's dots as dashes.
RESERVED_VOLUME_NAMES: list[tuple[str, str, bool]] = [
    ("my-test.v2", "my-test-v2-master", True),
    ("my-test.v2", "my-test-v2-worker", True),
    ("a.b.c", "a-b-c-master", True),
    ("my-test-v2", "my-test-v2-master", True),
    ("n" * 20 + "." + "m" * 35, "n" * 20 + "-" + "m" * 35 + "-worker", True),  # longest name
    ("my-test.v2", "my-test-v3-master", False),
    ("my-test.v2", "my-test-v2-masters", False),
    ("my-test.v2", "test-v2-master", False),
    ("demo", "demo-exporter", False),
]


def with_volume(name: str, volume: str) -> dict[str, Any]:
    test = copy.deepcopy(BASE_TEST)
    test["metadata"]["name"] = name
    test["spec"]["volumes"] = [{"name": volume, "emptyDir": {}}]
    return test


def bad_manifest(mutation: Mutation) -> dict[str, Any]:
    test = copy.deepcopy(BASE_TEST)
    mutation(test)
    return test
