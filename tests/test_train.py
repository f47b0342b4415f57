"""Trainer reliability: determinism, exact resume after kill -9, safe checkpoints, honest protocol."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from prn_core.config import get_profile, override
from prn_core.train import CHECKPOINT, MODEL, RESULT, load_model, run

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


def test_kill_minus_9_then_resume_matches_uninterrupted(reference_run, tmp_path):
    proc = _cli(*_train_args(tmp_path))
    ckpt = tmp_path / CHECKPOINT
    deadline = time.time() + 600
    while not ckpt.exists():  # first epoch finished: kill in the middle of the second
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.time() < deadline
        time.sleep(0.05)
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    state = torch.load(ckpt, weights_only=True)
    assert state["epoch"] < TINY["train.epochs"], "the run finished before it could be killed"
    resumed = _cli(*_train_args(tmp_path), "--resume")
    _, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    got = json.loads((tmp_path / RESULT).read_text())
    want = json.loads((reference_run / RESULT).read_text())
    assert got["metrics"] == want["metrics"]
    assert [r["epoch"] for r in got["history"]] == [1, 2, 3]
    assert [r["loss"] for r in got["history"]] == [r["loss"] for r in want["history"]]


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
    cfg = override(get_profile("ci"), **{**TINY, "train.epochs": 2, "data.leaky": True})
    trained, ev, result = run(cfg, tmp_path, progress=False)
    files = result["split"]["files"]
    assert set(files["seen"]) <= set(files["test"])
    assert result["protocol"] == "leaky" and result["selection"] == "test (leaky)"
    assert all("test" in row for row in result["history"])
