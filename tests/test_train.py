"""Trainer reliability: determinism, exact resume after kill -9, safe checkpoints, honest protocol."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from prn_core.config import get_profile, override
from prn_core.checkpoint import CHECKPOINT, MODEL, RESULT, load_model
from prn_core.train import run

TINY = {"train.epochs": 3, "train.epoch_size": 32, "train.batch_size": 8}


def _cli(*args: str, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PRN_PROFILE": "ci", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, "-m", "prn_core.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _train_args(out: Path) -> list[str]:
    sets = [f"--set={k}={v}" for k, v in TINY.items()]
    return ["train", "--profile", "ci", "--out", str(out), *sets]


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref")
    proc = _cli(*_train_args(out))
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-2000:]
    return out


def test_same_seed_gives_identical_metrics(reference_run, tmp_path):
    cfg = override(get_profile("ci"), **TINY)
    _, _, result = run(cfg, tmp_path, progress=False)
    expected = json.loads((reference_run / RESULT).read_text())["metrics"]
    assert result["metrics"] == expected


# The CLI in a child that stops inside epoch 2 (step 6 of 4-step epochs), after epoch 1's
# checkpoint: it writes a marker and waits, so the parent's signal cannot race the trainer.
_PAUSING_CLI = """
import signal, sys, time
from pathlib import Path
import prn_core.train as train
from prn_core.cli import main

# A shell that starts jobs in the background hands them SIGINT ignored; a terminal does not.
signal.signal(signal.SIGINT, signal.default_int_handler)

marker, steps, real = Path(sys.argv[1]), [0], train.prn_loss
def pausing_loss(*args, **kwargs):
    steps[0] += 1
    if steps[0] == 6:
        marker.write_text("in epoch 2")
        time.sleep(600)
    return real(*args, **kwargs)
