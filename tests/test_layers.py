"""The package's layers import one way: data -> synthesis -> models -> train -> viz / cli.

Each subpackage's ``__init__`` docstring says what it may import; this test holds the code to
it by reading every ``import`` statement (top level and deferred) with :mod:`ast`.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "prn_core"
# subpackage -> prn_core modules it must never import
FORBIDDEN = {
    "data": ("models", "synthesis", "train", "viz", "cli", "launch", "baseline", "report"),
    "synthesis": ("models", "train", "viz", "cli", "launch", "baseline", "report"),
    "models": ("data", "synthesis", "train", "viz", "cli", "launch", "baseline", "report"),
}


def _imported(source: str, package: tuple[str, ...]) -> set[str]:
    """Top-level ``prn_core`` modules named by the imports in ``source``, a module of ``package``
    (e.g. ``("prn_core", "data")``); ``""`` stands for the package itself."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the file's package
                base = package[: len(package) - node.level + 1]
                modules = [".".join((*base, node.module)) if node.module else ".".join(base)]
            else:
                modules = [node.module or ""]
        else:
            continue
        for module in modules:
            parts = module.split(".")
            if parts[0] == "prn_core":
                names.add(parts[1] if len(parts) > 1 else "")
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_lower_layers_never_import_higher_ones(layer):
    offenders = {}
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        package = path.relative_to(PACKAGE.parent).parts[:-1]
        bad = _imported(path.read_text(), package) & (set(FORBIDDEN[layer]) | {""})
        if bad:
            offenders[path.relative_to(PACKAGE).as_posix()] = sorted(bad)
    assert not offenders, f"{layer} imports above its layer: {offenders}"


def test_the_checker_sees_relative_and_deferred_imports():
    """The rule itself can fail: a deferred relative import of the trainer is caught."""
    source = "def f():\n    from ..train import fit\n    import prn_core\n    from . import images\n"
    assert _imported(source, ("prn_core", "data")) == {"train", "", "data"}
