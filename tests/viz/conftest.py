"""Fixtures of the figure tests: one torch thread, and the predictions of a toy test set."""
from __future__ import annotations

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture()
def predictions():
    """6 images of 16x16: 3 normal, 3 with a 4x4 defect that the maps find more or less well.

    Returns ``images, maps, masks, scores, labels``.
    """
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1, 1])
    masks = np.zeros((6, 16, 16), np.uint8)
    masks[3:, 4:8, 4:8] = 1
    maps = rng.uniform(0.0, 0.3, (6, 16, 16)).astype(np.float32)
    maps[3:, 4:8, 4:8] += np.array([0.6, 0.4, 0.1], np.float32)[:, None, None]
    scores = np.array([0.1, 0.2, 0.45, 0.9, 0.5, 0.3])
    images = rng.uniform(0, 1, (6, 16, 16, 3)).astype(np.float32)
    return images, maps, masks, scores, labels
