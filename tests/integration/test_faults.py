"""Faults under load, scaled to CI: the scenarios of benchmarks/faults.py, asserted.

Full-size runs (200-test burst, 1,000-test soak): `python -m benchmarks.faults`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from benchmarks import faults

from tests.support.cluster import Cluster
from tests.support.operator import install_crd


@pytest.fixture(autouse=True)
def cluster_env(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    install_crd(cluster)
    # The reused cluster's state dir holds its kubeconfig (scripts/cluster up).
    env = {**cluster.env, "CLUSTER_DIR": str(cluster.cluster_dir or cluster.kubeconfig.parent)}
    for key in ("KUBECONFIG", "PATH", "CLUSTER_DIR"):
        monkeypatch.setenv(key, env[key])
    return env


def test_operator_killed_mid_burst_duplicates_nothing_and_finishes_every_test(
        api: Any, tmp_path: Path) -> None:
    report = faults.kill_mid_burst(api, 40, tmp_path, timeout=300)
    print(f"kill mid-burst: {report}")
    assert 0 < report["with_children_at_kill"] < 40  # the kill really was mid-burst
    assert report["tests_without_exactly_3_children"] == 0
    assert (report["jobs"], report["services"]) == (80, 40)
    assert report["not_terminal"] == 0
    assert report["failed"] == 0


@pytest.mark.parametrize("component", ["kube-apiserver", "etcd"])
def test_operator_survives_a_control_plane_restart(api: Any, tmp_path: Path, component: str,
                                                   cluster_env: dict[str, str]) -> None:
    report = faults.restart_component(api, component, 10, tmp_path, cluster_env, timeout=300)
    print(f"restart {component}: {report}")
    assert report["operator_restarted"] is False
    assert report["tests_without_exactly_3_children"] == 0
    assert (report["jobs"], report["services"]) == (20, 10)
    assert report["not_terminal"] == 0
    assert report["failed"] == 0


def test_soak_memory_levels_off(api: Any, tmp_path: Path) -> None:
    report = faults.soak(api, 200, tmp_path, in_flight=20, timeout=900)
    print(f"soak: {report}")
    assert report["failed"] == 0
    # Tests that are gone leave nothing behind: RSS after 200 tests is within
    # 10% of RSS after 100 (a leak of a few KiB per test would show here).
    assert report["growth_percent"] < 10, report


def test_a_replacement_operator_writes_status_again(api: Any, tmp_path: Path) -> None:
    report = faults.failover(api, tmp_path)
    print(f"failover: {report}")
    assert report["kill_to_status_write_s"] > 0
