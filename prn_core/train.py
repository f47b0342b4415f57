"""Training: the product's main job, honest by construction.

``fit`` trains PRN on one category from a :class:`~prn_core.config.PRNConfig`; ``run`` trains,
evaluates on the test split (:mod:`prn_core.evaluation`) and writes a result JSON with full
provenance; ``load_or_train`` is the book's entry point. Preparing the data lives in
:mod:`prn_core.prepare` and the files of a run folder in :mod:`prn_core.checkpoint`, so that
loading and running a model never imports the trainer. Three protocol rules hold throughout
(DESIGN section 4):

* the seen anomalies are removed from the test set before anything else happens;
* the model is never selected on the test set: ``train.protocol`` is ``honest-final`` (keep the
  final epoch) or ``honest-val`` (the best epoch on a validation split of held-out normal
  images plus simulated anomalies); ``leaky`` is the only exception, kept to reproduce the
  unofficial numbers. ``train.monitor_test`` only logs test metrics, as a diagnostic;
* with ``keep_aspect``, padded pixels never count: no anomaly is drawn there, and neither the
  metrics nor the image score's top-k see them;
* one seed drives the split, the anomaly generation, K-means and the initialisation.

Checkpoints are written atomically after every epoch and ``resume=True`` continues from the
last one exactly: model, optimiser, schedule, epoch and history. Because every training
sample is a pure function of ``(seed, epoch, index)``, no data-loader state needs saving.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import distributed
from .checkpoint import (
    BEST,
    CHECKPOINT,
    LOG,
    MODEL,
    PROTOTYPES,
    RESULT,
    load_best,
    load_model,
    restore_training_state,
    save_best,
    save_model,
    save_training_state,
)
from .config import PRNConfig, to_dict
from .calibrate import Thresholds, metrics_at_threshold
from .evaluation import EvalResult, evaluate, validation_metrics, validation_thresholds
from .losses import prn_loss
from .models import PRN, build_backbone, build_prn
from .atomic import write_json_atomic, write_text_atomic
from .prepare import (  # resolve_config is also imported from here (chapter 9)
    PreparedData,
    build_training_mix,
    fit_or_load_prototypes,
    normal_batches,
    prepare_data,
    resolve_config,
    resolve_device,
    validation_set,
)
from .runinfo import config_fingerprint, git_commit, hardware, portable_paths, signal_checkpoint

__all__ = ["TrainResult", "fit", "run", "load_or_train", "resolve_config"]

F1_MAX_NOTE = ("test-optimal: its threshold is chosen on the test labels, so it is an upper "
               "bound; metrics_at_threshold holds the test F1 at the threshold calibrated on "
               "validation")


def _selection_score(metrics: dict[str, float]) -> float:
    keys = [k for k in ("image_auroc", "pixel_auroc", "pixel_ap", "au_pro")
            if not math.isnan(metrics.get(k, math.nan))]
    return float(np.mean([metrics[k] for k in keys])) if keys else -math.inf


def _lr_lambda(cfg: PRNConfig, total_steps: int):
    if cfg.train.schedule == "constant":
        return lambda step: 1.0
    return lambda step: 0.5 * (
        1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps))
    )


@dataclass
class TrainResult:
    """A trained model with the data it saw and its per-epoch history."""

    model: PRN
    data: PreparedData
    history: list[dict[str, Any]]
    out_dir: Path
    selected_epoch: int
    config: PRNConfig
    thresholds: Thresholds | None = None  # calibrated on the validation split after selection


def fit(cfg: PRNConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
        data: PreparedData | None = None) -> TrainResult:
    """Train one category; see the module docstring for the protocol and the checkpoints."""
    cfg = resolve_config(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = distributed.setup(resolve_device(cfg.train.device))
    progress = progress and distributed.is_main()  # one set of bars, not one per rank
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = data or prepare_data(cfg, progress)

    backbone = build_backbone(cfg.model.backbone, cfg.model.weights)
    bank = distributed.broadcast_prototypes(
        lambda: fit_or_load_prototypes(cfg, data, backbone, out_dir / PROTOTYPES, device, progress))
    torch.manual_seed(cfg.seed)
    model = build_prn(cfg.model, cfg.data.image_size, prototypes=bank, backbone=backbone).to(device)
    model.calibrate_residual_prior(normal_batches(data, cfg.train.batch_size))
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = distributed.wrap(model, device)  # DDP under torchrun, else the model itself

    mix = build_training_mix(cfg, data)
    loader = DataLoader(mix, batch_size=cfg.train.batch_size, shuffle=False, drop_last=True,
                        num_workers=cfg.train.num_workers, persistent_workers=False,
                        pin_memory=device.type == "cuda")
    loader = distributed.shard_loader(loader)  # this rank's slice of every batch under torchrun
    steps_per_epoch = len(loader)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _lr_lambda(cfg, cfg.train.epochs * steps_per_epoch)
    )
    use_amp = cfg.train.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    history: list[dict[str, Any]] = []
    start_epoch = 0
    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        history, start_epoch = restore_training_state(ckpt_path, cfg, model, optimizer,
                                                      scheduler, scaler)

    val = validation_set(cfg, data)
    test_samples = data.split.test
    for epoch in range(start_epoch, cfg.train.epochs):
        mix.set_epoch(epoch)
        model.train()
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "smooth_l1": 0.0, "focal": 0.0}
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not progress,
                   leave=False)
        for batch in bar:
            images = batch["image"].to(device, non_blocking=True)
            masks = batch["mask"].to(device, non_blocking=True)
            if device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, enabled=use_amp):
                logits = forward(images)
            loss, parts = prn_loss(logits, masks, focal_weight=cfg.train.loss_focal_weight)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            sums["loss"] += loss.item()
            for key, value in parts.items():
                sums[key] += float(value.detach())
            bar.set_postfix(loss=f"{loss.item():.4f}")
        distributed.sync_from_main(model)  # BatchNorm statistics too: every rank scores one model
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            **{k: v / steps_per_epoch for k, v in sums.items()},
            "lr": scheduler.get_last_lr()[0],
            "seconds": seconds,
            "samples_per_s": steps_per_epoch * cfg.train.batch_size / seconds,
        }
        row["val"] = validation_metrics(model, val, device)
        if cfg.train.monitor_test or cfg.train.leaky:  # leaky selects on it; else a diagnostic
            row["test"] = evaluate(model, test_samples, data.cache, device, cfg.train.batch_size,
                                   progress=False).metrics
        history.append(row)
        distributed.check_epoch_shards(loader, out_dir, epoch + 1)
        if not distributed.is_main():
            continue  # every rank holds the same state; rank 0 writes it
        if _is_best(cfg, history):
            save_best(model, epoch + 1, out_dir / BEST)
        save_training_state(ckpt_path, cfg, epoch + 1, model, optimizer, scheduler, scaler,
                            history)
        _write_log(out_dir / LOG, history)
        signal_checkpoint(out_dir, epoch + 1)

    selected = len(history)
    distributed.barrier()  # rank 0's best.pt is complete before any rank reads it
    if cfg.train.selection != "final":
        selected = load_best(model, out_dir / BEST)
    thresholds = validation_thresholds(model, val, device)  # the selected model's, never test
    if distributed.is_main():
        save_model(model, cfg, out_dir / MODEL,
                   {"selected_epoch": selected, "thresholds": thresholds.to_dict()})
    return TrainResult(model.eval(), data, history, out_dir, selected, cfg, thresholds)


def _is_best(cfg: PRNConfig, history: list[dict[str, Any]]) -> bool:
    """Selection key: test metrics only in leaky mode, else the validation split.

    The honest key never reads ``row["test"]``, so ``monitor_test`` cannot change the choice.
    """
    key = "test" if cfg.train.leaky else "val"
    scores = [_selection_score(row.get(key, {})) for row in history]
    return scores[-1] >= max(scores)


def _write_log(path: Path, history: Iterable[dict[str, Any]]) -> None:
    """Rewrite the JSON-lines log from the history, so a resumed run never duplicates epochs."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in history))


