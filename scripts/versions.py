"""The one parser of scripts/versions.env for Python (scripts/images.py, the tests).

bash reads the same file with ``source`` (scripts/cluster, scripts/lint-chart,
CI). So that both see the same values, only lines that mean the same thing to
bash and to this parser are accepted: comments, blank lines and
``KEY=value`` where the value has no quotes, spaces, ``$`` or other shell
syntax. Anything else is an error here rather than a silent difference.
tests/unit/test_cluster_scripts.py checks that bash's view equals this parse.
"""

from __future__ import annotations

import re
from pathlib import Path

VERSIONS_ENV = Path(__file__).resolve().parent / "versions.env"
# A value bash assigns literally: no quoting, expansion, globbing or word splitting.
_LINE = re.compile(r"([A-Z_][A-Z0-9_]*)=([A-Za-z0-9_.,:/@+%=-]*)")


def read_versions(path: Path | str | None = None) -> dict[str, str]:
    """KEY=value lines of scripts/versions.env (or path); comments and blanks ignored."""
    path = Path(path) if path is not None else VERSIONS_ENV
    values: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.fullmatch(line)
        if not match:
            raise ValueError(f"{path}:{number}: not a plain KEY=value line: {raw!r}")
        values[match.group(1)] = match.group(2)
    return values

