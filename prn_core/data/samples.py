"""What every dataset format produces: :class:`Sample` records, checked when they are listed.

A sample is one image file with its label, defect type and mask file. Formats (MVTec AD, BTAD,
KolektorSDD2, DAGM, folders) differ only in how they find these files; the checks here run at
listing time for all of them, so a broken file fails with its path before any training starts.
May import: :mod:`prn_core.data.images` only.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from prn_core.data.images import check_complete, image_size_of

__all__ = ["SPLITS", "GOOD", "DatasetLayoutError", "Sample", "check_sample"]

SPLITS = ("train", "test")
GOOD = "good"


class DatasetLayoutError(ValueError):
    """The folder tree does not follow the MVTec AD layout; the message names the path."""


@dataclass(frozen=True)
class Sample:
    """One image of a category: ``label`` 0 normal / 1 defective, ``mask_path`` None for normals."""

    path: Path
    label: int
    defect_type: str
    mask_path: Path | None
    split: str


def _check_pair(image: Path, mask: Path) -> None:
    image_hw, mask_hw = image_size_of(image), image_size_of(mask)
    if image_hw != mask_hw:
        raise DatasetLayoutError(
            f"mask {mask} is {mask_hw[0]}x{mask_hw[1]} but its image {image} is "
            f"{image_hw[0]}x{image_hw[1]} (HxW); a mask must have its image's size."
        )


def check_sample(sample: Sample) -> Sample:
    """Cheap checks of a sample's files (end marker, header, mask size); returns the sample.

    Every dataset format runs this at listing time, so a broken file fails with its path there.
    """
    check_complete(sample.path)
    if sample.mask_path is None:
        image_size_of(sample.path)
    else:
        check_complete(sample.mask_path)
        _check_pair(sample.path, sample.mask_path)
    return sample