def run(cfg: PRNConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
        command: str | None = None) -> tuple[TrainResult, EvalResult, dict[str, Any]]:
    """Train, evaluate on the (leak-free) test split and write ``result.json`` with provenance."""
    started = time.time()
    cfg = resolve_config(cfg)
    progress = progress and distributed.is_main()
    trained = fit(cfg, out_dir, resume=resume, progress=progress)
    device = next(trained.model.parameters()).device
    ev = evaluate(trained.model, trained.data.split.test, trained.data.cache, device,
                  cfg.train.batch_size, progress)
    result = {
        "command": command,
        "profile": cfg.profile,
        "category": cfg.data.category,
        "data_root": str(trained.data.root),
        "config": to_dict(cfg),
        "git_commit": git_commit(),
        "hardware": hardware(),
        "seed": cfg.seed,
        "protocol": "leaky" if cfg.train.leaky else "honest",
        "protocol_setting": cfg.train.protocol,
        "selection": "test (leaky)" if cfg.train.leaky else cfg.train.selection,
        "test_monitor": ("diagnostic only: per-epoch test metrics in history, never used to select"
                         if cfg.train.monitor_test and not cfg.train.leaky else None),
        "selected_epoch": trained.selected_epoch,
        "split": trained.data.split.to_dict(),
        "history": trained.history,
        "train_seconds": sum(r["seconds"] for r in trained.history),
        "wall_seconds": time.time() - started,
        "metrics": ev.metrics,
        "metric_notes": {"image_f1_max": F1_MAX_NOTE},
        "thresholds": None,
        "metrics_at_threshold": None,
        "test_counts": {"normal": int((ev.labels == 0).sum()),
                        "anomalous": int((ev.labels == 1).sum())},
        # which defects a model misses; ev holds only this rank's images under torchrun
        "metrics_by_defect_type": ev.by_defect_type() if distributed.world_size() == 1 else None,
    }
    result = portable_paths(result)  # committed results name no folder of this machine
    result["config_fingerprint"] = config_fingerprint(result["config"])
    if distributed.world_size() > 1:  # ev's arrays are this rank's block; count the whole split
        labels = np.asarray([s.label for s in trained.data.split.test])
        result["test_counts"] = {"normal": int((labels == 0).sum()),
                                 "anomalous": int((labels == 1).sum())}
        result["world_size"] = distributed.world_size()
    result["thresholds"], result["metrics_at_threshold"] = _at_threshold(trained, ev)
    if distributed.is_main():
        write_json_atomic(Path(out_dir) / RESULT, result)
    return trained, ev, result


