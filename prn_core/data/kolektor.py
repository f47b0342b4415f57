"""KolektorSDD2: surface defects on electrical commutators (Božič et al., 2021).

Layout::

    <root>/train/<id>.png  <root>/train/<id>_GT.png
    <root>/test/<id>.png   <root>/test/<id>_GT.png

Every image has a ``_GT`` mask; an image is defective iff its mask has a positive pixel (so the
masks are read once at listing time, about a second for the whole set). Images are about
230x630 (H x W) and vary slightly in size; pass ``keep_aspect`` to avoid squashing them.

The set has no category folders. The root *is* the single category, named
:data:`KSDD2_CATEGORY` (``"kolektorsdd2"``); a root holding a folder with the KSDD2 layout can
instead name that folder as the category. Because the few-shot protocol trains on normal images
only, the 246 defective *training* images are not listed at all: ``train`` is the 2085 normal
training images, ``test`` the official test set (894 normal, 110 defective), from which
``few_shot_split`` draws the seen anomalies.

Download: ``https://go.vicos.si/kolektorsdd2`` (redirects to ``KolektorSDD2.zip``, about
1.2 GB). No SHA-256 is published (a third-party loader records MD5
``1ed0f628122776ace4965afa30dfe316``, which the downloader cannot check), so the extraction is
verified by image counts (:data:`KSDD2_COUNTS`). Licence: reported as CC BY-NC-SA 4.0 (ViCoS
resource page, https://www.vicos.si/resources/kolektorsdd2/); confirm there before redistributing.
"""
from __future__ import annotations

from pathlib import Path

from prn_core.data.download import download_and_extract
from prn_core.data.formats import (
    CategoryFolders,
    check_split,
    images_in,
    locate_extracted,
    register_format,
)
from prn_core.data.images import cache_subdir, read_mask
from prn_core.data.samples import DatasetLayoutError, Sample, check_sample

__all__ = [
    "KSDD2_CATEGORY",
    "KSDD2_URL",
    "KSDD2_COUNTS",
    "KolektorSDD2Format",
    "list_ksdd2_samples",
    "download_kolektorsdd2",
]

KSDD2_CATEGORY = "kolektorsdd2"
# The link has no file name; the fragment names the archive for the downloader (not sent).
KSDD2_URL = "https://go.vicos.si/kolektorsdd2#KolektorSDD2.zip"
# (normal, defective) images per split, from the KolektorSDD2 paper
KSDD2_COUNTS: dict[str, tuple[int, int]] = {"train": (2085, 246), "test": (894, 110)}
_GT = "_gt"


def _is_ksdd2(folder: Path) -> bool:
    return (folder / "train").is_dir() and (folder / "test").is_dir()


def ksdd2_dir(root: str | Path, category: str) -> Path:
    """``root/category`` if it has the layout, else ``root`` itself for ``"kolektorsdd2"``."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"dataset root {root} does not exist. Point DataConfig.root at the KolektorSDD2 folder "
            f"(the one holding train/ and test/), or fetch it with prn_core.data.download_kolektorsdd2."
        )
    if _is_ksdd2(root / category):
        return root / category
    if category == KSDD2_CATEGORY and _is_ksdd2(root):
        return root
    raise DatasetLayoutError(
        f"no KolektorSDD2 data for category {category!r} under {root}: expected {root}/train and "
        f"{root}/test with category {KSDD2_CATEGORY!r}, or {root / category}/train and /test."
    )


def _scan(folder: Path) -> list[tuple[Path, Path, int]]:
    """(image, mask, label) of every image in a split folder; label from the mask's content."""
    masks = {p.stem.lower()[: -len(_GT)]: p for p in images_in(folder) if p.stem.lower().endswith(_GT)}
    rows = []
    for image in images_in(folder):
        if image.stem.lower().endswith(_GT):
            continue
        mask = masks.get(image.stem.lower())
        if mask is None:
            raise DatasetLayoutError(
                f"image {image} has no mask {folder / (image.stem + '_GT.png')}: every KolektorSDD2 "
                f"image has one (all zero for a normal image). Restore it, or delete the image."
            )
        check_sample(Sample(image, 1, "defect", mask, folder.name))  # header, end marker, size
        rows.append((image, mask, int(read_mask(mask).any())))
    return rows


def list_ksdd2_samples(root: str | Path, category: str, split: str) -> list[Sample]:
    """``train``: normal training images; ``test``: all test images, label from the mask."""
    check_split(split)
    folder = ksdd2_dir(root, category) / split
    samples = [
        Sample(image, label, "defect" if label else "good", mask if label else None, split)
        for image, mask, label in _scan(folder)
        if split == "test" or label == 0
    ]
    if not samples:
        raise DatasetLayoutError(f"no images (<id>.png with <id>_GT.png) found under {folder}")
    return samples


@register_format("kolektorsdd2")
class KolektorSDD2Format(CategoryFolders):
    """KolektorSDD2: one category, ``<id>.png`` images with ``<id>_GT.png`` masks; the root may
    itself be the category (the archive's own layout)."""

    list_samples = staticmethod(list_ksdd2_samples)
    is_category = staticmethod(_is_ksdd2)

    def categories(self, root: str | Path) -> list[str]:
        return [KSDD2_CATEGORY] if _is_ksdd2(Path(root).expanduser()) else super().categories(root)


def download_kolektorsdd2(
    cache_dir: str | Path | None = None,
    url: str = KSDD2_URL,
    sha256: str | None = None,
    counts: dict[str, tuple[int, int]] = KSDD2_COUNTS,
) -> Path:
    """Fetch KolektorSDD2 into ``cache_dir`` (default ``default_cache_dir() / "kolektorsdd2"``)
    and return the folder holding ``train/`` and ``test/``: the ``DataConfig.root`` for format
    ``kolektorsdd2`` (category ``"kolektorsdd2"``). Without a checksum, the (normal, defective)
    image counts of each split must equal ``counts``.
    """
    dest = cache_subdir(cache_dir, KSDD2_CATEGORY)
    download_and_extract(url, sha256, dest)
    root = locate_extracted(dest, _is_ksdd2, "KolektorSDD2 train/ and test/")
    for split, expected in counts.items():
        labels = [label for _, _, label in _scan(root / split)]
        found = (labels.count(0), labels.count(1))
        if found != expected:
            raise ValueError(
                f"KolektorSDD2 {split} under {root} has {found} (normal, defective) images after download, "
                f"expected {expected}. Delete {dest} and retry."
            )
    return root
