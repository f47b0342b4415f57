"""BTAD (beanTech Anomaly Detection): three industrial products, ``01``, ``02`` and ``03``.

Layout of one product (Mishra et al., "VT-ADL", ISIE 2021)::

    <root>/<product>/train/ok/*.bmp|png          normal training images
    <root>/<product>/test/ok/*                   normal test images
    <root>/<product>/test/ko/*                   defective test images
    <root>/<product>/ground_truth/ko/<stem>.*    their masks

Image and mask extensions differ between products and copies (``.bmp`` images with ``.png``
masks in 01, ``.png`` in 02, ``.bmp`` in 03 of the original archive; anomalib converts all to
``.png``), so a mask is matched by its image's stem with any image extension, in any case
(``<stem>_mask.*`` is accepted too). BTAD has one defect folder, so ``defect_type`` is ``"ko"``.

Download: ``https://avires.dimi.uniud.it/papers/btad/btad.zip`` (about 1.2 GB), SHA-256 as
recorded by anomalib (:data:`BTAD_SHA256`). Licence: no licence text ships with the archive;
anomalib's documentation lists CC BY-SA 4.0. Check before redistributing.
"""
from __future__ import annotations

from pathlib import Path

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

__all__ = ["BTAD_CATEGORIES", "BTAD_URL", "BTAD_SHA256", "BTADFormat", "list_btad_samples", "download_btad"]

BTAD_CATEGORIES: tuple[str, ...] = ("01", "02", "03")
BTAD_URL = "https://avires.dimi.uniud.it/papers/btad/btad.zip"
BTAD_SHA256 = "461c9387e515bfed41ecaae07c50cf6b10def647b36c9e31d239ab2736b10d2a"
OK, KO = "ok", "ko"


def _btad_mask(index: dict[str, Path], image: Path, gt_dir: Path) -> Path:
    for key in (image.stem.lower(), f"{image.stem.lower()}_mask"):
        if key in index:
            return index[key]
    raise DatasetLayoutError(
        f"defective image {image} has no mask: expected {gt_dir / image.stem}.png (or .bmp). Add the "
        f"mask, or move the image to test/{OK} if it is normal."
    )


def list_btad_samples(root: str | Path, category: str, split: str) -> list[Sample]:
    """``train`` lists ``train/ok``; ``test`` lists ``test/ok`` (label 0) and ``test/ko`` (label 1)."""
    check_split(split)
    cat = category_dir(root, category)
    if not (cat / split / OK).is_dir():
        raise DatasetLayoutError(
            f"missing folder {cat / split / OK}: a BTAD product holds train/ok, test/ok, test/ko and "
            f"ground_truth/ko. Is {cat} a BTAD product (01, 02, 03)?"
        )
    samples = [check_sample(Sample(p, 0, OK, None, split)) for p in images_in(cat / split / OK)]
    if split == "test":
        gt_dir = cat / "ground_truth" / KO
        index = mask_index(gt_dir)
        for image in images_in(cat / "test" / KO):
            samples.append(check_sample(Sample(image, 1, KO, _btad_mask(index, image, gt_dir), split)))
    if not samples:
        raise DatasetLayoutError(f"no images found under {cat / split} for BTAD product {category!r}")
    return samples


@register_format("btad")
class BTADFormat(CategoryFolders):
    """BTAD products ``01``-``03`` (``ok``/``ko`` folders, masks matched by stem)."""

    list_samples = staticmethod(list_btad_samples)

    def is_category(self, folder: Path) -> bool:
        return (folder / "train" / OK).is_dir()


def download_btad(
    cache_dir: str | Path | None = None, url: str = BTAD_URL, sha256: str | None = BTAD_SHA256
) -> Path:
    """Fetch and verify BTAD into ``cache_dir`` (default ``default_cache_dir() / "btad"``) and
    return the folder holding ``01``, ``02`` and ``03``: the ``DataConfig.root`` for format
    ``btad``. The archive is checked against its SHA-256 before extraction; afterwards every
    product must list without errors.
    """
    dest = cache_subdir(cache_dir, "btad")
    download_and_extract(url, sha256, dest)
    root = locate_extracted(dest, lambda p: all((p / c / "train" / OK).is_dir() for c in BTAD_CATEGORIES), "BTAD 01-03")
    for category in BTAD_CATEGORIES:
        for split in ("train", "test"):
            list_btad_samples(root, category, split)
    return root
