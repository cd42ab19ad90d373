"""Print the release version: [project].version of pyproject.toml, the one
source of the package, image and chart versions (docs/versioning.md).

    python scripts/release_version.py                  # e.g. 0.1.0
    python scripts/release_version.py --tag v0.1.0     # exit 1 unless the tag is v<version>

The release workflow runs it with the pushed tag. Standard library only.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def version() -> str:
    with PYPROJECT.open("rb") as f:
        value: str = tomllib.load(f)["project"]["version"]
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", help="fail unless this git tag is v<version>")
    args = parser.parse_args(argv)
    current = version()
    if args.tag is not None and args.tag != f"v{current}":
        print(
            f"release_version: tag {args.tag!r} does not match pyproject.toml's version "
            f"{current!r}: tag v{current}, or bump the version (docs/versioning.md)",
            file=sys.stderr,
        )
        return 1
    print(current)
    return 0


if __name__ == "__main__":
    sys.exit(main())
