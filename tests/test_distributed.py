"""Data-parallel training under torchrun: sharding, exact gathered metrics, resume across ranks.

The torchrun tests are ``ci``-profile runs, shortened (1-2 epochs of 2 steps at 64 px, one thread
per rank) so that each takes seconds on 2 CPU cores; they check behaviour, not quality.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from prn_core.distributed import SHARDS_FILE, eval_shards, shard_batches
from prn_core.metrics import compute_metrics
from prn_core.checkpoint import CHECKPOINT

REPO = Path(__file__).resolve().parents[1]


class _ThreadShards:
    """:class:`prn_core.metrics.Shards` for threads standing in for processes."""

    def __init__(self, rank: int, world: int, box: list, barrier: threading.Barrier) -> None:
        self.rank, self.world, self.box, self.barrier = rank, world, box, barrier

    def all_gather(self, obj):
        self.box[self.rank] = obj
        self.barrier.wait()
        out = list(self.box)
        self.barrier.wait()
        return out


@pytest.mark.parametrize("max_sample", [1 << 22, 1000])  # all pixels, and a sampled edge set
def test_sharded_metrics_equal_one_process_exactly(max_sample, monkeypatch):
    rng = np.random.default_rng(0)
    n, world = 7, 3
    labels = np.array([0, 1, 0, 1, 1, 0, 1])
    masks = np.zeros((n, 24, 24), np.uint8)
    for i in np.flatnonzero(labels):
        masks[i, 3 + i : 9 + i, 2 : 6 + i] = 1
        masks[i, 15:18, 15:20] = 1
    maps = rng.random((n, 24, 24)).astype(np.float32) + masks * 0.4
    scores = maps.reshape(n, -1).max(1)
    monkeypatch.setattr("prn_core.metrics.MAX_SAMPLE", max_sample)
    import prn_core.metrics as metrics

    want = compute_metrics(labels, scores, masks, maps)
    blocks = [(0, 2), (2, 2), (2, 7)]  # contiguous blocks, one empty
    box, barrier, got = [None] * world, threading.Barrier(world), [None] * world

    def work(r: int) -> None:
        a, b = blocks[r]
        shards = _ThreadShards(r, world, box, barrier)
        got[r] = metrics.compute_metrics(labels[a:b], scores[a:b], masks[a:b], maps[a:b],
                                         shards=shards)

    threads = [threading.Thread(target=work, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert all(g == want for g in got), (got, want)


def test_batch_shards_are_disjoint_and_cover_the_epoch():
    world, batch, epoch = 4, 8, 44  # 5 full batches; 4 leftovers dropped, as in one process
    shards = [sum(shard_batches(epoch, batch, r, world), []) for r in range(world)]
    flat = sorted(i for s in shards for i in s)
    assert flat == list(range(40))
    assert len(flat) == len(set(flat))
    with pytest.raises(ValueError, match="divisible by the number of ranks"):
        shard_batches(epoch, 6, 0, 4)


def test_eval_shards_outside_torchrun_is_everything():
    items = list(range(10))
    assert eval_shards(items, 2, 4) == (items, None)


TINY = ["--set=train.epochs={epochs}", "--set=train.epoch_size=16", "--set=data.image_size=64",
        "--set=train.batch_size=8", "--set=train.threads=1"]


def _train_cmd(out: Path, nproc: int, epochs: int, *extra: str) -> list[str]:
    sets = [s.format(epochs=epochs) for s in TINY]
    prn = ["-m", "prn_core.cli", "train", "--profile", "ci", "--device", "cpu", "--out", str(out),
           *sets, *extra]
    if nproc > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={nproc}", *prn]
    return [sys.executable, *prn]


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
            **extra}


def _train(out: Path, nproc: int, epochs: int, *extra: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(_train_cmd(out, nproc, epochs, *extra), env=_env(), capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def two_rank_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    _train(out, 2, 1)
    return out


def test_torchrun_ranks_draw_disjoint_slices_that_cover_the_epoch(two_rank_run):
    record = json.loads((two_rank_run / SHARDS_FILE).read_text())
    assert record["world_size"] == 2
    rank0, rank1 = record["epochs"]["1"]
    assert rank0 and rank1 and not set(rank0) & set(rank1)
    assert sorted(rank0 + rank1) == list(range(16))  # epoch_size 16 = 2 batches of 8
    result = json.loads((two_rank_run / "result.json").read_text())
    assert result["world_size"] == 2


def test_gathered_metrics_equal_one_process_evaluation(two_rank_run, tmp_path):
    from prn_core.data import ImageCache, few_shot_split
    from prn_core.checkpoint import load_model
    from prn_core.evaluation import evaluate
    from prn_core.prepare import resolve_data_root

    torch.set_num_threads(1)
    model, cfg = load_model(two_rank_run / "model.pt")
    split = few_shot_split(resolve_data_root(cfg), cfg.data.category, num_seen=cfg.data.num_seen,
                           seed=cfg.seed, val_fraction=cfg.data.val_fraction,
                           format=cfg.data.format)
    assert len(split.test) > cfg.train.batch_size  # more than one batch: each rank had a block
    single = evaluate(model, split.test, ImageCache(cfg.data.image_size),
                      batch_size=cfg.train.batch_size, progress=False)
    gathered = json.loads((two_rank_run / "result.json").read_text())["metrics"]
    assert gathered == single.metrics


def test_two_rank_checkpoint_resumes_with_one_rank(tmp_path):
    out, signals = tmp_path / "run", tmp_path / "signals"
    signals.mkdir()
    proc = subprocess.Popen(_train_cmd(out, 2, 2), env=_env(PRN_CHECKPOINT_SIGNAL_DIR=str(signals)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while not (markers := list(signals.glob("*-epoch1.json"))):  # rank 0 wrote epoch 1's checkpoint
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline
        time.sleep(0.02)
    rank0 = json.loads(markers[0].read_text())["pid"]
    os.kill(rank0, signal.SIGKILL)  # rank 0, while it waits after epoch 1's checkpoint
    proc.communicate(timeout=300)  # torchrun sees rank 0 die, stops rank 1 and fails
    assert proc.returncode != 0
    state = torch.load(out / CHECKPOINT, weights_only=True)
    assert state["epoch"] == 1 and not (out / "result.json").exists()
    _train(out, 1, 2, "--resume")
    result = json.loads((out / "result.json").read_text())
    assert [row["epoch"] for row in result["history"]] == [1, 2]
    assert result["history"][0] == json.loads(state["history"])[0]  # epoch 1 kept, not retrained
    assert "world_size" not in result
