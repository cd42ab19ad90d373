"""`render` of a LocustTestSchedule (its next run), and the CLI's one-line refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from locust_operator.api.config import OperatorConfig
from locust_operator.cli.main import cli
from locust_operator.cli.series import render_schedule
from locust_operator.validation.validator import InvalidLocustTest
from tests.support.examples import EXAMPLES

NIGHTLY = yaml.safe_load((EXAMPLES / "schedules" / "nightly.yaml").read_text())


def _with(**spec: Any) -> dict[str, Any]:
    return {**NIGHTLY, "spec": {**NIGHTLY["spec"], **spec}}


def test_render_shows_the_next_run_and_its_objects() -> None:
    objects = render_schedule(NIGHTLY, OperatorConfig(), datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    run = objects[0]
    # 29 March is Riga's spring-forward day: 03:00 does not exist (03:00 EET -> 04:00 EEST), so the
    # run is at 04:00 EEST, 01:00 UTC (as Debian cron does), not skipped.
    assert run["metadata"]["name"] == "nightly-20260329-0100"
    assert run["metadata"]["annotations"] == {"operator.locust.io/scheduled-time": "2026-03-29T01:00:00Z",
                                              "operator.locust.io/separate-report": "true"}  # keepReportRuns
    assert run["metadata"]["labels"] == {"team": "checkout", "locust.io/series": "nightly",
                                         "locust.io/schedule": "nightly"}
    assert run["spec"]["baseline"]["medianOf"] == 3
    assert "ownerReferences" not in run["metadata"]  # no uid offline: the API server sets none
    assert [o["kind"] for o in objects[1:]] == ["Service", "Job", "Job"]
    assert objects[1]["metadata"]["name"] == "nightly-20260329-0100-master"


@pytest.mark.parametrize(("spec", "line"), [
    ({"schedule": "61 3 * * *"}, "spec.schedule: must be a cron line of five fields"),
    ({"timeZone": "Mars/Base"}, "spec.timeZone: must be an IANA time zone name"),
    # Syntax the CRD accepts, a date that never comes: the operator's own parser says why.
    ({"schedule": "0 0 30 2 *"}, "spec.schedule: "),
])
def test_render_refuses_a_bad_schedule_in_one_line(spec: dict[str, Any], line: str, tmp_path: Any) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(_with(**spec)))
    result = CliRunner().invoke(cli, ["render", str(path)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{path}#1 (nightly): {line}"), result.output


def test_render_schedule_raises_naming_the_field() -> None:
    with pytest.raises(InvalidLocustTest) as caught:
        render_schedule(_with(schedule="0 0 30 2 *"), OperatorConfig(), datetime(2026, 1, 1, tzinfo=UTC))
    assert [p.path for p in caught.value.problems] == ["spec.schedule"]


@pytest.mark.parametrize("args", [["wait"], ["wait", "demo", "--schedule", "nightly"]])
def test_wait_takes_a_name_or_a_schedule(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert "give a LocustTest NAME or --schedule SCHEDULE (one of them)" in result.output
