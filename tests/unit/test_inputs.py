"""Bad or hostile input to `render` and `migrate`: one line naming the document, never a traceback.

Also the input limits (size, documents, alias expansion), checked before any
document is built.
"""

from __future__ import annotations

import codecs
import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from locust_operator.api.config import OperatorConfig
from locust_operator.build.migrate import MigrationError, migrate_v1
from locust_operator.build.render import RenderError, render
from locust_operator.validation.documents import (
    MAX_DOCUMENTS,
    MAX_INPUT_BYTES,
    InputError,
    load,
    read_limited,
)
from tests.support.examples import BASE_TEST

V2_HEAD = "apiVersion: locust.io/v2\nkind: LocustTest\n"
V1_SPEC = {"masterCommandSeed": "-f a.py", "workerCommandSeed": "-f a.py", "image": "locust:1"}

# The "billion laughs": 9 levels of 9 aliases, ~4e8 strings once expanded.
ALIAS_BOMB = (
    V2_HEAD + "metadata: {name: bomb}\nspec:\n"
    + '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"  {b}: &{b} [{','.join([f'*{a}'] * 9)}]\n"
              for a, b in zip("abcdefgh", "bcdefghi", strict=True))
)


def _cli(*args: str, stdin: str | bytes | None = None, cwd: Path | None = None
         ) -> subprocess.CompletedProcess[bytes]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    return subprocess.run([sys.executable, "-m", "locust_operator", *args], input=data,
                          capture_output=True, check=False, cwd=cwd, timeout=120)


# (command, file content, the one line expected on stderr)
CLI_CASES: list[tuple[str, str, str | bytes, str]] = [
    ("no-spec", "render", V2_HEAD + "metadata: {name: a}\n",
     "in.yaml#1 (a): spec: required field is missing"),
    ("null-metadata", "render", V2_HEAD + "metadata: null\nspec: {image: x}\n",
     "in.yaml#1: metadata.name: required field is missing"),
    ("binary", "render", b"PK\x03\x04\x14\x00\x08\x00\x08\x00\xa3\x9b",
     "in.yaml: not UTF-8 text: byte 0xa3 at offset 10 is invalid (is this a binary file?)"),
    ("binary-migrate", "migrate", b"apiVersion: \xff\n",
     "in.yaml: not UTF-8 text: byte 0xff at offset 12 is invalid (is this a binary file?)"),
    ("nul-byte", "render", "a: b\x00c\n",
     "in.yaml: not valid YAML: unacceptable character #x0000: control characters are not allowed"),
    ("alias-bomb", "render", ALIAS_BOMB, "in.yaml#1: YAML aliases expand the input beyond 10 MiB"),
    ("recursive-alias", "render", "---\n---\na: &a [*a]\n",
     "in.yaml#2: a YAML alias refers to its own ancestor (line 3, column 4)"),
    ("v1-labels-list", "migrate", yaml.safe_dump({
        "apiVersion": "locust.io/v1", "kind": "LocustTest", "metadata": {"name": "a"},
        "spec": {**V1_SPEC, "labels": ["a", "b"]}}),
     "in.yaml#1 (a): spec.labels: expected a map, got list"),
    ("v1-tolerations-string", "migrate", yaml.safe_dump({
        "apiVersion": "locust.io/v1", "kind": "LocustTest", "metadata": None,
        "spec": {**V1_SPEC, "tolerations": "abc"}}),
     "in.yaml#1: spec.tolerations: expected a list of tolerations, got string"),
    ("annotations-too-large", "render", yaml.safe_dump(
        {**BASE_TEST, "metadata": {"name": "big", "annotations": {"a": "x" * 300_000}}}),
     "in.yaml#1 (big): metadata.annotations: too long: 300001 bytes, the API server allows "
     "at most 262144 (keys and values)"),
]


@pytest.mark.parametrize(("command", "content", "line"),
                         [pytest.param(c, t, line, id=i) for i, c, t, line in CLI_CASES])
