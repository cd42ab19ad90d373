"""The one home of the names the layers share: API, labels, ports, phases, owner references.

Rendering writes these labels on every child; the watches select on them and
the views read them back. Every layer imports them from here, so renaming one
cannot silently blind the controller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

GROUP = "locust.io"
VERSION = "v2"
PLURAL = "locusttests"
KIND = "LocustTest"
API_VERSION = f"{GROUP}/{VERSION}"
# The second kind: runs LocustTests on a cron schedule (controller/schedules.py).
SCHEDULE_KIND, SCHEDULE_PLURAL = "LocustTestSchedule", "locusttestschedules"

# status.phase of a LocustTest; a test in a terminal phase never leaves it.
PENDING, RUNNING, SUCCEEDED, FAILED = "Pending", "Running", "Succeeded", "Failed"
TERMINAL = (SUCCEEDED, FAILED)

# Label keys and values compatible with the established Go operator's children.
MANAGED_BY_LABEL = "managed-by"
MANAGED_BY = "locust-k8s-operator"
TEST_NAME_LABEL = "performance-test-name"
POD_NAME_LABEL = "performance-test-pod-name"
COMPONENT_LABEL = "app.kubernetes.io/component"
# What every watch of the operator's children selects on (server-side).
CHILD_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY}"

MASTER, WORKER = "master", "worker"

# Init containers of the master and worker pods (build/pod_setup.py): the test files
# from git, then the Python requirements. Their failures have reasons of their own.
FETCH_CONTAINER, INSTALL_CONTAINER = "fetch-test-files", "install-requirements"

MASTER_PORT = 5557  # workers connect to the master here
WEB_PORT = 8089  # the master's web UI and REST API (/stats/requests)
WORKER_PORT = 8080

# Prefix of the annotations and finalizer the operator writes itself.
ANNOTATION_PREFIX = "operator.locust.io"


def child_names(test_name: str) -> dict[str, str]:
    """Deterministic names of a test's children: `<name>-master` / `<name>-worker`.

    Dots become dashes (Service names are DNS labels), so two test names can map
    to the same children; ownership decides which test they belong to.
    """
    base = test_name.replace(".", "-")
    return {MASTER: f"{base}-{MASTER}", WORKER: f"{base}-{WORKER}"}


# The child that routes to a test's web UI (spec.webUI): its Ingress and HTTPRoute share
# the name `<name>-web`; Locust's web base path is /locust/<namespace>/<name> by default.
WEB = "web"
DEFAULT_WEB_PATH_PREFIX = "/locust"


def web_route_name(test_name: str) -> str:
    """The Ingress and HTTPRoute of a test: `<name>-web`, dots as dashes like the other children."""
    return f"{test_name.replace('.', '-')}-{WEB}"


def selector_labels(test_name: str, pod_name: str, role: str) -> dict[str, str]:
    """The labels of a role's Job, its pods and the master Service."""
    return {
        "app": test_name,
        TEST_NAME_LABEL: test_name,
        POD_NAME_LABEL: pod_name,
        MANAGED_BY_LABEL: MANAGED_BY,
        "app.kubernetes.io/name": "locust",
        "app.kubernetes.io/instance": test_name,
        COMPONENT_LABEL: role,
        "app.kubernetes.io/managed-by": "locust-operator",
    }


def child_labels(test_name: str, component: str) -> dict[str, str]:
    """The labels of a child that has no pods (the results ConfigMap)."""
    return {TEST_NAME_LABEL: test_name, MANAGED_BY_LABEL: MANAGED_BY, COMPONENT_LABEL: component,
            "app.kubernetes.io/managed-by": "locust-operator"}


def owner_reference(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The controller owner reference of a test's children: gone with the test."""
    return {"apiVersion": API_VERSION, "kind": KIND, "name": metadata["name"],
            "uid": metadata["uid"], "controller": True, "blockOwnerDeletion": True}


def service_selector(master_name: str) -> dict[str, str]:
    """The master Service's pod selector."""
    return {POD_NAME_LABEL: master_name}


# LocustTests of one namespace with the same value of this label form a series: the
# runs a baseline compares with, a schedule's runs, one line each in `history`.
SERIES_LABEL = "locust.io/series"
# A schedule's runs carry its name here (to list them) and their scheduled time.
SCHEDULE_LABEL = "locust.io/schedule"
SCHEDULED_TIME_ANNOTATION = f"{ANNOTATION_PREFIX}/scheduled-time"
# "true" on a run of a schedule with keepReportRuns: its HTML report is kept in a
# ConfigMap of its own (`report_name`), which the schedule deletes once the run is old.
SEPARATE_REPORT_ANNOTATION = f"{ANNOTATION_PREFIX}/separate-report"

# The master pod's generated LoadTestShape (spec.loadShape), mounted as a file by the
# downward API: visible in `render`, gone with the pod, no object of its own.
LOAD_SHAPE_ANNOTATION = f"{ANNOTATION_PREFIX}/load-shape"

# Set to "true" on a running test to stop it; its results so far are kept (user-facing).
ABORT_ANNOTATION = "locust.io/abort"

# The ConfigMap that keeps a test's full results after its pods are gone.
# Keys hold text in `data`, or gzip in `binaryData` under the key plus ".gz"
# when the text would not fit under the object size limit.
RESULT_KEY = "result.json"  # status.result plus every request's stats (JSON)
REQUESTS_CSV_KEY = "requests.csv"  # Locust's per-request stats CSV
FAILURES_CSV_KEY = "failures.csv"  # Locust's failures CSV
REPORT_HTML_KEY = "report.html"  # Locust's HTML report (only when read from the master's API)


def results_name(test_name: str) -> str:
    """The results ConfigMap of a test: `<name>-results`, dots as dashes like the other children."""
    return f"{test_name.replace('.', '-')}-results"


def report_name(test_name: str) -> str:
    """The ConfigMap of a test's HTML report when it is kept apart: `<name>-report`."""
    return f"{test_name.replace('.', '-')}-report"
