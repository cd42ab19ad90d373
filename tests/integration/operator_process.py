"""Run `locust-operator run` as a real process against the local control plane."""

from __future__ import annotations

from pathlib import Path

from benchmarks.harness import Operator

from tests.integration.conftest import Cluster

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "charts" / "locust-operator" / "crds" / "locusttests.locust.io.yaml"


def install_crd(cluster: Cluster) -> None:
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    # Not `kubectl wait`: it errors out when a new CRD has no conditions yet.
    cluster.wait_for(lambda: cluster.kubectl(
        "get", "crd/locusttests.locust.io", "-o",
        "jsonpath={.status.conditions[?(@.type=='Established')].status}").stdout == "True",
        timeout=60, what="the LocustTest CRD established")


class OperatorProcess(Operator):
    """One controller process against the test cluster, watching the given namespaces."""

    def __init__(self, cluster: Cluster, namespaces: list[str], workdir: Path,
                 config_text: str = "", env: dict[str, str] | None = None) -> None:
        super().__init__(namespaces, workdir, config_text=config_text,
                         env={**cluster.env, **(env or {})})
        self.cluster = cluster

    def start(self, wait_ready: bool = True, **extra_env: str) -> OperatorProcess:
        super().start(**extra_env)
        if wait_ready:
            self.cluster.wait_for(self.healthy, timeout=60, what="operator liveness endpoint")
        return self

    def wait_exit(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)