def test_cli_names_the_document_and_field_without_traceback(
        tmp_path: Path, command: str, content: str | bytes, line: str) -> None:
    path = tmp_path / "in.yaml"
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    result = _cli(command, "in.yaml", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == b""
    assert result.stderr.decode().splitlines() == [line]


def _templates(tmp_path: Path, text: str) -> OperatorConfig:
    (tmp_path / "service.yaml.j2").write_text(text)
    return OperatorConfig(templatesDir=str(tmp_path))


@pytest.mark.parametrize(("template", "message"), [
    ("{% if %}\n", "template service.yaml.j2: syntax error (line 1): Expected an expression"),
    ("x: {{ nope }}\n", "template service.yaml.j2: 'nope' is undefined"),
    ("x: {{ 1 // 0 }}\n", "template service.yaml.j2: ZeroDivisionError: integer division"),
    ("x: {{ name.nope() }}\n", "template service.yaml.j2: "),
    ("- 1\n", "template service.yaml.j2 did not produce a Kubernetes object"),
])
def test_a_broken_override_template_is_named(tmp_path: Path, template: str, message: str) -> None:
    with pytest.raises(RenderError) as error:
        render(copy.deepcopy(BASE_TEST), _templates(tmp_path, template))
    assert str(error.value).startswith(message), str(error.value)


@pytest.mark.parametrize(("spec", "metadata", "message"), [
    ({"labels": ["a"]}, {"name": "a"}, "spec.labels: expected a map, got list"),
    ({"labels": {"master": "x"}}, {"name": "a"}, "spec.labels.master: expected a map, got string"),
    ({"annotations": {"worker": [1]}}, {"name": "a"}, "spec.annotations.worker: expected a map"),
    ({"tolerations": "abc"}, {"name": "a"}, "spec.tolerations: expected a list of tolerations"),
    ({"tolerations": ["abc"]}, {"name": "a"}, "spec.tolerations[0]: expected a toleration, got string"),
    ({"imagePullSecrets": "regcred"}, {"name": "a"},
     "spec.imagePullSecrets: expected a list of Secret names"),
    ({"imagePullSecrets": "regcred"}, {"name": "a"}, "spec.imagePullSecrets: expected a list of Secret "
     "names, got string (write [regcred])"),
    ({"imagePullSecrets": [{"name": 1}]}, {"name": "a"},
     "spec.imagePullSecrets[0]: expected a Secret name or {name: ...}, got map"),
    ({"labels": {"master": {1: "a"}}}, {"name": "a"}, "spec.labels.master: key 1 is not a string"),
    ({"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": ["x"]}}},
     {"name": "a"}, "spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: "
     "expected a map of node label to value, got list"),
    ({"affinity": "x"}, {"name": "a"}, "spec.affinity: expected a map, got string"),
    ({"affinity": {"nodeAffinity": [1]}}, {"name": "a"}, "spec.affinity.nodeAffinity: expected a map"),
    ({}, ["a"], "metadata: expected a map, got list"),
    ({}, {"name": "a", "annotations": "x"}, "metadata.annotations: expected a map, got string"),
])
def test_migrate_names_a_malformed_v1_field(spec: dict[str, Any], metadata: Any, message: str) -> None:
    manifest = {"apiVersion": "locust.io/v1", "kind": "LocustTest", "metadata": metadata,
                "spec": {**V1_SPEC, **spec}}
    with pytest.raises(MigrationError) as error:
        migrate_v1(manifest)
    assert str(error.value).startswith(message), str(error.value)


def test_migrate_still_accepts_null_metadata_parts() -> None:
    manifest = {"apiVersion": "locust.io/v1", "kind": "LocustTest",
                "metadata": {"name": "a", "annotations": None},
                "spec": {**V1_SPEC, "labels": None, "tolerations": None}}
    assert migrate_v1(manifest).manifest["metadata"] == {"name": "a"}


def _many(count: int) -> bytes:
    return "".join(f"---\nn: {i}\n" for i in range(count)).encode()


