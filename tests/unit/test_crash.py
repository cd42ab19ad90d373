"""One line from a container's termination message: tracebacks, Locust, pip and git errors, hostile text."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from locust_operator.rules.crash import MAX_CHARS, clean_lines, is_locustfile_error, last_error_line, redact

SITE = "/usr/local/lib/python3.11/site-packages"

# What the Locust image prints when the locustfile imports a missing module (Locust 2.47, Python 3.11).
IMPORT_ERROR = f"""Traceback (most recent call last):
  File "/usr/local/bin/locust", line 8, in <module>
    sys.exit(main())
             ^^^^^^
  File "{SITE}/locust/main.py", line 167, in main
    ) = merge_locustfiles_content(locustfiles)
        ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^
  File "{SITE}/locust/util/load_locustfile.py", line 71, in load_locustfile
    loader.exec_module(imported)
  File "<frozen importlib._bootstrap_external>", line 940, in exec_module
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/mnt/locust/hit.py", line 2, in <module>
    import helper
ModuleNotFoundError: No module named 'helper'
"""

SYNTAX_ERROR = f"""Traceback (most recent call last):
  File "{SITE}/locust/util/load_locustfile.py", line 71, in load_locustfile
    loader.exec_module(imported)
  File "<frozen importlib._bootstrap_external>", line 1004, in source_to_code
  File "<frozen importlib._bootstrap>", line 241, in _call_with_frames_removed
  File "/mnt/locust/syntax.py", line 2
    def (:
        ^
SyntaxError: invalid syntax
"""

CHAINED = """Traceback (most recent call last):
  File "/mnt/locust/first.py", line 3, in <module>
    import fast_json
ModuleNotFoundError: No module named 'fast_json'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "/mnt/locust/second.py", line 5, in <module>
    json = load()
  File "/usr/lib/python3.11/json/__init__.py", line 293, in load
    return loads(fp.read())
ValueError: bad fallback
"""

# `raise ExceptionGroup("boom", [ValueError("a"), TypeError("b")])`: sub-exceptions never raised.
GROUP = """  + Exception Group Traceback (most recent call last):
  |   File "/tmp/g.py", line 1, in <module>
  |     raise ExceptionGroup("boom", [ValueError("a"), TypeError("b")])
  | ExceptionGroup: boom (2 sub-exceptions)
  +-+---------------- 1 ----------------
    | ValueError: a
    +---------------- 2 ----------------
    | TypeError: b
    +------------------------------------
"""

# asyncio.TaskGroup around a task that raised: the sub-exception has its own traceback.
TASK_GROUP = """  + Exception Group Traceback (most recent call last):
  |   File "/tmp/g2.py", line 7, in <module>
  |     asyncio.run(main())
  |   File "/root/.pyenv/versions/3.11.7/lib/python3.11/asyncio/runners.py", line 190, in run
  |     return runner.run(main)
  |            ^^^^^^^^^^^^^^^^
  |   File "/tmp/g2.py", line 5, in main
  |     async with asyncio.TaskGroup() as tg:
  |            + asyncio.TaskGroup()
  |   File "/root/.pyenv/versions/3.11.7/lib/python3.11/asyncio/taskgroups.py", line 145, in __aexit__
  |     raise me from None
  | ExceptionGroup: unhandled errors in a TaskGroup (1 sub-exception)
  +-+---------------- 1 ----------------
    | Traceback (most recent call last):
    |   File "/tmp/g2.py", line 3, in bad
    |     raise ValueError("real cause")
    | ValueError: real cause
    +------------------------------------
"""

LOCUST_LOG = """[2026-12-02 04:23:03,586] vm/INFO/locust.main: Starting Locust 2.47.0
[2026-12-02 04:23:03,587] vm/ERROR/locust.main: No User class found!
"""

PIP = """Looking in indexes: https://user:****@pypi.example/simple
ERROR: Could not find a version that satisfies the requirement nosuchpkg (from versions: none)
ERROR: No matching distribution found for nosuchpkg
"""

GIT = """Initialized empty Git repository in /opt/locust-operator/git/repo/.git/
fatal: unable to access 'http://git.x.svc/repo.git/': Could not resolve host: git.x.svc
"""


@pytest.mark.parametrize(("message", "line"), [
    # Tracebacks: the exception with the last frame in the test's own files.
    (IMPORT_ERROR, "hit.py line 2: ModuleNotFoundError: No module named 'helper'"),
    (SYNTAX_ERROR, "syntax.py line 2: SyntaxError: invalid syntax"),
    ('  File "/mnt/locust/a.py", line 9, in on_start\n    os.environ["HOST"]\nKeyError',
     "a.py line 9: KeyError"),
    ('  File "/mnt/locust/a.py", line 9, in f\n    x\nKeyError:', "a.py line 9: KeyError:"),
    (f'Traceback (most recent call last):\n  File "/mnt/locust/dl.py", line 4, in <module>\n'
     f'    requests.get(URL)\n  File "{SITE}/requests/api.py", line 73, in get\n'
     f'requests.exceptions.ConnectionError: HTTPSConnectionPool(host=\'x\', port=443)',
     "dl.py line 4: requests.exceptions.ConnectionError: HTTPSConnectionPool(host='x', port=443)"),
    ('  File "/mnt/locust/m.py", line 1, in <module>\n__main__.Oops: no', "m.py line 1: __main__.Oops: no"),
    (CHAINED, "second.py line 5: ValueError: bad fallback"),
    (GROUP, "g.py line 1: ExceptionGroup: boom (2 sub-exceptions)"),
    (TASK_GROUP, "g2.py line 3: ValueError: real cause"),
    # Only library frames (a package, the stdlib, frozen modules): the exception alone.
    (f'Traceback (most recent call last):\n  File "{SITE}/locust/main.py", line 1, in main\n'
     '  File "/usr/lib/python3.11/argparse.py", line 2, in parse\n'
     '  File "/usr/lib/python3/dist-packages/yaml/__init__.py", line 3, in load\n'
     '  File "<frozen runpy>", line 88, in _run_code\nValueError: invalid --run-time',
     "ValueError: invalid --run-time"),
    # The header cut off by the kubelet (with or without a frame of the test's), a Windows path,
    # a relative path.
    ('  File "/usr/lib/python3.11/socket.py", line 1, in f\n    x\nOSError: [Errno 99] boom',
     "OSError: [Errno 99] boom"),
    ('    x = 1\n  File "C:\\tests\\w.py", line 7, in <module>\n    y\nNameError: name \'y\' is not defined',
     "w.py line 7: NameError: name 'y' is not defined"),
    ('  File "locustfile.py", line 3, in <module>\nImportError: cannot import name \'X\'',
     "locustfile.py line 3: ImportError: cannot import name 'X'"),
    # Indented by one space is indented still (a source line), both after and before the frame.
    ('Traceback (most recent call last):\n  File "/mnt/locust/hit.py", line 2, in <module>\n x\n'
     "ValueError: bad", "hit.py line 2: ValueError: bad"),
    # Only library frames up to the header: the exception, even before a last line of another kind.
    (f'Traceback (most recent call last):\n  File "{SITE}/x.py", line 5, in f\nValueError: bad\nStopping',
     "ValueError: bad"),
    # A path without a file name: the path as it is.
    ('  File "/mnt/locust/", line 3, in <module>\nValueError: x', "/mnt/locust/ line 3: ValueError: x"),
    # Not a traceback after all: no exception line after the last frame.
    ('  File "/mnt/locust/a.py", line 1, in <module>\n    still indented', "still indented"),
    ('  File "/mnt/locust/a.py", line 1, in <module>\nnot an exception line', "not an exception line"),
    # Locust's log: the message of the last ERROR or CRITICAL line.
    (LOCUST_LOG, "No User class found!"),
    ("[t] h/ERROR/locust.runners: first\n[t] pod-1.x/CRITICAL/locust.main: second\n[t] h/INFO/x: done",
     "second"),
    ("[t] h/WARNING/locust.main: only a warning", "[t] h/WARNING/locust.main: only a warning"),
    # pip and git: their last error line, whole.
    (PIP, "ERROR: No matching distribution found for nosuchpkg"),
    (GIT, "fatal: unable to access 'http://git.x.svc/repo.git/': Could not resolve host: git.x.svc"),
    ("error: pathspec 'v9' did not match any file(s) known to git\nhint: try git fetch",
     "error: pathspec 'v9' did not match any file(s) known to git"),
    ("  error: subprocess-exited-with-error\n  note: quoted output", "note: quoted output"),
    # The latest of the rules wins: a tool's verdict comes after what led to it.
    (IMPORT_ERROR + LOCUST_LOG, "No User class found!"),
    ("[t] h/ERROR/locust.main: loading\n" + IMPORT_ERROR,
     "hit.py line 2: ModuleNotFoundError: No module named 'helper'"),
    (GIT + PIP, "ERROR: No matching distribution found for nosuchpkg"),
    # Otherwise the last non-empty line, stripped.
    ("Starting\n  Killed  \n\n\n", "Killed"),
    ("one line", "one line"),
])
def test_last_error_line(message: str, line: str) -> None:
    assert last_error_line(message) == line


@pytest.mark.parametrize("message", [None, "", "\n\n", "   \t \r\n  ", "\x00\x01\x1b[0m\n\x7f"])
def test_nothing_to_say(message: str | None) -> None:
    assert last_error_line(message) is None


@pytest.mark.parametrize(("limit", "line"), [
    (300, "ERROR: 0123456789"), (17, "ERROR: 0123456789"), (16, "ERROR: 01234567…"), (1, "…"),
])
def test_truncated_to_the_limit(limit: int, line: str) -> None:
    assert last_error_line("ERROR: 0123456789", limit=limit) == line


@pytest.mark.parametrize("limit", [0, -5])
def test_limit_must_be_positive(limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        last_error_line("x", limit=limit)


@pytest.mark.parametrize(("line", "redacted"), [
    ("ERROR: 401 for https://user:hunter2@pypi.example/simple/x/",
     "ERROR: 401 for https://user:***@pypi.example/simple/x/"),
    ("fatal: https://ghp_token@github.com/o/r.git and git+ssh://u:p@ss@h:22/r",
     "fatal: https://***@github.com/o/r.git and git+ssh://u:***@h:22/r"),
    ("see http://host:8080/path and https://example.com", "see http://host:8080/path and https://example.com"),
    ("no url: user:pass@host", "no url: user:pass@host"),
])
def test_passwords_in_urls_are_hidden(line: str, redacted: str) -> None:
    assert redact(line) == redacted
    assert last_error_line(line) == redacted


def test_a_password_is_hidden_before_the_line_is_cut() -> None:
    line = last_error_line("fatal: https://u:" + "s" * 400 + "@host/repo", limit=40)
    assert line == "fatal: https://u:***@host/repo"


@pytest.mark.parametrize(("message", "line"), [
    # Colours (Python 3.13 colours its tracebacks), bold, a hyperlink, a lone escape.
    ("\x1b[31mERROR: \x1b[1mboom\x1b[0m", "ERROR: boom"),
    ('  File "\x1b[35m/mnt/locust/a.py\x1b[0m", line \x1b[35m4\x1b[0m, in <module>\n'
     "\x1b[1;35mNameError\x1b[0m: \x1b[35mname 'x' is not defined\x1b[0m",
     "a.py line 4: NameError: name 'x' is not defined"),
    ("\x1b]8;;http://x\x07link\x1b]8;;\x1b\\ text \x1b", "link text"),
    ("\x9b32mgreen", "green"),
    # NUL bytes and other control characters go; tabs and other blanks become spaces.
    ("ERROR: a\x00b\x07c\tx\u00a0y\u2028z", "ERROR: abc x y z"),
    ("\x00" * 5000 + "\nfatal: after NULs", "fatal: after NULs"),
    # Unicode stays; bidi overrides and lone surrogates (undecodable bytes) go.
    ("ModuleNotFoundError: No module named 'héllo_日本' 🚀",
     "ModuleNotFoundError: No module named 'héllo_日本' 🚀"),
    ("ERROR: \u202eevil\u202c \ud800name\ufffd", "ERROR: evil name\ufffd"),
    # A progress bar rewritten with carriage returns: what the terminal shows last; CRLF endings.
    ("Downloading 10%\rDownloading 90%\r\nERROR: hash mismatch\r\n", "ERROR: hash mismatch"),
    ("step 1\rstep 2\r   \r", "step 2"),
])
def test_escapes_and_control_characters(message: str, line: str) -> None:
    assert last_error_line(message) == line


def test_only_the_tail_is_read() -> None:
    # 100 kB of log: an error at its start is past the bound, the end is what counts.
    head = "ERROR: long ago\n" + "".join(f"request {i} ok\n" for i in range(7000))
    message = head + IMPORT_ERROR
    assert len(message) > 100_000
    started = time.perf_counter()
    assert last_error_line(message) == "hit.py line 2: ModuleNotFoundError: No module named 'helper'"
    assert time.perf_counter() - started < 0.5
    assert last_error_line(head) == "request 6999 ok"


def test_at_most_the_last_lines() -> None:
    message = "ERROR: early\n" + "\n" * 99 + "last"
    assert len(clean_lines(message)) == 100
    assert last_error_line(message) == "last"
    assert last_error_line("ERROR: early\n" + "\n" * 98 + "last") == "ERROR: early"


def _tail(first: str, total: int) -> str:
    """A line `first` padded with x to `total` characters, then `\\nend`."""
    return first + "x" * (total - len(first) - 4) + "\nend"


@pytest.mark.parametrize(("before", "line"), [
    ("q", "end"),  # the bound cuts a line: its rest is dropped, it is not an `ERROR: ` line
    ("\n", "ERROR: fak…"),  # the bound falls on a line break: the line is whole
])
def test_a_line_cut_by_the_bound_is_dropped(before: str, line: str) -> None:
    message = "q" * 10 + before + _tail("ERROR: fake", MAX_CHARS)
    assert last_error_line(message, limit=11) == line


def test_the_bound_drops_the_cut_line_whole_and_only_past_the_bound() -> None:
    # The cut line goes up to its line break (not to its first blank).
    assert clean_lines("A" * 5000 + " cut\nlast") == ["last"]
    # A message of MAX_CHARS exactly is not cut at all.
    exact = "x" * (MAX_CHARS - 5) + "\nlast"
    assert len(exact) == MAX_CHARS
    assert clean_lines(exact) == ["x" * (MAX_CHARS - 5), "last"]


def test_a_single_huge_line_is_cut() -> None:
    line = last_error_line("E" * 10_000)
    assert line == "E" * 299 + "…"
    # Past the bound, the cut tail is all there is: it is kept.
    assert clean_lines("a" * 10_000) == ["a" * MAX_CHARS]


def test_a_traceback_inside_a_json_log_line_is_one_line() -> None:
    # Structured logging: the traceback is a JSON string, its line breaks escaped. It is
    # no traceback to the rules, so the whole (cut) JSON line is the answer.
    record = {"level": "error", "msg": "import failed", "exc_info": IMPORT_ERROR}
    line = last_error_line(json.dumps(record) + "\n")
    assert line is not None and line.startswith('{"level": "error"') and line.endswith("…")
    assert len(line) == 300 and "\n" not in line


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.text(max_size=6000), st.integers(min_value=1, max_value=400))
def test_any_text_gives_one_bounded_printable_line(message: str, limit: int) -> None:
    line = last_error_line(message, limit=limit)
    if line is not None:
        assert 0 < len(line) <= limit and line.isprintable()
        assert line == line.strip() or line.endswith("…")
        line.encode("utf-8")  # no lone surrogates


@pytest.mark.parametrize(("line", "expected"), [
    ("hit.py line 2: ModuleNotFoundError: No module named 'helper'", True),
    ("syntax.py line 2: SyntaxError: invalid syntax", True),
    ("a.py line 9: KeyError", True),
    ("my test.py line 12: IndentationError: unexpected indent", True),
    ("dl.py line 4: requests.exceptions.ConnectionError: refused", True),
    ("No User class found!", True),
    ("Could not find 'nope.py'. Ensure your locustfile ends with '.py' or is a directory with locustfiles. "
     "See --help for available options.", True),
    ("Could not find any locustfiles in directory 'tests'", True),
    ("Failed to get locustfile from: http://x/l.py. Response was not valid python code: 'x'", True),
    # A crash outside the test's files, or not Locust's: the locustfile loaded (or is not the question).
    ("ModuleNotFoundError: No module named 'helper'", False),
    ("ValueError: invalid --run-time", False),
    ("ERROR: Could not find a version that satisfies the requirement x", False),
    ("Could not find a version that satisfies the requirement x", False),
    ("fatal: unable to access 'http://git.x.svc/repo.git/'", False),
    ("Killed", False),
    ("", False),
    ("line 2: not a frame", False),
])
def test_is_locustfile_error(line: str, expected: bool) -> None:
    assert is_locustfile_error(line) is expected


# The Locust image's master, seen on the real node: after the traceback that ended it,
# the interpreter reports an error it could not raise at shutdown (gevent + logging).
SHUTDOWN_NOISE = """  File "/lotest/src/broken.py", line 1, in <module>
    from nosuchmodule import anything
ModuleNotFoundError: No module named 'nosuchmodule'
Exception ignored in: <function _removeHandlerRef at 0x7f02405dbc40>
Traceback (most recent call last):
  File "/usr/lib/python3.11/logging/__init__.py", line 855, in _removeHandlerRef
  File "/usr/lib/python3.11/logging/__init__.py", line 235, in _acquireLock
  File "/usr/lib/python3.11/threading.py", line 164, in acquire
  File "/opt/venv/lib/python3.11/site-packages/gevent/thread.py", line 81, in get_ident
RuntimeError: greenlet is being finalized
"""


@pytest.mark.parametrize(("message", "line"), [
    (SHUTDOWN_NOISE, "broken.py line 1: ModuleNotFoundError: No module named 'nosuchmodule'"),
    # A later INFO line says nothing: the traceback stays the cause.
    (SHUTDOWN_NOISE + "[2026-12-02 04:57:42,001] m/INFO/locust.main: later\n",
     "broken.py line 1: ModuleNotFoundError: No module named 'nosuchmodule'"),
    ("Exception ignored in: <x>\nTraceback (most recent call last):\n"
     "  File \"/a/b.py\", line 1\nOSError: x\n", None),
    # An empty line does not end the report; its exception line does, and what follows counts.
    ("Exception ignored in: <x>\nTraceback (most recent call last):\n"
     "  File \"/a/b.py\", line 1\n\nOSError: x\n", None),
    ("Exception ignored in: <x>\nTraceback (most recent call last):\n"
     "  File \"/a/b.py\", line 1\nOSError: x\nStopping\n", "Stopping"),
])
def test_errors_python_could_not_raise_are_not_the_cause(message: str, line: str | None) -> None:
    assert last_error_line(message) == line
