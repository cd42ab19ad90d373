"""What pods get before Locust starts: import paths, git files, Python packages (build/pod_setup.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from locust_operator.api.config import OperatorConfig
from locust_operator.build import pod_setup
from locust_operator.build.pod_setup import (
    INSTALL_WITH_CREDENTIALS,
    LIB_PACKAGE_DIR,
    PACKAGES_DIR,
    init_containers,
    pip_arguments,
    python_path,
    setup_mounts,
    setup_volumes,
    with_python_path,
)

LIB = {
    "testFiles": {"libConfigMapRef": "lib", "libMountPath": "/opt/locust/lib", "srcMountPath": "/lotest/src"}
}
CUSTOM_LIB = {"testFiles": {"libConfigMapRef": "lib", "libMountPath": "/mnt/helpers", "srcMountPath": "/s"}}
PYTHON = {"python": {"requirements": ["tabulate==0.9.0"]}, "image": "img", "imagePullPolicy": "Never"}
SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({}, []),
        ({"testFiles": {"configMapRef": "src", "srcMountPath": "/s", "libMountPath": "/opt/locust/lib"}}, []),
        (LIB, ["/opt/locust/lib", LIB_PACKAGE_DIR]),
        (CUSTOM_LIB, ["/mnt/helpers", LIB_PACKAGE_DIR]),
        (PYTHON, [PACKAGES_DIR]),
        ({**LIB, **PYTHON}, ["/opt/locust/lib", LIB_PACKAGE_DIR, PACKAGES_DIR]),
    ],
)
def test_python_path_lists_the_lib_both_ways_and_the_packages(
    spec: dict[str, Any], expected: list[str]
) -> None:
    assert python_path(spec) == expected


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ([], [{"name": "PYTHONPATH", "value": "/opt/locust/lib:" + LIB_PACKAGE_DIR}]),
        (
            [
                {"name": "A", "value": "1"},
                {"name": "PYTHONPATH", "value": "/mine"},
                {"name": "B", "value": "$(PYTHONPATH)"},
            ],
            [
                {"name": "A", "value": "1"},
                {"name": "PYTHONPATH", "value": f"/opt/locust/lib:{LIB_PACKAGE_DIR}:/mine"},
                {"name": "B", "value": "$(PYTHONPATH)"},
            ],
        ),
        # Kubernetes keeps the last of duplicates: that one is merged, the earlier one dropped.
        (
            [{"name": "PYTHONPATH", "value": "/old"}, {"name": "PYTHONPATH", "value": "/new"}],
            [{"name": "PYTHONPATH", "value": f"/opt/locust/lib:{LIB_PACKAGE_DIR}:/new"}],
        ),
        (
            [{"name": "PYTHONPATH", "value": ""}],
            [{"name": "PYTHONPATH", "value": f"/opt/locust/lib:{LIB_PACKAGE_DIR}"}],
        ),
        (
            [{"name": "PYTHONPATH", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
            [
                {"name": "PYTHONPATH", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "PYTHONPATH", "value": f"/opt/locust/lib:{LIB_PACKAGE_DIR}:$(PYTHONPATH)"},
            ],
        ),
    ],
)
def test_a_users_pythonpath_is_kept_after_the_operators(
    env: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> None:
    assert with_python_path(env, LIB) == expected


def test_no_lib_and_no_packages_leave_the_environment_alone() -> None:
    env = [{"name": "PYTHONPATH", "value": "/mine"}]
    assert with_python_path(env, {}) is env


def test_the_lib_is_also_mounted_as_the_package_lib() -> None:
    assert setup_mounts(CUSTOM_LIB) == [
        {"name": "locust-lib", "mountPath": f"{LIB_PACKAGE_DIR}/lib", "readOnly": True}
    ]


def test_imports_work_both_ways_with_these_paths(tmp_path: Path) -> None:
    """`import helper` and `from lib.helper import` resolve with the rendered PYTHONPATH
    (the directories laid out as the kubelet mounts them)."""
    mount = tmp_path / "mnt" / "helpers"
    package = tmp_path / LIB_PACKAGE_DIR.lstrip("/") / "lib"
    for where in (mount, package):
        where.mkdir(parents=True)
        (where / "helper.py").write_text("PATH = '/hello'\n")
    path = [str(mount), str(tmp_path / LIB_PACKAGE_DIR.lstrip("/"))]
    code = "import helper; from lib.helper import PATH; print(helper.PATH, PATH)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": ":".join(path)},
        cwd=tmp_path,
    )
    assert out.stdout.split() == ["/hello", "/hello"]


GIT = {
    "testFiles": {
        "git": {"url": "https://git.example/repo.git", "ref": "v1", "path": "load/"},
        "srcMountPath": "/lotest/src",
        "libMountPath": "/opt/locust/lib",
    }
}


def test_git_files_are_fetched_by_an_init_container_and_mounted_at_the_source_path() -> None:
    config = OperatorConfig()
    [fetch] = init_containers(GIT, config, SECURITY)
    assert fetch["name"] == "fetch-test-files"
    assert fetch["image"] == config.initContainers.gitImage
    assert fetch["command"][:2] == ["sh", "-c"]
    assert fetch["env"] == [
        {"name": "GIT_URL", "value": "https://git.example/repo.git"},
        {"name": "GIT_REF", "value": "v1"},
        {"name": "GIT_PATH", "value": "load"},
    ]
    assert fetch["securityContext"] == SECURITY
    assert fetch["resources"] == config.initContainers.resources
    assert fetch["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert setup_mounts(GIT) == [
        {"name": "test-files-git", "mountPath": "/lotest/src", "subPath": "repo/load", "readOnly": True}
    ]
    assert setup_volumes(GIT, config) == [{"name": "test-files-git", "emptyDir": {"sizeLimit": "512Mi"}}]


@pytest.mark.parametrize(
    ("url", "ssh"),
    [
        ("https://h/r.git", False),
        ("http://h/r.git", False),
        ("ssh://git@h/r.git", True),
        ("git@h:org/r.git", True),
    ],
)
def test_git_credentials_are_a_token_for_https_and_a_key_file_for_ssh(url: str, ssh: bool) -> None:
    spec = {"testFiles": {"git": {"url": url, "secretRef": "creds"}, "srcMountPath": "/s"}}
    [fetch] = init_containers(spec, OperatorConfig(), SECURITY)
    names = [e["name"] for e in fetch["env"]]
    volumes = setup_volumes(spec, OperatorConfig())
    if ssh:
        assert names == ["GIT_URL"]
        assert {"name": "git-credentials", "secret": {"secretName": "creds", "defaultMode": 0o440}} in volumes
        assert fetch["volumeMounts"][-1]["mountPath"] == pod_setup.GIT_SECRET_DIR
    else:
        assert names == ["GIT_URL", "GIT_USERNAME", "GIT_TOKEN"]
        assert fetch["env"][2] == {
            "name": "GIT_TOKEN",
            "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}},
        }
        assert all("secret" not in v for v in volumes)


@pytest.mark.parametrize(
    ("python", "tail"),
    [
        ({"requirements": ["a==1", "b>=2"]}, ["a==1", "b>=2"]),
        (
            {"requirementsConfigMapRef": {"name": "reqs"}},
            ["--requirement", f"{pod_setup.REQUIREMENTS_DIR}/requirements.txt"],
        ),
        (
            {"requirementsConfigMapRef": {"name": "reqs", "key": "r.txt"}, "requirements": ["x"]},
            ["--requirement", f"{pod_setup.REQUIREMENTS_DIR}/r.txt", "x"],
        ),
        (
            {
                "requirements": ["x"],
                "indexUrl": "http://pypi/simple/",
                "extraIndexUrls": ["https://a/", "https://b/"],
                "trustedHosts": ["pypi"],
            },
            [
                "--index-url",
                "http://pypi/simple/",
                "--extra-index-url",
                "https://a/",
                "--extra-index-url",
                "https://b/",
                "--trusted-host",
                "pypi",
                "x",
            ],
        ),
    ],
)
def test_pip_installs_into_the_packages_volume(python: dict[str, Any], tail: list[str]) -> None:
    args = pip_arguments(python)
    assert args[: args.index("--target") + 2] == [
        "install",
        "--no-cache-dir",
        "--disable-pip-version-check",
        "--no-input",
        "--no-warn-script-location",
        "--target",
        PACKAGES_DIR,
    ]
    assert args[args.index("--target") + 2 :] == tail


def test_requirements_install_with_the_tests_own_image() -> None:
    [install] = init_containers(PYTHON, OperatorConfig(), SECURITY)
    assert (install["name"], install["image"], install["imagePullPolicy"]) == (
        "install-requirements",
        "img",
        "Never",
    )
    assert install["command"][:3] == ["python3", "-m", "pip"]
    assert "env" not in install
    assert install["volumeMounts"] == [{"name": "python-packages", "mountPath": PACKAGES_DIR}]
    assert setup_mounts(PYTHON) == [{"name": "python-packages", "mountPath": PACKAGES_DIR, "readOnly": True}]


def test_files_come_before_packages() -> None:
    spec = {**GIT, **PYTHON}
    assert [c["name"] for c in init_containers(spec, OperatorConfig(), SECURITY)] == [
        "fetch-test-files",
        "install-requirements",
    ]


def test_index_credentials_stay_in_the_secret() -> None:
    spec = {
        **PYTHON,
        "python": {
            "requirements": ["x"],
            "indexUrl": "https://pypi.corp/simple/",
            "credentialsSecretRef": "pypi-creds",
        },
    }
    [install] = init_containers(spec, OperatorConfig(), SECURITY)
    assert install["command"][:3] == ["python3", "-c", INSTALL_WITH_CREDENTIALS]
    assert install["env"] == [
        {
            "name": "PIP_INDEX_USERNAME",
            "valueFrom": {"secretKeyRef": {"name": "pypi-creds", "key": "username"}},
        },
        {
            "name": "PIP_INDEX_PASSWORD",
            "valueFrom": {"secretKeyRef": {"name": "pypi-creds", "key": "password"}},
        },
    ]
    assert "pypi-creds" not in " ".join(install["command"])


def test_the_credentials_wrapper_quotes_them_into_the_index_urls(tmp_path: Path) -> None:
    """The wrapper run for real, with a stand-in `pip` module that prints its argv."""
    (tmp_path / "pip").mkdir()
    (tmp_path / "pip" / "__main__.py").write_text("import sys; print(sys.argv[1:])\n")
    (tmp_path / "pip" / "__init__.py").write_text("")
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            INSTALL_WITH_CREDENTIALS,
            "install",
            "--index-url",
            "https://pypi.corp/simple/",
            "--extra-index-url",
            "http://other/",
            "x",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env={
            **os.environ,
            "PYTHONPATH": str(tmp_path),
            "PIP_INDEX_USERNAME": "me@corp",
            "PIP_INDEX_PASSWORD": "p@ss:w/rd",
        },
    )
    assert out.stdout.strip() == str(
        [
            "install",
            "--index-url",
            "https://me%40corp:p%40ss%3Aw%2Frd@pypi.corp/simple/",
            "--extra-index-url",
            "http://me%40corp:p%40ss%3Aw%2Frd@other/",
            "x",
        ]
    )


def test_requirements_from_a_configmap_mount_only_its_key() -> None:
    spec = {**PYTHON, "python": {"requirementsConfigMapRef": {"name": "reqs", "key": "r.txt"}}}
    assert setup_volumes(spec, OperatorConfig())[1] == {
        "name": "python-requirements",
        "configMap": {"name": "reqs", "items": [{"key": "r.txt", "path": "r.txt"}]},
    }


def _repo(tmp_path: Path) -> tuple[str, str, str]:
    """A repository with a tag v1 and a later commit on main: (url, tag commit, head commit)."""
    src = tmp_path / "src"
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@t",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@t",
        "HOME": str(tmp_path),
    }

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=src, env=env, check=True, capture_output=True, text=True
        ).stdout.strip()

    src.mkdir()
    git("init", "-q", "-b", "main")
    (src / "load").mkdir()
    (src / "load" / "hit.py").write_text("v1\n")
    git("add", ".")
    git("commit", "-q", "-m", "one")
    git("tag", "-a", "v1", "-m", "v1")
    tagged = git("rev-parse", "HEAD")
    (src / "load" / "hit.py").write_text("v2\n")
    git("commit", "-q", "-am", "two")
    return f"file://{src}", tagged, git("rev-parse", "HEAD")


def _fetch(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess[str], Path, Path]:
    """The init container's script, run here with its two fixed paths moved under tmp_path."""
    root, log = tmp_path / "volume", tmp_path / "termination-log"
    script = pod_setup.FETCH_SCRIPT.replace(pod_setup.GIT_DIR, str(root)).replace(
        "/dev/termination-log", str(log)
    )
    done = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ["PATH"], **env},
    )
    return done, root / "repo", log


