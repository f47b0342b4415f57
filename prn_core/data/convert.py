"""Write any dataset's samples in the plain folder layout of :mod:`prn_core.data.folder`.

The folder layout is how a user's own images come in. Converting a public dataset (or the demo
data) into it gives a known-good example to compare one's own folders against, and, with
``image_size``, a resized copy, e.g. long and thin parts to try ``image_size="auto"`` and
``keep_aspect`` on. The written layout::

    <dest>/good/<split>_<stem>.png            every normal image (train and test)
    <dest>/<defect>/<defect type>_<stem>.png  every defective image; <defect> is ``defect_folder``
    <dest>/masks/<defect type>_<stem>.png     its mask, where the sample has one

Names carry the source split or defect type because MVTec-style datasets reuse file names
(``000.png``) in every folder. The folder format re-splits the normal images itself.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from prn_core.atomic import write_image_atomic
from prn_core.data.images import read_image, read_mask, resize_image, resize_mask
from prn_core.data.samples import Sample

__all__ = ["write_folder_dataset"]


def _write_png(path: Path, array: np.ndarray) -> None:
    """uint8 (H, W, 3) RGB or (H, W) -> PNG (cv2 wants BGR)."""
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    write_image_atomic(path, array)


def write_folder_dataset(
    samples: Sequence[Sample],
    dest: str | Path,
    image_size: tuple[int, int] | None = None,
    defect_folder: str | None = "defect",
) -> Path:
    """Copy ``samples`` into ``dest`` in the folder layout; returns ``dest``.

    Args:
        samples: normal and defective samples (any format's ``list_samples`` output).
        dest: the category folder to create (``<root>/<category>``); must not exist yet, so that
            stale files from an earlier conversion never mix in.
        image_size: (H, W) to squash every image and mask to (as the training pipeline resizes:
            masks stay binary and never lose a small defect); None keeps the original size.
        defect_folder: one folder for every defect (``defect/``), or None for one folder per
            defect type (``crack/``, ``scratch/``, ...).
    """
    dest = Path(dest)
    if dest.exists():
        raise FileExistsError(f"{dest} already exists; remove it or choose another destination")
    if not samples:
        raise ValueError("no samples to write; pass a non-empty list (e.g. from list_samples)")
    for s in samples:
        name = f"{s.defect_type}_{s.path.stem}" if s.label else f"{s.split}_{s.path.stem}"
        folder = dest / ("good" if not s.label else defect_folder or s.defect_type)
        folder.mkdir(parents=True, exist_ok=True)
        image = read_image(s.path)  # uint8 (H, W, 3) RGB
        if image_size is not None:
            image = resize_image(image, image_size)
        _write_png(folder / f"{name}.png", image)
        if s.label and s.mask_path is not None:
            mask = read_mask(s.mask_path)  # uint8 (H, W) in {0, 1}
            if image_size is not None:
                mask = resize_mask(mask, image_size)
            (dest / "masks").mkdir(exist_ok=True)
            _write_png(dest / "masks" / f"{name}.png", mask * 255)
    return dest
