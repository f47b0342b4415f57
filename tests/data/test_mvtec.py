"""MVTec layout listing and validation, image/mask loading, the few-shot split, the Dataset."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from prn_core.data import images as images_mod
from prn_core.data.images import ImageReadError, load_image, load_mask, read_mask
from prn_core.data.dataset import MVTecDataset
from prn_core.data.images import ImageCache
from prn_core.data.mvtec import CATEGORIES, list_samples
from prn_core.data.samples import DatasetLayoutError
from prn_core.data.split import few_shot_split

H, W = 40, 48


def _write(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def _image(rng: np.random.Generator, grey: bool = False) -> np.ndarray:
    shape = (H, W) if grey else (H, W, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def make_tree(
    root: Path,
    category: str = "widget",
    n_train: int = 10,
    n_good: int = 3,
    defects: dict[str, int] | None = None,
    ext: str = ".png",
    grey: bool = False,
    empty_masks: int = 0,
) -> Path:
    """A small MVTec-layout category; the first ``empty_masks`` images of each defect type get
    an all-zero mask."""
    rng = np.random.default_rng(0)
    defects = {"scratch": 4, "dent": 3, "hole": 2} if defects is None else defects
    cat = root / category
    for i in range(n_train):
        _write(cat / "train" / "good" / f"{i:03d}{ext}", _image(rng, grey))
    for i in range(n_good):
        _write(cat / "test" / "good" / f"{i:03d}{ext}", _image(rng, grey))
    for defect, n in defects.items():
        for i in range(n):
            _write(cat / "test" / defect / f"{i:03d}{ext}", _image(rng, grey))
            mask = np.zeros((H, W), np.uint8)
            if i >= empty_masks:
                mask[5 + i : 15 + i, 10:20] = 255
            _write(cat / "ground_truth" / defect / f"{i:03d}_mask.png", mask)
    return root


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "data")


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
    _write(mask, np.zeros((H + 2, W), np.uint8))
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


@pytest.mark.parametrize("ext,grey", [(".png", False), (".jpg", False), (".png", True), (".bmp", True)])
def test_load_image_rgb_float_resized(tmp_path: Path, ext: str, grey: bool):
    make_tree(tmp_path, ext=ext, grey=grey)
    s = list_samples(tmp_path, "widget", "test")[-1]
    img = load_image(s.path, (64, 96))
    assert img.shape == (64, 96, 3) and img.dtype == np.float32
    assert 0.0 <= img.min() and img.max() <= 1.0
    if grey:
        assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
    mask = load_mask(s.mask_path, (64, 96))
    assert mask.shape == (64, 96) and mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}


def test_load_image_keeps_colour_order(tmp_path: Path):
    bgr = np.zeros((32, 32, 3), np.uint8)
    bgr[..., 2] = 255  # pure red in OpenCV's BGR order
    _write(tmp_path / "red.png", bgr)
    assert np.allclose(load_image(tmp_path / "red.png", (64, 64))[10, 10], [1, 0, 0])


def test_masks_saved_as_zero_one_and_with_noise_binarise(tmp_path: Path):
    m = np.zeros((20, 20), np.uint8)
    m[5:10, 5:10] = 1
    _write(tmp_path / "01.png", m)
    assert read_mask(tmp_path / "01.png").sum() == 25
    m255 = m * 255
    m255[0, 0] = 100  # anti-aliasing below half is background
    _write(tmp_path / "0255.png", m255)
    assert read_mask(tmp_path / "0255.png").sum() == 25


def test_mask_resize_is_nearest_and_small_defects_survive(tmp_path: Path):
    m = np.zeros((256, 256), np.uint8)
    m[100:164, 100:164] = 255
    m[10, 10] = 255  # one pixel: nearest neighbour at 1/8 scale would usually drop it ...
    _write(tmp_path / "m.png", m)
    small = load_mask(tmp_path / "m.png", (64, 64))
    assert set(np.unique(small)) == {0, 1} and small[25:41, 25:41].all()
    tiny = np.zeros((256, 256), np.uint8)
    tiny[9, 9] = 255  # ... and a mask that is only that pixel must not become empty
    _write(tmp_path / "tiny.png", tiny)
    assert load_mask(tmp_path / "tiny.png", (32, 32)).sum() >= 1


def test_keep_aspect_pads_and_reports_the_valid_region(tmp_path: Path):
    _write(tmp_path / "wide.png", np.full((50, 100, 3), 200, np.uint8))
    img = load_image(tmp_path / "wide.png", (64, 64), keep_aspect=True)
    assert img.shape == (64, 64, 3)
    valid = images_mod.valid_region((50, 100), (64, 64), keep_aspect=True)
    assert valid.sum() == 32 * 64 and valid[16:48].all() and not valid[:16].any()
    assert images_mod.valid_region((50, 100), (64, 64)).all()


def test_image_cache_decodes_each_file_once(tree: Path, monkeypatch: pytest.MonkeyPatch):
    calls = Counter()
    real = images_mod.read_image

    def counting(path):
        calls[path] += 1
        return real(path)

    monkeypatch.setattr("prn_core.data.images.read_image", counting)
    cache = ImageCache((64, 64))
    s = list_samples(tree, "widget", "test")[-1]
    first = cache.image(s)
    first[:] = 0  # callers get copies: scribbling on one does not corrupt the cache
    second = cache.image(s)
    assert calls[s.path] == 1 and second.max() > 0
    assert cache.mask(s).sum() > 0 and cache.mask(list_samples(tree, "widget", "train")[0]).sum() == 0


def test_dataset_items_and_batches(tree: Path):
    samples = list_samples(tree, "widget", "test")
    ds = MVTecDataset(samples, (64, 64))
    item = ds[len(ds) - 1]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (1, 64, 64) and set(item["mask"].unique().tolist()) == {0.0, 1.0}
    assert item["label"] == 1 and item["path"] == str(samples[-1].path)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    labels = [s.label for s in samples[:4]]
    assert batch["image"].shape == (4, 3, 64, 64) and batch["label"].tolist() == labels
    assert [bool(m.any()) for m in batch["mask"]] == [bool(x) for x in labels]
    with pytest.raises(ValueError, match="image_size"):
        MVTecDataset(samples, (64, 64), cache=ImageCache((32, 32)))


# --- few-shot split ---------------------------------------------------------------------------------


def test_split_removes_exactly_the_seen_files(tree: Path):
    full = list_samples(tree, "widget", "test")
    split = few_shot_split(tree, "widget", num_seen=4, seed=0)
    seen = {s.path for s in split.seen}
    assert len(seen) == 4 and all(s.label == 1 for s in split.seen)
    assert {s.path for s in split.test} == {s.path for s in full} - seen
    assert len(split.test) == len(full) - 4


def test_split_spreads_seen_over_defect_types(tree: Path):
    for seed in range(5):
        counts = Counter(s.defect_type for s in few_shot_split(tree, "widget", num_seen=5, seed=seed).seen)
        assert set(counts) == {"scratch", "dent", "hole"}  # every type before any repeats
        assert max(counts.values()) - min(counts.values()) <= 1
    # a type with fewer images than its share is exhausted and the others fill in
    counts = Counter(s.defect_type for s in few_shot_split(tree, "widget", num_seen=9, seed=0).seen)
    assert counts == {"scratch": 4, "dent": 3, "hole": 2}


def test_split_is_deterministic_and_differs_across_seeds(tree: Path):
    a, b = few_shot_split(tree, "widget", 3, seed=7), few_shot_split(tree, "widget", 3, seed=7)
    assert a.to_dict() == b.to_dict() and a.fingerprint() == b.fingerprint()
    others = [few_shot_split(tree, "widget", 3, seed=s) for s in range(8)]
    assert len({tuple(s.path for s in o.seen) for o in others}) > 1
    assert len({tuple(s.path for s in o.val) for o in others}) > 1
    assert len({o.fingerprint() for o in others}) == 8


def test_leaky_keeps_seen_in_test(tree: Path):
    split = few_shot_split(tree, "widget", 4, seed=1, leaky=True)
    assert {s.path for s in split.seen} <= {s.path for s in split.test}
    assert len(split.test) == len(list_samples(tree, "widget", "test")) and split.leaky


def test_val_is_held_out_normals(tree: Path):
    split = few_shot_split(tree, "widget", 2, seed=0, val_fraction=0.2)
    assert len(split.val) == 2 and len(split.train) == 8
    assert not {s.path for s in split.val} & {s.path for s in split.train}
    assert few_shot_split(tree, "widget", 2, seed=0, val_fraction=0.01).val  # at least one
    assert few_shot_split(tree, "widget", 2, seed=0, val_fraction=0.0).val == []
    # the val draw does not depend on num_seen
    assert few_shot_split(tree, "widget", 5, seed=0, val_fraction=0.2).val == split.val


def test_split_record_is_json_with_relative_paths(tree: Path):
    split = few_shot_split(tree, "widget", 3, seed=0)
    record = json.loads(json.dumps(split.to_dict()))
    assert record["counts"] == {"train": 9, "val": 1, "seen": 3, "test": 9, "test_good": 3, "test_defective": 6}
    assert all(not Path(p).is_absolute() for part in record["files"].values() for p in part)
    listed = {f"test/{s.defect_type}/{s.path.name}" for s in list_samples(tree, "widget", "test")}
    assert set(record["files"]["seen"]) <= listed


def test_too_many_seen_is_a_clear_error(tree: Path):
    with pytest.raises(ValueError, match="num_seen=10 but category 'widget' has only 9"):
        few_shot_split(tree, "widget", num_seen=10)


def test_empty_masks_stay_in_test_and_are_never_seen(tmp_path: Path):
    make_tree(tmp_path, empty_masks=1)  # 000 of each defect type has an empty mask
    empty = {s.path for s in list_samples(tmp_path, "widget", "test") if s.label and not read_mask(s.mask_path).any()}
    assert len(empty) == 3
    for seed in range(4):
        split = few_shot_split(tmp_path, "widget", num_seen=6, seed=seed)
        assert not empty & {s.path for s in split.seen} and empty <= {s.path for s in split.test}
    with pytest.raises(ValueError, match="only 6 defective test images with a non-empty mask"):
        few_shot_split(tmp_path, "widget", num_seen=7)


# --- the real sets ----------------------------------------------------------------------------------

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
