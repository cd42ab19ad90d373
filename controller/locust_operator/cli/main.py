"""The `locust-operator` command line: run, render, migrate; wait and report for CI; history and compare
of a series."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any, TypeVar

import click
import yaml

from locust_operator import __version__
from locust_operator.api.config import ConfigError, OperatorConfig, load_config
from locust_operator.api.contract import SCHEDULE_KIND
from locust_operator.build.migrate import MigrationError, migrate_v1
from locust_operator.build.render import RenderError, render
from locust_operator.build.workers import cpu_limit_warning
from locust_operator.cli.series import render_schedule
from locust_operator.validation.documents import InputError, load, read_limited
from locust_operator.validation.validator import InvalidLocustTest

if TYPE_CHECKING:
    from locust_operator.controller.kube_api import KubeApi

T = TypeVar("T")


class _Failed(Exception):
    """Problems were printed; exit non-zero (1 unless said otherwise)."""

    def __init__(self, code: int = 1) -> None:
        super().__init__(code)
        self.code = code


def _read_documents(stream: IO[bytes], source: str) -> Iterator[tuple[str, Any]]:
    """(label, document) for every non-empty YAML document, label like 'file#2'.

    The input limits (size, documents, alias expansion) are all checked before
    any document is built or rendered.
    """
    try:
        documents = load(read_limited(stream))
    except InputError as exc:
        where = source if exc.index is None else f"{source}#{exc.index}"
        click.echo(f"{where}: {exc}", err=True)
        raise _Failed() from None
    for document in documents:
        yield f"{source}#{document.index}", document.value


def _label(label: str, document: Any) -> str:
    metadata = document.get("metadata") if isinstance(document, dict) else None
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str):
        return label
    return f"{label} ({name if name.isprintable() else repr(name)})"  # one line, whatever the name


def _dump(objects: list[dict[str, Any]], output: str) -> str:
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}, indent=2) + "\n"
    return yaml.safe_dump_all(objects, sort_keys=False, explicit_start=True, width=1000)


def _config(path: str | None, templates_dir: str | None) -> OperatorConfig:
    try:
        config = load_config(path)
    except ConfigError as exc:
        click.echo(f"config: {exc}", err=True)
        raise _Failed() from None
    if templates_dir:
        from dataclasses import replace

        config = replace(config, templatesDir=templates_dir)
    return config


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="locust-operator")
@click.option("--kubeconfig", metavar="FILE", help="The kubeconfig to use (as kubectl's --kubeconfig).")
@click.option("--context", metavar="NAME", help="The kubeconfig context to use (as kubectl's --context).")
@click.pass_context
def cli(ctx: click.Context, kubeconfig: str | None, context: str | None) -> None:
    """Distributed Locust load tests on Kubernetes."""
    ctx.obj = {"kubeconfig": kubeconfig, "context": context}


_output = click.option("-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml",
                       show_default=True, help="Output format.")


@cli.command("render")
@click.argument("source", type=click.File("rb"), default="-")
@_output
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              envvar="LOCUST_OPERATOR_CONFIG", help="Operator config YAML (as the chart writes it).")
@click.option("--templates-dir", type=click.Path(file_okay=False, exists=True),
              help="Directory of template overrides (as the chart's templateOverrides).")
def render_command(source: IO[bytes], output: str, config_path: str | None,
                   templates_dir: str | None) -> None:
    """Print the objects each LocustTest in SOURCE (a file or -) would create.

    Input is validated like the API server validates it (the CRD's schema,
    defaults and CEL rules); every problem is printed as one line naming the
    document and the field.
    """
    config = _config(config_path, templates_dir)
    objects: list[dict[str, Any]] = []
    failed = False
    for label, document in _read_documents(source, source.name):
        try:
            if isinstance(document, dict) and document.get("kind") == SCHEDULE_KIND:
                objects += render_schedule(document, config, datetime.now(UTC))
                continue
            objects += render(document, config)
            warning = cpu_limit_warning(document["spec"], config)
            if warning:
                click.echo(f"{_label(label, document)}: warning: {warning}", err=True)
        except InvalidLocustTest as exc:
            failed = True
            for problem in exc.problems:
                click.echo(f"{_label(label, document)}: {problem}", err=True)
        except RenderError as exc:
            failed = True
            click.echo(f"{_label(label, document)}: {exc}", err=True)
    if failed:
        raise _Failed()
    if not objects:
        click.echo(f"{source.name}: no LocustTest found", err=True)
        raise _Failed()
    click.echo(_dump(objects, output), nl=False)


@cli.command("migrate")
@click.argument("source", type=click.File("rb"), default="-")
@_output
def migrate_command(source: IO[bytes], output: str) -> None:
    """Convert locust.io/v1 LocustTests in SOURCE to v2 manifests.

    SOURCE may hold several documents and Lists (`kubectl get -o yaml`); the
    output keeps their order. Anything v2 cannot carry over is reported on
    stderr; the result is checked against the v2 schema and rules.
    """
    from locust_operator.build.migrate import documents, problems

    migrated: list[dict[str, Any]] = []
    failed = False
    for label, document in _read_documents(source, source.name):
        try:
            items = documents(document)
        except MigrationError as exc:
            failed = True
            click.echo(f"{_label(label, document)}: {exc}", err=True)
            continue
        for suffix, item in items:
            where = _label(label + suffix, item)
            try:
                migration = migrate_v1(item)
            except MigrationError as exc:
                failed = True
                click.echo(f"{where}: {exc}", err=True)
                continue
            for note in migration.dropped:
                click.echo(f"{where}: warning: {note}", err=True)
            for problem in problems(migration.manifest):
                failed = True
                click.echo(f"{where}: the v2 result is invalid: {problem}", err=True)
            migrated.append(migration.manifest)
    if failed:
        raise _Failed()
    if not migrated:
        click.echo(f"{source.name}: no LocustTest found", err=True)
        raise _Failed()
    click.echo(_dump(migrated, output), nl=False)


@cli.command("run")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              envvar="LOCUST_OPERATOR_CONFIG", help="Operator config YAML.")
@click.option("-n", "--namespace", "namespaces", multiple=True,
              help="Namespace to watch (repeatable); default: the config's namespaces, else all.")
@click.option("-A", "--all-namespaces", is_flag=True, help="Watch every namespace.")
@click.option("--liveness-port", type=int, default=8080, show_default=True,
              help="Port of the /healthz liveness endpoint.")
@click.option("--metrics-port", type=int, default=9090, show_default=True,
              help="Port of the Prometheus /metrics endpoint (0 disables it).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default=None,
              help="Log format; default from the config (text).")
@click.option("--verbose", is_flag=True, help="Debug logging.")
def run_command(config_path: str | None, namespaces: tuple[str, ...], all_namespaces: bool,
                liveness_port: int, metrics_port: int, log_format: str | None,
                verbose: bool) -> None:
    """Run the controller against the cluster of the current kubeconfig."""
    from dataclasses import replace

    from locust_operator.controller.startup import run_controller

    config = _config(config_path, None)
    if all_namespaces and namespaces:
        click.echo("--all-namespaces and --namespace exclude each other", err=True)
        raise _Failed()
    if namespaces:
        config = replace(config, namespaces=namespaces)
    elif all_namespaces:
        config = replace(config, namespaces=())
    if log_format:
        config = replace(config, logFormat=log_format)
    run_controller(config, liveness_port=liveness_port, metrics_port=metrics_port,
                   verbose=verbose)


_namespace = click.option("-n", "--namespace",
                          help="Namespace of the test; default: the kubeconfig context's namespace.")


def _connect(command: str, namespace: str | None) -> tuple[KubeApi, str]:
    """The API client and namespace; without usable credentials, one line and exit 2."""
    from locust_operator.cli.login import ClusterError, connect

    chosen = click.get_current_context().find_root().obj or {}
    try:
        return connect(namespace, chosen.get("kubeconfig"), chosen.get("context"))
    except ClusterError as exc:
        click.echo(f"{command}: {exc}", err=True)
        raise _Failed(2) from None


def _ask(name: str, conversation: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a conversation with the API server; its refusal or absence is one line and exit 2."""
    from locust_operator.controller.kube_api import API_ERRORS, ApiError

    try:
        return asyncio.run(conversation())
    except ApiError as exc:
        if exc.status == 404:  # the collection itself (named objects' 404s are handled before)
            message = "the cluster does not serve locusttests.locust.io/v2 (is the CRD installed?)"
        else:
            message = f"the API server refused: {exc}"
    except API_ERRORS as exc:
        message = f"cannot reach the API server: {exc or type(exc).__name__}"
    click.echo(f"{name}: {message}", err=True)
    raise _Failed(2)


