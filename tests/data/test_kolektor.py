"""KolektorSDD2 adapter on a fake copy: labels from mask content, one category, errors, download."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.data import DatasetLayoutError, ImageCache, few_shot_split, get_format
from prn_core.data.kolektor import KSDD2_CATEGORY, download_kolektorsdd2, list_ksdd2_samples

H, W = 64, 24  # KolektorSDD2 images are tall: about 630x230 (H x W)


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def make_ksdd2(root: Path, counts: dict[str, tuple[int, int]] | None = None) -> Path:
    """``counts``: split -> (normal, defective); ids interleave normal and defective images."""
    rng = np.random.default_rng(0)
    counts = counts or {"train": (4, 2), "test": (3, 3)}
    for split, (n_normal, n_defect) in counts.items():
        for i in range(n_normal + n_defect):
            _write(root / split / f"{10000 + i}.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
            mask = np.zeros((H, W), np.uint8)
            if i % 2 == 1 and i // 2 < n_defect or i >= 2 * n_normal:
                mask[10:20, 5:9] = 255
            _write(root / split / f"{10000 + i}_GT.png", mask)
    return root


@pytest.fixture()
def ksdd2(tmp_path: Path) -> Path:
    return make_ksdd2(tmp_path / "KolektorSDD2")


def test_root_is_the_single_category(ksdd2: Path, tmp_path: Path):
    fmt = get_format("kolektorsdd2")
    assert fmt.categories(ksdd2) == [KSDD2_CATEGORY]
    assert fmt.categories(tmp_path) == ["KolektorSDD2"]  # a parent names the folder instead
    assert fmt.list_samples(ksdd2, KSDD2_CATEGORY, "test") == fmt.list_samples(tmp_path, "KolektorSDD2", "test")


def test_labels_come_from_mask_content(ksdd2: Path):
    train = list_ksdd2_samples(ksdd2, KSDD2_CATEGORY, "train")
    test = list_ksdd2_samples(ksdd2, KSDD2_CATEGORY, "test")
    assert len(train) == 4 and all(s.label == 0 and s.mask_path is None for s in train)  # defective train left out
    assert sum(s.label for s in test) == 3 and len(test) == 6
    for s in test:
        assert (s.mask_path is not None) == bool(s.label)
        assert s.defect_type == ("defect" if s.label else "good")
        if s.label:
            assert s.mask_path.name == f"{s.path.stem}_GT.png"
    assert not any(s.path.stem.endswith("_GT") for s in train + test)


def test_tall_images_load_at_the_requested_size(ksdd2: Path):
    sample = next(s for s in list_ksdd2_samples(ksdd2, KSDD2_CATEGORY, "test") if s.label)
    cache = ImageCache((64, 64), keep_aspect=True)
    assert cache.image(sample).shape == (64, 64, 3)
    assert cache.mask(sample).any() and not cache.valid(sample).all()


def test_missing_gt_is_an_error(ksdd2: Path):
    (ksdd2 / "test" / "10002_GT.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"10002\.png has no mask .*10002_GT\.png"):
        list_ksdd2_samples(ksdd2, KSDD2_CATEGORY, "test")


def test_gt_of_another_size_is_an_error(ksdd2: Path):
    _write(ksdd2 / "train" / "10000_GT.png", np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DatasetLayoutError, match=r"10000_GT\.png is 65x24 but its image .* is 64x24"):
        list_ksdd2_samples(ksdd2, KSDD2_CATEGORY, "train")


def test_wrong_category_and_missing_root(ksdd2: Path, tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="no KolektorSDD2 data for category 'bottle'"):
        list_ksdd2_samples(ksdd2, "bottle", "train")
    with pytest.raises(FileNotFoundError, match="download_kolektorsdd2"):
        list_ksdd2_samples(tmp_path / "nowhere", KSDD2_CATEGORY, "train")


def test_few_shot_split_on_kolektorsdd2(ksdd2: Path):
    split = few_shot_split(ksdd2, KSDD2_CATEGORY, num_seen=2, seed=1, format="kolektorsdd2")
    assert len(split.seen) == 2 and len(split.test) == 4 and sum(s.label for s in split.test) == 1
    assert split.to_dict()["files"]["seen"][0].startswith("test/")
    with pytest.raises(ValueError, match="only 3 defective test images"):
        few_shot_split(ksdd2, KSDD2_CATEGORY, num_seen=4, format="kolektorsdd2")


def test_download_from_a_link_without_a_file_name(tmp_path: Path):
    counts = {"train": (2, 1), "test": (2, 1)}
    make_ksdd2(tmp_path / "src", counts)
    zipped = shutil.make_archive(str(tmp_path / "served" / "archive"), "zip", tmp_path / "src")
    link = Path(zipped).rename(tmp_path / "served" / "kolektorsdd2")  # like https://go.vicos.si/kolektorsdd2
    url = f"{link.as_uri()}#KolektorSDD2.zip"
    root = download_kolektorsdd2(tmp_path / "cache", url=url, counts=counts)
    assert root == tmp_path / "cache" and len(list_ksdd2_samples(root, KSDD2_CATEGORY, "test")) == 3
    with pytest.raises(ValueError, match=r"train .* has \(2, 1\) .* expected \(2085, 246\)"):
        download_kolektorsdd2(tmp_path / "cache2", url=url)
