"""Image-size defaults from the data's own statistics, not from a hand-tuned per-dataset table.

Industrial parts are often long and thin (KolektorSDD2 is about 230x630; magnetic tiles vary).
Squashing them to a square distorts defects; ``image_size="auto"`` instead keeps the median
aspect ratio of the training images at the pixel budget of the profile's square size, rounded
to multiples of 32 (the encoder's total stride).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

from prn_core.data.images import image_size_of
from prn_core.data.samples import Sample

__all__ = ["image_shape_stats", "suggest_image_size"]

MIN_SIDE, MAX_SIDE, MULTIPLE = 128, 512, 32


def image_shape_stats(samples: Sequence[Sample]) -> dict[str, float]:
    """Median height, width and aspect ratio (H / W) read from the file headers."""
    if not samples:
        raise ValueError("no images to measure: the training split is empty")
    shapes = np.array([image_size_of(s.path) for s in samples], dtype=np.float64)
    aspect = shapes[:, 0] / shapes[:, 1]
    return {"median_height": float(np.median(shapes[:, 0])), "median_width": float(np.median(shapes[:, 1])),
            "median_aspect": float(np.median(aspect)), "min_aspect": float(aspect.min()),
            "max_aspect": float(aspect.max()), "count": len(samples)}


def suggest_image_size(samples: Sequence[Sample], budget: tuple[int, int] = (256, 256)) -> tuple[int, int]:
    """(H, W) with the median aspect ratio and about ``budget``'s pixel count.

    >>> from pathlib import Path
    >>> import cv2, numpy as np, tempfile
    >>> d = Path(tempfile.mkdtemp()); _ = cv2.imwrite(str(d / "a.png"), np.zeros((230, 630), np.uint8))
    >>> suggest_image_size([Sample(d / "a.png", 0, "good", None, "train")])
    (160, 416)
    """
    aspect = image_shape_stats(samples)["median_aspect"]
    area = budget[0] * budget[1]

    def snap(x: float) -> int:
        return int(min(MAX_SIDE, max(MIN_SIDE, round(x / MULTIPLE) * MULTIPLE)))

    return snap(math.sqrt(area * aspect)), snap(math.sqrt(area / aspect))
