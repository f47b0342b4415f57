"""The training-free residual detector: known answers on prototypes that are the images."""
from __future__ import annotations

import numpy as np
import torch

from prn_core.baseline import residual_baseline_maps
from prn_core.models import build_backbone, fit_prototypes


def _images(n: int, size: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)


def test_zero_on_the_prototypes_themselves_and_positive_elsewhere():
    backbone = build_backbone("resnet18", "random")
    train = _images(3)
    # K = N: every training image is its own K-means centre, so its residual is exactly zero.
    bank = fit_prototypes(backbone, [torch.from_numpy(train).permute(0, 3, 1, 2)], ratio=1.0, progress=False)
    maps, scores = residual_baseline_maps(backbone, bank, train)
    assert maps.shape == (3, 64, 64) and scores.shape == (3,)
    np.testing.assert_allclose(maps, 0.0, atol=1e-5)
    other_maps, other_scores = residual_baseline_maps(backbone, bank, _images(2, seed=1))
    assert (other_scores > 1e-3).all()
    np.testing.assert_allclose(other_scores, other_maps.reshape(2, -1).max(1))


def test_a_local_change_is_brightest_where_it_happened():
    backbone = build_backbone("resnet18", "random")
    train = np.full((2, 64, 64, 3), 0.5, np.float32)
    bank = fit_prototypes(backbone, [torch.from_numpy(train).permute(0, 3, 1, 2)], ratio=0.5, progress=False)
    defect = train[:1].copy()
    defect[0, 40:56, 40:56] = 1.0
    maps, _ = residual_baseline_maps(backbone, bank, defect)
    y, x = np.unravel_index(maps[0].argmax(), maps[0].shape)
    assert 32 <= y < 64 and 32 <= x < 64
