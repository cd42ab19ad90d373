"""The history page as a real headless Chromium shows it (tests/support/browser.py).

Runs where a Chromium is installed; where none is, only with LOCUST_OPERATOR_BROWSER_TESTS=1,
which installs Debian's package (root and apt-get) and then fails rather than skips without it.
"""

from __future__ import annotations

import contextlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from locust_operator.cli.history_view import history_html, history_rows
from tests.support.browser import chromium, dom, png_size, screenshot
from tests.unit.test_history_view import CHARTS, EVIL, Page, series

ENV = "LOCUST_OPERATOR_BROWSER_TESTS"
WIDTH, HEIGHT = 1200, 1600


@pytest.fixture(scope="module")
def browser() -> str:
    if os.environ.get(ENV) != "1":
        found = chromium(install=False)
        if found is None:
            reason = f"no chromium installed, and {ENV} is not 1 (set it to install Debian's chromium)"
            print(reason)
            pytest.skip(reason)
        return found
    found = chromium()
    if found is None:
        pytest.fail(f"{ENV}=1 but there is no chromium and it could not be installed (why: printed above)")
    return found


@pytest.fixture
def page(tmp_path: Path) -> Path:
    tests = series(5, regressed=3)
    tests[0]["metadata"]["name"] = f"nightly-1{EVIL}"
    path = tmp_path / "history.html"
    path.write_text(history_html(f"nightly{EVIL}", "perf", history_rows(tests)))
    return path


def test_the_screenshot_shows_a_page(browser: str, page: Path, tmp_path: Path) -> None:
    png = screenshot(page, tmp_path / "history.png", WIDTH, HEIGHT)
    data = png.read_bytes()
    assert png_size(data) == (WIDTH, HEIGHT)
    # a blank (or nearly blank) page of this size compresses to a few KB; this one has text and charts
    assert len(data) > 20_000, len(data)


def test_the_browser_reads_the_page_as_written(browser: str, page: Path) -> None:
    text = dom(page)
    parsed = Page(text)
    assert sorted(parsed.points) == sorted(CHARTS)
    for chart in CHARTS:
        assert len(parsed.points[chart]) == 5
        regressed = [p["data-run"] for p in parsed.points[chart] if p["class"] == "point regressed"]
        assert regressed == ["nightly-3"]
    assert [r["data-run"] for r in parsed.rows] == ["nightly-5", "nightly-4", "nightly-3", "nightly-2",
                                                   f"nightly-1{EVIL}"]
    assert [r["class"] for r in parsed.rows].count("regressed") == 1
    assert "<script" not in text  # the tenant's name stayed text


@contextlib.contextmanager
def _serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[int]:
    """A threaded HTTP server on 127.0.0.1 for the block; its port."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def loopback_server() -> Iterator[tuple[int, list[str]]]:
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Handler) as port:
        yield port, asked


def test_the_browser_fetches_nothing(browser: str, tmp_path: Path,
                                     loopback_server: tuple[int, list[str]]) -> None:
    port, asked = loopback_server
    path = tmp_path / "fetching.html"  # no Content-Security-Policy here: the flags alone must stop it
    path.write_text(f'<p id="loaded">loaded</p><img src="http://127.0.0.1:{port}/by-address.png">'
                    f'<img src="http://localhost:{port}/by-name.png">'
                    f'<link rel="stylesheet" href="http://127.0.0.1:{port}/style.css">')
    assert 'id="loaded"' in dom(path)
    assert asked == []


def test_a_page_served_on_loopback_is_loaded_and_nothing_else_is_reached(browser: str) -> None:
    asked: list[str] = []

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = (b'<p id="served">served</p><img src="http://198.18.0.9/far.png">'
                    b'<img src="http://example.invalid/named.png">') if self.path == "/" else b""
            self.send_response(200 if self.path == "/" else 404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Page) as port:
        assert 'id="served"' in dom(f"http://127.0.0.1:{port}/", wait_ms=500)
    assert asked[0] == "/" and set(asked) <= {"/", "/favicon.ico"}, asked
