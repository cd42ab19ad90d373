"""`render` and the real API server agree on a generated corpus, children included.

Hypothesis generates LocustTests (derandomized, and kept in the project cache:
a machine checks the same corpus on every run) that mix valid values with
values at the edge of each rule the API server applies to the Job and Service
a test becomes: names, label and annotation syntax and sizes, quantities,
tolerations, environment, volumes and mounts.  Each test is

- rendered offline by `render` (the CRD's schema and CEL rules, then the
  children's object-level checks), and
- sent to the API server with server-side dry-run (`dryRun=All`, strict field
  validation); when admitted, the children rendered from the object the API
  server returned (with its defaults) are sent with dry-run too.

The test requires the same verdict from both, in both directions: render
accepts exactly the tests whose LocustTest and children the API server all
accept.

The generated CRD is installed under a group of its own (GROUP): the cluster
may be shared with runs of other branches, which apply their own version of
locusttests.locust.io at any moment.  Schema and rules are the same bytes.
"""

from __future__ import annotations

import collections
import copy
import hashlib
import json
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from locust_operator.api.config import OperatorConfig
from locust_operator.build.render import RenderError, render, render_validated
from locust_operator.validation.validator import InvalidLocustTest
from tests.support.cluster import Cluster
from tests.support.examples import BASE_TEST
from tests.support.operator import CRD

SPECS = int(os.environ.get("AGREEMENT_SPECS", "1000"))  # distinct tests (CI time: 2,000 took 144 s)
CACHE = Path(os.environ.get("LOCUST_OPERATOR_CACHE") or Path.home() / ".cache" / "locust-operator")
GROUP = "agreement.locust.io"
# Names of its own too: with the same plural and kind, `kubectl get locusttest` on the
# cluster would become ambiguous (kubectl may pick this group) while the CRD exists.
PRIVATE_KIND, PRIVATE_PLURAL = "AgreementTest", "agreementtests"
THREADS = 8
CONFIG = OperatorConfig()

# --- Values at the edges of the API server's rules ---------------------------
# Each field draws from (valid values, values the API server refuses or that
# sit right at a limit); one draw in EDGE_ODDS takes an edge value, so about a
# third of the tests are valid throughout.
EDGE_ODDS = 12
NAMES = (["demo", "d", "a" * 56, "my-test.v2", "a.b.c", "demo-1"], ["1demo", "a" * 57, "Demo", "-demo"])
LABEL_KEYS = (["app", "team", "example.com/team", "a" * 63, "a_b", "a.b", "Team", "a" * 253 + "/t"],
              ["a" * 64, "-team", "team-", "x/y/z", "example.com/", "/team", "Example.com/team",
               "exa_mple.com/t", "a" * 254 + "/t", "team name", "é"])
LABEL_VALUES = (["", "v", "a" * 63, "v_1", "v.1", "V", "1"], ["a" * 64, "-v", "v-", "v w", "é"])
ANNOTATION_KEYS = (["note", "example.com/note", "Example.COM/Note"], ["a" * 64, "-note", "x/y/z", "note!"])
QUANTITIES: tuple[list[Any], list[Any]] = (
    ["1", "0", "100m", "1.5", "1Ki", "1e3", "1E-3", "0.5Gi", "500M", 1, 0, 2],
    ["-1", "1ki", "1e", "abc", ".", "+", "-0", "1.G", " 1", "1Mi ", "0.0000000001", -1, "-", "1e+3", "0x1"])
RESOURCE_NAMES = (["cpu", "memory", "ephemeral-storage"], ["nvidia.com/gpu", "hugepages-2Mi", "storage"])
SUBDOMAINS = (["cfg", "my.cfg", "my-cfg", "a" * 56, "a" * 253],
              ["a" * 254, "Cfg", "-cfg", "cfg-", "c_fg", "", "a..b", "cfg.", "é"])