def _at_threshold(trained: TrainResult, ev: EvalResult) -> tuple[dict[str, Any], Any]:
    """The calibrated thresholds, and the test decisions at the image one (None without one).

    Under torchrun ``ev`` holds this rank's block of the test split; the blocks are contiguous
    and in rank order, so the gathered scores line up with the split's labels.
    """
    thresholds = trained.thresholds or Thresholds(None, image_rule=None, note="not calibrated")
    if thresholds.image is None:
        return thresholds.to_dict(), None
    scores, labels = ev.scores, ev.labels
    if distributed.world_size() > 1:
        scores = np.concatenate(distributed.all_gather(scores))
        labels = np.asarray([s.label for s in trained.data.split.test])
    at = metrics_at_threshold(labels, scores, thresholds.image)
    return thresholds.to_dict(), {"image_rule": thresholds.image_rule, **at}


def load_or_train(cfg: PRNConfig, out_dir: str | Path,
                  progress: bool = True) -> tuple[PRN, dict[str, Any]]:
    """For the book: reuse a finished run in ``out_dir`` when its config matches, else train it."""
    cfg = resolve_config(cfg)
    out_dir = Path(out_dir)
    result_path = out_dir / RESULT
    if result_path.exists() and (out_dir / MODEL).exists():
        result = json.loads(result_path.read_text())
        if result.get("config") == json.loads(json.dumps(portable_paths(to_dict(cfg)))):
            model, _ = load_model(out_dir / MODEL)
            return model, result
    trained, _, result = run(cfg, out_dir, progress=progress)
    return trained.model, result
