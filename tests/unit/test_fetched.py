"""status.testFiles: the commit a test's files came from (rules/fetched.py) and how pods report it."""

from __future__ import annotations

from typing import Any

import pytest

from locust_operator.rules.fetched import fetched_files_status
from locust_operator.rules.observe import fetched_commit

A, B = "a" * 40, "b" * 40


@pytest.mark.parametrize(
    ("previous", "ref", "commits", "expected"),
    [
        ({}, None, [("m", A)], None),  # no git: nothing recorded, even if a pod says so
        ({}, "v1", [], None),
        ({}, "v1", [("t-master-x", A), ("t-worker-y", A)], {"commit": A, "ref": "v1"}),
        ({}, "", [("t-master-x", A)], {"commit": A, "ref": ""}),
        # kept once the pods are gone
        ({"testFiles": {"commit": A, "ref": "main"}}, "main", [], {"commit": A, "ref": "main"}),
        # the master's is kept; a worker that ran another commit is named
        (
            {},
            "main",
            [("t-master-x", A), ("t-worker-y", B)],
            {
                "commit": A,
                "ref": "main",
                "message": f"not all pods ran commit {A[:12]}: t-worker-y ran {B[:12]}",
            },
        ),
        (
            {"testFiles": {"commit": A, "ref": "main", "message": "not all pods ran commit x"}},
            "main",
            [],
            {"commit": A, "ref": "main", "message": "not all pods ran commit x"},
        ),
    ],
)
def test_the_commit_recorded(
    previous: dict[str, Any], ref: str | None, commits: list[tuple[str, str]], expected: dict[str, Any] | None
) -> None:
    assert fetched_files_status(previous, ref, commits) == expected


def test_many_differing_pods_are_counted_not_listed() -> None:
    commits = [("m", A)] + [(f"w{i}", B) for i in range(8)]
    message = fetched_files_status({}, "main", commits)["message"]  # type: ignore[index]
    assert message.endswith("and 3 more") and message.count(" ran b") == 5


def _status(name: str, code: int, message: Any) -> dict[str, Any]:
    return {
        "initContainerStatuses": [
            {"name": name, "state": {"terminated": {"exitCode": code, "message": message}}}
        ]
    }


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (_status("fetch-test-files", 0, A), A),
        (_status("fetch-test-files", 0, A + "\n"), A),
        (_status("fetch-test-files", 0, "c" * 64), "c" * 64),  # SHA-256 repositories
        (_status("fetch-test-files", 1, A), None),
        (_status("fetch-test-files", 0, "not a sha; rm -rf /"), None),  # the pod's own words: checked
        (_status("fetch-test-files", 0, A.upper()), None),
        (_status("fetch-test-files", 0, None), None),
        (_status("other", 0, A), None),
        ({}, None),
    ],
)
def test_a_pod_reports_the_commit_its_init_container_wrote(
    status: dict[str, Any], expected: str | None
) -> None:
    assert fetched_commit(status) == expected
