"""The API server's rules for core types, one table in scripts/gen_crd.py: each rule kind
accepts a valid value and rejects one the API server would refuse (in the LocustTest or
in the Job it becomes), naming the field."""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import pytest

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import render
from locust_operator.validation.validator import InvalidLocustTest, parse_quantity, validate
from tests.support.examples import BASE_TEST, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import gen_crd

Edit = Callable[[dict[str, Any]], None]


def put(path: str, value: Any) -> Edit:
    def edit(test: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = test
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return edit


def volume(name: str = "data", **source: Any) -> Edit:
    return put("spec.volumes", [{"name": name, **(source or {"emptyDir": {}})}])


def env_var(**fields: Any) -> Edit:
    return put("spec.env.variables", [{"name": "A", **fields}])


def toleration(**fields: Any) -> Edit:
    return put("spec.scheduling.tolerations", [fields])


def resources(**fields: Any) -> Edit:
    return put("spec.worker.resources", fields)


def node_term(**requirement: Any) -> Edit:
    expression = {"key": "zone", "operator": "In", "values": ["a"], **requirement}
    required = {"nodeSelectorTerms": [{"matchExpressions": [expression]}]}
    return put("spec.scheduling.affinity",
               {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}})


def pod_term(**term: Any) -> Edit:
    required = [{"topologyKey": "kubernetes.io/hostname", **term}]
    return put("spec.scheduling.affinity",
               {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": required}})


def both(*edits: Edit) -> Edit:
    def edit(test: dict[str, Any]) -> None:
        for one in edits:
            one(test)
    return edit


# (rule kind, accepted edit, rejected edit, field named in the problem)
CASES: list[tuple[str, Edit, Edit, str]] = [
    ("dns1123Label", volume("data-1"), volume("data.1"), "spec.volumes[0].name"),
    ("dns1123Subdomain", put("spec.testFiles.configMapRef", "my.files"),
     put("spec.testFiles.configMapRef", "My_files"), "spec.testFiles.configMapRef"),
    ("dns1123SubdomainOrEmpty", put("spec.scheduling.runtimeClassName", ""),
     put("spec.scheduling.runtimeClassName", "-gvisor"), "spec.scheduling.runtimeClassName"),
    ("qualifiedName", node_term(key="example.com/zone"), node_term(key="example.com/"),
     "spec.scheduling.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
     ".nodeSelectorTerms[0].matchExpressions[0].key"),
    ("labelMap", put("spec.master.labels", {"example.com/team": "a" * 63}),
     put("spec.master.labels", {"team": "a" * 64}), "spec.master.labels.team"),
    ("labelMap", put("spec.scheduling.nodeSelector", {"a" * 63: ""}),
     put("spec.scheduling.nodeSelector", {"a" * 64: ""}), "spec.scheduling.nodeSelector"),
    ("annotationMap", put("spec.worker.annotations", {"Example.com/Note": "x" * 1000}),
     put("spec.worker.annotations", {"note!": "x"}), "spec.worker.annotations"),
    ("annotationMap", put("spec.worker.annotations", {"n": "x" * (256 * 1024 - 1)}),
     put("spec.worker.annotations", {"n": "x" * (256 * 1024)}), "spec.worker.annotations"),
    ("nonNegativeQuantity", resources(limits={"memory": "1.5Gi", "cpu": 2}),
     resources(limits={"memory": "1.5gi"}), "spec.worker.resources.limits.memory"),
    ("nonNegativeQuantity", volume(emptyDir={"sizeLimit": "-0"}), volume(emptyDir={"sizeLimit": "-1"}),
     "spec.volumes[0].emptyDir.sizeLimit"),
    ("containerResourceList", resources(requests={"ephemeral-storage": "1G"}),
     resources(requests={"storage": "1G"}), "spec.worker.resources.requests"),
    ("requestsWithinLimits", resources(requests={"cpu": "1000m"}, limits={"cpu": 1}),
     resources(requests={"cpu": "1001m"}, limits={"cpu": 1}), "spec.worker.resources.requests"),
    ("requestsWithinLimits", resources(claims=[]), resources(claims=[{"name": "gpu"}]),
     "spec.worker.resources.claims"),
    ("envVarName", env_var(value="v", name="my.var-1"), env_var(value="v", name="A=B"),
     "spec.env.variables[0].name"),
    ("configMapKey", env_var(valueFrom={"configMapKeyRef": {"name": "c", "key": ".env"}}),
     env_var(valueFrom={"configMapKeyRef": {"name": "c", "key": "..env"}}),
     "spec.env.variables[0].valueFrom.configMapKeyRef.key"),
    ("envValueXorValueFrom", env_var(value="", valueFrom={"secretKeyRef": {"name": "s", "key": "k"}}),
     env_var(value="v", valueFrom={"secretKeyRef": {"name": "s", "key": "k"}}),
     "spec.env.variables[0].valueFrom"),
    ("exactlyOneSource", env_var(valueFrom={"fieldRef": {"fieldPath": "metadata.name"}}),
     env_var(valueFrom={}), "spec.env.variables[0].valueFrom"),
    ("exactlyOneSource", volume(configMap={"name": "c"}), volume(configMap={"name": "c"}, emptyDir={}),
     "spec.volumes[0]"),
    ("toleration", toleration(operator="Exists"), toleration(operator="Equal"),
     "spec.scheduling.tolerations[0].operator"),
    ("toleration", toleration(key="k", operator="Exists", value=""),
     toleration(key="k", operator="Exists", value="v"), "spec.scheduling.tolerations[0].value"),
    ("toleration", toleration(key="k", effect="NoExecute", tolerationSeconds=60),
     toleration(key="k", effect="NoSchedule", tolerationSeconds=60), "spec.scheduling.tolerations[0].effect"),
    ("tolerationKey", toleration(key="example.com/gpu"), toleration(key="bad key"),
     "spec.scheduling.tolerations[0].key"),
    ("tolerationValue", toleration(key="k", value="a" * 63), toleration(key="k", value="a" * 64),
     "spec.scheduling.tolerations[0].value"),
    ("tolerationOperator", toleration(key="k", operator="Equal"), toleration(key="k", operator="In"),
     "spec.scheduling.tolerations[0].operator"),
    ("taintEffect", toleration(key="k", effect="PreferNoSchedule"), toleration(key="k", effect="Never"),
     "spec.scheduling.tolerations[0].effect"),
    ("nodeSelectorOperator", node_term(operator="Gt", values=["1"]), node_term(operator="Equal"),
     "spec.scheduling.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"
     ".nodeSelectorTerms[0].matchExpressions[0].operator"),
    ("labelSelectorOperator",
     pod_term(labelSelector={"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
     pod_term(labelSelector={"matchExpressions": [{"key": "app", "operator": "Gt"}]}),
     "spec.scheduling.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
     ".labelSelector.matchExpressions[0].operator"),
    ("seccompProfileType",
     put("spec.security.podSecurityContext", {"seccompProfile": {"type": "Unconfined"}}),
     put("spec.security.podSecurityContext", {"seccompProfile": {"type": "Default"}}),
     "spec.security.podSecurityContext.seccompProfile.type"),
    ("uniqueVolumeNames",
     put("spec.volumes", [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]),
     put("spec.volumes", [{"name": "a", "emptyDir": {}}, {"name": "a", "emptyDir": {}}]), "spec.volumes"),
    ("uniqueSecretVolumes",
     put("spec.env.secretMounts", [{"name": "my.creds", "mountPath": "/a"},
                                   {"name": "creds", "mountPath": "/b"}]),
     put("spec.env.secretMounts", [{"name": "my.creds", "mountPath": "/a"},
                                   {"name": "my-creds", "mountPath": "/b"}]),
     "spec.env.secretMounts"),
    ("uniqueMountPaths", both(
        put("spec.volumes", [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]),
        put("spec.volumeMounts", [{"name": "a", "mountPath": "/d", "target": "master"},
                                  {"name": "b", "mountPath": "/d", "target": "worker"}])),
     both(put("spec.volumes", [{"name": "a", "emptyDir": {}}, {"name": "b", "emptyDir": {}}]),
          put("spec.volumeMounts", [{"name": "a", "mountPath": "/d", "target": "master"},
                                    {"name": "b", "mountPath": "/d"}])), "spec.volumeMounts"),
    ("uniqueSecretMountPaths",
     put("spec.env.secretMounts", [{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/b"}]),
     put("spec.env.secretMounts", [{"name": "a", "mountPath": "/a"}, {"name": "b", "mountPath": "/a"}]),
     "spec.env.secretMounts"),
    ("distinctMountPaths", put("spec.testFiles.libConfigMapRef", "lib"),
     both(put("spec.testFiles.libConfigMapRef", "lib"), put("spec.testFiles.libMountPath", "/lotest/src")),
     "spec.testFiles.libMountPath"),
    ("serviceName", put("metadata.name", "a1.b"), put("metadata.name", "1a"), "metadata.name"),
]


def _edited(edit: Edit) -> dict[str, Any]:
    test = copy.deepcopy(BASE_TEST)
    edit(test)
    return test


@pytest.mark.parametrize(("kind", "accepted", "rejected", "field"),
                         [pytest.param(*case, id=f"{case[0]}-{case[3]}") for case in CASES])
def test_rule_kind_accepts_and_rejects(kind: str, accepted: Edit, rejected: Edit, field: str) -> None:
    _, problems = validate(_edited(accepted))
    assert problems == []
    _, problems = validate(_edited(rejected))
    assert field in [p.path for p in problems], problems


def test_every_rule_kind_is_used_and_tested() -> None:
    used = {kind.rstrip("!") for _, _, kind in gen_crd.RULES}
    assert used == set(gen_crd.RULE_KINDS)
    assert {case[0] for case in CASES} == used


def test_required_names() -> None:
    # "!" in the table: the API server refuses an empty (absent) name there.
    _, problems = validate(_edited(volume(secret={})))
    assert "spec.volumes[0].secret.secretName" in [p.path for p in problems]


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("1", 1), ("100m", "0.1"), ("1Ki", 1024), ("1e3", 1000), ("1E-3", "0.001"), ("1.G", 10**9),
    ("+1", 1), ("-1", -1), (".", 0), ("+", 0), ("0.0000000001", "1e-9"), ("1.5Ki", 1536),
    ("", None), ("1ki", None), ("1e", None), (" 1", None), ("1Mi ", None), ("abc", None), ("0x1", None),
    ("1Ee3", None),
])
def test_quantities_parse_as_apimachinery_does(text: str, value: Any) -> None:
    parsed = parse_quantity(text)
    assert (parsed is None) if value is None else parsed == __import__("decimal").Decimal(str(value))


def test_secret_volumes_are_named_with_dots_as_dashes() -> None:
    test = _edited(put("spec.env.secretMounts", [{"name": "my.creds", "mountPath": "/creds"}]))
    job = render(test, OperatorConfig())[1]
    names = [v["name"] for v in job["spec"]["template"]["spec"]["volumes"]]
    assert "secret-my-creds" in names


def test_render_checks_the_children_the_crd_cannot_see() -> None:
    # Within the cap in the test, over it once the exporter's annotations join on the master pod.
    test = _edited(put("spec.master.annotations", {"n": "x" * (256 * 1024 - 1)}))
    assert validate(test)[1] == []
    with pytest.raises(InvalidLocustTest) as raised:
        render(test, OperatorConfig())
    (problem,) = raised.value.problems
    assert problem.path == "Job demo-master: spec.template.metadata.annotations"
    assert "262144" in problem.message
