"""The package's layers: each module imports only its own layer and the layers above it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "controller" / "locust_operator"
# Top to bottom: a layer may import the ones before it, never one after it.
LAYERS = ["api", "validation", "build", "rules", "controller", "cli"]


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("locust_operator"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("locust_operator"))
    return found


def _layer(module: str) -> str | None:
    if module == "locust_operator":  # the package's root: __version__ and the API names
        return LAYERS[0]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_lives_in_a_layer() -> None:
    loose = sorted(p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert loose == []
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == \
        sorted(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_the_layers_above_it(layer: str) -> None:
    allowed = set(LAYERS[:LAYERS.index(layer) + 1])
    wrong = {f"{path.name} imports {module}"
             for path in (PACKAGE / layer).glob("*.py") for module in _imports(path)
             if _layer(module) not in allowed}
    assert sorted(wrong) == []


def test_the_check_sees_a_wrong_import(tmp_path: Path) -> None:
    module = tmp_path / "bad.py"
    module.write_text("from locust_operator.cli.main import main\n"
                      "import locust_operator.controller.startup\n")
    assert {_layer(m) for m in _imports(module)} == {"cli", "controller"}
