"""Views of a series' runs and of two runs side by side (pure functions, no I/O).

`history_rows` reads LocustTest objects as the API returns them into one row per
run; the rows print as a text table, as JSON, or as one self-contained HTML page
(inline CSS and SVG: no script, no font, no URL). `compare_lines` sets the
per-request stats of two runs' result.json documents side by side.

Everything read from an object is checked for its type and range first: a value
that is not what the operator writes counts as missing (shown "-"), never as an
error. Names and every other text end up in HTML only through `html.escape`,
and in text only with their control characters replaced.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from locust_operator.api.contract import FAILED, SUCCEEDED
from locust_operator.rules.bounded import MAX_NUMBER, MAX_TEXT

REGRESSED = "Regressed"  # the verdict of a run that breached its series' baseline
MISSING = "-"  # how a missing value is shown
TABLE_HEADER = ("NAME", "START", "VERDICT", "REQUESTS", "RPS", "P50", "P95", "P99", "FAIL%", "VS BASELINE")
COMPARE_LIMIT = 200  # requests compared at most (the total counts as one)
_REQUEST_WIDTH = 60  # a request's name in `compare` is cut to this many characters
_DELTA_REQUEST_WIDTH = 40  # ... and in the vs-baseline text
_NUMBER_TEXT = 64  # a decimal string longer than this is not read
_TOTAL = ("", "Aggregated")  # (method, name) of Locust's total in result.json


@dataclass(frozen=True)
class HistoryRow:
    """One run of a series; a value the object does not hold (or holds garbled) is None."""

    name: str
    start: str | None  # status.startTime as written (RFC 3339)
    phase: str | None
    verdict: str | None
    requests: int | None
    rps: str | None  # decimal, one place at most: "40.1"
    p50: int | None  # ms
    p95: int | None
    p99: int | None
    fail_percent: str | None  # two places: "0.25"
    vs_baseline: str | None  # "first run", "ok vs RUN", "+26.7% p95 vs RUN", ...

    @property
    def outcome(self) -> str:
        """"regressed", "failed", "passed", or "pending" before the run ended."""
        if self.verdict == REGRESSED:
            return "regressed"
        if self.phase == FAILED:
            return "failed"
        return "passed" if self.phase == SUCCEEDED else "pending"


# ---- reading objects defensively -------------------------------------------------------------------------

def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _printable(text: str, width: int) -> str:
    """`text` on one line, control characters replaced, cut to `width` characters."""
    flat = "".join(c if c.isprintable() else " " if c.isspace() else "?" for c in text[:width + 1])
    return flat if len(flat) <= width else flat[:width - 3] + "..."


def _text(value: Any, width: int = MAX_TEXT) -> str | None:
    return _printable(value, width) if isinstance(value, str) and value else None


def _count(value: Any) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_NUMBER:
        return value
    return None


def _decimal(value: Any, limit: Decimal = Decimal(MAX_NUMBER)) -> Decimal | None:
    """A decimal string (or a number) in [0, limit]; None for anything else."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    if isinstance(value, str) and len(value) > _NUMBER_TEXT:
        return None
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() and 0 <= number <= limit else None


def _places(number: Decimal, places: int, strip: bool) -> str:
    text = f"{number:.{places}f}"
    return text.rstrip("0").rstrip(".") if strip and "." in text else text


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > _NUMBER_TEXT:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _fail_percent(result: Mapping[str, Any]) -> str | None:
    ratio = _decimal(result.get("failRatio"), Decimal(1))
    if ratio is not None:
        return _places(ratio * 100, 2, strip=False)
    requests, failures = _count(result.get("requests")), _count(result.get("failures"))
    if requests and failures is not None and failures <= requests:
        return _places(Decimal(failures) * 100 / Decimal(requests), 2, strip=False)
    return None


