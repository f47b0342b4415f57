"""MVTec layout: the category list, listing and validation at listing time, the real sets."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from prn_core.data.images import ImageCache, ImageReadError, load_image, read_mask
from prn_core.data.mvtec import CATEGORIES, list_samples
from prn_core.data.samples import DatasetLayoutError
from prn_core.data.split import few_shot_split

from fake_mvtec import H, W, write_image, make_tree

# --- listing -------------------------------------------------------------------------------------


def test_categories_are_the_15_mvtec_names():
    assert len(CATEGORIES) == 15 and len(set(CATEGORIES)) == 15
    assert {"bottle", "hazelnut", "metal_nut", "zipper"} <= set(CATEGORIES)


def test_list_samples_labels_masks_and_order(tree: Path):
    train = list_samples(tree, "widget", "train")
    test = list_samples(tree, "widget", "test")
    assert len(train) == 10 and all(s.label == 0 and s.mask_path is None and s.split == "train" for s in train)
    assert Counter(s.defect_type for s in test) == {"good": 3, "scratch": 4, "dent": 3, "hole": 2}
    for s in test:
        assert s.label == int(s.defect_type != "good")
        if s.label:
            assert s.mask_path == tree / "widget" / "ground_truth" / s.defect_type / f"{s.path.stem}_mask.png"
    assert [s.path.name for s in train] == sorted(s.path.name for s in train)


def test_hidden_and_non_image_files_are_ignored(tree: Path):
    (tree / "widget" / "train" / "good" / ".DS_Store").write_bytes(b"junk")
    (tree / "widget" / "train" / "good" / "notes.txt").write_text("hello")
    assert len(list_samples(tree, "widget", "train")) == 10


def test_bad_split_name(tree: Path):
    with pytest.raises(ValueError, match="split must be one of"):
        list_samples(tree, "widget", "validation")


def test_missing_root_says_how_to_fix(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="--data-root"):
        list_samples(tmp_path / "nowhere", "bottle", "train")


def test_unknown_category_lists_the_existing_ones(tree: Path):
    make_tree(tree, category="gadget")
    with pytest.raises(DatasetLayoutError, match=r"'bottle' not found.*\['gadget', 'widget'\].*download_mvtec"):
        list_samples(tree, "bottle", "train")
    with pytest.raises(DatasetLayoutError, match="'nonsense' not found"):
        list_samples(tree, "nonsense", "test")


@pytest.mark.parametrize("missing", ["test", "train", "train/good"])
def test_missing_split_folder_is_named(tree: Path, missing: str):
    import shutil

    shutil.rmtree(tree / "widget" / missing)
    split = missing.split("/")[0]
    with pytest.raises(DatasetLayoutError, match=str(tree / "widget" / missing)):
        list_samples(tree, "widget", split)


def test_empty_split_is_an_error(tmp_path: Path):
    make_tree(tmp_path, n_train=0)
    (tmp_path / "widget" / "train" / "good").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="no images"):
        list_samples(tmp_path, "widget", "train")


def test_defect_image_without_mask_names_the_expected_mask(tree: Path):
    (tree / "widget" / "ground_truth" / "dent" / "001_mask.png").unlink()
    with pytest.raises(DatasetLayoutError, match=r"test/dent/001.png has no mask: expected .*dent/001_mask.png"):
        list_samples(tree, "widget", "test")


def test_mask_of_a_different_size_is_named(tree: Path):
    mask = tree / "widget" / "ground_truth" / "hole" / "000_mask.png"
    write_image(mask, np.zeros((H + 2, W), np.uint8))
    with pytest.raises(DatasetLayoutError, match=rf"mask {mask} is {H + 2}x{W} but its image .* is {H}x{W}"):
        list_samples(tree, "widget", "test")


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_truncated_image_is_named_at_listing(tmp_path: Path, ext: str):
    make_tree(tmp_path, ext=ext)
    bad = tmp_path / "widget" / "test" / "scratch" / f"002{ext}"
    data = bad.read_bytes()
    bad.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ImageReadError, match=f"{bad} is truncated"):
        list_samples(tmp_path, "widget", "test")
    with pytest.raises(ImageReadError, match=str(bad)):
        load_image(bad, (64, 64))


def test_not_an_image_is_named(tree: Path):
    bad = tree / "widget" / "train" / "good" / "004.png"
    bad.write_bytes(b"this is not a png" * 10)
    with pytest.raises(ImageReadError, match=str(bad)):
        list_samples(tree, "widget", "train")


def test_corrupt_pixel_data_is_named_at_load(tree: Path):
    path = tree / "widget" / "train" / "good" / "005.png"
    data = bytearray(path.read_bytes())
    start = data.index(b"IDAT") + 20
    data[start : start + 200] = bytes(200)  # header and end marker intact, pixel stream broken
    path.write_bytes(bytes(data))
    list_samples(tree, "widget", "train")  # the cheap checks cannot see this ...
    with pytest.raises(ImageReadError, match=f"cannot decode image file {path}"):
        load_image(path, (64, 64))  # ... decoding does, and names the file


# --- loading --------------------------------------------------------------------------------------


REAL = [
    ("mvtec", "bottle", 209, 20, 63),
    ("hazelnut_toy", "hazelnut", 28, 6, 17),
    ("mtd", "magnetic_tile", 762, 190, 392),
]


@pytest.mark.realdata
@pytest.mark.parametrize("folder,category,n_train,n_good,n_bad", REAL)
def test_real_sets_have_their_true_counts(shared_data: Path, folder, category, n_train, n_good, n_bad):
    root = shared_data / folder
    assert len(list_samples(root, category, "train")) == n_train
    test = list_samples(root, category, "test")
    assert sum(s.label == 0 for s in test) == n_good and sum(s.label == 1 for s in test) == n_bad
    split = few_shot_split(root, category, num_seen=10, seed=0)
    assert len(split.seen) == 10 and len(split.test) == n_good + n_bad - 10


@pytest.mark.realdata
@pytest.mark.parametrize("folder,category", [(f, c) for f, c, *_ in REAL])
def test_real_images_and_masks_line_up(shared_data: Path, folder, category):
    test = list_samples(shared_data / folder, category, "test")
    cache = ImageCache((128, 128))
    for s in [t for t in test if t.label][::25] + [t for t in test if not t.label][:2]:
        img, mask = cache.image(s), cache.mask(s)
        assert img.shape == (128, 128, 3) and img.dtype == np.float32 and 0 <= img.min() <= img.max() <= 1
        assert mask.shape == (128, 128) and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        assert mask.any() == (s.label == 1 and bool(read_mask(s.mask_path).any()))


@pytest.mark.realdata
def test_magnetic_tile_empty_masks_are_handled(shared_data: Path):
    root = shared_data / "mtd"
    test = list_samples(root, "magnetic_tile", "test")
    empty = {s.path for s in test if s.label and not read_mask(s.mask_path).any()}
    assert len(empty) == 4
    split = few_shot_split(root, "magnetic_tile", num_seen=10, seed=0)
    assert empty <= {s.path for s in split.test} and not empty & {s.path for s in split.seen}