ENV_NAMES = (["A", "a_b", "1X", "A.B", "~x", "A B"], ["A=B", "é", "", "\t"])
CONFIG_KEYS = (["key", "k.ey", "k_ey", ".k", "a" * 253], [".", "..", "..k", "k/ey", "", "a" * 254])
MOUNT_PATHS = (["/data", "/data/x", "/etc/creds", "/x"], ["/lotest/src", "/opt/locust/lib"])
SECRET_NAMES = (["creds", "my.creds", "my-creds", "a" * 56], ["Creds", "c_reds", "-creds"])
VOLUME_NAMES = (["data", "cache", "a" * 63], ["a" * 64, "Data", "da_ta", "da.ta", "demo-master", "secret-x"])


def pick(values: tuple[list[Any], list[Any]]) -> st.SearchStrategy[Any]:
    """A valid value, or one time in EDGE_ODDS an edge value."""
    valid, edge = values
    if not edge:
        return st.sampled_from(valid)
    # One integer per value, mapped: cheap to draw, and the residue picks edge
    # values at the wanted rate (Hypothesis's own choices lean on the ends of
    # a range, which would make the edge values far more frequent).
    def choose(n: int) -> Any:
        values = edge if n % EDGE_ODDS == EDGE_ODDS // 2 else valid
        return values[(n // EDGE_ODDS) % len(values)]

    return st.integers(0, 10**6).map(choose)


def _subset(options: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=options)


def _string_map(keys: tuple[list[str], list[str]], values: tuple[list[str], list[str]]
                ) -> st.SearchStrategy[dict[str, str]]:
    return st.dictionaries(pick(keys), pick(values), max_size=3)


@st.composite
def _annotations(draw: st.DrawFn) -> dict[str, str]:
    out = draw(_string_map(ANNOTATION_KEYS, (["x", "", "a b"], [])))
    if draw(st.integers(0, 39)) == 0:  # now and then a set near the 256 KiB cap
        used = sum(len(k) + len(v) for k, v in out.items()) + 3
        # exactly at the cap, one byte over, or under the cap until the exporter's annotations join
        size = 256 * 1024 - used + draw(st.sampled_from([0, 1, -40]))
        out["big"] = "x" * max(size, 0)
    return out


_resources = _subset({
    key: st.dictionaries(pick(RESOURCE_NAMES), pick(QUANTITIES), max_size=3)
    for key in ("requests", "limits")
} | {"claims": pick(([[]], [[{"name": "gpu"}]]))})

_toleration = _subset({
    "key": pick((["", "node-role", "example.com/gpu"], ["a" * 64, "bad key"])),
    "operator": pick((["Equal", "Exists"], ["", "In"])),
    "value": pick((["", "true"], ["a" * 64, "-x"])),
    "effect": pick((["NoSchedule", "PreferNoSchedule", "NoExecute"], ["", "Never"])),
    "tolerationSeconds": pick(([0, 60], [-1])),
})

_key_ref = _subset({"name": pick(SUBDOMAINS), "key": pick(CONFIG_KEYS),
                    "optional": st.booleans()})
_value_from = _subset({"configMapKeyRef": _key_ref, "secretKeyRef": _key_ref,
                       "fieldRef": st.just({"fieldPath": "metadata.name"})})
_env_var = st.fixed_dictionaries({"name": pick(ENV_NAMES)},
                                  optional={"value": st.sampled_from(["", "v"]), "valueFrom": _value_from})
_env_ref = st.fixed_dictionaries({"name": pick(SUBDOMAINS)}, optional={"prefix": pick(ENV_NAMES)})
_secret_mount = st.fixed_dictionaries({"name": pick(SECRET_NAMES), "mountPath": pick(MOUNT_PATHS)})
_volume_source = pick((["emptyDir", "configMap", "secret"], ["both", "none"]))


@st.composite
def _volumes(draw: st.DrawFn) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes = []
    for name in draw(st.lists(pick(VOLUME_NAMES), max_size=3)):
        source = draw(_volume_source)
        volume: dict[str, Any] = {"name": name}
        if source in ("emptyDir", "both"):
            volume["emptyDir"] = draw(_subset({"sizeLimit": pick(QUANTITIES),
                                               "medium": st.sampled_from(["", "Memory"])}))
        if source in ("configMap", "both"):
            volume["configMap"] = {"name": draw(pick(SUBDOMAINS))}
        if source == "secret":
            volume["secret"] = {"secretName": draw(pick(SUBDOMAINS))}
        volumes.append(volume)
    mounts = []
    for volume in draw(st.lists(st.sampled_from(volumes), max_size=3)) if volumes else []:
        mount = {"name": volume["name"], "mountPath": draw(pick(MOUNT_PATHS))}
        target = draw(st.sampled_from([None, "master", "worker", "both"]))
        if target:
            mount["target"] = target
        mounts.append(mount)
    return volumes, mounts


_role = _subset({"labels": _string_map(LABEL_KEYS, LABEL_VALUES), "annotations": _annotations(),
                 "resources": _resources})


@st.composite
def locust_tests(draw: st.DrawFn) -> dict[str, Any]:
    test = copy.deepcopy(BASE_TEST)
    test["metadata"] = {"name": draw(pick(NAMES))}
    spec = test["spec"]
    for role in ("master", "worker"):
        spec[role].update(draw(_role))
    spec["imagePullPolicy"] = draw(st.sampled_from(["IfNotPresent", "Always", "Never"]))
    spec.update(draw(_subset({
        "imagePullSecrets": st.lists(st.fixed_dictionaries({"name": pick(SUBDOMAINS)}), max_size=2),
        "scheduling": _subset({
            "tolerations": st.lists(_toleration, max_size=2),
            "nodeSelector": _string_map(LABEL_KEYS, LABEL_VALUES),
            "runtimeClassName": pick(([""] + SUBDOMAINS[0], SUBDOMAINS[1][1:])),
        }),
        "env": _subset({
            "variables": st.lists(_env_var, max_size=3),
            "configMapRefs": st.lists(_env_ref, max_size=2),
            "secretRefs": st.lists(_env_ref, max_size=2),
            "secretMounts": st.lists(_secret_mount, max_size=2),
        }),
    })))
    files = draw(_subset({"configMapRef": pick(SUBDOMAINS), "libConfigMapRef": pick(SUBDOMAINS),
                          "libMountPath": pick((["/opt/locust/lib", "/lib"], ["/lotest/src"]))}))
    spec["testFiles"] = files or spec["testFiles"]
    volumes, mounts = draw(_volumes())
    if volumes:
        spec["volumes"] = volumes
    if mounts:
        spec["volumeMounts"] = mounts
    return test


def corpus(size: int) -> list[dict[str, Any]]:
    """`size` distinct tests, the same ones on every run (kept in the project cache:
    generating them is a third of this test's CPU, and the same bytes come out)."""
    key = hashlib.sha256(Path(__file__).read_bytes() + f"{size} {hypothesis.__version__}".encode())
    cached = CACHE / f"agreement-corpus-{key.hexdigest()[:16]}.json"
    if cached.is_file():
        loaded: list[dict[str, Any]] = json.loads(cached.read_text())
        return loaded
    tests = _generate(size)
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".tmp")
    partial.write_text(json.dumps(tests))
    partial.replace(cached)
    return tests


def _generate(size: int) -> list[dict[str, Any]]:
    tests: dict[str, dict[str, Any]] = {}

    @settings(max_examples=size * 6 // 5, derandomize=True, database=None, phases=[Phase.generate],
              deadline=None, suppress_health_check=list(HealthCheck))
    @given(locust_tests())
    def collect(test: dict[str, Any]) -> None:
        if len(tests) < size:
            tests.setdefault(json.dumps(test, sort_keys=True), test)

    collect()
    return list(tests.values())


# --- The two verdicts ----------------------------------------------------------
def render_verdict(test: dict[str, Any]) -> str | None:
    """None if render accepts the test, else its first problem."""
    try:
        render(copy.deepcopy(test), CONFIG)
    except InvalidLocustTest as exc:
        return str(exc.problems[0])
    return None


class Server:
    def __init__(self, api: Any, namespace: str) -> None:
        self.api = api
        self.namespace = namespace
        self.requests = 0

    def dry_run(self, path: str, body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
        """(the object as the API server would store it, "") or (None, its error message)."""
        self.requests += 1
        method, url, headers, payload, _ = self.api.param_serialize(
            "POST", path, body=body, auth_settings=["BearerToken"],
            query_params=[("dryRun", "All"), ("fieldValidation", "Strict")],
            header_params={"Content-Type": "application/json", "Accept": "application/json"})
        response = self.api.call_api(method, url, header_params=headers, body=payload)
        response.read()
        answer = json.loads(response.data)
        if response.status in (400, 422):
            return None, str(answer.get("message", answer))
        assert response.status == 201, answer
        return answer, ""

    def verdict(self, test: dict[str, Any]) -> tuple[str | None, int]:
        """(None if the API server accepts the test and all its children, else why; children sent)."""
        test = {**test, "apiVersion": f"{GROUP}/v2", "kind": PRIVATE_KIND,
                "metadata": {**test["metadata"], "namespace": self.namespace}}
        path = f"/apis/{GROUP}/v2/namespaces/{self.namespace}/{PRIVATE_PLURAL}"
        stored, error = self.dry_run(path, test)
        if stored is None:
            return f"LocustTest: {error}", 0
        stored["metadata"].pop("uid", None)  # no owner references: the owner is not stored
        stored.update(apiVersion="locust.io/v2", kind="LocustTest")  # as the operator reads it
        try:
            children = render_validated(stored, CONFIG)
        except (RenderError, ValueError, KeyError) as exc:
            return f"admitted, but its children cannot be rendered: {exc!r}", 0
        for child in children:
            prefix = "/api/v1" if child["kind"] == "Service" else "/apis/batch/v1"
            resource = "services" if child["kind"] == "Service" else "jobs"
            _, error = self.dry_run(f"{prefix}/namespaces/{self.namespace}/{resource}", child)
            if error:
                return f"{child['kind']} {child['metadata']['name']}: {error}", len(children)
        return None, len(children)


@pytest.fixture(scope="module", autouse=True)
def crd(cluster: Cluster) -> Iterator[None]:
    crd = yaml.safe_load(CRD.read_text())
    name = f"{PRIVATE_PLURAL}.{GROUP}"
    crd["metadata"]["name"] = name
    crd["spec"]["group"] = GROUP
    crd["spec"]["names"] = {"kind": PRIVATE_KIND, "listKind": PRIVATE_KIND + "List",
                            "plural": PRIVATE_PLURAL, "singular": PRIVATE_KIND.lower()}
    try:
        cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-",
                        input=yaml.safe_dump(crd))
        # Polled: `kubectl wait` errors out while a new CRD has no conditions yet.
        cluster.wait_for(lambda: cluster.kubectl(
            "get", f"crd/{name}", "-o",
            "jsonpath={.status.conditions[?(@.type=='Established')].status}").stdout == "True",
            timeout=60, what=f"{name} established")
        yield
    finally:
        cluster.kubectl("delete", "crd", name, "--wait=false", check=False)


def test_render_and_the_api_server_agree_on_a_generated_corpus(api: Any, namespace: str) -> None:
    started = time.monotonic()
    tests = corpus(SPECS)
    generated = time.monotonic()
    server = Server(api, namespace)
    with ThreadPoolExecutor(THREADS) as pool:
        server_verdicts = pool.map(server.verdict, tests)
        offline = [render_verdict(test) for test in tests]  # in this thread, while the requests run
        online = list(server_verdicts)
    counts: collections.Counter[str] = collections.Counter()
    disagreements = []
    children = 0
    for test, mine, (theirs, sent) in zip(tests, offline, online, strict=True):
        children += sent
        where = "" if theirs is None else (" the LocustTest" if theirs.startswith("LocustTest:")
                                           else " a child")
        counts[f"render {'accepts' if mine is None else 'rejects'}, API server "
               f"{'accepts' if theirs is None else 'rejects'}{where}"] += 1
        if (mine is None) != (theirs is None):
            disagreements.append((mine, theirs, test))
    print(f"\n{len(tests)} distinct specs, {children} children sent, {server.requests} dry-run requests, "
          f"generated in "
          f"{generated - started:.1f}s, total {time.monotonic() - started:.1f}s")
    for verdict, count in sorted(counts.items()):
        print(f"  {verdict}: {count}")
    details = "\n".join(f"render: {mine}\nAPI server: {theirs}\ntest: {json.dumps(test)[:2000]}\n"
                        for mine, theirs, test in disagreements[:5])
    assert len(tests) >= min(SPECS, 1000)
    assert not disagreements, f"{len(disagreements)} disagreements, the first ones:\n{details}"
