"""No import cycle in ``prn_core``, deferred imports included.

A deferred import inside a function hides a cycle from Python, not from a reader: the two modules
still need each other. This builds the graph of every ``prn_core`` module's imports (top level
and inside functions; ``if TYPE_CHECKING:`` blocks are left out because they never run) and
asks for a topological order.
"""
from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "prn_core"


def _modules(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module and package under ``root``."""
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports at run time (``from pkg import mod`` -> mod)."""
    modules = _modules(root)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                source = ".".join([*base, *([node.module] if node.module else [])])
                submodules = [f"{source}.{alias.name}" for alias in node.names]
                targets = [m for m in submodules if m in modules] or [source]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def test_prn_core_has_no_import_cycle():
    try:
        list(TopologicalSorter(import_graph(PACKAGE)).static_order())
    except CycleError as err:
        pytest.fail(f"import cycle in prn_core: {' -> '.join(err.args[1])}")


def test_the_graph_sees_deferred_cycles_and_skips_type_checking(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from .b import B\n")
    (pkg / "b.py").write_text("def f():\n    from . import c\n")
    (pkg / "c.py").write_text("from .b import f\n")
    graph = import_graph(pkg)
    assert graph["pkg.a"] == set()  # typing-only import: no edge
    assert graph["pkg.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.b"}
    with pytest.raises(CycleError):
        list(TopologicalSorter(graph).static_order())
