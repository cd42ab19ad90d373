"""Real Locust (and pip) failures, read as the kubelet would pass them to rules/crash.py.

Each process runs in a temporary directory; the last 2048 bytes of its
combined output stand for the container's termination message
(FallbackToLogsOnError). Locust 2.47 exits with code 1 in all four cases: the
traceback of an import, the `No User class found!` log line, and the
`Could not find '…'` message written straight to stderr.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from locust_operator.rules.crash import is_locustfile_error, last_error_line
from tests.support.ports import free_port

TERMINATION_MESSAGE_BYTES = 2048  # what the kubelet keeps of a log
TIMEOUT = 30  # seconds for each process

LOCUSTFILES = {
    "hit.py": "import os\nimport helper\n",
    "syntax.py": "from locust import HttpUser\ndef (:\n",
    "nouser.py": "import os\nX = 1\n",
}


def _run(args: list[str], cwd: Path) -> tuple[int, str]:
    """Exit code and termination message of a process."""
    done = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          stdin=subprocess.DEVNULL, timeout=TIMEOUT, check=False)
    return done.returncode, done.stdout[-TERMINATION_MESSAGE_BYTES:].decode("utf-8", "replace")


@pytest.mark.parametrize(("locustfile", "master", "line"), [
    ("hit.py", False, "hit.py line 2: ModuleNotFoundError: No module named 'helper'"),
    ("hit.py", True, "hit.py line 2: ModuleNotFoundError: No module named 'helper'"),
    ("syntax.py", False, "syntax.py line 2: SyntaxError: invalid syntax"),
    ("nouser.py", False, "No User class found!"),
    ("nouser.py", True, "No User class found!"),
    ("missing.py", False, "Could not find 'missing.py'. Ensure your locustfile ends with '.py' or is a "
                          "directory with locustfiles. See --help for available options."),
])
def test_locust_that_cannot_load_its_locustfile(tmp_path: Path, locustfile: str, master: bool,
                                               line: str) -> None:
    for name, text in LOCUSTFILES.items():
        (tmp_path / name).write_text(text)
    role = ["--master", "--expect-workers=1", "--master-bind-host=127.0.0.1",
            f"--master-bind-port={free_port()}", "--web-host=127.0.0.1", f"--web-port={free_port()}"]
    code, message = _run([sys.executable, "-m", "locust", "-f", locustfile, "--headless", "-u", "1",
                          "-t", "1s", *(role if master else [])], tmp_path)
    assert code == 1, message
    assert last_error_line(message) == line, message
    assert is_locustfile_error(line)


def test_pip_that_finds_no_distribution(tmp_path: Path) -> None:
    code, message = _run([sys.executable, "-m", "pip", "install", "--no-index", "--disable-pip-version-check",
                          "--target", str(tmp_path / "target"), "nosuchpkg-xyz"], tmp_path)
    assert code == 1, message
    assert last_error_line(message) == "ERROR: No matching distribution found for nosuchpkg-xyz", message
    assert not is_locustfile_error("ERROR: No matching distribution found for nosuchpkg-xyz")