@pytest.mark.skipif(not Path("/usr/bin/git").exists(), reason="needs git (installed on the CI machine)")
@pytest.mark.parametrize("ref", ["v1", "main", "tagged-sha", None])
def test_the_fetch_script_checks_out_a_tag_branch_or_commit_and_records_it(
    tmp_path: Path, ref: str | None
) -> None:
    url, tagged, head = _repo(tmp_path)
    wanted = {"v1": tagged, "main": head, "tagged-sha": tagged, None: head}[ref]
    env = {"GIT_URL": url, "GIT_PATH": "load"}
    if ref:
        env["GIT_REF"] = tagged if ref == "tagged-sha" else ref
    done, repo, log = _fetch(tmp_path, **env)
    assert done.returncode == 0, done.stderr
    assert log.read_text() == wanted
    assert (repo / "load" / "hit.py").read_text() == ("v1\n" if wanted == tagged else "v2\n")
    assert (
        subprocess.run(
            ["git", "-C", str(repo), "rev-list", "--count", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        == "1"
    )  # depth 1


@pytest.mark.skipif(not Path("/usr/bin/git").exists(), reason="needs git (installed on the CI machine)")
@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"GIT_PATH": "nope"}, "fatal: path 'nope' is not a directory of the repository at"),
        ({"GIT_REF": "no-such-tag"}, "no-such-tag"),
    ],
)
def test_the_fetch_script_fails_with_gits_reason(tmp_path: Path, env: dict[str, str], error: str) -> None:
    url, _, _ = _repo(tmp_path)
    done, _, log = _fetch(tmp_path, GIT_URL=url, **env)
    assert done.returncode != 0
    assert error in done.stderr
    assert not log.exists()
    # A fetch that fails is tried four times, 1, 2 and 4 s apart, then git's exit code is the container's.
    fetch_failed = "GIT_REF" in env
    retries = [line.split("; ")[1] for line in done.stderr.splitlines() if line.startswith("fetch attempt")]
    assert retries == (["again in 1 s", "again in 2 s", "again in 4 s"] if fetch_failed else [])
    assert done.returncode == (128 if fetch_failed else 1)
