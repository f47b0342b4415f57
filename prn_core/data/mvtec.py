"""MVTec AD layout: listing, validation, the few-shot split and a torch Dataset.

A dataset root holds one folder per category laid out as MVTec AD::

    <root>/<category>/train/good/*.png
    <root>/<category>/test/good/*.png
    <root>/<category>/test/<defect>/<name>.png
    <root>/<category>/ground_truth/<defect>/<name>_mask.png

Any category folder that follows this layout can be used (the demo data and the magnetic-tile
set have their own names); :data:`CATEGORIES` lists the 15 MVTec AD ones. Layout problems
raise :class:`DatasetLayoutError` naming the offending path when the samples are *listed*,
not minutes later inside a training loop.

The few-shot protocol (DESIGN section 4) follows DRA and BGAD: ``num_seen`` real anomalies are
drawn from the test defect folders, spread over defect types, and removed from the test set.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from prn_core.data.images import (
    IMAGE_EXTENSIONS,
    check_complete,
    image_size_of,
    is_image_file,
    read_image,
    read_mask,
    resize_image,
    resize_mask,
    valid_region,
)

__all__ = [
    "CATEGORIES",
    "TEXTURE_CATEGORIES",
    "OBJECT_CATEGORIES",
    "SPLITS",
    "DatasetLayoutError",
    "Sample",
    "category_dir",
    "list_categories",
    "check_sample",
    "list_samples",
    "ImageCache",
    "FewShotSplit",
    "few_shot_split",
    "MVTecDataset",
]

CATEGORIES: tuple[str, ...] = (
    "bottle", "cable", "capsule", "carpet", "grid", "hazelnut", "leather", "metal_nut",
    "pill", "screw", "tile", "toothbrush", "transistor", "wood", "zipper",
)  # fmt: skip
TEXTURE_CATEGORIES: tuple[str, ...] = ("carpet", "grid", "leather", "tile", "wood")
OBJECT_CATEGORIES: tuple[str, ...] = tuple(c for c in CATEGORIES if c not in TEXTURE_CATEGORIES)
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


class ImageCache:
    """Decode and resize each file once; keep uint8 copies in memory.

    ``.image`` -> float32 (H, W, 3) in [0, 1], ``.mask`` -> uint8 (H, W) in {0, 1} (zeros for a
    normal sample), ``.valid`` -> bool (H, W), False only on ``keep_aspect`` padding.
    A real category at 256x256 is about 200 KB per image, so whole splits fit comfortably.
    """

    def __init__(self, image_size: tuple[int, int], keep_aspect: bool = False) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.keep_aspect = keep_aspect
        self._images: dict[Path, np.ndarray] = {}
        self._masks: dict[Path, np.ndarray] = {}
        self._source_hw: dict[Path, tuple[int, int]] = {}

    def _source(self, path: Path) -> tuple[int, int]:
        if path not in self._source_hw:
            self._source_hw[path] = image_size_of(path)
        return self._source_hw[path]

    def image(self, sample: Sample) -> np.ndarray:
        if sample.path not in self._images:
            raw = read_image(sample.path)
            self._source_hw[sample.path] = raw.shape[:2]
            self._images[sample.path] = resize_image(raw, self.image_size, self.keep_aspect)
        return self._images[sample.path].astype(np.float32) / 255.0

    def mask(self, sample: Sample) -> np.ndarray:
        if sample.mask_path is None:
            return np.zeros(self.image_size, dtype=np.uint8)
        if sample.mask_path not in self._masks:
            self._masks[sample.mask_path] = resize_mask(read_mask(sample.mask_path), self.image_size, self.keep_aspect)
        return self._masks[sample.mask_path].copy()

    def valid(self, sample: Sample) -> np.ndarray:
        if not self.keep_aspect:
            return np.ones(self.image_size, dtype=bool)
        return valid_region(self._source(sample.path), self.image_size, keep_aspect=True)


@dataclass
class FewShotSplit:
    """The samples of one run. ``seen`` are the real anomalies shown in training.

    ``test`` excludes ``seen`` unless ``leaky`` (the unofficial protocol). ``val`` holds normal
    training images kept out of ``train`` for model selection. :meth:`to_dict` is the record
    that results cite.
    """

    train: list[Sample]
    val: list[Sample]
    seen: list[Sample]
    test: list[Sample]
    seed: int
    leaky: bool
    category: str = ""
    root: Path | None = None
    num_seen: int = 0
    val_fraction: float = 0.0
    format: str = "mvtec"

    def _rel(self, samples: list[Sample]) -> list[str]:
        """Paths relative to ``root/category``, else to ``root``, else absolute (a CSV may list
        files anywhere)."""
        bases = [self.root / self.category, self.root] if self.root is not None else []
        out = []
        for s in samples:
            base = next((b for b in bases if s.path.is_relative_to(b)), None)
            out.append(s.path.relative_to(base).as_posix() if base else str(s.path))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: settings, counts and the relative file list of every part.

        ``format`` is recorded only when it is not ``"mvtec"``, so MVTec records and
        fingerprints are the same as before the other formats existed.
        """
        parts = {name: getattr(self, name) for name in ("train", "val", "seen", "test")}
        record = {
            "root": str(self.root) if self.root is not None else None,
            "category": self.category,
            "seed": self.seed,
            "leaky": self.leaky,
            "num_seen": self.num_seen,
            "val_fraction": self.val_fraction,
            "counts": {k: len(v) for k, v in parts.items()}
            | {
                "test_good": sum(s.label == 0 for s in self.test),
                "test_defective": sum(s.label == 1 for s in self.test),
            },
            "files": {k: self._rel(v) for k, v in parts.items()},
        }
        return record if self.format == "mvtec" else record | {"format": self.format}

    def fingerprint(self) -> str:
        """Short sha256 of the file lists and settings: equal splits give equal fingerprints."""
        record = self.to_dict()
        record.pop("root")
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _pick_seen(defective: list[Sample], num_seen: int, rng: np.random.Generator) -> list[Sample]:
    """Round-robin over defect types (in a random order), a random image of each per round."""
    by_type: dict[str, list[Sample]] = {}
    for s in defective:
        by_type.setdefault(s.defect_type, []).append(s)
    queues = {t: [v[i] for i in rng.permutation(len(v))] for t, v in sorted(by_type.items())}
    order = [sorted(queues)[i] for i in rng.permutation(len(queues))]
    picked: list[Sample] = []
    while len(picked) < num_seen:
        for t in order:
            if queues[t] and len(picked) < num_seen:
                picked.append(queues[t].pop())
    return sorted(picked, key=lambda s: (s.defect_type, s.path.name))


