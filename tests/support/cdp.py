"""Drive a real headless Chromium over the Chrome DevTools Protocol: open, wait, click, fill, screenshot.

tests/support/browser.py only loads a page and dumps it (Chromium's command line); this one keeps
the browser running and talks to it, so a test can act on a page as a user would. The browser is
the same Debian Chromium (`chromium()`), with the same flags, offline except for 127.0.0.1 itself
(`_address`'s loopback flags), in a throwaway profile. It listens for DevTools on a port of its own
choosing (`--remote-debugging-port=0`, read back from `<profile>/DevToolsActivePort`); each page is
a target of its own (PUT /json/new), spoken to over its websocket with aiohttp (Kopf's own HTTP
client, so no new dependency), on an asyncio loop in a thread of its own: the API is synchronous.

    with Browser() as browser:
        page = browser.open("http://127.0.0.1:8089/")
        page.wait_for("document.querySelector('form input[name=userCount]')", 15, what="the swarm form")
        page.fill("form input[name=userCount]", "3")
        page.click("form button[type=submit]", text="start")
        page.screenshot(tmp_path / "page.png")
        page.wait_for_response("http://127.0.0.1:8089/swarm")

Every wait is bounded, and a timeout names what was awaited and the page's URL at the time. On
exit the browser's whole process group is killed and its profile removed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import pytest

from tests.support.browser import BrowserError, _address, chromium

T = TypeVar("T")

BROWSER_TESTS = "LOCUST_OPERATOR_BROWSER_TESTS"
START_TIMEOUT = 30.0  # seconds for the browser to write DevToolsActivePort
COMMAND_TIMEOUT = 15.0  # seconds for one DevTools command
# The flags for pages on 127.0.0.1 (any port): every name unresolvable, every other address sent
# to a closed proxy port.
_, LOOPBACK_FLAGS = _address("http://127.0.0.1:1/")


def chromium_or_skip() -> str:
    """The Chromium for a browser test, as tests/unit/test_history_browser.py finds it: the installed
    one; where there is none, a skip (its reason printed), unless LOCUST_OPERATOR_BROWSER_TESTS=1
    (scripts/test), which installs Debian's package and fails rather than skips without it."""
    if os.environ.get(BROWSER_TESTS) != "1":
        found = chromium(install=False)
        if found is None:
            reason = (f"no chromium installed, and {BROWSER_TESTS} is not 1 "
                      "(set it to install Debian's chromium)")
            print(reason)
            pytest.skip(reason)
        return found
    found = chromium()
    if found is None:
        pytest.fail(f"{BROWSER_TESTS}=1 but there is no chromium and it could not be installed "
                    "(why: printed above)")
    return found


class CDPError(BrowserError):
    """The browser refused a command, or a page's script threw."""


class WaitTimeout(CDPError):
    """What was awaited did not happen in time (the message names it and the page's URL)."""


@dataclass(frozen=True)
class Response:
    """One HTTP response the page received (Network.responseReceived)."""

    url: str
    status: int
    mime_type: str
    resource_type: str


