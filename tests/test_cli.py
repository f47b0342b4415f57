"""Every CLI path a user meets first: the happy paths on demo data and each error message."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from prn_core.cli import main
from prn_core.config import get_profile
from prn_core.data import make_demo_dataset
from prn_core.models import PrototypeBank, build_prn
from prn_core.checkpoint import save_model

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory) -> Path:
    """A real model file (random prototypes, untrained head): enough for predict/evaluate paths."""
    cfg = get_profile("ci")
    torch.manual_seed(0)
    model = build_prn(cfg.model, cfg.data.image_size)
    meta = model.expected_prototype_meta()
    shapes = [f.shape[1:] for f in model.backbone(torch.zeros(1, 3, *cfg.data.image_size))[:3]]
    bank = PrototypeBank([torch.rand(2, *s) for s in shapes], {**meta, "category": cfg.data.category})
    model.set_prototypes(bank)
    return save_model(model, cfg, tmp_path_factory.mktemp("model") / "model.pt")


def test_full_profile_needs_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert "needs a CUDA GPU" in _error(capsys, ["train", "--profile", "full"])


def test_missing_data_root(capsys, tmp_path):
    err = _error(capsys, ["train", "--profile", "ci", "--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert "does not exist" in err and "--data-root" in err


def test_bad_overrides(capsys):
    assert "unknown config field 'train.epoch'" in _error(capsys, ["train", "--profile", "ci", "--set", "train.epoch=3"])
    assert "--set expects KEY=VALUE" in _error(capsys, ["train", "--profile", "ci", "--set", "epochs"])
    assert "image_size" in _error(capsys, ["train", "--profile", "ci", "--image-size", "100"])


def test_unknown_category_lists_what_exists(capsys, tmp_path):
    err = _error(capsys, ["prototypes", "--profile", "ci", "--category", "bottle", "--out", str(tmp_path / "p.pt")])
    assert "bottle" in err and "demo_washer" in err


def test_evaluate_missing_and_corrupt_checkpoints(capsys, tmp_path):
    assert "does not exist" in _error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "none.pt")])
    (tmp_path / "bad.pt").write_text("junk")
    assert "could not be read" in _error(capsys, ["evaluate", "--checkpoint", str(tmp_path / "bad.pt")])


def test_mismatched_prototypes_in_checkpoint(capsys, tmp_path, untrained_model):
    payload = torch.load(untrained_model, weights_only=True)
    payload["prototypes"]["meta"]["backbone"] = "resnet18"
    torch.save(payload, tmp_path / "mismatch.pt")
    err = _error(capsys, ["predict", str(tmp_path / "x.png"), "--checkpoint", str(tmp_path / "mismatch.pt"),
                          "--out", str(tmp_path / "out")])
    assert "backbone" in err


def test_predict_writes_heatmaps_and_scores(capsys, tmp_path, untrained_model):
    root = make_demo_dataset()
    images = sorted((root / "demo_washer" / "test").rglob("*.png"))[:3]
    assert main(["predict", *map(str, images), "--checkpoint", str(untrained_model), "--out", str(tmp_path)]) == 0
    scores = json.loads((tmp_path / "scores.json").read_text())["predictions"]
    assert len(scores) == 3 and all(0.0 <= row["score"] <= 1.0 for row in scores)
    assert all(Path(row["heatmap"]).is_file() for row in scores)
    assert "does not exist" in _error(capsys, ["predict", str(tmp_path / "missing.png"), "--checkpoint",
                                                str(untrained_model), "--out", str(tmp_path)])


def test_data_check_on_demo_and_broken_layout(capsys, tmp_path):
    root = make_demo_dataset()
    assert (
        main(
            [
                "data",
                "check",
                "--profile",
                "ci",
                "--data-root",
                str(root),
                "--categories",
                "demo_washer",
            ]
        )
        == 0
    )
    assert "OK for profile ci (honest-final)" in capsys.readouterr().out
    broken = tmp_path / "cat"
    (broken / "train" / "good").mkdir(parents=True)
    assert "test" in _error(capsys, ["data", "check", "--data-root", str(tmp_path), "--categories", "cat"])


def test_data_check_real_bottle(capsys, shared_data):
    argv = [
        "data",
        "check",
        "--profile",
        "cpu",
        "--data-root",
        str(shared_data / "mvtec"),
        "--categories",
        "bottle",
    ]
    assert main(argv) == 0
    assert (
        "bottle: 188 train + 21 val normal, 10 seen anomalies, test 20 good + 53 defective"
        in capsys.readouterr().out
    )


def test_backbones_lists_the_registry(capsys):
    assert main(["backbones"]) == 0
    names = capsys.readouterr().out.split()
    assert {"resnet18", "wide_resnet50_2", "tf_efficientnet_lite0"} <= set(names)


def test_demo_end_to_end(capsys, tmp_path):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--set", "train.epochs=1", "--set", "train.epoch_size=16"]) == 0
    assert "[prn demo]" in capsys.readouterr().out
    result = json.loads((out / "result.json").read_text())
    assert result["category"] == "demo_washer" and result["profile"] == "ci"
    assert result["command"].startswith("prn demo --out ")  # argv given to main, not sys.argv
    for name in ("report.md", "training.png", "predictions.png", "curves.png", "model.pt"):
        assert (out / name).is_file(), name
    assert np.isfinite(list(result["metrics"].values())).all()
    baseline = result["baseline_metrics"]  # the training-free detector, same test images
    assert set(baseline) == set(result["metrics"]) and all(0 <= v <= 1 for v in baseline.values())
    report = (out / "report.md").read_text()
    row = next(line for line in report.splitlines() if line.startswith("| pixel_auroc |"))
    assert row == (f"| pixel_auroc | {result['metrics']['pixel_auroc']:.3f} "
                   f"| {baseline['pixel_auroc']:.3f} |")