def few_shot_split(
    root: str | Path,
    category: str,
    num_seen: int = 10,
    seed: int = 0,
    leaky: bool = False,
    val_fraction: float = 0.1,
    format: str = "mvtec",
) -> FewShotSplit:
    """Split a category for the few-shot protocol, deterministically from ``seed``.

    * ``seen``: ``num_seen`` defective test images, spread round-robin over defect types, removed
      from ``test`` unless ``leaky``.
    * ``val``: ``round(val_fraction * N)`` normal training images (at least one when
      ``val_fraction > 0`` and N >= 5), removed from ``train``.

    Defective images whose mask is empty (the magnetic-tile set has four) stay in ``test`` as
    label 1, so image-level metrics see them as the dataset labels them, but they are never
    drawn as seen anomalies: pasting an empty region would teach the model nothing and the
    "extended" copies would be normal images labelled anomalous. The val and seen draws use
    independent streams of the seed, so changing ``num_seen`` leaves ``val`` unchanged.

    ``format`` names the folder layout (see :mod:`prn_core.data.formats`: ``mvtec``, ``btad``,
    ``kolektorsdd2``, ``dagm``, ``folder``). Defective images without a mask (allowed by the
    ``folder`` format) are test-only, like those with an empty mask.
    """
    from prn_core.data.formats import get_format  # formats imports this module

    lister = get_format(format).list_samples
    if num_seen < 0:
        raise ValueError(f"num_seen must be >= 0, got {num_seen}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    train_all = lister(root, category, "train")
    test_all = lister(root, category, "test")
    val_rng, seen_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    n_val = round(val_fraction * len(train_all))
    if val_fraction > 0 and len(train_all) >= 5:
        n_val = max(1, n_val)
    n_val = min(n_val, len(train_all) - 1)
    val_idx = set(val_rng.permutation(len(train_all))[:n_val].tolist())
    train = [s for i, s in enumerate(train_all) if i not in val_idx]
    val = [s for i, s in enumerate(train_all) if i in val_idx]

    eligible = [s for s in test_all if s.label == 1 and s.mask_path is not None and read_mask(s.mask_path).any()]
    if num_seen > len(eligible):
        raise ValueError(
            f"num_seen={num_seen} but category {category!r} has only {len(eligible)} defective test "
            f"images with a non-empty mask; lower data.num_seen."
        )
    seen = _pick_seen(eligible, num_seen, seen_rng)
    seen_paths = {s.path for s in seen}
    test = test_all if leaky else [s for s in test_all if s.path not in seen_paths]
    return FewShotSplit(
        train=train, val=val, seen=seen, test=test, seed=seed, leaky=leaky, category=category,
        root=Path(root).expanduser(), num_seen=num_seen, val_fraction=val_fraction, format=format,
    )  # fmt: skip


class MVTecDataset(Dataset):
    """Samples as tensors: ``image`` (3, H, W) float in [0, 1], ``mask`` (1, H, W) float {0, 1},
    ``valid`` (1, H, W) bool, ``label`` int, ``path`` str, ``defect_type`` str.

    Pass a shared :class:`ImageCache` so train, val and test never decode a file twice.
    """

    def __init__(self, samples: list[Sample], image_size: tuple[int, int], cache: ImageCache | None = None) -> None:
        image_size = (int(image_size[0]), int(image_size[1]))
        if cache is not None and cache.image_size != image_size:
            raise ValueError(f"cache image_size {cache.image_size} differs from dataset image_size {image_size}")
        self.samples = list(samples)
        self.image_size = image_size
        self.cache = cache if cache is not None else ImageCache(image_size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        return {
            "image": torch.from_numpy(self.cache.image(s)).permute(2, 0, 1).contiguous(),  # (3, H, W)
            "mask": torch.from_numpy(self.cache.mask(s)).float()[None],  # (1, H, W)
            "valid": torch.from_numpy(self.cache.valid(s))[None],  # (1, H, W)
            "label": s.label,
            "path": str(s.path),
            "defect_type": s.defect_type,
        }
