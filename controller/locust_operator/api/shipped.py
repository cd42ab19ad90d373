"""Locate the files the package ships: the CRD and the Jinja2 templates.

In a wheel they live inside the package (hatch force-include); in a source
checkout (editable install, tests) they are read from their one source in the
repository, so nothing is ever copied by hand.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent
_REPO = _PACKAGE.parent.parent

_LOCATIONS = {
    "templates": (_PACKAGE / "templates", _REPO / "templates"),
    "crds": (_PACKAGE / "crds", _REPO / "charts" / "locust-operator" / "crds"),
}


def shipped_dir(name: str) -> Path:
    """The directory of shipped files `name` ("templates" or "crds")."""
    for candidate in _LOCATIONS[name]:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"locust-operator is installed without its {name} directory")


def crd_path(plural: str = "locusttests") -> Path:
    """The CRD of a kind, by its plural (locusttests, locusttestschedules)."""
    return shipped_dir("crds") / f"{plural}.locust.io.yaml"