# (input, the error's start or None when accepted, the documents' indexes when accepted)
LOAD_CASES: list[tuple[str, bytes, str | None, list[int]]] = [
    ("null-documents-skipped", b"---\n---\na: 1\n--- ~\n", None, [2]),
    ("utf-8-bom", codecs.BOM_UTF8 + b"a: 1\n", None, [1]),
    ("utf-16-bom", "a: é\n".encode("utf-16"), None, [1]),
    ("max-documents", _many(MAX_DOCUMENTS), None, list(range(1, MAX_DOCUMENTS + 1))),
    ("too-many-documents", _many(MAX_DOCUMENTS + 1), f"more than {MAX_DOCUMENTS} documents", []),
    ("small-alias-expansion", b"a: &c {command: x}\nb: *c\n", None, [1]),
    ("expansion-at-the-limit", b"a: &s " + b"x" * 1000 + b"\nb: [" + b",".join([b"*s"] * 10_000) + b"]\n",
     None, [1]),
    ("expansion-over-the-limit", b"a: &s " + b"x" * 2000 + b"\nb: [" + b",".join([b"*s"] * 10_000) + b"]\n",
     "YAML aliases expand the input beyond 10 MiB", []),
    ("expansion-summed-over-documents", (b"a: &s " + b"x" * 1000 + b"\nb: [" + b",".join([b"*s"] * 6000)
                                         + b"]\n---\n") * 2, "YAML aliases expand", []),
    ("not-yaml", b"a: [unclosed", "not valid YAML", []),
    ("unknown-tag", b"a: !!python/object:os.system x\n", "not valid YAML", []),
]


@pytest.mark.parametrize(("data", "error", "indexes"),
                         [pytest.param(d, e, i, id=n) for n, d, e, i in LOAD_CASES])
def test_load_limits(data: bytes, error: str | None, indexes: list[int]) -> None:
    if error is None:
        assert [d.index for d in load(data)] == indexes
    else:
        with pytest.raises(InputError) as raised:
            load(data)
        assert str(raised.value).startswith(error), str(raised.value)


def test_aliases_resolve_as_before() -> None:
    text = V2_HEAD + "metadata: {name: a}\nspec: {image: &i x, env: {variables: [{name: I, value: *i}]}}\n"
    assert load(text.encode())[0].value == yaml.safe_load(text)


class _Stream:
    """A stream of `size` bytes that records how much was asked of it."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.asked = 0

    def read(self, size: int) -> bytes:
        self.asked += size
        given = min(size, self.left)
        self.left -= given
        return b"x" * given


def test_input_size_is_refused_without_reading_past_the_limit() -> None:
    endless = _Stream(10 * MAX_INPUT_BYTES)
    with pytest.raises(InputError, match="larger than 10 MiB"):
        read_limited(endless)
    assert endless.asked == MAX_INPUT_BYTES + 1
    assert read_limited(_Stream(MAX_INPUT_BYTES)) == b"x" * MAX_INPUT_BYTES


# Runs the CLI in a fresh process and reports its own time and peak memory:
# the whole process (interpreter and imports included) must stay small.
_MEASURE = r"""
import json, re, sys, time, tracemalloc
from locust_operator.cli.main import main

def peak_rss():
    # VmHWM, not getrusage: ru_maxrss survives fork and exec, so it would
    # report the (larger) pytest parent's peak.
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\s+(\d+) kB", status.read()).group(1)) * 1024

tracemalloc.start()
start = time.perf_counter()
sys.argv = ["locust-operator", "render", sys.argv[1]]
try:
    main()
except SystemExit as exc:
    code = exc.code
elapsed = time.perf_counter() - start
print(json.dumps({"code": code, "seconds": elapsed, "traced_peak": tracemalloc.get_traced_memory()[1],
                  "max_rss": peak_rss()}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures VmHWM (Linux)")
def test_alias_bomb_is_refused_quickly_and_in_little_memory(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 500
    result = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True,
                            text=True, check=False, timeout=120)
    measured = json.loads(result.stdout)
    assert result.stderr.strip() == f"{path}#1: YAML aliases expand the input beyond 10 MiB"
    assert measured["code"] == 1
    # Refused, and refused before the expansion: in well under a second and 100 MB.
    assert measured["seconds"] < 0.5, measured
    assert measured["traced_peak"] < 10 * 1024 * 1024, measured
    assert measured["max_rss"] < 100 * 1024 * 1024, measured


def test_render_accepts_a_legitimate_alias() -> None:
    text = V2_HEAD + ("metadata: {name: a}\nspec:\n  image: locust:1\n"
                      "  master: {command: &c '-f /lotest/src/a.py'}\n  worker: {command: *c, replicas: 1}\n")
    objects = render(load(text.encode())[0].value, OperatorConfig())
    assert [o["kind"] for o in objects] == ["Service", "Job", "Job"]
