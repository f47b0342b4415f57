"""Scoring a trained model: predictions for images, and every metric on a split.

``predict`` turns images into anomaly maps and image scores; ``evaluate`` scores a list of
samples in bounded memory and computes the metrics of :mod:`prn_core.metrics` on them, with
keep_aspect padding excluded (DESIGN section 4). ``validation_metrics`` does the same on the
validation split that selects the epoch. None of it trains, so ``prn evaluate``, ``prn
predict``, the baseline and the report import no trainer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import distributed
from .data import ImageCache, Sample
from .calibrate import Thresholds, calibrate
from .checkpoint import load_model
from .metrics import compute_metrics, metrics_by_group
from .models import PRN
from .prepare import ValidationSet, check_run

__all__ = [
    "EvalResult", "predict", "evaluate", "evaluate_checkpoint", "validation_predictions",
    "validation_metrics", "validation_thresholds",
]


@dataclass
class EvalResult:
    """Test-set predictions and their metrics; maps are (N, H, W) probabilities."""

    metrics: dict[str, float]
    labels: np.ndarray  # (N,)
    scores: np.ndarray  # (N,)
    maps: np.ndarray  # (N, H, W)
    masks: np.ndarray  # (N, H, W) uint8
    paths: list[str] = field(default_factory=list)
    valid: np.ndarray | None = None  # (N, H, W) bool, False on keep_aspect padding; None = none
    defect_types: list[str] = field(default_factory=list)  # per image, as the dataset names them

    def metric_inputs(self) -> dict[str, Any]:
        """Keyword arguments that make any pixel metric or figure agree with :attr:`metrics`."""
        return {"masks": self.masks, "maps": self.maps, "valid": self.valid}

    def by_defect_type(self) -> dict[str, dict[str, float]]:
        """Every metric per defect type, each type against all normals
        (:func:`prn_core.metrics.metrics_by_group`); empty when the images carry no types."""
        if len(self.defect_types) != len(self.labels):
            return {}
        return metrics_by_group(self.labels, self.scores, self.masks, self.maps, self.defect_types,
                                valid=self.valid)


@torch.no_grad()
def predict(model: PRN, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
            batch_size: int = 8, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps (N, H, W) and image scores (N,) for (N, H, W, 3) float images in [0, 1].

    ``valid`` (N, H, W) bool marks real pixels; the image score then ignores the padding.
    """
    model.eval()
    device = torch.device(device)
    tensor = torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    regions = None if valid is None else torch.as_tensor(np.asarray(valid, dtype=bool))[:, None]
    maps, scores = [], []
    for start in range(0, len(tensor), batch_size):
        batch = tensor[start : start + batch_size].to(device)
        region = None if regions is None else regions[start : start + batch_size].to(device)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            out = model(batch, valid=region)
        maps.append(out.anomaly_map[:, 0].float().cpu().numpy())
        scores.append(out.score.float().cpu().numpy())
    if not maps:
        return np.zeros((0,), np.float32), np.zeros((0,), np.float32)
    return np.concatenate(maps), np.concatenate(scores)


def evaluate(model: PRN, samples: Sequence[Sample], cache: ImageCache,
             device: torch.device | str = "cpu",
             batch_size: int = 8, progress: bool = True) -> EvalResult:
    """Score ``samples`` in chunks and compute every metric; padding (keep_aspect) is excluded.

    Under torchrun each rank scores a block of ``samples`` and the metrics cover all of them;
    the returned arrays then hold this rank's block (see :mod:`prn_core.distributed`).
    """
    chunk = max(batch_size, 32)
    samples, shards = distributed.eval_shards(samples, batch_size, chunk)
    labels = np.asarray([s.label for s in samples])
    maps, scores, masks, valid = [], [], [], []
    starts = range(0, len(samples), chunk)
    for start in tqdm(starts, desc="evaluate", disable=not progress, leave=False):
        part = samples[start : start + chunk]
        region = np.stack([cache.valid(x) for x in part])
        m, s = predict(
            model, np.stack([cache.image(x) for x in part]), device, batch_size, valid=region
        )
        maps.append(m)
        scores.append(s)
        masks.append(np.stack([cache.mask(x) for x in part]).astype(np.uint8))
        valid.append(region)
    if not maps:  # an empty block: this rank has fewer chunks than the others
        maps, scores, masks, valid = [np.zeros((0, 1, 1), np.float32)], [np.zeros(0, np.float32)], \
            [np.zeros((0, 1, 1), np.uint8)], [np.ones((0, 1, 1), bool)]
    maps_arr, scores_arr = np.concatenate(maps), np.concatenate(scores)
    masks_arr = np.concatenate(masks)
    padded = not all(v.all() for v in valid)
    if shards is not None:  # every rank must take the same branch below, whatever its block
        padded = any(shards.all_gather(padded))
    valid_arr = np.concatenate(valid) if padded else None
    metrics = compute_metrics(labels, scores_arr, masks_arr, maps_arr, valid=valid_arr,
                              shards=shards)
    return EvalResult(
        metrics, labels, scores_arr, maps_arr, masks_arr, [str(s.path) for s in samples], valid_arr,
        [s.defect_type for s in samples],
    )


def evaluate_checkpoint(checkpoint: str | Path, data_root: str | None = None,
                        category: str | None = None, progress: bool = True,
                        ) -> tuple[EvalResult, Any]:
    """Score a saved model on its own leak-free test split (or another root/category's), as
    ``prn evaluate`` does; the data is checked before any image is decoded. Returns the result
    and the config it was scored with."""
    from .config import override

    model, cfg = load_model(checkpoint)
    changes = {k: v for k, v in (("data.root", data_root), ("data.category", category)) if v}
    cfg = override(cfg, **changes) if changes else cfg
    split = check_run(cfg)
    cache = ImageCache(cfg.data.image_size, keep_aspect=cfg.data.keep_aspect)
    return evaluate(model, split.test, cache, progress=progress), cfg


def validation_predictions(
    model: PRN, val: ValidationSet, device: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Maps (N, H, W), scores (N,) and the valid mask (None when nothing is padded)."""
    valid = val.valid if not val.valid.all() else None
    maps, scores = predict(model, val.images, device, valid=valid)
    return maps, scores, valid


def validation_metrics(model: PRN, val: ValidationSet, device: torch.device) -> dict[str, float]:
    """Every metric on the validation split (empty when there is none), padding excluded."""
    if len(val.labels) == 0:
        return {}
    maps, scores, valid = validation_predictions(model, val, device)
    return compute_metrics(val.labels, scores, val.masks, maps, valid=valid)


def validation_thresholds(model: PRN, val: ValidationSet, device: torch.device) -> Thresholds:
    """The decision thresholds of :mod:`prn_core.calibrate`, fitted on the validation split.

    Without a validation split with both normal and simulated anomalous images there is
    nothing honest to calibrate on: the thresholds are then ``None``, with a note saying why.
    """
    if len(val.labels) == 0 or val.labels.all() or not val.labels.any():
        note = ("no validation split to calibrate on (data.val_fraction holds out no image); "
                "pass --threshold to prn predict" if len(val.labels) == 0 else
                "the validation split lacks normal or anomalous images; pass --threshold")
        return Thresholds(None, None, None, None, note)
    maps, scores, valid = validation_predictions(model, val, device)
    return calibrate(val.labels, scores, val.masks, maps, valid)
