"""Why a container exited, in one line, from its termination message (pure functions).

The Locust containers and the operator's init containers end with
terminationMessagePolicy FallbackToLogsOnError: on a failure the kubelet puts
the last 2048 bytes (at most 80 lines) of the log into
`state.terminated.message`. That log is written by the test's author, its
locustfile and whatever it installs, so the text is hostile: any length, any
characters, terminal escapes, secrets in URLs. The operator shows one short
line of it in the status and the events, so this module bounds the text
before it looks at it, keeps only printable characters, picks the line that
says why (the rules of `last_error_line`), hides passwords and truncates it.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Sequence

# Only the tail is looked at: the kubelet's 2048 bytes with room to spare, and a
# bound on the work whatever a caller passes in.
MAX_CHARS = 4096
MAX_LINES = 100
DEFAULT_LIMIT = 300

# Terminal escapes: CSI (colours, cursor moves; also the 8-bit \x9b form), OSC
# (window titles, hyperlinks; never past the end of a line), then any other
# two-character escape.
_ANSI = re.compile(r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b\n]*(?:\x07|\x1b\\)?|\x1b[@-_]?")
# A frame of a Python traceback; SyntaxError's has no `, in <function>`.
_FRAME = re.compile(r' +File "(?P<path>[^"]+)", line (?P<line>\d+)(?:, in .*)?$')
# The exception line that ends a traceback: a (dotted) class name, then `: message` or nothing.
_EXCEPTION = re.compile(r"[A-Za-z_][\w.]*(?::(?: .*)?)?$")
# Code that is not the test's: installed packages, the interpreter's own modules.
_LIBRARY = re.compile(r"[/\\](?:site|dist)-packages[/\\]|^<frozen[ >]|/lib/python3[\d.]*/")
# An exception group draws each nested traceback behind `| ` (and `+ ` at its header).
_GROUP_FRAME = re.compile(r' *\| +File "')
_GROUP_PREFIX = re.compile(r"^ *(?:[|+] )+")
# Locust's log format: `[time] host/LEVEL/logger: message`.
_LOCUST_ERROR = re.compile(r"\[[^\]]{1,64}\] \S*/(?:ERROR|CRITICAL)/[^\s:]+: (?P<message>.*\S)")
# pip's `ERROR: `, git's `fatal: ` and `error: ` (at the start of the line: indented, they
# are a subprocess's output that the tool quotes before its own verdict).
_TOOL_ERROR = re.compile(r"(?:ERROR|fatal|error): \S")
# The userinfo of a URL: `scheme://user:password@` (bounded, so a hostile line costs linear time).
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][\w+.-]{0,31}://)(?P<user>[^/\s:@]{0,256})"
                       r"(?P<password>:[^/\s]{0,1024})?@")
_LOCUSTFILE_ERROR = re.compile(
    r"\S.{0,200}? line \d+: [A-Za-z_][\w.]*(?::|$)"  # an exception raised through the test's own code
    r"|No User class found!"  # locust/main.py
    r"|Could not find '|Could not find any locustfiles in directory '"  # locust/argument_parser.py
    r"|Failed to get locustfile from: "  # a locustfile URL that does not answer Python
)

Found = tuple[int, str]  # the index of the line that says why, and what it says


def last_error_line(message: str | None, *, limit: int = DEFAULT_LIMIT) -> str | None:
    """The one line of a termination message that says why the container exited.

    The latest of these wins (a tool's verdict comes after what led to it):
    a Python traceback's exception line, prefixed by the last frame in the
    test's own files (`hit.py line 2: ModuleNotFoundError: No module named 'helper'`);
    a Locust ERROR or CRITICAL log line, its message only; pip's `ERROR: ` and
    git's `fatal: ` or `error: ` lines, as they are. Without any of them, the
    last non-empty line. At most `limit` characters (cut with `…`), no line
    breaks, passwords in URLs replaced by `***`; None for an empty message.
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    lines = without_ignored(clean_lines(message or ""))
    hits = [hit for rule in _RULES if (hit := rule(lines)) is not None]
    found = max(hits, default=None) or _last_line(lines)
    if found is None:
        return None
    line = redact(found[1].strip())
    return line if len(line) <= limit else line[:limit - 1] + "…"


def is_locustfile_error(line: str) -> bool:
    """Whether a `last_error_line` says that Locust could not load the locustfile.

    That is Locust's own "No User class found!" and "Could not find '…'", or
    an exception raised through the test's own files (the `X line N: ` form,
    whatever the class: ImportError, SyntaxError, NameError, KeyError of a
    missing variable...). Locust catches what tasks and event handlers raise and
    logs it, so a traceback through the test's code that ends the process comes
    from importing the locustfile (or what it imports).
    """
    return _LOCUSTFILE_ERROR.match(line) is not None


def without_ignored(lines: list[str]) -> list[str]:
    """`lines` without Python's "Exception ignored in ..." reports and their tracebacks.

    The interpreter prints them for errors it cannot raise, e.g. at shutdown
    (Locust's image: `RuntimeError: greenlet is being finalized` in a logging
    handler, after the traceback that made it exit); they are never the cause.
    A report ends at its exception line, the first one not indented after it.
    """
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith("Exception ignored in"):
            skipping = True
        elif skipping and line[:1] not in (" ", "") and not line.startswith("Traceback"):
            skipping = False
        elif not skipping:
            kept.append(line)
    return kept


def clean_lines(message: str) -> list[str]:
    """The last lines of `message`, bounded, without terminal escapes or control characters.

    A line cut by the bound is dropped unless it is the only one: its start,
    e.g. a URL's scheme, is what tells the rest apart. Of a line rewritten with
    carriage returns (progress bars) the last non-blank part is kept, as a
    terminal would show it. Trailing blanks go, indentation stays (tracebacks).
    """
    text = message[-MAX_CHARS:]
    if len(message) > MAX_CHARS and message[-MAX_CHARS - 1] != "\n" and "\n" in text:
        text = text.split("\n", 1)[1]
    lines = []
    for raw in _ANSI.sub("", text).split("\n")[-MAX_LINES:]:
        parts = [part for part in raw.split("\r") if part.strip()]
        lines.append(_printable(parts[-1]).rstrip() if parts else "")
    return lines


def _printable(text: str) -> str:
    """`text` with whitespace as spaces and without other unprintable characters (NUL, bidi
    controls, lone surrogates: nothing that can reach the status undecodable or misleading)."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else " " if ch.isspace() else "" for ch in text)


def redact(line: str) -> str:
    """`line` with the password of each URL replaced by `***`, or the whole userinfo when it
    has no password (a token as the user name, `https://ghp_…@github.com`)."""
    if "://" not in line:
        return line
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user'] + ':' if m['password'] else ''}***@", line)


def _traceback(lines: Sequence[str]) -> Found | None:
    """The final exception of the last traceback, with the last frame in the test's own files.

    The traceback's header may be cut off (the kubelet keeps the tail), so it
    is found from its end: the last frame, then the first line after it that
    is not indented (its source lines and carets are). Exception groups are
    read with their `| ` borders removed: the last frame is then in the last
    sub-exception that was raised, whose line is the likeliest cause.
    """
    if any(_GROUP_FRAME.match(line) for line in lines):
        lines = [_GROUP_PREFIX.sub("", line, count=1) for line in lines]
    last = next((i for i in reversed(range(len(lines))) if _FRAME.match(lines[i])), None)
    if last is None:
        return None
    end = next((i for i in range(last + 1, len(lines)) if lines[i][:1].strip()), None)
    if end is None or not _EXCEPTION.match(lines[end]):
        return None
    for line in reversed(lines[:end]):
        if line[:1].strip():  # the header, or the exception this one happened while handling
            break
        frame = _FRAME.match(line)
        if frame and not _LIBRARY.search(frame["path"]):
            name = posixpath.basename(frame["path"].replace("\\", "/")) or frame["path"]
            return end, f"{name} line {frame['line']}: {lines[end]}"
    return end, lines[end]


def _locust_error(lines: Sequence[str]) -> Found | None:
    """The message of Locust's last ERROR or CRITICAL log line (`No User class found!`)."""
    return next(((i, m["message"]) for i in reversed(range(len(lines)))
                 if (m := _LOCUST_ERROR.match(lines[i]))), None)


def _tool_error(lines: Sequence[str]) -> Found | None:
    """pip's last `ERROR: ` line, or git's `fatal: ` or `error: `, whole: the prefix tells whose."""
    return next(((i, lines[i]) for i in reversed(range(len(lines))) if _TOOL_ERROR.match(lines[i])), None)


def _last_line(lines: Sequence[str]) -> Found | None:
    """The last non-empty line: a message of unknown shape ends with its conclusion."""
    return next(((i, lines[i]) for i in reversed(range(len(lines))) if lines[i].strip()), None)


_RULES: tuple[Callable[[Sequence[str]], Found | None], ...] = (_traceback, _locust_error, _tool_error)
