"""Look at a page in a real headless browser: Debian's Chromium, offline.

`chromium()` finds the browser, or installs Debian's package when it may (root,
apt-get present); `screenshot` and `dom` load a local HTML file, or a page served
on loopback (`http://127.0.0.1:PORT/`), with every network name unresolvable and
every other connection sent to a closed local port, in a throwaway profile, under
a time limit.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

BROWSERS = ("chromium", "chromium-headless-shell")
PACKAGES = ("chromium", "fonts-dejavu-core")  # the fonts, so the page's text renders
INSTALL_TIMEOUT = 900  # seconds for apt-get (about 125 MB to fetch)
RUN_TIMEOUT = 60  # seconds for one page
# No fetch can leave the machine: names resolve to nothing, and a connection to an address
# (which the resolver rules do not cover) goes to a proxy on a closed port, loopback included.
OFFLINE_FLAGS = (
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
)
FLAGS = (
    "--headless",
    "--disable-gpu",
    "--no-sandbox",  # as root in a container there is no user namespace for the sandbox
    "--hide-scrollbars",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    *OFFLINE_FLAGS,
)


class BrowserError(RuntimeError):
    """The browser did not load the page (the message holds its last output)."""


def _installed() -> str | None:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _apt(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["apt-get", *args], capture_output=True, text=True, timeout=INSTALL_TIMEOUT,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, check=False)


def chromium(install: bool = True) -> str | None:
    """The path of a Chromium, installing Debian's package if there is none and `install`;
    None (with the reason printed) when there is none and cannot be one."""
    found = _installed()
    if found or not install:
        if not found:
            print("chromium is not installed")
        return found
    if shutil.which("apt-get") is None:
        print("chromium is not installed, and there is no apt-get to install it")
        return None
    if os.geteuid() != 0:
        print("chromium is not installed, and only root can install it with apt-get")
        return None
    command = ("install", "-y", "--no-install-recommends", *PACKAGES)
    try:
        done = _apt(*command)
        if done.returncode != 0:  # the package lists may be missing or stale
            _apt("update")
            done = _apt(*command)
    except subprocess.TimeoutExpired:
        print(f"apt-get did not install chromium within {INSTALL_TIMEOUT} s")
        return None
    if done.returncode != 0:
        print(f"apt-get install chromium failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return None
    found = _installed()
    if not found:
        print(f"apt-get installed {' '.join(PACKAGES)}, but none of {', '.join(BROWSERS)} is on PATH")
    return found


def _address(page: Path | str) -> tuple[str, tuple[str, ...]]:
    """The page's URL and the flags that keep the browser offline around it."""
    if isinstance(page, str) and page.startswith("http://127.0.0.1:"):
        # Only 127.0.0.1 itself is reached, directly (the proxy's implicit loopback bypass; the
        # resolver rules cover address literals too, so it is excluded from them).
        flags = tuple("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"
                      if f.startswith("--host-resolver-rules=") else f
                      for f in FLAGS if not f.startswith("--proxy-bypass-list="))
        return page, flags
    return Path(page).resolve().as_uri(), FLAGS


def _run(page: Path | str, *flags: str, timeout: float = RUN_TIMEOUT) -> str:
    browser = chromium()
    if browser is None:
        raise BrowserError("no chromium (see the reason printed above)")
    url, offline = _address(page)
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        command = [browser, *offline, f"--user-data-dir={profile}", *flags, url]
        # its own process group, so a timeout ends the renderers and helpers with it
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   start_new_session=True, env={**os.environ, "HOME": profile})
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            raise BrowserError(f"chromium did not finish {url} within {timeout} s") from None
        if process.returncode != 0:
            raise BrowserError(f"chromium failed ({process.returncode}): {err.strip()[-2000:]}")
        return out


def screenshot(page: Path | str, png_path: Path, width: int = 1200, height: int = 1600,
               wait_ms: int = 0) -> Path:
    """A PNG of the page's first `width` x `height` pixels (after `wait_ms` of the page's own
    time, for a page whose scripts fetch what it shows)."""
    png_path = Path(png_path).resolve()
    png_path.unlink(missing_ok=True)
    waited = (f"--virtual-time-budget={wait_ms}",) if wait_ms else ()
    _run(page, f"--window-size={width},{height}", *waited, f"--screenshot={png_path}")
    if not png_path.is_file():
        raise BrowserError(f"chromium exited 0 but wrote no {png_path}")
    return png_path


def dom(page: Path | str, wait_ms: int = 0) -> str:
    """The page's DOM as serialized after it loaded (`--dump-dom`), `wait_ms` later."""
    return _run(page, *((f"--virtual-time-budget={wait_ms}",) if wait_ms else ()), "--dump-dom")


def png_size(data: bytes) -> tuple[int, int]:
    """The width and height in a PNG's IHDR; ValueError when `data` is not a PNG."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
