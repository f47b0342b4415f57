"""Folder/CSV adapter: deterministic split, optional masks, CSV errors, and the real magnetic tiles."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.data import DATASET_FORMATS, DatasetLayoutError, few_shot_split, get_format, list_samples, register_format
from prn_core.data.folder import FOLDER_TEST_FRACTION, FolderFormat, list_folder_samples

H, W = 32, 64


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def _mask(i: int = 0) -> np.ndarray:
    mask = np.zeros((H, W), np.uint8)
    mask[4 + i : 12 + i, 10:20] = 255
    return mask


def make_folder(root: Path, n_good: int = 10, n_defect: int = 4, masked: int = 3) -> Path:
    """``good/``, ``defect/`` and ``masks/`` for the first ``masked`` defects."""
    rng = np.random.default_rng(0)
    for i in range(n_good):
        _write(root / "good" / f"g{i:02d}.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
    for i in range(n_defect):
        _write(root / "defect" / f"d{i:02d}.png", rng.integers(0, 256, (H, W, 3), dtype=np.uint8))
        if i < masked:
            _write(root / "masks" / f"d{i:02d}.png", _mask(i))
    return root


@pytest.fixture()
def parts(tmp_path: Path) -> Path:
    make_folder(tmp_path / "parts")
    return tmp_path


def _names(samples) -> list[str]:
    return [s.path.name for s in samples]


def test_folder_split_is_deterministic_and_puts_defects_in_test(parts: Path):
    fmt = get_format("folder")
    assert fmt.categories(parts) == ["parts"] and fmt.categories(parts / "parts") == ["parts"]
    train, test = (fmt.list_samples(parts, "parts", s) for s in ("train", "test"))
    assert len(train) == 8 and len(test) == 2 + 4  # round(0.2 * 10) normals in test
    assert all(s.label == 0 for s in train) and sum(s.label for s in test) == 4
    assert _names(train) == _names(fmt.list_samples(parts, "parts", "train"))  # same answer again
    assert fmt.list_samples(parts / "parts", "parts", "test") == test  # root may be the category itself
    masks = [s.mask_path.name if s.mask_path else None for s in test if s.label]
    assert masks == ["d00.png", "d01.png", "d02.png", None]


def test_adding_an_image_moves_no_other(parts: Path):
    before = {s.path.name: s.split for split in ("train", "test") for s in list_folder_samples(parts, "parts", split)}
    _write(parts / "parts" / "good" / "g99.png", np.zeros((H, W, 3), np.uint8))
    after = {s.path.name: s.split for split in ("train", "test") for s in list_folder_samples(parts, "parts", split)}
    moved = [n for n in before if before[n] != after[n]]
    assert len(moved) <= 1  # at most the one pushed past the test quota


def test_seed_and_fraction_change_the_split(parts: Path):
    other = list_folder_samples(parts, "parts", "test", test_fraction=0.5, seed=7)
    assert sum(s.label == 0 for s in other) == 5
    seeds = {tuple(_names(list_folder_samples(parts, "parts", "train", seed=s))) for s in range(5)}
    assert len(seeds) > 1

    @register_format("folder_half_test")
    class Half(FolderFormat):
        test_fraction = 0.5

    assert get_format("folder_half_test").list_samples(parts, "parts", "test") == list_folder_samples(
        parts, "parts", "test", test_fraction=0.5
    )
    del DATASET_FORMATS["folder_half_test"]


def test_unmasked_defects_are_never_seen(parts: Path):
    split = few_shot_split(parts, "parts", num_seen=3, seed=0, format="folder")
    assert len(split.seen) == 3 and all(s.mask_path is not None for s in split.seen)
    assert [s.path.name for s in split.test if s.label] == ["d03.png"]
    with pytest.raises(ValueError, match="only 3 defective test images with a non-empty mask"):
        few_shot_split(parts, "parts", num_seen=4, format="folder")


def test_explicit_train_test_folders_are_kept(tmp_path: Path):
    root = tmp_path / "split"
    _write(root / "train" / "good" / "a.png", np.zeros((H, W, 3), np.uint8))
    _write(root / "test" / "good" / "b.png", np.zeros((H, W, 3), np.uint8))
    _write(root / "test" / "scratch" / "c.png", np.zeros((H, W, 3), np.uint8))
    _write(root / "masks" / "scratch" / "c_mask.png", _mask())
    assert _names(list_folder_samples(tmp_path, "split", "train")) == ["a.png"]
    test = list_folder_samples(tmp_path, "split", "test")
    assert [(s.path.name, s.label, s.defect_type) for s in test] == [("b.png", 0, "good"), ("c.png", 1, "scratch")]
    assert test[1].mask_path.name == "c_mask.png"


def _csv(path: Path, rows: list[list[str]], header: str = "image,label,mask") -> Path:
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n")
    return path


def test_csv_with_relative_paths_and_words(parts: Path):
    rows = [[f"parts/good/g{i:02d}.png", "good", ""] for i in range(10)]
    rows += [["parts/defect/d00.png", "defect", "parts/masks/d00.png"], ["parts/defect/d03.png", "1", ""]]
    listing = _csv(parts / "mine.csv", rows)
    fmt = get_format("folder")
    assert "mine" in fmt.categories(parts)
    test = fmt.list_samples(parts, "mine", "test")
    assert fmt.list_samples(listing, "mine", "test") == test  # root may be the CSV itself
    assert len(test) == 4 and [s.mask_path and s.mask_path.name for s in test if s.label] == ["d00.png", None]
    assert _names(fmt.list_samples(parts, "mine", "train")) == _names(fmt.list_samples(parts, "parts", "train"))


@pytest.mark.parametrize(
    ("row", "header", "message"),
    [
        (["parts/good/nope.png", "0", ""], "image,label,mask", r"line 2: image .*nope\.png does not exist"),
        (["parts/good/g00.png", "0", "parts/masks/d00.png"], "image,label,mask", "labelled normal but has a mask"),
        (["parts/defect/d00.png", "1", "parts/masks/zz.png"], "image,label,mask", r"mask .*zz\.png does not exist"),
        (["parts/good/g00.png", "maybe", ""], "image,label,mask", "label 'maybe' is neither normal"),
        (["parts/defect/d00.png", "1", "", "train"], "image,label,mask,split", "train only for normal images"),
        (["parts/good/g00.png", "0"], "file,class", r"needs a header row with columns image,label"),
    ],
)
def test_csv_errors_name_the_line(parts: Path, row: list[str], header: str, message: str):
    _csv(parts / "bad.csv", [row], header)
    with pytest.raises(DatasetLayoutError, match=message):
        list_folder_samples(parts, "bad", "train")


def test_missing_category_and_no_normals(parts: Path):
    with pytest.raises(DatasetLayoutError, match=r"category 'other' not found.*Categories there: \['parts'\]"):
        list_folder_samples(parts, "other", "train")
    _csv(parts / "defects_only.csv", [["parts/defect/d00.png", "1", "parts/masks/d00.png"]])
    with pytest.raises(DatasetLayoutError, match="no train images"):
        list_folder_samples(parts, "defects_only", "train")


def test_magnetic_tiles_through_a_csv(shared_data: Path, tmp_path: Path):
    """The real MVTec-like magnetic-tile set, listed by a CSV of its files (nothing copied)."""
    root, category = shared_data / "mtd", "magnetic_tile"
    mvtec = {split: list_samples(root, category, split) for split in ("train", "test")}
    all_samples = mvtec["train"] + mvtec["test"]
    with open(tmp_path / "tiles.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "label", "mask", "defect_type"])
        for s in all_samples:
            writer.writerow([s.path, s.label, s.mask_path or "", s.defect_type])
    train = list_folder_samples(tmp_path, "tiles", "train")
    test = list_folder_samples(tmp_path, "tiles", "test")
    n_good = sum(s.label == 0 for s in all_samples)
    n_defect = len(all_samples) - n_good
    assert len(train) + len(test) == len(all_samples) and all(s.label == 0 for s in train)
    assert sum(s.label for s in test) == n_defect and len(test) - n_defect == round(FOLDER_TEST_FRACTION * n_good)
    assert {s.path for s in train + test} == {s.path for s in all_samples}

    split = few_shot_split(tmp_path, "tiles", num_seen=10, seed=0, format="folder")
    assert len(split.seen) == 10 and len({s.defect_type for s in split.seen}) == 5
    assert not {s.path for s in split.seen} & {s.path for s in split.test}
    assert split.to_dict()["counts"]["train"] + split.to_dict()["counts"]["val"] == len(train)
