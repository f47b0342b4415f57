"""A user's own images: folders of good and defective images, or a CSV list.

The way in for data that follows no public layout. A category is one of:

* a folder with ``good/`` and one or more defect folders (``defect/``, or ``scratch/``, ...)
  and optional masks in ``masks/`` (or ``masks/<defect>/``), matched by the image's stem
  (``<stem>.*`` or ``<stem>_mask.*``, any image extension)::

      <root>/<category>/good/*.png   <root>/<category>/defect/*.png   <root>/<category>/masks/*.png

* the same with an explicit split: ``train/good``, ``test/good``, ``test/<defect>``, ``masks/``;
* a CSV file ``<root>/<category>.csv`` (or ``root`` itself a ``.csv``) with a header row and
  columns ``image,label[,mask][,split][,defect_type]``. Paths are relative to the CSV's folder
  or absolute; ``label`` is 0/1 or good/normal/ok vs defect/anomaly/bad/ko/ng; ``mask`` and
  ``split`` (train/test) may be empty.

Masks are optional: a defective image without one keeps its image-level label, counts in the
image metrics, and is never drawn as a seen anomaly (there is no region to paste).

Without an explicit split, one is made deterministically: every defective image goes to
``test``, and a fraction :data:`FOLDER_TEST_FRACTION` of the normal images, chosen by the
SHA-256 of ``seed:<parent folder>/<file name>``. Hashing names (rather than permuting a list)
keeps the split stable when images are added (an image never changes side), and independent
of where the dataset is stored. For another fraction or seed, register a subclass::

    @register_format("folder30")
    class Folder30(FolderFormat):
        test_fraction = 0.3
"""
from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

from prn_core.data.formats import check_split, folders_where, images_in, mask_index, register_format
from prn_core.data.samples import DatasetLayoutError, Sample, check_sample

__all__ = ["FOLDER_TEST_FRACTION", "FOLDER_SPLIT_SEED", "FolderFormat", "list_folder_samples"]

FOLDER_TEST_FRACTION = 0.2
FOLDER_SPLIT_SEED = 0
GOOD, MASKS = "good", "masks"
_NORMAL_WORDS = {"0", "good", "normal", "ok"}
_DEFECT_WORDS = {"1", "defect", "defective", "anomaly", "anomalous", "bad", "ko", "ng"}


@dataclass
class _Row:
    image: Path
    label: int
    defect_type: str
    mask: Path | None
    split: str | None


def _is_dataset_dir(folder: Path) -> bool:
    return (folder / GOOD).is_dir() or (folder / "train" / GOOD).is_dir()


def _locate(root: Path, category: str) -> Path:
    """The category's folder or CSV file."""
    if root.is_file() and root.suffix.lower() == ".csv":
        return root
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist. Point DataConfig.root at a folder holding "
            f"<category>/good and <category>/defect, or at a CSV file (image,label,mask)."
        )
    if _is_dataset_dir(root / category) or (root / f"{category}.csv").is_file():
        return root / category if (root / category).is_dir() else root / f"{category}.csv"
    if root.name == category and _is_dataset_dir(root):
        return root
    raise DatasetLayoutError(
        f"category {category!r} not found under {root}: expected {root / category}/good (with defect "
        f"folders) or {root / category}.csv. Categories there: {FolderFormat().categories(root) or 'none'}."
    )


def _mask(masks: Path, defect_type: str, image: Path) -> Path | None:
    stem = image.stem.lower()
    for index in (mask_index(masks / defect_type), mask_index(masks)):
        for key in (stem, f"{stem}_mask"):
            if key in index:
                return index[key]
    return None


def _rows_from_dir(folder: Path) -> list[_Row]:
    not_masks = lambda p: p.name != MASKS  # noqa: E731
    if (folder / "train" / GOOD).is_dir():
        tests = folders_where(folder / "test", not_masks)
        parts = [(folder / "train" / GOOD, "train")] + [(folder / "test" / name, "test") for name in tests]
    else:
        parts = [(folder / n, None) for n in folders_where(folder, not_masks)]
    rows = []
    for sub, split in parts:
        label = int(sub.name != GOOD)
        for image in images_in(sub):
            mask = _mask(folder / MASKS, sub.name, image) if label else None
            rows.append(_Row(image, label, sub.name, mask, split))
    return rows


