"""DAGM 2007: ten synthetic greyscale textures with weakly labelled defects (Wieler & Hahn, 2007).

Layout of one class::

    <root>/Class<k>/Train/NNNN.PNG
    <root>/Class<k>/Train/Label/NNNN_label.PNG     one mask per defective image
    <root>/Class<k>/Train/Label/Labels.txt         optional: id, label, image, [flag], [mask]
    <root>/Class<k>/Test/...                       the same

The masks are *weak*: ellipses drawn around each defect, larger than the defect itself, so
pixel-level metrics on DAGM overstate the error of a precise segmentation. When ``Labels.txt``
is present it decides the label and must agree with the ``Label/`` folder (a defective entry
without its mask, or a mask for a normal entry, is an error); without it, an image is defective
iff its mask exists. Masks are matched by ``<stem>_label`` with any image extension and case.

As for KolektorSDD2, the defective *training* images are not listed: ``train`` holds the
normal images of ``Train/``, ``test`` all images of ``Test/``. Images are 512x512 greyscale and
are read as RGB like every other image. ``defect_type`` is ``"defect"`` (one kind per class).

Download: one archive per class from Zenodo (:data:`DAGM_URLS`, record 8086136, a re-upload of
the competition data once hosted by the University of Heidelberg). No checksums are recorded
here, so the extraction is verified by counts: 1150 images per class for Class1-6 and 2300 for
Class7-10, with the per-split defective counts of :data:`DAGM_COUNTS`. Licence: the terms
on the Zenodo record apply; the original page allowed free research use. Check before
redistributing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

from prn_core.data.download import download_and_extract
from prn_core.data.formats import (
    CategoryFolders,
    check_split,
    images_in,
    locate_extracted,
    mask_index,
    register_format,
)
from prn_core.data.images import cache_subdir
from prn_core.data.mvtec import category_dir
from prn_core.data.samples import DatasetLayoutError, Sample, check_sample

__all__ = [
    "DAGM_CATEGORIES",
    "DAGM_URLS",
    "DAGM_COUNTS",
    "DAGMFormat",
    "list_dagm_samples",
    "download_dagm",
]

DAGM_CATEGORIES: tuple[str, ...] = tuple(f"Class{k}" for k in range(1, 11))
DAGM_URLS: dict[str, str] = {c: f"https://zenodo.org/records/8086136/files/{c}.zip" for c in DAGM_CATEGORIES}
# (images in Train + Test, defective in Train, defective in Test) per class: the totals from the
# dataset page (1000 + 150 per development class, 2000 + 300 per competition class), the
# defective split from NVIDIA's DAGM preprocessing (DeepLearningExamples, UNet_Industrial)
_DEFECTIVE = ((79, 71), (66, 84), (66, 84), (82, 68), (70, 80), (83, 67)) + ((150, 150),) * 4
DAGM_COUNTS: dict[str, tuple[int, int, int]] = {
    c: (1150 if k < 6 else 2300, *_DEFECTIVE[k]) for k, c in enumerate(DAGM_CATEGORIES)
}
_FOLDERS = {"train": "Train", "test": "Test"}
_LABEL = "_label"


def _read_labels_txt(path: Path) -> dict[str, tuple[int, str | None]]:
    """image name (lower case) -> (label, mask name or None). Rows with fewer than three fields
    (the count line at the top) are skipped."""
    entries: dict[str, tuple[int, str | None]] = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        fields = line.split()
        if len(fields) < 3:
            continue
        if fields[1] not in ("0", "1"):
            raise DatasetLayoutError(f"{path} line {number}: label must be 0 or 1, got {fields[1]!r} in {line!r}")
        mask = fields[-1] if len(fields) >= 5 else None
        entries[fields[2].lower()] = (int(fields[1]), mask)
    return entries


def _scan(folder: Path) -> list[Sample]:
    """Every image of a ``Train``/``Test`` folder with its label and mask, cross-checked."""
    split = "train" if folder.name == "Train" else "test"
    label_dir = folder / "Label"
    masks = mask_index(label_dir)
    labels_txt = next((p for p in (label_dir / "Labels.txt", folder / "Labels.txt") if p.is_file()), None)
    listed = _read_labels_txt(labels_txt) if labels_txt else None
    samples = []
    for image in images_in(folder):
        mask = masks.get(f"{image.stem.lower()}{_LABEL}")
        if listed is None:
            label = int(mask is not None)
        else:
            if image.name.lower() not in listed:
                raise DatasetLayoutError(f"{image} is not listed in {labels_txt}; the copy is incomplete or mixed.")
            label, mask_name = listed[image.name.lower()]
            if mask_name is not None and mask is None:
                mask = masks.get(Path(mask_name).stem.lower())
            if label and mask is None:
                raise DatasetLayoutError(
                    f"{labels_txt} marks {image.name} defective but {label_dir} has no mask "
                    f"{image.stem}{_LABEL}.PNG. Restore the mask from the original archive."
                )
            if not label and mask is not None:
                raise DatasetLayoutError(
                    f"{labels_txt} marks {image.name} normal but {mask} exists; the labels and masks disagree."
                )
        samples.append(check_sample(Sample(image, label, "defect" if label else "good", mask, split)))
    return samples


def list_dagm_samples(root: str | Path, category: str, split: str) -> list[Sample]:
    """``train``: normal images of ``Train/``; ``test``: every image of ``Test/``."""
    check_split(split)
    folder = category_dir(root, category) / _FOLDERS[split]
    if not folder.is_dir():
        raise DatasetLayoutError(
            f"missing folder {folder}: a DAGM class holds Train/ and Test/ (with Label/ masks). "
            f"Is {folder.parent} a DAGM class folder (Class1 ... Class10)?"
        )
    samples = [s for s in _scan(folder) if split == "test" or s.label == 0]
    if not samples:
        raise DatasetLayoutError(f"no images found under {folder} for DAGM {category!r}")
    return samples


@register_format("dagm")
class DAGMFormat(CategoryFolders):
    """DAGM 2007 classes ``Class1``-``Class10`` (``Train``/``Test`` with ``Label/`` masks)."""

    list_samples = staticmethod(list_dagm_samples)

    def is_category(self, folder: Path) -> bool:
        return (folder / "Train").is_dir() or (folder / "Test").is_dir()

    def category_key(self, name: str) -> tuple:
        return (len(name), name)  # Class2 before Class10


def download_dagm(
    cache_dir: str | Path | None = None,
    categories: Iterable[str] = DAGM_CATEGORIES,
    urls: dict[str, str] = DAGM_URLS,
    counts: dict[str, tuple[int, int, int]] = DAGM_COUNTS,
) -> Path:
    """Fetch DAGM classes into ``cache_dir`` (default ``default_cache_dir() / "dagm"``) and return
    the folder holding ``Class<k>/``: the ``DataConfig.root`` for format ``dagm``.

    Each class is checked after extraction against ``counts``: (images in Train + Test,
    defective in Train, defective in Test).
    """
    dest = cache_subdir(cache_dir, "dagm")
    wanted = list(categories)
    unknown = sorted(set(wanted) - set(DAGM_CATEGORIES))
    if unknown or not wanted:
        raise ValueError(f"DAGM classes to download must come from {DAGM_CATEGORIES}; got {wanted}")
    root = dest
    for category in wanted:
        download_and_extract(urls[category], None, dest)
        root = locate_extracted(dest, lambda p: (p / category / "Train").is_dir(), f"DAGM {category}")
        train, test = (_scan(root / category / folder) for folder in ("Train", "Test"))
        found = (len(train) + len(test), sum(s.label for s in train), sum(s.label for s in test))
        if found != counts[category]:
            raise ValueError(
                f"DAGM {category} under {root} has (images, defective in Train, defective in Test) = "
                f"{found} after download, expected {counts[category]}. Delete {root / category} and retry."
            )
    return root
