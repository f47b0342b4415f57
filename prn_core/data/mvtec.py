"""MVTec AD layout: the category list, listing and validation, registered as format ``mvtec``.

A dataset root holds one folder per category laid out as MVTec AD::

    <root>/<category>/train/good/*.png
    <root>/<category>/test/good/*.png
    <root>/<category>/test/<defect>/<name>.png
    <root>/<category>/ground_truth/<defect>/<name>_mask.png

Any category folder that follows this layout can be used (the demo data and the magnetic-tile
set have their own names); :data:`CATEGORIES` lists the 15 MVTec AD ones. Layout problems
raise :class:`~prn_core.data.samples.DatasetLayoutError` naming the offending path when the
samples are *listed*, not minutes later inside a training loop.
May import: samples, images and the format registry of :mod:`prn_core.data`.
"""
from __future__ import annotations

from pathlib import Path

from prn_core.data.formats import register_format
from prn_core.data.images import IMAGE_EXTENSIONS, is_image_file
from prn_core.data.samples import GOOD, SPLITS, DatasetLayoutError, Sample, check_sample

__all__ = [
    "CATEGORIES",
    "TEXTURE_CATEGORIES",
    "OBJECT_CATEGORIES",
    "category_dir",
    "list_categories",
    "list_samples",
    "MVTecFormat",
]

CATEGORIES: tuple[str, ...] = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)  # fmt: skip
TEXTURE_CATEGORIES: tuple[str, ...] = ("carpet", "grid", "leather", "tile", "wood")
OBJECT_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if c not in TEXTURE_CATEGORIES)
def list_categories(root: str | Path) -> list[str]:
    """Sorted names of the folders under ``root`` that hold a ``train/`` or ``test/`` folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "train").is_dir() or (p / "test").is_dir())


def category_dir(root: str | Path, category: str) -> Path:
    """``root/category``, or an error that lists the categories that *are* under ``root``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist. Point --data-root (DataConfig.root) at a folder "
            f"holding <category>/train, <category>/test and <category>/ground_truth, fetch MVTec AD "
            f"with prn_core.data.download_mvtec, or use the demo data (make_demo_dataset)."
        )
    path = root / category
    if not path.is_dir():
        found = list_categories(root)
        hint = " Download it with prn_core.data.download_mvtec." if category in CATEGORIES else ""
        raise DatasetLayoutError(
            f"category {category!r} not found: {path} is not a folder. Categories under {root}: "
            f"{found or 'none'}.{hint}"
        )
    return path


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if is_image_file(p))


def _mask_for(gt_dir: Path, image: Path) -> Path:
    for ext in IMAGE_EXTENSIONS:
        candidate = gt_dir / f"{image.stem}_mask{ext}"
        if candidate.is_file():
            return candidate
    raise DatasetLayoutError(
        f"defect image {image} has no mask: expected {gt_dir / (image.stem + '_mask.png')}. "
        f"Add the mask, or move the image to test/{GOOD} if it is normal."
    )


def list_samples(root: str | Path, category: str, split: str) -> list[Sample]:
    """List a split of a category, sorted by defect type then file name.

    ``train`` lists ``train/good`` only. ``test`` lists every folder of ``test/``; ``good`` is
    label 0, every other folder is a defect type (label 1) whose masks live in
    ``ground_truth/<defect>/<name>_mask.<ext>``. Every file is checked cheaply (header, end
    marker, mask size), so a broken dataset fails here with the path of the bad file.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    cat = category_dir(root, category)
    split_dir = cat / split
    if not split_dir.is_dir():
        raise DatasetLayoutError(f"missing split folder {split_dir} for category {category!r}")
    if split == "train":
        folders = [split_dir / GOOD]
        if not folders[0].is_dir():
            raise DatasetLayoutError(f"missing folder {folders[0]}: the normal training images go there")
    else:
        folders = sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    samples: list[Sample] = []
    for folder in folders:
        defect = folder.name
        for image in _images_in(folder):
            mask = _mask_for(cat / "ground_truth" / defect, image) if defect != GOOD else None
            samples.append(check_sample(Sample(image, int(defect != GOOD), defect, mask, split)))
    if not samples:
        raise DatasetLayoutError(
            f"no images ({', '.join(IMAGE_EXTENSIONS)}) found under {split_dir} for category {category!r}"
        )
    return samples


@register_format("mvtec")
class MVTecFormat:
    """MVTec AD: ``<category>/{train/good, test/<defect>, ground_truth/<defect>/<name>_mask.png}``."""

    name = "mvtec"
    categories = staticmethod(list_categories)
    list_samples = staticmethod(list_samples)