train.prn_loss = pausing_loss
sys.exit(main(sys.argv[2:]))
"""


def _stop_in_epoch_two(out: Path, sig: signal.Signals) -> tuple[int, str]:
    marker = out.parent / f"{out.name}.paused"
    proc = subprocess.Popen([sys.executable, "-c", _PAUSING_CLI, str(marker), *_train_args(out)],
                            env={**os.environ, "PRN_PROFILE": "ci", "HF_HUB_OFFLINE": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not marker.exists():  # a poll for the child's own signal, not a guess at its speed
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the trainer never reached epoch 2"
        time.sleep(0.05)
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=120)
    return proc.returncode, err


def _resume_matches(out: Path, reference: Path) -> None:
    assert torch.load(out / CHECKPOINT, weights_only=True)["epoch"] == 1
    resumed = _cli(*_train_args(out), "--resume")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    got = json.loads((out / RESULT).read_text())
    want = json.loads((reference / RESULT).read_text())
    assert got["metrics"] == want["metrics"]
    assert [r["epoch"] for r in got["history"]] == [1, 2, 3]
    assert [r["loss"] for r in got["history"]] == [r["loss"] for r in want["history"]]


def test_kill_minus_9_then_resume_matches_uninterrupted(reference_run, tmp_path):
    code, _ = _stop_in_epoch_two(tmp_path / "run", signal.SIGKILL)
    assert code == -signal.SIGKILL
    _resume_matches(tmp_path / "run", reference_run)


def test_ctrl_c_says_resume_and_resume_continues(reference_run, tmp_path):
    code, err = _stop_in_epoch_two(tmp_path / "run", signal.SIGINT)
    assert code == 2 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("prn train: error: interrupted") and "--resume" in last, last
    _resume_matches(tmp_path / "run", reference_run)


def test_checkpoints_load_with_weights_only(reference_run):
    state = torch.load(reference_run / CHECKPOINT, weights_only=True)
    assert state["epoch"] == TINY["train.epochs"]
    model, cfg = load_model(reference_run / MODEL)
    assert cfg.train.epochs == TINY["train.epochs"]
    assert not model.training


def test_result_records_provenance_and_a_leak_free_split(reference_run):
    result = json.loads((reference_run / RESULT).read_text())
    for key in ("config", "git_commit", "hardware", "seed", "split", "history", "metrics", "command"):
        assert key in result
    files = result["split"]["files"]
    assert files["seen"] and not set(files["seen"]) & set(files["test"])
    assert result["protocol"] == "honest" and result["selection"] == "final"
    assert all(0.0 <= v <= 1.0 for v in result["metrics"].values())
    assert all("seconds" in row and "samples_per_s" in row and "val" in row for row in result["history"])


def test_result_names_no_absolute_path(reference_run):
    """Results are committed and read elsewhere: the tmp --out and the data root are relative."""
    result = json.loads((reference_run / RESULT).read_text())
    words = shlex.split(result["command"])
    out = words[words.index("--out") + 1]
    assert not os.path.isabs(out) and os.path.samefile(out, reference_run)
    assert not os.path.isabs(result["data_root"])
    assert not os.path.isabs(result["config"]["data"]["root"] or "")
    assert os.path.realpath(result["data_root"]) == os.path.realpath(result["split"]["root"])


def test_thresholds_are_calibrated_on_validation_saved_and_reported(reference_run, tmp_path):
    from prn_core.checkpoint import load_checkpoint
    from prn_core.cli import main
    from prn_core.evaluation import validation_thresholds
    from prn_core.prepare import prepare_data, validation_set

    result = json.loads((reference_run / RESULT).read_text())
    th = result["thresholds"]
    assert th["image_rule"] == "val_f1"
    assert all(0.0 <= th[k] <= 1.0 for k in ("image", "image_normal_q995", "pixel"))
    loaded = load_checkpoint(reference_run / MODEL)  # weights_only=True inside
    assert loaded.thresholds.to_dict() == th
    data = prepare_data(loaded.config, progress=False)  # the same split, validation only
    again = validation_thresholds(loaded.model, validation_set(loaded.config, data), "cpu")
    assert again.to_dict() == pytest.approx(th)
    at, counts = result["metrics_at_threshold"], result["test_counts"]
    assert at["threshold"] == th["image"] and at["image_rule"] == "val_f1"
    assert (at["tp"] + at["fn"], at["fp"] + at["tn"]) == (counts["anomalous"], counts["normal"])
    assert at["f1"] <= result["metrics"]["image_f1_max"] + 1e-12  # F1-max is the test optimum
    assert "test-optimal" in result["metric_notes"]["image_f1_max"]
    test_folder = data.root / loaded.config.data.category / "test"
    assert main(["predict", str(test_folder), "--checkpoint", str(reference_run / MODEL),
                 "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "scores.json").read_text())["predictions"]
    assert rows and all(r["threshold_source"] == "checkpoint (val_f1)" for r in rows)
    assert all(r["anomalous"] == (r["score"] >= th["image"]) for r in rows)
    assert all(r["pixel_threshold"] == th["pixel"] for r in rows)


def test_result_breaks_the_test_metrics_down_by_defect_type(reference_run, tmp_path):
    from prn_core.cli import main

    result = json.loads((reference_run / RESULT).read_text())
    by_type = result["metrics_by_defect_type"]
    test_types = {Path(p).parent.name for p in result["split"]["files"]["test"]} - {"good"}
    assert set(by_type) == test_types and len(by_type) >= 2
    assert sum(m["count"] for m in by_type.values()) == result["test_counts"]["anomalous"]
    for m in by_type.values():
        assert all(0.0 <= m[k] <= 1.0 for k in ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap"))
    # every type is scored against all normals, so the whole set's image AUROC lies in their range
    aurocs = [m["image_auroc"] for m in by_type.values()]
    assert min(aurocs) - 1e-9 <= result["metrics"]["image_auroc"] <= max(aurocs) + 1e-9
    assert main(["evaluate", "--checkpoint", str(reference_run / MODEL),
                 "--out", str(tmp_path / "eval.json")]) == 0
    again = json.loads((tmp_path / "eval.json").read_text())["metrics_by_defect_type"]
    assert again.keys() == by_type.keys()  # prn evaluate gives the same breakdown
    assert all(again[k] == pytest.approx(by_type[k]) for k in by_type)


def test_resume_refuses_a_different_config(reference_run, tmp_path):
    import shutil

    shutil.copy(reference_run / CHECKPOINT, tmp_path / CHECKPOINT)
    cfg = override(get_profile("ci"), **{**TINY, "train.lr": 1e-3})
    with pytest.raises(ValueError, match="different config"):
        run(cfg, tmp_path, resume=True, progress=False)


def test_load_model_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        load_model(bad)
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a PRN model file"):
        load_model(tmp_path / "other.pt")


def test_leaky_mode_keeps_seen_in_test_and_selects_on_test(tmp_path):
    cfg = override(get_profile("ci"), **{**TINY, "train.epochs": 2, "train.protocol": "leaky"})
    trained, ev, result = run(cfg, tmp_path, progress=False)
    files = result["split"]["files"]
    assert set(files["seen"]) <= set(files["test"])
    assert result["protocol"] == "leaky" and result["selection"] == "test (leaky)"
    assert all("test" in row for row in result["history"])


# --- issue 11: protocol, foreground and padding rules of the trainer ---------------------------


def _random_model(cfg):
    """A ci model with random prototypes: enough to check what the trainer feeds it."""
    from prn_core.models import PrototypeBank, build_prn

    torch.manual_seed(0)
    model = build_prn(cfg.model, cfg.data.image_size)
    shapes = [f.shape[1:] for f in model.backbone(torch.zeros(1, 3, *cfg.data.image_size))[:3]]
    meta = {**model.expected_prototype_meta(), "category": cfg.data.category}
    model.set_prototypes(PrototypeBank([torch.rand(2, *s) for s in shapes], meta))
    return model.eval()


@pytest.fixture(scope="module")
def wide_root(tmp_path_factory) -> Path:
    """The demo washer padded to 256x384 (HxW), so keep_aspect adds padding rows at 128x128."""
    import cv2

    from prn_core.data import make_demo_dataset

    src = make_demo_dataset() / "demo_washer"
    dst = tmp_path_factory.mktemp("wide") / "demo_washer"
    for path in src.rglob("*.png"):
        out = dst / path.relative_to(src)
        out.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(out), cv2.copyMakeBorder(cv2.imread(str(path)), 0, 0, 64, 64, cv2.BORDER_CONSTANT)
        )
    return dst.parent


def test_foreground_only_false_still_pastes_extended_on_the_object():
    from prn_core.prepare import prepare_data

    on = prepare_data(get_profile("ci"), progress=False)
    off = prepare_data(
        override(get_profile("ci"), **{"synthesis.foreground_only": False}), progress=False
    )
    assert not all(fg.all() for fg in off.foregrounds)
    assert all((a == b).all() for a, b in zip(on.foregrounds, off.foregrounds))


@pytest.mark.parametrize("foreground_only", [True, False])
def test_padding_never_counts_in_validation(wide_root, monkeypatch, foreground_only):
    import prn_core.evaluation as evaluation
    import prn_core.prepare as prepare

    cfg = override(
        get_profile("ci"),
        **{
            "data.root": str(wide_root),
            "data.keep_aspect": True,
            "synthesis.foreground_only": foreground_only,
        },
    )
    data = prepare.prepare_data(cfg, progress=False)
    val = prepare.validation_set(cfg, data)
    assert (~val.valid).any() and val.labels.sum() > 0
    assert not (val.masks.astype(bool) & ~val.valid).any()  # anomalies only on real pixels
    assert all(not (fg & ~v).any() for fg, v in zip(data.foregrounds, data.valid))
    seen: dict[str, object] = {}
    real = evaluation.compute_metrics

    def spy(*args, **kwargs):
        seen["valid"] = kwargs.get("valid")
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluation, "compute_metrics", spy)
    evaluation.validation_metrics(_random_model(cfg), val, torch.device("cpu"))
    assert seen["valid"] is val.valid


def test_image_score_topk_ignores_padded_pixels():
    cfg = get_profile("ci")
    model = _random_model(cfg)
    probs = torch.zeros(2, 1, 8, 8)
    probs[:, :, :2] = 1.0  # bright padding rows
    valid = torch.ones(2, 1, 8, 8, dtype=torch.bool)
    valid[:, :, :2] = False
    assert model.score(probs).tolist() == pytest.approx([16 / 50, 16 / 50])  # k=50 of 64, 16 bright
    assert model.score(probs, valid).tolist() == [0.0, 0.0]


def test_honest_selection_never_reads_the_test_monitor(tmp_path, monkeypatch):
    """The test monitor says epoch 1 is best, validation disagrees: validation must win."""
    import prn_core.train as train

    calls = {"n": 0}

    def adversarial_test_metrics(*args, **kwargs):
        calls["n"] += 1
        score = 1.0 if calls["n"] == 1 else 0.0  # epoch 1 looks perfect on test
        return train.EvalResult(
            {k: score for k in ("image_auroc", "pixel_auroc", "pixel_ap", "au_pro")},
            *(np.zeros(0) for _ in range(4)),
        )

    monkeypatch.setattr(train, "evaluate", adversarial_test_metrics)
    val_scores = iter([{"image_auroc": v} for v in (0.2, 0.9, 0.5)])
    monkeypatch.setattr(train, "validation_metrics", lambda *a: next(val_scores))
    cfg = override(
        get_profile("ci"),
        **{
            **TINY,
            "train.epoch_size": 16,
            "train.protocol": "honest-val",
            "train.monitor_test": True,
        },
    )
    trained = train.fit(cfg, tmp_path, progress=False)
    assert calls["n"] == 3 and all(row["test"]["au_pro"] in (0.0, 1.0) for row in trained.history)
    assert trained.selected_epoch == 2
    model, _ = load_model(tmp_path / MODEL)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == 2
    weights = model.state_dict()
    assert all(
        torch.equal(weights[k], v) for k, v in best["model"].items() if isinstance(v, torch.Tensor)
    )
