"""BTAD adapter on fake products: ok/ko folders, mixed image and mask extensions, errors, download."""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.data import DatasetLayoutError, ImageReadError, few_shot_split, get_format
from prn_core.data.btad import download_btad, list_btad_samples

H, W = 32, 64
# product -> (image extension, mask extension), as in the original archive
EXTENSIONS = {"01": (".bmp", ".png"), "02": (".png", ".png"), "03": (".bmp", ".bmp")}


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def make_btad(root: Path, n_train: int = 5, n_ok: int = 2, n_ko: int = 3) -> Path:
    rng = np.random.default_rng(0)
    for product, (ext, mask_ext) in EXTENSIONS.items():
        cat = root / product
        for i in range(n_train):
            _write(cat / "train" / "ok" / f"{i:04d}{ext}", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        for i in range(n_ok):
            _write(cat / "test" / "ok" / f"{i:04d}{ext}", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        for i in range(n_ko):
            _write(cat / "test" / "ko" / f"{i:04d}{ext}", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
            mask = np.zeros((H, W), np.uint8)
            mask[2 + i : 10 + i, 5:15] = 255
            _write(cat / "ground_truth" / "ko" / f"{i:04d}{mask_ext}", mask)
    return root


@pytest.fixture()
def btad(tmp_path: Path) -> Path:
    return make_btad(tmp_path / "btad")


def test_lists_every_product_with_its_extensions(btad: Path):
    fmt = get_format("btad")
    assert fmt.categories(btad) == ["01", "02", "03"]
    for product, (ext, mask_ext) in EXTENSIONS.items():
        train = fmt.list_samples(btad, product, "train")
        test = fmt.list_samples(btad, product, "test")
        assert len(train) == 5 and all(s.label == 0 and s.mask_path is None and s.split == "train" for s in train)
        assert [s.label for s in test] == [0, 0, 1, 1, 1]
        defects = [s for s in test if s.label]
        assert {s.defect_type for s in defects} == {"ko"}
        assert all(s.path.suffix == ext and s.mask_path.suffix == mask_ext for s in defects)
        assert all(s.mask_path.stem == s.path.stem for s in defects)


def test_mask_named_with_mask_suffix_or_other_extension_is_found(btad: Path):
    gt = btad / "01" / "ground_truth" / "ko"
    (gt / "0000.png").rename(gt / "0000_mask.png")
    _write(gt / "0001.jpg", cv2.imread(str(gt / "0001.png"), cv2.IMREAD_GRAYSCALE))
    (gt / "0001.png").unlink()
    (btad / "01" / "test" / "ko" / "readme.txt").write_text("ignored: not an image")
    masks = {s.path.stem: s.mask_path.name for s in list_btad_samples(btad, "01", "test") if s.label}
    assert masks == {"0000": "0000_mask.png", "0001": "0001.jpg", "0002": "0002.png"}
    (gt / "0002.png").rename(gt / "0002.jpg")  # a PNG under a .jpg name: caught at listing time
    with pytest.raises(ImageReadError, match=r"0002\.jpg has the extension \.jpg but holds PNG data"):
        list_btad_samples(btad, "01", "test")


def test_missing_mask_names_the_image(btad: Path):
    (btad / "02" / "ground_truth" / "ko" / "0001.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"0001\.png has no mask.*ground_truth/ko/0001"):
        list_btad_samples(btad, "02", "test")
    assert len(list_btad_samples(btad, "02", "train")) == 5  # train never needs masks


def test_mask_of_the_wrong_size_is_rejected(btad: Path):
    _write(btad / "03" / "ground_truth" / "ko" / "0002.bmp", np.zeros((H, W + 2), np.uint8))
    with pytest.raises(DatasetLayoutError, match=r"0002\.bmp is 32x66 but its image .* is 32x64"):
        list_btad_samples(btad, "03", "test")


def test_wrong_layout_and_unknown_product(btad: Path, tmp_path: Path):
    with pytest.raises(DatasetLayoutError, match="category '04' not found.*'01', '02', '03'"):
        list_btad_samples(btad, "04", "train")
    (tmp_path / "mvtec_like" / "x" / "train" / "good").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="missing folder .*train/ok.*BTAD product"):
        list_btad_samples(tmp_path / "mvtec_like", "x", "train")
    with pytest.raises(ValueError, match="split must be one of"):
        list_btad_samples(btad, "01", "val")


def test_few_shot_split_on_btad(btad: Path):
    split = few_shot_split(btad, "01", num_seen=2, seed=0, val_fraction=0.2, format="btad")
    assert len(split.seen) == 2 and all(s.defect_type == "ko" for s in split.seen)
    assert len(split.test) == 3 and len(split.train) + len(split.val) == 5 and len(split.val) == 1
    record = split.to_dict()
    assert record["format"] == "btad" and record["files"]["train"][0].startswith("train/ok/")


def test_download_verifies_and_finds_the_wrapped_folder(tmp_path: Path):
    make_btad(tmp_path / "src" / "BTech_Dataset_transformed", n_train=2, n_ok=1, n_ko=1)
    archive = Path(shutil.make_archive(str(tmp_path / "served" / "btad"), "zip", tmp_path / "src"))
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    root = download_btad(tmp_path / "cache", url=archive.as_uri(), sha256=digest)
    assert root == tmp_path / "cache" / "BTech_Dataset_transformed"
    assert get_format("btad").categories(root) == ["01", "02", "03"]
    with pytest.raises(ValueError, match="checksum mismatch"):
        download_btad(tmp_path / "other", url=archive.as_uri(), sha256="0" * 64)