def _change_size(change: str | None) -> float:
    """How large a delta's change ("+26.7%") is, for picking the worst; -1 when it does not parse."""
    try:
        size = abs(float((change or "").removesuffix("%")))
    except ValueError:
        return -1.0
    return size if math.isfinite(size) else -1.0


def _vs_baseline(result: Mapping[str, Any]) -> str | None:
    baseline = _mapping(result.get("baseline"))
    if not baseline:
        return None
    runs = [run for run in (_text(item, 253) for item in _items(baseline.get("runs"))) if run]
    if not runs:
        message = _text(baseline.get("message")) or ""
        return "first run" if not message or message.startswith("no baseline yet") else "no baseline"
    against = runs[0] if len(runs) == 1 else f"median of {len(runs)} runs"
    breached = [d for d in map(_mapping, _items(baseline.get("deltas"))[:1000]) if d.get("breached") is True]
    if breached:
        worst = max(breached, key=lambda d: _change_size(_text(d.get("change"), 16)))
        request = _text(worst.get("request"), _DELTA_REQUEST_WIDTH)
        parts = [_text(worst.get("change"), 16), _text(worst.get("metric"), 16) or "?",
                 f"of {request}" if request else None, f"vs {against}",
                 f"(+{len(breached) - 1} more)" if len(breached) > 1 else None]
        return " ".join(part for part in parts if part)
    if baseline.get("passed") is False:
        return f"regressed vs {against}"
    return f"ok vs {against}" if baseline.get("passed") is True else None


def _row(test: Mapping[str, Any]) -> HistoryRow:
    status = _mapping(test.get("status"))
    result = _mapping(status.get("result"))
    times = _mapping(result.get("responseTimeMs"))
    rps = _decimal(result.get("rps"))
    start = status.get("startTime")
    return HistoryRow(
        name=_text(_mapping(test.get("metadata")).get("name"), 253) or "",
        start=start if _time(start) else None,
        phase=_text(status.get("phase"), 64),
        verdict=_text(status.get("verdict"), 64),
        requests=_count(result.get("requests")),
        rps=None if rps is None else _places(rps, 1, strip=False),
        p50=_count(times.get("p50")),
        p95=_count(times.get("p95")),
        p99=_count(times.get("p99")),
        fail_percent=_fail_percent(result),
        vs_baseline=_vs_baseline(result),
    )


def _newest_first(test: Mapping[str, Any], row: HistoryRow) -> tuple[int, float, str]:
    moment = (_time(_mapping(test.get("status")).get("startTime"))
              or _time(_mapping(test.get("metadata")).get("creationTimestamp")))
    return (0, -moment.timestamp(), row.name) if moment else (1, 0.0, row.name)


def history_rows(tests: Sequence[Mapping[str, Any]]) -> list[HistoryRow]:
    """One row per LocustTest, newest first: by status.startTime, else metadata.creationTimestamp,
    then by name; runs with neither time come last."""
    keyed = [(test, _row(test)) for test in tests if isinstance(test, Mapping)]
    keyed.sort(key=lambda pair: _newest_first(*pair))
    return [row for _, row in keyed]


# ---- text and JSON ---------------------------------------------------------------------------------------

def _shown(value: str | int | None) -> str:
    return MISSING if value is None or value == "" else str(value)


def _cells(row: HistoryRow) -> list[str]:
    return [_shown(row.name), _shown(row.start), _shown(row.verdict or row.phase),
            *(_shown(v) for v in (row.requests, row.rps, row.p50, row.p95, row.p99, row.fail_percent,
                                  row.vs_baseline))]


