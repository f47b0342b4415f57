"""The training-free baseline: prototypical residuals scored directly, with no network trained.

Chapter 3 shows that the residual ``(F - P)^2`` of a frozen encoder against its nearest
prototype already localises many defects. Every trained PRN is reported beside this detector
(``prn demo``'s report, chapter 6's metric table), so a reader can see what training adds and a
model that has not learnt cannot pass unnoticed. The image score is the map's maximum.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .data import ImageCache, Sample
from .metrics import compute_metrics
from .models import Backbone, PrototypeBank
from .evaluation import EvalResult

__all__ = ["evaluate_residual_baseline", "residual_baseline_maps"]


@torch.no_grad()
def residual_baseline_maps(backbone: Backbone, bank: PrototypeBank, images: np.ndarray,
                           mode: str = "image", batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """Maps (N, H, W) and image scores (N,) of the training-free detector for (N, H, W, 3) images."""
    device = next(backbone.buffers()).device
    maps = []
    for start in range(0, len(images), batch_size):
        batch = torch.as_tensor(np.asarray(images[start : start + batch_size], np.float32))
        batch = batch.permute(0, 3, 1, 2).to(device)
        features = backbone(batch)[:3]
        maps.append(bank.residual_map(features, tuple(batch.shape[-2:]), mode).cpu().numpy())
    out = np.concatenate(maps) if maps else np.zeros((0,), np.float32)
    return out, out.reshape(len(out), -1).max(axis=1) if len(out) else np.zeros((0,), np.float32)


def evaluate_residual_baseline(backbone: Backbone, bank: PrototypeBank, samples: Sequence[Sample],
                               cache: ImageCache, mode: str = "image") -> EvalResult:
    """Every metric of the training-free detector on ``samples``, scored like a trained PRN."""
    images = np.stack([cache.image(s) for s in samples])
    maps, scores = residual_baseline_maps(backbone, bank, images, mode)
    labels = np.asarray([s.label for s in samples])
    masks = np.stack([cache.mask(s) for s in samples]).astype(np.uint8)
    valid = np.stack([cache.valid(s) for s in samples])
    region = None if valid.all() else valid
    metrics = compute_metrics(labels, scores, masks, maps, valid=region)
    return EvalResult(metrics, labels, scores, maps, masks, [str(s.path) for s in samples], region,
                      [s.defect_type for s in samples])
