"""A small MVTec-layout category written into a folder, for the data tests (not a test module)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

__all__ = ["H", "W", "make_tree", "write_image", "random_image"]

H, W = 40, 48


def write_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def random_image(rng: np.random.Generator, grey: bool = False) -> np.ndarray:
    shape = (H, W) if grey else (H, W, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def make_tree(
    root: Path,
    category: str = "widget",
    n_train: int = 10,
    n_good: int = 3,
    defects: dict[str, int] | None = None,
    ext: str = ".png",
    grey: bool = False,
    empty_masks: int = 0,
) -> Path:
    """A small MVTec-layout category; the first ``empty_masks`` images of each defect type get
    an all-zero mask."""
    rng = np.random.default_rng(0)
    defects = {"scratch": 4, "dent": 3, "hole": 2} if defects is None else defects
    cat = root / category
    for i in range(n_train):
        write_image(cat / "train" / "good" / f"{i:03d}{ext}", random_image(rng, grey))
    for i in range(n_good):
        write_image(cat / "test" / "good" / f"{i:03d}{ext}", random_image(rng, grey))
    for defect, n in defects.items():
        for i in range(n):
            write_image(cat / "test" / defect / f"{i:03d}{ext}", random_image(rng, grey))
            mask = np.zeros((H, W), np.uint8)
            if i >= empty_masks:
                mask[5 + i : 15 + i, 10:20] = 255
            write_image(cat / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
    return root
