"""The hard-defects collector: seed groups and the validation-test rank correlation."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "hard_defects.py"


@pytest.fixture(scope="module")
def hard_defects():
    spec = importlib.util.spec_from_file_location("hard_defects", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, name: str, category: str, seed: int, test: float, val: float,
         shading: float = 0.0) -> Path:
    folder = tmp_path / name
    folder.mkdir()
    metrics = {m: test for m in ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")}
    result = {
        "category": category, "seed": seed, "train_seconds": 10.0 + seed, "git_commit": "abc",
        "command": "prn train", "metrics": metrics,
        "history": [{"epoch": 1, "val": {m: val for m in metrics}}],
        "config": {"seed": seed, "data": {"root": f"../{category}", "category": category},
                   "synthesis": {"shading_prob": shading}},
    }
    (folder / "result.json").write_text(json.dumps(result))
    return folder


def test_seeds_of_one_name_are_summarised_and_changes_ignore_seed_and_data(tmp_path, hard_defects):
    named = [("base", _run(tmp_path, "a", "tile", 0, 0.8, 0.9)),
             ("base", _run(tmp_path, "b", "tile", 1, 0.7, 0.9)),
             ("shade", _run(tmp_path, "c", "tile", 0, 0.9, 0.95, shading=0.5)),
             ("base", _run(tmp_path, "d", "bottle", 0, 0.99, 0.98))]
    record = hard_defects.collect(named)
    assert [r["changes"] for r in record["runs"]] == [{}, {}, {"synthesis.shading_prob": 0.5}, {}]
    base_tile = next(g for g in record["groups"] if g["name"] == "base" and g["category"] == "tile")
    assert base_tile["seeds"] == [0, 1]
    assert base_tile["test"]["au_pro"]["mean"] == pytest.approx(0.75)
    assert base_tile["test"]["au_pro"]["std"] == pytest.approx(0.0707107, abs=1e-6)
    assert base_tile["test"]["au_pro"]["worst"] == pytest.approx(0.7)
    assert base_tile["val_minus_test"]["au_pro"]["values"] == pytest.approx([0.1, 0.2])
    assert record["val_test_spearman"]["tile"]["au_pro"] is None  # three runs: too few


def test_rank_correlation_is_one_when_validation_orders_runs_like_test(tmp_path, hard_defects):
    named = [("r", _run(tmp_path, f"r{i}", "tile", i, 0.5 + 0.1 * i, 0.6 + 0.05 * i)) for i in range(4)]
    named.append(("x", _run(tmp_path, "x", "tile", 9, 0.2, 0.99)))  # best on val, worst on test
    spearman = hard_defects.val_test_spearman(hard_defects.collect(named)["runs"])["tile"]
    assert spearman["runs"] == 5
    assert -1.0 <= spearman["pixel_ap"] < 0.5
    assert hard_defects.val_test_spearman(hard_defects.collect(named[:4])["runs"])["tile"][
        "au_pro"] == pytest.approx(1.0)
