"""The names contract (api/contract.py): what every child is called and labelled, as a table."""

from __future__ import annotations

import pytest

from locust_operator.api.contract import (
    child_labels,
    child_names,
    report_name,
    results_name,
    selector_labels,
)


@pytest.mark.parametrize(("test", "master", "worker", "results", "report"), [
    ("demo", "demo-master", "demo-worker", "demo-results", "demo-report"),
    # Dots become dashes in every child's name (Service names are DNS labels).
    ("team.a.v2", "team-a-v2-master", "team-a-v2-worker", "team-a-v2-results", "team-a-v2-report"),
])
def test_children_are_named_after_the_test(test: str, master: str, worker: str, results: str,
                                           report: str) -> None:
    assert child_names(test) == {"master": master, "worker": worker}
    assert (results_name(test), report_name(test)) == (results, report)


def test_a_child_without_pods_carries_the_go_operators_and_the_recommended_labels() -> None:
    assert child_labels("team.a", "results") == {
        "performance-test-name": "team.a", "managed-by": "locust-k8s-operator",
        "app.kubernetes.io/component": "results", "app.kubernetes.io/managed-by": "locust-operator"}


def test_pods_carry_the_go_operators_and_the_recommended_labels() -> None:
    assert selector_labels("demo", "demo-master", "master") == {
        "app": "demo", "performance-test-name": "demo", "performance-test-pod-name": "demo-master",
        "managed-by": "locust-k8s-operator", "app.kubernetes.io/name": "locust",
        "app.kubernetes.io/instance": "demo", "app.kubernetes.io/component": "master",
        "app.kubernetes.io/managed-by": "locust-operator"}