def _check_duration(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from locust_operator.cli.wait import parse_duration

    if value is not None:
        try:
            parse_duration(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
    return value


@cli.command("wait")
@click.argument("name", required=False)
@_namespace
@click.option("--schedule", metavar="SCHEDULE",
              help="Wait for this LocustTestSchedule's live run, else its next one (no NAME then).")
@click.option("--timeout", metavar="DURATION", callback=_check_duration,
              help="Give up after this long, e.g. 90s, 10m, 1h; default: wait as long as it takes.")
def wait_command(name: str | None, namespace: str | None, schedule: str | None, timeout: str | None) -> None:
    """Wait until the LocustTest NAME (or a schedule's next run) finishes, printing each phase change.

    At the end it prints the verdict and the results. Exit 0 when the test
    succeeded, 1 when it failed, 2 on timeout, when there is no such test, or
    when the API server cannot be asked.
    """
    from locust_operator.cli.kept_report import ReportError
    from locust_operator.cli.series import next_run
    from locust_operator.cli.status_lines import final_lines, phase
    from locust_operator.cli.wait import UNKNOWN, PhasePrinter, WaitError, exit_code, follow, parse_duration

    if (name is None) == (schedule is None):
        raise click.UsageError("give a LocustTest NAME or --schedule SCHEDULE (one of them)")
    api, namespace = _connect("wait", namespace)
    label = name or str(schedule)
    printer = PhasePrinter(label, click.echo, lambda: time.strftime("%H:%M:%S"))
    seconds = None if timeout is None else parse_duration(timeout)

    async def follow_until_timeout() -> dict[str, Any] | None:
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                run = name or await next_run(api, namespace, str(schedule), click.echo)
                printer.name = run
                return await follow(api, namespace, run, printer)
        except TimeoutError:
            if deadline.expired():
                return None
            raise
        finally:
            await api.close()

    try:
        test = _ask(label, follow_until_timeout)
    except (WaitError, ReportError) as exc:
        click.echo(str(exc), err=True)
        raise _Failed(UNKNOWN) from None
    if test is None:
        state = phase(printer.last) or "without a status (is the operator running?)"
        click.echo(f"{printer.name}: timed out after {timeout}, still {state}", err=True)
        raise _Failed(UNKNOWN)
    for line in final_lines(printer.name, namespace, test):
        click.echo(line)
    code = exit_code(test)
    if code:
        raise _Failed(code)


@cli.command("report")
@click.argument("name")
@_namespace
@click.option("-o", "--output", type=click.Choice(["html", "json", "csv"]), default="html",
              show_default=True, help="report.html, result.json or requests.csv of the results ConfigMap.")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Write to this file, not stdout.")
def report_command(name: str, namespace: str | None, output: str, path: str | None) -> None:
    """Print the results the finished LocustTest NAME kept.

    They are read from the test's results ConfigMap (gzipped keys are unzipped).
    Exit 1 when the test, the ConfigMap or the format asked for is missing, 2
    when the API server cannot be asked.
    """

    from locust_operator.cli.kept_report import ReportError, fetch

    api, namespace = _connect("report", namespace)

    async def fetch_and_close() -> bytes:
        try:
            return await fetch(api, namespace, name, output)
        finally:
            await api.close()

    try:
        content = _ask(name, fetch_and_close)
    except ReportError as exc:
        click.echo(str(exc), err=True)
        raise _Failed() from None
    _write(content, path)


@cli.command("history")
@click.argument("series")
@_namespace
@click.option("-o", "--output", type=click.Choice(["table", "json", "html"]), default="table",
              show_default=True, help="A table, JSON, or one self-contained HTML page with charts.")
@click.option("--file", "path", type=click.Path(dir_okay=False), help="Write to this file, not stdout.")
def history_command(series: str, namespace: str | None, output: str, path: str | None) -> None:
    """The runs of SERIES (LocustTests labelled locust.io/series=SERIES), newest first.

    One line per run: start, verdict, requests, RPS, p50/p95/p99, fail %, and
    the comparison with its baseline. Exit 1 when the series has no runs.
    """
    from locust_operator.cli.history_view import history_html, history_json, history_rows, history_table
    from locust_operator.cli.series import series_runs

    api, namespace = _connect("history", namespace)

    async def runs_and_close() -> list[dict[str, Any]]:
        try:
            return await series_runs(api, namespace, series)
        finally:
            await api.close()

    rows = history_rows(_ask(series, runs_and_close))
    if not rows:
        click.echo(f"{series}: no LocustTest labelled locust.io/series={series} in namespace {namespace}",
                   err=True)
        raise _Failed()
    views = {"table": history_table, "json": history_json}
    text = history_html(series, namespace, rows) if output == "html" else views[output](rows)
    _write((text if text.endswith("\n") else text + "\n").encode(), path)


@cli.command("compare")
@click.argument("first")
@click.argument("second")
@_namespace
def compare_command(first: str, second: str, namespace: str | None) -> None:
    """The per-request changes from the run FIRST to the run SECOND (their kept results)."""
    from locust_operator.cli.history_view import compare_lines
    from locust_operator.cli.kept_report import ReportError
    from locust_operator.cli.series import result_document

    api, namespace = _connect("compare", namespace)

    async def both() -> tuple[Any, Any]:
        try:
            return (await result_document(api, namespace, first),
                    await result_document(api, namespace, second))
        finally:
            await api.close()

    try:
        a_doc, b_doc = _ask(f"{first} {second}", both)
    except ReportError as exc:
        click.echo(str(exc), err=True)
        raise _Failed() from None
    for line in compare_lines(first, a_doc, second, b_doc):
        click.echo(line)


def _write(content: bytes, path: str | None) -> None:
    """`content` to stdout, or to the file at `path` (a failure is one line and exit 1)."""
    if path is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    from pathlib import Path

    try:
        Path(path).write_bytes(content)
    except OSError as exc:
        click.echo(f"{path}: cannot write: {exc.strerror or exc}", err=True)
        raise _Failed() from None


@cli.command("ui")
@click.argument("name")
@_namespace
@click.option("--port", type=click.IntRange(0, 65535), default=8089, show_default=True,
              help="Local port to listen on (127.0.0.1); 0 picks a free one.")
@click.option("--no-browser", is_flag=True, help="Print the URL only; do not open a browser.")
@click.option("--timeout", metavar="DURATION", callback=_check_duration, default="5m", show_default=True,
              help="How long to wait for the master to run.")
def ui_command(name: str, namespace: str | None, port: int, no_browser: bool, timeout: str) -> None:
    """Open the Locust web UI of the running LocustTest NAME on a local port.

    The port is forwarded to the master's web port through the API server (the
    cluster credentials only: no kubectl needed). It waits for the master to run,
    and ends when the master goes away or on Ctrl-C. Exit 1 when there is no such
    test or it has finished, 2 when the API server cannot be asked.
    """
    from locust_operator.cli.ui import UiError, serve
    from locust_operator.cli.wait import parse_duration

    api, namespace = _connect("ui", namespace)

    def opened(url: str) -> None:
        if not no_browser:
            import webbrowser

            if not webbrowser.open(url):
                click.echo(f"{name}: no browser found here: open {url} yourself")

    async def serve_and_close() -> None:
        try:
            await serve(api, namespace, name, port, click.echo, opened, parse_duration(timeout))
        finally:
            await api.close()

    try:
        _ask(name, serve_and_close)
    except UiError as exc:
        click.echo(str(exc), err=True)
        raise _Failed() from None
    except KeyboardInterrupt:
        click.echo(f"{name}: stopped: the forward is closed")


def main(prog_name: str = "locust-operator") -> None:
    from locust_operator.cli.login import global_flags_first

    try:
        cli.main(args=global_flags_first(sys.argv[1:]), prog_name=prog_name, standalone_mode=False)
    except _Failed as exc:
        sys.exit(exc.code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


def kubectl_plugin() -> None:
    """`kubectl locust ...`: kubectl runs the executable kubectl-locust for it (a plugin)."""
    main(prog_name="kubectl locust")
