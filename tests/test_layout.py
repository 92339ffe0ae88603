"""The package's import graph follows its layout: a family never imports another family,
``core`` imports nothing above it, and the data layer does not import training."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import metajax

PACKAGE = Path(metajax.__file__).parent
FAMILIES = ("metric", "model", "optimization")
# What each layer may import from metajax (prefixes of module names).
ALLOWED = {
    "core": ("metajax.core",),
    "nets": ("metajax.core", "metajax.nets"),
    "datasets": ("metajax.core", "metajax.datasets"),
    "training": ("metajax.core", "metajax.training"),
}


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{a.name}" for a in node.names if node.module == "metajax"]
    return [n for n in names if n == "metajax" or n.startswith("metajax.")]


def _modules(folder: str) -> list[Path]:
    return sorted((PACKAGE / folder).rglob("*.py"))


@pytest.mark.parametrize("family", FAMILIES)
def test_a_family_imports_only_core_nets_and_itself(family):
    allowed = ("metajax.core", "metajax.nets", f"metajax.learners.{family}")
    for path in _modules(f"learners/{family}"):
        for name in _imports(path):
            assert name.startswith(allowed), f"{path.relative_to(PACKAGE)} imports {name}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_lower_layers_import_nothing_above_them(layer):
    for path in _modules(layer):
        for name in _imports(path):
            assert name.startswith(ALLOWED[layer]), f"{path.relative_to(PACKAGE)} imports {name}"


def test_every_learner_module_sits_in_a_family_folder():
    top = {p.stem for p in PACKAGE.glob("*.py")}
    assert top <= {"__init__", "__main__", "cli"}, f"modules outside the layout: {top}"
    for family in FAMILIES:
        assert (PACKAGE / "learners" / family / "__init__.py").is_file()
