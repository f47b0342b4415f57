"""Every CLI path a user meets first: the happy paths on demo data and each error message."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import cv2

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
    thresholds = {"image": 0.5, "image_rule": "val_f1", "image_normal_q995": 0.6, "pixel": 0.5}
    return save_model(model, cfg, tmp_path_factory.mktemp("model") / "model.pt",
                      {"thresholds": thresholds})


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


def _demo_test_images() -> list[Path]:
    return sorted((make_demo_dataset() / "demo_washer" / "test").rglob("*.png"))


def _predictions(out: Path) -> list[dict]:
    return json.loads((out / "scores.json").read_text())["predictions"]


def test_predict_writes_decisions_binary_masks_and_csv(tmp_path, untrained_model):
    images = _demo_test_images()[:3]
    assert main(["predict", *map(str, images), "--checkpoint", str(untrained_model),
                 "--out", str(tmp_path)]) == 0
    rows = _predictions(tmp_path)
    assert [r["image"] for r in rows] == [str(p) for p in images]
    for row, image in zip(rows, images):
        assert row["anomalous"] == (row["score"] >= 0.5)
        assert (row["threshold"], row["threshold_source"]) == (0.5, "checkpoint (val_f1)")
        mask = cv2.imread(row["mask"], cv2.IMREAD_UNCHANGED)
        assert mask.shape == cv2.imread(str(image)).shape[:2] and mask.dtype == np.uint8
        assert set(np.unique(mask)) <= {0, 255}
        assert row["defect_fraction"] == pytest.approx((mask > 0).mean())
    with open(tmp_path / "scores.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [t["image"] for t in table] == [r["image"] for r in rows]
    assert [t["anomalous"] == "True" for t in table] == [r["anomalous"] for r in rows]
    assert [float(t["score"]) for t in table] == pytest.approx([r["score"] for r in rows])


def test_predict_takes_folders_and_globs_with_unique_names(capsys, tmp_path, untrained_model):
    folder = tmp_path / "line"
    for i, src in enumerate(_demo_test_images()[:3]):  # the same name in two folders
        (folder / f"cam{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(src, folder / f"cam{i % 2}" / f"part{i // 2}.png")
    cv2.imwrite(str(folder / "cam1" / "part9.tif"), cv2.imread(str(src)))
    out = tmp_path / "out"
    assert main(["predict", str(folder), "--checkpoint", str(untrained_model),
                 "--out", str(out)]) == 0
    rows = _predictions(out)
    assert len(rows) == 4 and {Path(r["image"]).suffix for r in rows} == {".png", ".tif"}
    names = sorted(Path(r["mask"]).name for r in rows)
    assert names == ["part0_1_mask.png", "part0_mask.png", "part1_mask.png", "part9_mask.png"]
    again = ["predict", str(folder / "*" / "part0.png"), "--checkpoint", str(untrained_model),
             "--out", str(out)]
    assert "already holds predictions" in _error(capsys, again)
    assert main([*again, "--overwrite"]) == 0
    assert len(_predictions(out)) == 2


def test_threshold_flags_change_decisions_and_masks(tmp_path, untrained_model):
    images = [str(p) for p in _demo_test_images()[:4]]
    base = ["predict", *images, "--checkpoint", str(untrained_model)]
    assert main([*base, "--out", str(tmp_path / "low"), "--threshold", "0",
                 "--pixel-threshold", "0"]) == 0
    assert main([*base, "--out", str(tmp_path / "high"), "--threshold", "1",
                 "--pixel-threshold", "1"]) == 0
    low, high = _predictions(tmp_path / "low"), _predictions(tmp_path / "high")
    assert all(r["anomalous"] and r["threshold_source"] == "--threshold" for r in low)
    assert not any(r["anomalous"] for r in high)
    assert all(r["defect_fraction"] == 1.0 for r in low)
    assert all(r["defect_fraction"] == 0.0 for r in high)
    payload = torch.load(untrained_model, weights_only=True)
    old = tmp_path / "old.pt"  # a model file from before calibration: flags make it usable
    torch.save({k: v for k, v in payload.items() if k != "thresholds"}, old)
    assert main(["predict", *images, "--checkpoint", str(old), "--out", str(tmp_path / "old"),
                 "--threshold", "0.5", "--pixel-threshold", "0.5"]) == 0
    assert [r["anomalous"] for r in _predictions(tmp_path / "old")] == [
        r["score"] >= 0.5 for r in low
    ]


def test_export_pt2_then_predict_with_it_matches_torch(capsys, tmp_path, untrained_model):
    images = [str(p) for p in _demo_test_images()[:2]]
    export = ["export", str(untrained_model), "--format", "pt2", "--out", str(tmp_path / "x")]
    assert main(export) == 0
    meta = json.loads((tmp_path / "x" / "prn_export.json").read_text())
    assert meta["thresholds"]["image"] == 0.5 and (tmp_path / "x" / "model.pt2").is_file()
    assert main(["predict", *images, "--checkpoint", str(untrained_model), "--out",
                 str(tmp_path / "torch")]) == 0
    assert main(["predict", *images, "--engine", "pt2", "--checkpoint", str(tmp_path / "x"),
                 "--out", str(tmp_path / "pt2")]) == 0
    eager, exported = _predictions(tmp_path / "torch"), _predictions(tmp_path / "pt2")
    assert [r["score"] for r in exported] == pytest.approx([r["score"] for r in eager], abs=1e-4)
    assert exported[0]["threshold_source"] == "checkpoint (val_f1)"
    assert "holds a 'pt2' export, not 'onnx'" in _error(
        capsys, ["predict", *images, "--engine", "onnx", "--checkpoint", str(tmp_path / "x"),
                 "--out", str(tmp_path / "o")]
    )


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
    at = result["metrics_at_threshold"]  # the calibrated rule, reported beside the test-optimal F1
    line = next(line for line in report.splitlines() if line.startswith("- decision threshold"))
    assert f"{at['threshold']:.3f}" in line and f"recall {at['recall']:.3f}" in line
