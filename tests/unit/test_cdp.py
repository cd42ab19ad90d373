"""The DevTools driver (tests/support/cdp.py) on a tiny page served on loopback, in a real Chromium.

Runs where a Chromium is installed; where none is, only with LOCUST_OPERATOR_BROWSER_TESTS=1
(scripts/test), which installs Debian's package (tests/support/cdp.py: chromium_or_skip).
"""

from __future__ import annotations

import http.server
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.browser import png_size
from tests.support.cdp import Browser, CDPError, WaitTimeout, chromium_or_skip, live_in_group
from tests.unit.test_history_browser import _serving

WIDTH, HEIGHT = 800, 600

# A button that changes its text, a button found by its text, a button under an overlay, and an
# input watched the way React watches one: React replaces the element's own `value` property with
# a setter that records the value, and an 'input' event whose value equals the recorded one is no
# change. Setting `el.value = ...` is therefore invisible to React; only the prototype's native
# setter (what `fill` uses) gets through.
PAGE = """<!doctype html>
<html><head><title>cdp</title><link rel="stylesheet" href="style.css"></head><body>
<button id="go" onclick="this.textContent = 'clicked'">go</button>
<button class="pick" onclick="document.getElementById('picked').textContent = 'one'">One</button>
<button class="pick" onclick="document.getElementById('picked').textContent = 'two'">Two</button>
<p id="picked"></p>
<div style="position: relative">
  <button id="under" onclick="this.textContent = 'reached'">under</button>
  <div style="position: absolute; inset: 0; background: white"></div>
</div>
<input id="name" value="">
<p id="echo"></p>
<img src="http://localhost:{port}/by-name.png">
<script>
  const input = document.getElementById("name");
  const native = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value");
  let tracked = input.value;
  Object.defineProperty(input, "value", {{configurable: true,
    get() {{ return native.get.call(this); }},
    set(v) {{ tracked = String(v); native.set.call(this, v); }}}});
  input.addEventListener("input", () => {{
    if (input.value !== tracked) {{
      tracked = input.value;
      document.getElementById("echo").textContent = "echo:" + input.value;
    }}
  }});
  document.body.style.background = "linear-gradient(90deg, #1b5e20, #f9a825)";
</script>
</body></html>
"""


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[str, list[str]]]:
    """The page at http://127.0.0.1:PORT/; the paths asked of the server."""
    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            port = self.headers["Host"].rsplit(":", 1)[1]  # 127.0.0.1:PORT
            body = {"/": PAGE.format(port=port).encode(), "/style.css": b"p { color: #222; }"}.get(self.path)
            self.send_response(404 if body is None else 200)
            self.send_header("Content-Type", "text/css" if self.path.endswith(".css") else "text/html")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            pass

    with _serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/", asked


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium_or_skip()
    with Browser(WIDTH, HEIGHT) as opened:
        yield opened


def test_click_changes_the_page(browser: Browser, site: tuple[str, list[str]]) -> None:
    page = browser.open(site[0])
    assert page.wait_for("document.getElementById('go')", 5) is True  # a node: no JSON value, but true
    page.click("#go")
    assert page.wait_for("document.getElementById('go').textContent === 'clicked'", 5) is True
    page.click("button.pick", text="two")
    page.wait_for("document.getElementById('picked').textContent !== ''", 5)
    assert page.text("#picked") == "two"


def test_a_covered_element_is_not_clicked(browser: Browser, site: tuple[str, list[str]]) -> None:
    page = browser.open(site[0])
    with pytest.raises(CDPError, match=r"'#under' .* is covered by <div"):
        page.click("#under")
    assert page.text("#under") == "under"


def test_fill_is_seen_by_a_react_style_input(browser: Browser, site: tuple[str, list[str]]) -> None:
    page = browser.open(site[0])
    # a plain assignment goes through the tracking setter: no change as React would see it
    page.evaluate("(() => { const el = document.getElementById('name'); el.value = 'plain';"
                  " el.dispatchEvent(new Event('input', {bubbles: true})); })()")
    assert page.text("#echo") == ""
    page.fill("#name", "Ada <Lovelace> \"quoted\"")
    assert page.wait_for("document.getElementById('echo').textContent", 5) == 'echo:Ada <Lovelace> "quoted"'
    assert page.evaluate("document.getElementById('name').value") == 'Ada <Lovelace> "quoted"'


def test_wait_for_times_out_naming_what_and_where(browser: Browser, site: tuple[str, list[str]]) -> None:
    page = browser.open(site[0])
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as raised:
        page.wait_for("document.getElementById('never')", 1.0)
    took = time.monotonic() - started
    assert 1.0 <= took < 8, took
    message = str(raised.value)
    assert "document.getElementById('never')" in message and site[0] in message, message
    assert "last value None; the page shows 'go One Two under'" in message, message
    with pytest.raises(WaitTimeout, match=r"waited 0.5 s for a visible, enabled '#missing' on http"):
        page.click("#missing", timeout=0.5)


def test_evaluate_reports_what_the_page_threw(browser: Browser, site: tuple[str, list[str]]) -> None:
    page = browser.open(site[0])
    assert page.evaluate("1 + 2") == 3
    assert page.evaluate("Promise.resolve({a: [1, 'b']})") == {"a": [1, "b"]}
    with pytest.raises(CDPError, match="threw: Error: boom"):
        page.evaluate("(() => { throw new Error('boom'); })()")


def test_screenshot_is_a_png_of_the_viewport(browser: Browser, site: tuple[str, list[str]],
                                             tmp_path: Path) -> None:
    page = browser.open(site[0])
    png = page.screenshot(tmp_path / "page.png")
    data = png.read_bytes()
    assert png_size(data) == (WIDTH, HEIGHT)
    assert len(data) > 3_000, len(data)  # a gradient and text, not a blank page


def test_the_page_loads_from_loopback_and_reaches_nothing_else(browser: Browser,
                                                              site: tuple[str, list[str]]) -> None:
    url, asked = site
    asked.clear()
    page = browser.open(url)
    assert page.url == url
    assert {(r.url, r.status) for r in page.responses} >= {(url, 200), (f"{url}style.css", 200)}
    assert "/by-name.png" not in asked  # localhost is a name: it does not resolve
    assert not [e for e in page.errors if "style.css" in e]


def test_a_page_that_does_not_load_is_an_error(browser: Browser) -> None:
    with pytest.raises(CDPError, match="did not load: net::ERR"):
        browser.open("http://127.0.0.1:9/")  # the discard port: nothing listens


def test_exit_kills_the_browser_and_removes_its_profile(site: tuple[str, list[str]]) -> None:
    chromium_or_skip()
    with Browser(WIDTH, HEIGHT) as browser:
        browser.open(site[0]).click("#go")
        assert browser._process is not None
        pid, profile = browser._process.pid, browser._dir
        assert (profile / "profile" / "DevToolsActivePort").is_file()
    assert live_in_group(pid) == []
    assert not profile.exists()
