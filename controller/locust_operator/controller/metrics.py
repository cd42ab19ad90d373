"""Prometheus metrics of the controller."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

TESTS_HANDLED = Counter("locust_operator_tests_handled_total",
                        "LocustTests whose resources the operator created or adopted")
ERRORS = Counter("locust_operator_errors_total", "Errors while handling LocustTests", ["stage"])
API_WRITES = Counter("locust_operator_api_writes_total",
                     "Write requests the operator sent to the API server", ["resource", "verb"])
RESOURCES_CREATED_SECONDS = Histogram(
    "locust_operator_resources_created_seconds",
    "Seconds from a LocustTest's creation to its Service and Jobs existing",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60))
TERMINAL_SECONDS = Histogram(
    "locust_operator_time_to_terminal_seconds",
    "Seconds from a LocustTest's creation to a terminal phase",
    ["phase"], buckets=(5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600))