def _aligned(rows: Iterable[Sequence[str]], gap: str = "   ", right: Sequence[int] = ()) -> list[str]:
    """The rows as lines of aligned columns, left-aligned but for the `right` ones."""
    table = [list(row) for row in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    return [gap.join(cell.rjust(width) if i in right else cell.ljust(width)
                     for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip()
            for row in table]


def history_table(rows: Sequence[HistoryRow]) -> str:
    """The rows as an aligned table (like kubectl's), the header first; the verdict column
    shows the phase of a run that has no verdict yet."""
    return "\n".join(_aligned([list(TABLE_HEADER), *map(_cells, rows)])) + "\n"


def history_json(rows: Sequence[HistoryRow]) -> str:
    """The rows as a JSON list of objects, keys sorted, missing values null."""
    return json.dumps([asdict(row) for row in rows], indent=2, sort_keys=True) + "\n"


# ---- HTML ------------------------------------------------------------------------------------------------

_E = html.escape  # every text that reaches the page passes through it (quote=True: safe in attributes)

_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 32px 40px 48px; background: #f7f8fa; color: #1f2933;
  font: 14px/1.45 system-ui, "DejaVu Sans", "Liberation Sans", Arial, sans-serif; }
main { max-width: 1120px; margin: 0 auto; }
h1 { font-size: 24px; font-weight: 600; margin: 0 0 4px; }
h2 { font-size: 15px; font-weight: 600; margin: 0 0 8px; color: #323f4b; }
.sub { color: #616e7c; margin: 0 0 20px; }
.sub b { color: #1f2933; font-weight: 600; }
.legend { display: flex; gap: 24px; margin: 0 0 16px; color: #52606d; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.card { background: #fff; border: 1px solid #e4e7eb; border-radius: 8px; padding: 16px 20px 8px;
  margin: 0 0 16px; }
svg.chart { display: block; width: 100%; height: auto; }
.scroll { overflow-x: auto; }
svg text { font: 11px system-ui, "DejaVu Sans", "Liberation Sans", Arial, sans-serif; fill: #616e7c; }
.grid { stroke: #e4e7eb; stroke-width: 1; }
.axis { stroke: #9aa5b1; stroke-width: 1; }
.line { fill: none; stroke: #7b8794; stroke-width: 2; stroke-linejoin: round; }
.point.passed, .swatch.passed { fill: #486581; stroke: #fff; stroke-width: 1.5; }
.point.pending, .swatch.pending { fill: #fff; stroke: #9aa5b1; stroke-width: 2; }
.point.failed, .swatch.failed { fill: #fff; stroke: #d9822b; stroke-width: 3; }
.point.regressed, .swatch.regressed { fill: #d64545; stroke: #8a1c1c; stroke-width: 2; }
.nodata { fill: none; stroke: #9aa5b1; stroke-width: 2; }
.empty { color: #616e7c; background: #fff; border: 1px dashed #cbd2d9; border-radius: 8px;
  padding: 32px; text-align: center; }
table { width: 100%; border-collapse: collapse; background: #fff; border: 1px solid #e4e7eb; }
th, td { padding: 7px 10px; border-bottom: 1px solid #e4e7eb; text-align: left; white-space: nowrap; }
th { background: #f0f2f5; color: #52606d; font-size: 12px; font-weight: 600; letter-spacing: .02em; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.vs { white-space: normal; }
tr.regressed td { background: #fdecec; }
tr.regressed td:first-child { box-shadow: inset 4px 0 0 #d64545; }
tr.regressed td.verdict { color: #a61b1b; font-weight: 600; }
tr.failed td.verdict { color: #b25e09; font-weight: 600; }
footer { margin-top: 24px; color: #9aa5b1; font-size: 12px; }
"""

_WIDTH, _HEIGHT = 960, 230
_LEFT, _RIGHT, _TOP, _BOTTOM = 64, 20, 14, 36  # margins of the plot area
_PAD = 18  # between the plot area's sides and the first and last point
_X_LABELS = 8  # at most this many labels on the x axis
_Y_TICKS = 4  # about this many steps up the y axis

# (svg id, heading, unit in tooltips, the row's value)
_CHARTS: tuple[tuple[str, str, str, Callable[[HistoryRow], int | str | None]], ...] = (
    ("chart-p95", "p95 response time (ms)", " ms", lambda row: row.p95),
    ("chart-rps", "Requests per second", " rps", lambda row: row.rps),
    ("chart-fail", "Failures (%)", "%", lambda row: row.fail_percent),
)


def _scale(highest: float) -> tuple[float, float]:
    """The y axis' top and step: 1, 2 or 5 times a power of ten, from 0 to above `highest`."""
    if not (math.isfinite(highest) and highest > 0):
        return _scale(1.0)  # nothing above zero: 0 to 1 in halves
    raw = highest / _Y_TICKS
    magnitude = 10.0 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if raw <= m * magnitude * (1 + 1e-9))
    return math.ceil(highest / step - 1e-9) * step, step


def _tick(value: float, step: float) -> str:
    if value >= 1e6:
        return f"{value / 1e6:.4g}M"
    if value >= 1e4:
        return f"{value / 1e3:.4g}k"
    places = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{value:.{places}f}"


def _short_time(start: str | None, shape: str = "%m-%d %H:%M") -> str:
    moment = _time(start)
    return moment.astimezone(UTC).strftime(shape) if moment else ""


def _chart(chart_id: str, heading: str, unit: str, shown_values: list[int | str | None],
           runs: list[HistoryRow]) -> str:
    plot_w, plot_h = _WIDTH - _LEFT - _RIGHT, _HEIGHT - _TOP - _BOTTOM
    values = [_float(_decimal(v)) for v in shown_values]
    present = [v for v in values if v is not None]
    top, step = _scale(max(present, default=0.0))
    bottom_y = _TOP + plot_h

    def x_of(index: int) -> float:
        if len(runs) == 1:
            return _LEFT + plot_w / 2
        return _LEFT + _PAD + index * (plot_w - 2 * _PAD) / (len(runs) - 1)

    def y_of(value: float) -> float:
        return bottom_y - value / top * plot_h

    parts = [f'<svg id="{chart_id}" class="chart" viewBox="0 0 {_WIDTH} {_HEIGHT}" width="{_WIDTH}" '
             f'height="{_HEIGHT}" role="img" aria-label="{_E(heading)}">']
    for i in range(round(top / step) + 1):
        y = y_of(i * step)
        parts.append(f'<line class="{"axis" if i == 0 else "grid"}" x1="{_LEFT}" y1="{y:.1f}" '
                     f'x2="{_WIDTH - _RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text class="tick" x="{_LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">'
                     f'{_E(_tick(i * step, step))}</text>')
    stride = max(1, math.ceil(len(runs) / _X_LABELS))
    for index, run in enumerate(runs):
        if index % stride == 0:
            label = _short_time(run.start) or f"#{index + 1}"
            parts.append(f'<text class="xlabel" x="{x_of(index):.1f}" y="{bottom_y + 20}" '
                         f'text-anchor="middle">{_E(label)}</text>')
    # the line, broken where a run has no value
    path, pen_down = [], False
    for index, value in enumerate(values):
        if value is None:
            pen_down = False
            continue
        path.append(f'{"L" if pen_down else "M"}{x_of(index):.1f} {y_of(value):.1f}')
        pen_down = True
    if path:
        parts.append(f'<path class="line" d="{" ".join(path)}"/>')
    for index, (run, value, shown) in enumerate(zip(runs, values, shown_values, strict=True)):
        if value is None:  # a small cross on the axis: the run is there, its value is not
            x, state = x_of(index), run.verdict or run.phase or "no verdict"
            parts.append(f'<path class="nodata" data-run="{_E(run.name)}" d="M{x - 4:.1f} {bottom_y - 4:.1f}'
                         f'l8 8m0 -8l-8 8"><title>{_E(f"{run.name}: no value ({state})")}</title></path>')
            continue
        radius = 6.5 if run.outcome == "regressed" else 5
        tooltip = f"{run.name}: {shown}{unit} ({run.verdict or run.phase or 'no verdict'})"
        parts.append(f'<circle class="point {run.outcome}" data-run="{_E(run.name)}" '
                     f'data-value="{_E(str(shown))}" cx="{x_of(index):.1f}" cy="{y_of(value):.1f}" '
                     f'r="{radius}">'
                     f'<title>{_E(tooltip)}</title></circle>')
    parts.append("</svg>")
    return f'<section class="card"><h2>{_E(heading)}</h2>\n' + "\n".join(parts) + "\n</section>"


def _legend() -> str:
    items = [("passed", "passed"), ("failed", "failed"), ("regressed", "regressed (vs baseline)")]
    swatches = [f'<span><svg width="16" height="16" aria-hidden="true"><circle class="swatch {kind}" '
                f'cx="8" cy="8" r="5"/></svg>{_E(label)}</span>' for kind, label in items]
    swatches.append('<span><svg width="16" height="16" aria-hidden="true"><path class="nodata" '
                    'd="M4 4l8 8m0 -8l-8 8"/></svg>no value</span>')
    return '<div class="legend">' + "".join(swatches) + "</div>"


def _html_table(rows: Sequence[HistoryRow]) -> str:
    numeric = {"REQUESTS", "RPS", "P50", "P95", "P99", "FAIL%"}
    head = "".join(f'<th{" class=num" if h in numeric else ""}>{_E(h)}</th>' for h in TABLE_HEADER)
    classes = ["name", "start", "verdict", *["num"] * 6, "vs"]
    body = []
    for row in rows:
        texts, attributes = _cells(row), [f'class="{c}"' for c in classes]
        if row.start:  # minutes are enough here; the cell's tooltip has the time as written
            texts[1] = _short_time(row.start, "%Y-%m-%d %H:%M")
            attributes[1] += f' title="{_E(row.start)}"'
        cells = "".join(f"<td {a}>{_E(t)}</td>" for a, t in zip(attributes, texts, strict=True))
        body.append(f'<tr class="{row.outcome}" data-run="{_E(row.name)}">{cells}</tr>')
    return (f'<div class="scroll"><table id="runs">\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody>\n</table></div>")


def history_html(series: str, namespace: str, rows: Sequence[HistoryRow]) -> str:
    """One self-contained page: p95, RPS and failure % over the runs (oldest left), then the
    table of runs (newest first). Its Content-Security-Policy forbids every fetch and script."""
    title = f"Series {series} in {namespace}"
    counts = {kind: sum(1 for row in rows if row.outcome == kind) for kind in ("regressed", "failed")}
    summary = (f"namespace <b>{_E(namespace)}</b> · {len(rows)} run{'' if len(rows) == 1 else 's'}"
               f" · {counts['regressed']} regressed · {counts['failed']} failed")
    if rows:
        newest = rows[0]
        state = newest.verdict or newest.phase or "no verdict"
        summary += f" · newest: <b>{_E(newest.name)}</b> ({_E(state)})"
        oldest_first = list(reversed(rows))
        charts = [_chart(chart_id, heading, unit, [value(row) for row in oldest_first], oldest_first)
                  for chart_id, heading, unit, value in _CHARTS]
        content = "\n".join([_legend(), *charts, "<h2>Runs (newest first)</h2>", _html_table(rows)])
    else:
        content = (f'<p class="empty" id="no-runs">No runs of series <b>{_E(series)}</b> in namespace '
                   f'<b>{_E(namespace)}</b> yet.</p>')
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_E(title)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>Series <span id="series">{_E(series)}</span></h1>
<p class="sub">{summary}</p>
{content}
<footer>locust-operator history</footer>
</main>
</body>
</html>
"""


def _float(value: int | Decimal | None) -> float | None:
    return None if value is None else float(value)


# ---- compare ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Stats:
    requests: int | None
    failures: int | None
    rps: float | None
    avg: float | None
    p50: int | None
    p95: int | None
    p99: int | None

    @property
    def fail_percent(self) -> float | None:
        if self.requests and self.failures is not None:
            return self.failures * 100 / self.requests
        return None


def _stats(entry: Mapping[str, Any]) -> _Stats:
    percentiles = _mapping(entry.get("percentilesMs"))
    rps, avg = _decimal(entry.get("rps")), _decimal(entry.get("avgMs"))
    return _Stats(requests=_count(entry.get("requests")), failures=_count(entry.get("failures")),
                  rps=_float(rps), avg=_float(avg), p50=_count(percentiles.get("50%")),
                  p95=_count(percentiles.get("95%")), p99=_count(percentiles.get("99%")))


def _by_request(doc: Any) -> dict[tuple[str, str], _Stats]:
    found: dict[tuple[str, str], _Stats] = {}
    for entry in map(_mapping, _items(_mapping(doc).get("requests"))):
        method, name = entry.get("method"), entry.get("name")
        if isinstance(method, str) and isinstance(name, str) and (method, name) not in found:
            found[(method, name)] = _stats(entry)
    return found


def _relative(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return MISSING
    if a == b:
        return "0.0%"
    return "n/a" if a == 0 else f"{(b - a) / a * 100:+.1f}%"


def _points(a: float | None, b: float | None) -> str:
    if a is None or b is None:
        return MISSING
    return "0.00 pp" if a == b else f"{b - a:+.2f} pp"


def _value(value: float | None, places: int) -> str:
    return MISSING if value is None else f"{value:.{places}f}"


def _metric_rows(a: _Stats, b: _Stats) -> list[list[str]]:
    pairs: list[tuple[str, float | None, float | None, int]] = [
        ("requests", a.requests, b.requests, 0), ("rps", a.rps, b.rps, 1), ("p50 ms", a.p50, b.p50, 0),
        ("p95 ms", a.p95, b.p95, 0), ("p99 ms", a.p99, b.p99, 0), ("avg ms", a.avg, b.avg, 1)]
    rows = [[label, _value(before, places), _value(after, places), _relative(before, after)]
            for label, before, after, places in pairs]
    rows.append(["fail %", _value(a.fail_percent, 2), _value(b.fail_percent, 2),
                 _points(a.fail_percent, b.fail_percent)])
    return rows


def _request_label(key: tuple[str, str]) -> str:
    return "Aggregated" if key == _TOTAL else _printable(" ".join(p for p in key if p), _REQUEST_WIDTH)


def compare_lines(a_name: str, a_doc: Any, b_name: str, b_doc: Any) -> list[str]:
    """Per request (the Aggregated total first, then by name), each metric of run A, of run B and
    the change from A to B: relative for counts, rates and times ("n/a" from a zero), in percentage
    points for the failure %. A request only one run made says so; at most COMPARE_LIMIT requests."""
    a_stats, b_stats = _by_request(a_doc), _by_request(b_doc)
    keys = sorted(set(a_stats) | set(b_stats), key=lambda k: (k != _TOTAL, k[1], k[0]))
    lines = [f"A: {_printable(a_name, 253)}   B: {_printable(b_name, 253)}"]
    if not keys:
        return [*lines, "no per-request stats in either run"]
    table = [["REQUEST", "METRIC", "A", "B", "CHANGE"]]
    for key in keys[:COMPARE_LIMIT]:
        label = _request_label(key)
        if key not in b_stats:
            table.append([label, "only in A", "", "", ""])
        elif key not in a_stats:
            table.append([label, "only in B", "", "", ""])
        else:
            metrics = _metric_rows(a_stats[key], b_stats[key])
            table += [[label if i == 0 else "", *metric] for i, metric in enumerate(metrics)]
    lines += _aligned(table, gap="  ", right=(2, 3, 4))
    if len(keys) > COMPARE_LIMIT:
        lines.append(f"... {len(keys) - COMPARE_LIMIT} more requests left out "
                     f"(at most {COMPARE_LIMIT} are compared)")
    return lines
