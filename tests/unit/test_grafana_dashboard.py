"""The chart's Grafana dashboard of the load-test series (files/grafana/locust-series.json).

Its queries may use only metrics SeriesMetrics exports (names read from the module), so
renaming a metric without the dashboard fails here rather than on a blank panel.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from locust_operator.controller import series_metrics
from locust_operator.rules.verdict import REGRESSED

DASHBOARD_FILE = (Path(__file__).resolve().parents[2] / "charts" / "locust-operator" / "files" / "grafana"
                  / "locust-series.json")
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
EXPORTED = set(series_metrics.METRIC_NAMES)

# PromQL words that are not metric names: aggregations and functions are followed by "(",
# and these keywords and label lists are removed before names are looked for.
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless",
             "offset", "inf", "nan"}
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_NAME = re.compile(r"(?<![\w:.$])[A-Za-z_:][\w:]*(?![\w:]*\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects (Grafana's $variables taken out)."""
    text = _STRING.sub('""', expr)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = _LABEL_LIST.sub(" ", text)
    text = re.sub(r"\b\d+(\.\d+)?([eE][-+]?\d+)?\b", " ", text)  # numbers (1e3 is no name)
    return {name for name in _NAME.findall(text) if name not in _KEYWORDS}


def test_metric_names_reads_promql() -> None:
    """The checker itself: it finds every selected metric and nothing else."""
    assert metric_names('max by (namespace, series) (locust_series_passed{namespace=~"$namespace"})') == \
        {"locust_series_passed"}
    assert metric_names("sum(increase(locust_operator_series_evicted_total[$__range])) or vector(0)") == \
        {"locust_operator_series_evicted_total"}
    assert metric_names('a * on (namespace, series) group_left (run, reason) b{reason="x y"} * 1e3') == \
        {"a", "b"}
    assert metric_names("histogram_quantile(0.95, rate(foo_bucket[5m])) > bool 1") == {"foo_bucket"}
    assert metric_names('count(locust_series_bogus{series=~"${series}"} == 0)') == {"locust_series_bogus"}


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded = json.loads(DASHBOARD_FILE.read_text())  # valid JSON, else this fails
    assert isinstance(loaded, dict)
    return loaded


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows keep theirs inside


def expressions(dashboard: dict[str, Any]) -> list[str]:
    exprs = [t["expr"] for p in panels(dashboard) for t in p.get("targets", [])]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            found = re.fullmatch(r"label_values\((.*),\s*(\w+)\)", var["definition"])
            assert found, var["definition"]
            exprs.append(found.group(1))
    return exprs


def test_the_dashboard_is_a_grafana_dashboard(dashboard: dict[str, Any]) -> None:
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"]
    assert "__inputs" not in dashboard  # provisioned by the sidecar, not imported by hand
    ids = [p["id"] for p in panels(dashboard)]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"]), panel["title"]
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]


def test_variables_datasource_namespace_and_series(dashboard: dict[str, Any]) -> None:
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert set(variables) == {"datasource", "namespace", "series"}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for name in ("namespace", "series"):
        var = variables[name]
        assert var["type"] == "query" and var["datasource"] == DATASOURCE
        assert var["multi"] and var["includeAll"] and var["allValue"] == ".*"
        assert var["query"] == var["definition"]  # the string form every Grafana version reads
        assert re.fullmatch(rf"label_values\(\w+(\{{.*\}})?, {name}\)", var["definition"])
    assert '{namespace=~"$namespace"}' in variables["series"]["definition"]  # series follow namespaces


def test_every_panel_queries_the_datasource_variable(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DATASOURCE, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DATASOURCE, panel["title"]


def test_queries_use_only_metrics_the_operator_exports(dashboard: dict[str, Any]) -> None:
    exprs = expressions(dashboard)
    assert exprs
    for expr in exprs:
        names = metric_names(expr)
        assert names, f"no metric in {expr!r}"
        assert names <= EXPORTED, f"{expr!r} uses {sorted(names - EXPORTED)}, not exported by SeriesMetrics"
    used = set().union(*(metric_names(e) for e in exprs))
    # The panels the dashboard promises: p95/p99, RPS, failure ratio, verdict, reason, time.
    assert {series_metrics.RESPONSE_TIME_P95, series_metrics.RESPONSE_TIME_P99, series_metrics.RPS,
            series_metrics.FAILURE_RATIO, series_metrics.PASSED, series_metrics.LAST_RUN_INFO,
            series_metrics.LAST_RUN_TIMESTAMP} <= used


def test_series_queries_honour_the_namespace_and_series_variables(dashboard: dict[str, Any]) -> None:
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            expr = target["expr"]
            selectors = re.findall(r"(locust_series_\w+)(\{[^}]*\})?", expr)
            for name, matchers in selectors:
                assert 'namespace=~"$namespace"' in matchers and 'series=~"$series"' in matchers, \
                    f"{panel['title']}: {name} in {expr!r} ignores the variables"


def panel_by_type(dashboard: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [p for p in panels(dashboard) if p["type"] == kind]


def test_the_panels(dashboard: dict[str, Any]) -> None:
    series_panels = {metric_names(t["expr"]).pop(): p for p in panel_by_type(dashboard, "timeseries")
                     for t in p["targets"]}
    assert series_panels[series_metrics.RESPONSE_TIME_P95]["fieldConfig"]["defaults"]["unit"] == "s"
    assert series_panels[series_metrics.RESPONSE_TIME_P99]["fieldConfig"]["defaults"]["unit"] == "s"
    assert series_panels[series_metrics.RPS]["fieldConfig"]["defaults"]["unit"] == "reqps"
    assert series_panels[series_metrics.FAILURE_RATIO]["fieldConfig"]["defaults"]["unit"] == "percentunit"
    for panel in series_panels.values():
        assert all("{{series}}" in t["legendFormat"] for t in panel["targets"])  # one line per series

    (table,) = panel_by_type(dashboard, "table")
    table_metrics = set().union(*(metric_names(t["expr"]) for t in table["targets"]))
    assert {series_metrics.PASSED, series_metrics.LAST_RUN_INFO, series_metrics.LAST_RUN_TIMESTAMP} <= \
        table_metrics
    assert all(t["instant"] and t["format"] == "table" for t in table["targets"])
    assert any("group_left (run, reason)" in t["expr"] for t in table["targets"])  # verdict and reason

    stats = {p["title"]: p["targets"][0]["expr"] for p in panel_by_type(dashboard, "stat")}
    assert f"{series_metrics.PASSED}{{" in stats["Failed series"] and "== 0" in stats["Failed series"]
    assert f'reason="{REGRESSED}"' in stats["Regressed series"]  # the verdict's own reason