def _label(value: str, where: str) -> int:
    word = value.strip().lower()
    if word in _NORMAL_WORDS or word in _DEFECT_WORDS:
        return int(word in _DEFECT_WORDS)
    raise DatasetLayoutError(
        f"{where}: label {value!r} is neither normal ({sorted(_NORMAL_WORDS)}) nor defective ({sorted(_DEFECT_WORDS)})"
    )


def _rows_from_csv(path: Path) -> list[_Row]:
    base = path.parent
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        columns = [c.strip().lower() for c in reader.fieldnames or []]
        if "image" not in columns or "label" not in columns:
            raise DatasetLayoutError(
                f"{path} needs a header row with columns image,label[,mask][,split][,defect_type]; found {columns}"
            )
        records = [
            ({k.strip().lower(): (v or "").strip() for k, v in r.items() if k}, n) for n, r in enumerate(reader, 2)
        ]
    rows, seen = [], set()
    for record, line in records:
        where = f"{path} line {line}"
        image = base / record["image"]
        if not image.is_file():
            raise DatasetLayoutError(f"{where}: image {image} does not exist")
        if image in seen:
            raise DatasetLayoutError(f"{where}: image {image} is listed twice")
        seen.add(image)
        label = _label(record["label"], where)
        mask = base / record["mask"] if record.get("mask") else None
        if mask is not None and not label:
            raise DatasetLayoutError(f"{where}: {image.name} is labelled normal but has a mask; leave its mask empty")
        if mask is not None and not mask.is_file():
            raise DatasetLayoutError(f"{where}: mask {mask} does not exist (leave the column empty if there is none)")
        split = record.get("split") or None
        if split not in (None, "train", "test") or (split == "train" and label):
            raise DatasetLayoutError(
                f"{where}: split {split!r} for a {'defective' if label else 'normal'} image; use train or test, "
                f"and train only for normal images"
            )
        rows.append(_Row(image, label, record.get("defect_type") or ("defect" if label else GOOD), mask, split))
    return rows


def _assign_splits(rows: list[_Row], test_fraction: float, seed: int) -> None:
    """Give every row without a split one: defects to test, the normals with the smallest
    ``sha256(seed:parent/name)`` to test, the rest to train (at least one stays in train)."""
    for row in rows:
        if row.split is None and row.label:
            row.split = "test"
    free = [r for r in rows if r.split is None]

    def key(row: _Row) -> str:
        return hashlib.sha256(f"{seed}:{row.image.parent.name}/{row.image.name}".encode()).hexdigest()

    n_test = min(round(test_fraction * len(free)), len(free) - 1)
    for i, row in enumerate(sorted(free, key=key)):
        row.split = "test" if i < n_test else "train"


def list_folder_samples(
    root: str | Path,
    category: str,
    split: str,
    test_fraction: float = FOLDER_TEST_FRACTION,
    seed: int = FOLDER_SPLIT_SEED,
) -> list[Sample]:
    """List a split of a folder or CSV category (see the module docstring for the layouts)."""
    check_split(split)
    source = _locate(Path(root).expanduser(), category)
    rows = _rows_from_csv(source) if source.is_file() else _rows_from_dir(source)
    _assign_splits(rows, test_fraction, seed)
    samples = [
        check_sample(Sample(r.image, r.label, r.defect_type, r.mask, split))
        for r in sorted(rows, key=lambda r: (r.defect_type, r.image.name))
        if r.split == split
    ]
    if not samples:
        raise DatasetLayoutError(
            f"no {split} images in {source}: it needs normal images in {GOOD}/ (or CSV rows with label 0)"
        )
    return samples


@register_format("folder")
class FolderFormat:
    """Good/defect folders or a CSV list; a deterministic split when none is given."""

    name = "folder"
    test_fraction = FOLDER_TEST_FRACTION
    seed = FOLDER_SPLIT_SEED

    def categories(self, root: str | Path) -> list[str]:
        root = Path(root).expanduser()
        if root.is_file():
            return [root.stem] if root.suffix.lower() == ".csv" else []
        if _is_dataset_dir(root):
            return [root.name]
        csvs = [p.stem for p in root.glob("*.csv") if p.is_file()] if root.is_dir() else []
        return sorted(folders_where(root, _is_dataset_dir) + csvs)

    def list_samples(self, root: str | Path, category: str, split: str) -> list[Sample]:
        return list_folder_samples(root, category, split, self.test_fraction, self.seed)