def live_in_group(pgid: int) -> list[int]:
    """The processes of process group `pgid` that still run (zombies, which the machine's init has
    not reaped yet, do not count), from /proc."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # pid (comm) state ppid pgrp ...: comm may hold spaces and parentheses
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
                live.append(int(stat.parent.name))
    return live


def _describe(details: dict[str, Any]) -> str:
    exception = details.get("exception", {})
    return str(exception.get("description") or details.get("text") or details)


class _Connection:
    """One target's DevTools websocket: commands by id, events to the listeners (loop thread only)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next = 0
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._listeners: list[Callable[[str, dict[str, Any]], None]] = []
        self._closed: str | None = None
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data: dict[str, Any] = json.loads(message.data)
                if "id" in data:
                    future = self._pending.pop(data["id"], None)
                    if future is not None and not future.done():
                        future.set_result(data)
                else:
                    for listener in list(self._listeners):
                        listener(data.get("method", ""), data.get("params", {}))
        finally:
            self._closed = "the browser closed the DevTools connection"
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(CDPError(self._closed))
            self._pending.clear()

    def listen(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        self._listeners.append(listener)

    def unlisten(self, listener: Callable[[str, dict[str, Any]], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(listener)

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if self._closed:
            raise CDPError(f"{method}: {self._closed}")
        self._next += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[self._next] = future
        await self.ws.send_str(json.dumps({"id": self._next, "method": method, "params": params or {}}))
        answer = await future
        if "error" in answer:
            error = answer["error"]
            raise CDPError(f"{method} failed: {error.get('message')} {error.get('data', '')}".strip())
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader


class Browser:
    """A headless Chromium for the block (`with Browser() as browser:`); `open` gives pages."""

    def __init__(self, width: int = 1280, height: int = 900, timeout: float = START_TIMEOUT) -> None:
        self.width, self.height = width, height
        executable = chromium()
        if executable is None:
            raise BrowserError("no chromium (see the reason printed above)")
        self._dir = Path(tempfile.mkdtemp(prefix="chromium-cdp-"))
        profile = self._dir / "profile"
        profile.mkdir()
        self._log_path = self._dir / "chromium.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="cdp-loop", daemon=True)
        self._thread.start()
        self._session: aiohttp.ClientSession | None = None
        self.pages: list[Page] = []
        try:
            with self._log_path.open("wb") as log:
                # its own process group, so that exit ends the renderers and helpers with it
                self._process = subprocess.Popen(
                    [executable, *LOOPBACK_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0",
                     "--remote-debugging-address=127.0.0.1", f"--window-size={width},{height}",
                     "about:blank"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                    env={**os.environ, "HOME": str(profile)})
            self.port = self._devtools_port(profile / "DevToolsActivePort", timeout)
            self._session = self._run(self._new_session(), COMMAND_TIMEOUT)
        except BaseException:
            self.close()
            raise

    async def _new_session(self) -> aiohttp.ClientSession:
        # trust_env=False (the default): no proxy from the environment for loopback
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=COMMAND_TIMEOUT))

    def log(self) -> str:
        """The browser's output so far (its last 4000 characters)."""
        try:
            return self._log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def _devtools_port(self, active: Path, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        assert self._process is not None
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrowserError(f"chromium exited ({self._process.returncode}) before it listened "
                                   f"for DevTools:\n{self.log()}")
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(active.read_text().splitlines()[0])
            time.sleep(0.05)
        raise WaitTimeout(f"chromium wrote no {active.name} within {timeout} s:\n{self.log()}")

    def _run(self, coroutine: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run `coroutine` on the browser's loop, for at most `timeout` seconds."""
        bounded = asyncio.wait_for(coroutine, timeout)
        future = asyncio.run_coroutine_threadsafe(bounded, self._loop)
        try:
            return future.result(timeout + 5)
        except TimeoutError:
            future.cancel()
            raise

    async def _http(self, method: str, path: str) -> Any:
        assert self._session is not None
        async with self._session.request(method, f"http://127.0.0.1:{self.port}{path}") as resp:
            if resp.status != 200:
                raise CDPError(f"{method} {path}: {resp.status} {await resp.text()}")
            return await resp.json(content_type=None)

    def targets(self) -> list[dict[str, Any]]:
        """The browser's targets (GET /json/list)."""
        listed: list[dict[str, Any]] = self._run(self._http("GET", "/json/list"), COMMAND_TIMEOUT)
        return listed

    def open(self, url: str, timeout: float = 30.0) -> Page:
        """A new page (tab) that has loaded `url` (its load event fired)."""
        target: dict[str, Any] = self._run(self._http("PUT", "/json/new?about:blank"), COMMAND_TIMEOUT)
        page = Page(self, target["id"], target["webSocketDebuggerUrl"])
        self.pages.append(page)
        page.goto(url, timeout)
        return page

    def close(self) -> None:
        """Kill the browser's process group, remove its profile, stop the loop (idempotent)."""
        if self._loop.is_running():
            for page in self.pages:
                with contextlib.suppress(Exception):
                    page._close()
            if self._session is not None:
                with contextlib.suppress(Exception):
                    self._run(self._session.close(), 5)
                self._session = None
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            deadline = time.monotonic() + 5  # its helpers, which SIGKILL ends at once but not instantly
            while live_in_group(self._process.pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            self._process = None
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        if not self._loop.is_running() and not self._loop.is_closed():
            self._loop.close()
        for _ in range(3):  # a helper just killed may still be writing into the profile
            shutil.rmtree(self._dir, ignore_errors=True)
            if not self._dir.exists():
                break
            time.sleep(0.2)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class Page:
    """One tab. `errors` collects the page's uncaught exceptions and console errors, `responses`
    every HTTP response it received (the document, its scripts, styles, images and fetches)."""

    def __init__(self, browser: Browser, target_id: str, ws_url: str) -> None:
        self.browser = browser
        self.target_id = target_id
        self.errors: list[str] = []
        self.responses: list[Response] = []
        self._connection: _Connection = browser._run(self._connect(ws_url), COMMAND_TIMEOUT)
        for method in ("Page.enable", "Runtime.enable", "Network.enable", "Log.enable"):
            self.send(method)
        self.send("Emulation.setDeviceMetricsOverride", {"width": browser.width, "height": browser.height,
                                                         "deviceScaleFactor": 1, "mobile": False})

    async def _connect(self, ws_url: str) -> _Connection:
        session = self.browser._session
        assert session is not None
        connection = _Connection(await session.ws_connect(ws_url, max_msg_size=0))
        connection.listen(self._record)
        return connection

    def _record(self, method: str, params: dict[str, Any]) -> None:
        if method == "Runtime.exceptionThrown":
            self.errors.append(_describe(params.get("exceptionDetails", {})))
        elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
            args = params.get("args", [])
            self.errors.append(" ".join(str(a.get("value", a.get("description", ""))) for a in args))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.errors.append(f"{params['entry'].get('text')} {params['entry'].get('url', '')}".strip())
        elif method == "Network.responseReceived":
            r = params["response"]
            self.responses.append(Response(r["url"], int(r["status"]), r.get("mimeType", ""),
                                           params.get("type", "")))

    def send(self, method: str, params: dict[str, Any] | None = None,
             timeout: float = COMMAND_TIMEOUT) -> dict[str, Any]:
        """One DevTools command to this page; its result."""
        try:
            return self.browser._run(self._connection.send(method, params), timeout)
        except TimeoutError:
            raise WaitTimeout(f"{method} got no answer within {timeout} s") from None

    async def _event(self, method: str, start: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
        """`start()`'s result, once the event `method` has come after it was sent."""
        loop = asyncio.get_running_loop()
        seen: asyncio.Future[dict[str, Any]] = loop.create_future()

        def listener(name: str, params: dict[str, Any]) -> None:
            if name == method and not seen.done():
                seen.set_result(params)

        self._connection.listen(listener)
        try:
            result = await start()
            if not result.get("errorText"):  # a navigation that failed may never fire its load event
                await seen
            return result
        finally:
            self._connection.unlisten(listener)

    def goto(self, url: str, timeout: float = 30.0) -> None:
        """Load `url` in this page, until its load event (at most `timeout` seconds)."""
        navigate = self._connection.send
        try:
            result = self.browser._run(self._event("Page.loadEventFired",
                                                   lambda: navigate("Page.navigate", {"url": url})), timeout)
        except TimeoutError:
            raise WaitTimeout(f"{url} did not load within {timeout} s (the page is at {self.url})") from None
        if result.get("errorText"):
            raise CDPError(f"{url} did not load: {result['errorText']}")

    @property
    def url(self) -> str:
        """The page's current URL (from the browser's target list: it answers even if the page hangs)."""
        with contextlib.suppress(Exception):
            for target in self.browser.targets():
                if target.get("id") == self.target_id:
                    return str(target.get("url"))
        return "(unknown: the browser did not say)"

    def evaluate(self, expression: str, timeout: float = COMMAND_TIMEOUT) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited); CDPError if it throws."""
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True,
                                                "awaitPromise": True, "userGesture": True}, timeout)
        if "exceptionDetails" in result:
            raise CDPError(f"{expression!r} threw: {_describe(result['exceptionDetails'])}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 10.0, interval: float = 0.1,
                 what: str | None = None) -> Any:
        """The expression's first truthy value (a DOM node is true), evaluated every `interval` s;
        WaitTimeout after `timeout` s, naming `what` (by default the expression), the page's URL and
        the last value or error (an expression that throws, e.g. on an element not there yet, counts
        as not yet)."""
        deadline = time.monotonic() + timeout
        last = "never evaluated"
        # a DOM node (say, document.querySelector's) has no JSON value: it counts as true
        valued = f"(async () => {{ const v = await ({expression}); return v instanceof Node ? true : v; }})()"
        while True:
            left = deadline - time.monotonic()
            try:
                value = self.evaluate(valued, max(0.5, min(left, 5.0)))
                if value:
                    return value
                last = f"last value {value!r}"
            except CDPError as error:  # WaitTimeout included: a busy page
                last = f"last error: {error}"
            left = deadline - time.monotonic()
            if left <= 0:
                break
            time.sleep(min(interval, left))
        shown = "(unknown)"
        with contextlib.suppress(CDPError):
            shown = repr(" ".join(str(self.evaluate("document.body?.innerText ?? ''", 2)).split())[:300])
        raise WaitTimeout(f"waited {timeout} s for {what or repr(expression)} on {self.url} ({last}; "
                          f"the page shows {shown})")

    @staticmethod
    def _find(selector: str, text: str | None) -> str:
        """JavaScript for the first element matching `selector` (whose visible text, trimmed, is
        `text`, case aside, when given), or null."""
        sel = json.dumps(selector)
        if text is None:
            return f"document.querySelector({sel})"
        wanted = json.dumps(text.strip().lower())
        return (f"([...document.querySelectorAll({sel})]"
                f".find(e => (e.innerText ?? e.textContent).trim().toLowerCase() === {wanted}) ?? null)")

    def _await_element(self, selector: str, text: str | None, timeout: float, condition: str,
                       what: str) -> str:
        """Wait until the element exists and `condition` (about `el`) holds; the JS to find it."""
        find = self._find(selector, text)
        named = f"{what} {selector!r}" + (f" with the text {text!r}" if text is not None else "")
        self.wait_for(f"(() => {{ const el = {find}; return !!el && ({condition}); }})()", timeout,
                      what=named)
        return find

    def click(self, selector: str, text: str | None = None, timeout: float = 10.0) -> None:
        """Click the first element matching `selector` (and `text`, see `_find`) with the mouse, at
        its centre, as a user would: awaited until it exists, is visible and enabled; CDPError when
        another element covers that point."""
        visible = ("!el.disabled && el.getClientRects().length > 0"
                   " && (el.scrollIntoView({block: 'center', inline: 'center'}), true)")
        find = self._await_element(selector, text, timeout, visible, "a visible, enabled")
        point = self.evaluate(
            f"(() => {{ const el = {find}; const r = el.getBoundingClientRect();"
            " const x = r.left + r.width / 2, y = r.top + r.height / 2;"
            " const hit = document.elementFromPoint(x, y);"
            " return {x, y, hit: hit === el || el.contains(hit),"
            " what: hit ? hit.outerHTML.slice(0, 200) : null}; })()")
        if not point["hit"]:
            raise CDPError(f"{selector!r} on {self.url} is covered by {point['what']}")
        for kind, buttons in (("mouseMoved", 0), ("mousePressed", 1), ("mouseReleased", 0)):
            self.send("Input.dispatchMouseEvent", {"type": kind, "x": point["x"], "y": point["y"],
                                                   "button": "none" if kind == "mouseMoved" else "left",
                                                   "buttons": buttons, "clickCount": 1})

    def fill(self, selector: str, value: str, timeout: float = 10.0) -> None:
        """Set the value of the input, textarea or select matching `selector`, the way React sees it:
        through the element's native value setter, then 'input' and 'change' events."""
        find = self._await_element(selector, None, timeout, "!el.disabled", "an enabled")
        now = self.evaluate(
            f"(() => {{ const el = {find};"
            " const proto = el instanceof HTMLTextAreaElement ? HTMLTextAreaElement.prototype"
            " : el instanceof HTMLSelectElement ? HTMLSelectElement.prototype"
            " : HTMLInputElement.prototype;"
            " el.focus();"
            f" Object.getOwnPropertyDescriptor(proto, 'value').set.call(el, {json.dumps(value)});"
            " el.dispatchEvent(new Event('input', {bubbles: true}));"
            " el.dispatchEvent(new Event('change', {bubbles: true}));"
            " return el.value; })()")
        if now != value:
            raise CDPError(f"{selector!r} on {self.url} holds {now!r} after filling in {value!r}")

    def text(self, selector: str = "body") -> str:
        """The visible text of the first element matching `selector` ('' when there is none)."""
        found = self.evaluate(f"document.querySelector({json.dumps(selector)})?.innerText ?? ''")
        return str(found)

    def html(self) -> str:
        """The page's DOM as it is now, serialized."""
        return str(self.evaluate("document.documentElement.outerHTML"))

    def screenshot(self, path: Path) -> Path:
        """A PNG of the page's viewport (the browser's width x height) at `path`."""
        shot = self.send("Page.captureScreenshot", {"format": "png"}, timeout=30.0)
        path = Path(path)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def wait_for_response(self, url: str, timeout: float = 10.0) -> Response:
        """The first response the page received for `url` (exactly); WaitTimeout after `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((r for r in list(self.responses) if r.url == url), None)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise WaitTimeout(f"waited {timeout} s for a response from {url} on {self.url} "
                                  f"(received {len(self.responses)} others)")
            time.sleep(0.05)

    def _close(self) -> None:
        self.browser._run(self._connection.close(), 5)
