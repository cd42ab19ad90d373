"""One release version (docs/versioning.md): pyproject.toml's [project].version.

Every copy of it must agree, or the release workflow would publish an image
tag the chart does not pull, or a chart whose appVersion names another
image. .github/workflows/release.yaml runs this file and
scripts/release_version.py --tag before publishing anything.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "locust-operator"

VERSION: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
CHART_YAML = yaml.safe_load((CHART / "Chart.yaml").read_text())
VALUES = yaml.safe_load((CHART / "values.yaml").read_text())
RELEASE_WORKFLOW = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yaml").read_text())


def test_version_is_semver() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?", VERSION), VERSION


def test_chart_version_and_app_version() -> None:
    assert CHART_YAML["version"] == VERSION, "Chart.yaml version"
    assert CHART_YAML["appVersion"] == VERSION, "Chart.yaml appVersion"


def test_package_dunder_version() -> None:
    tree = ast.parse((ROOT / "controller" / "locust_operator" / "__init__.py").read_text())
    found = [
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
        and isinstance(node.value, ast.Constant)
    ]
    assert found == [VERSION], "locust_operator.__version__"


def test_chart_default_image_tag() -> None:
    # An empty tag means the chart's appVersion (_helpers.tpl, locust-operator.image).
    assert (VALUES["image"]["tag"] or CHART_YAML["appVersion"]) == VERSION


@pytest.mark.parametrize("path", ["Dockerfile", "README.md", "docs/chart.md"])
def test_docker_build_examples_name_the_release_image(path: str) -> None:
    image = f"{VALUES['image']['repository']}:{VERSION}"
    tags = re.findall(r"docker build -t (\S+)", (ROOT / path).read_text())
    assert all(tag == image for tag in tags), f"{path}: {tags} != {image}"
    if path == "Dockerfile":
        assert tags, "the Dockerfile's header comment shows the build command"


def test_release_workflow_publishes_the_charts_default_image() -> None:
    assert RELEASE_WORKFLOW["env"]["IMAGE"] == VALUES["image"]["repository"]


def test_release_workflow_checks_the_tag() -> None:
    steps = RELEASE_WORKFLOW["jobs"]["version"]["steps"]
    runs = "\n".join(step.get("run", "") for step in steps)
    assert 'scripts/release_version.py --tag "$GITHUB_REF_NAME"' in runs
    assert "tests/unit/test_versions.py" in runs
    for job in ("image", "chart"):
        assert "version" in RELEASE_WORKFLOW["jobs"][job]["needs"], job


def test_changelog_has_the_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(VERSION)}\]", changelog, re.MULTILINE), (
        f"CHANGELOG.md has no '## [{VERSION}]' section"
    )


def _release_version(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "release_version.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_release_version_script_accepts_the_matching_tag() -> None:
    proc = _release_version("--tag", f"v{VERSION}")
    assert (proc.returncode, proc.stdout) == (0, f"{VERSION}\n"), proc.stderr


@pytest.mark.parametrize("tag", ["v0.0.0-not-it", VERSION, f"v{VERSION}.1", "latest"])
def test_release_version_script_rejects_other_tags(tag: str) -> None:
    proc = _release_version("--tag", tag)
    assert proc.returncode == 1 and proc.stdout == ""
    assert tag in proc.stderr and VERSION in proc.stderr
