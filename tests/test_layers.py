"""The package's layers import one way: data -> synthesis -> models -> train -> viz / cli, with
metrics beside them all (it knows neither models nor data).

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
    "metrics": ("data", "synthesis", "models", "train", "viz", "cli", "launch", "baseline", "report"),
    # figures draw what lower layers compute; ablations only inside the one figure of its summaries
    "viz": ("train", "prepare", "evaluation", "checkpoint", "calibrate", "predict", "export", "deploy", "cli",
            "launch", "reproduce", "distributed", "notebook", "baseline", "report"),
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


# Loading and running a model must not pull in the trainer (its optimiser, synthesis and loader
# code): a deployment imports these, and so do the CLI commands that never train.
NO_TRAINER = ("checkpoint", "evaluation", "predict", "prepare", "baseline", "report")
NO_TRAINER_CLI = (
    "_cmd_evaluate", "_cmd_predict", "_cmd_prototypes", "_cmd_data", "_cmd_export",
)


def _module_files(name: str) -> list[Path]:
    """The source files of top-level module ``name`` of prn_core (``""``: its ``__init__``)."""
    if not name:
        return [PACKAGE / "__init__.py"]
    folder = PACKAGE / name
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [PACKAGE / f"{name}.py"]


def _modules_named(source: str, package: tuple[str, ...]) -> set[str]:
    """Like :func:`_imported`, but ``from prn_core import x`` names module ``x`` when it is one;
    ``""`` (the package ``__init__``) only for ``import prn_core`` or a name defined there."""
    names = _imported(source, package) - {""}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import) and any(a.name == "prn_core" for a in node.names):
            names.add("")
        elif isinstance(node, ast.ImportFrom) and (
            (node.level and node.level == len(package) and not node.module)
            or (not node.level and node.module == "prn_core")
        ):
            for alias in node.names:
                exists = (PACKAGE / alias.name).is_dir() or (PACKAGE / f"{alias.name}.py").is_file()
                names.add(alias.name if exists else "")
    return names


def _module_level(source: str) -> str:
    """``source`` without its functions and classes: what importing the module runs."""
    tree = ast.parse(source)
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return ast.unparse(ast.Module([n for n in tree.body if not isinstance(n, defs)], []))


def _closure(modules: set[str]) -> dict[str, str]:
    """Every prn_core module that importing ``modules`` loads, each with the one that did.

    The deferred imports of the modules reached are left out: they run only when their function
    is called (a figure of ablation results deep in ``viz`` does not make a report train).
    """
    seen = {m: "(start)" for m in modules}
    todo = list(modules)
    while todo:
        current = todo.pop()
        for path in _module_files(current):
            package = path.relative_to(PACKAGE.parent).parts[:-1]
            for name in _modules_named(_module_level(path.read_text()), package) - set(seen):
                seen[name] = current
                todo.append(name)
    return seen


def _reached(source: str, package: tuple[str, ...]) -> dict[str, str]:
    """What running all of ``source`` can load: its own imports, deferred ones included, and
    everything importing those loads."""
    return _closure(_modules_named(source, package))


@pytest.mark.parametrize("module", NO_TRAINER)
def test_running_a_model_imports_no_trainer(module):
    reached = {}
    for path in _module_files(module):
        reached.update(_reached(path.read_text(), path.relative_to(PACKAGE.parent).parts[:-1]))
    assert "train" not in reached, f"{module} reaches prn_core.train through {reached['train']}"


def test_cli_commands_that_never_train_import_no_trainer():
    tree = ast.parse((PACKAGE / "cli.py").read_text())
    bodies = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    assert set(NO_TRAINER_CLI) <= set(bodies), set(NO_TRAINER_CLI) - set(bodies)
    for name in NO_TRAINER_CLI:
        reached = _reached(ast.unparse(bodies[name]), ("prn_core",))
        assert "train" not in reached, f"cli.{name} reaches the trainer through {reached['train']}"


def test_the_closure_follows_imports_to_the_trainer():
    """The rule can fail: importing launch, a deferred ``from . import train``, reach it."""
    assert _closure({"launch"})["train"] == "launch"
    assert "train" in _reached("def f():\n    from .launch import run_jobs\n", ("prn_core",))
    assert _modules_named("from . import train, evaluate\n", ("prn_core",)) >= {"train"}
    assert "" in _modules_named("from prn_core import fit\n", ("prn_core",))
