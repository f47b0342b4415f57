"""The dataset-format registry, its shared helpers, and few_shot_split's format keyword."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.config import DataConfig
from prn_core.data import DATASET_FORMATS, DatasetLayoutError, few_shot_split, get_format, list_samples, register_format
from prn_core.data.formats import locate_extracted, mask_index
from prn_core.data.mvtec import MVTecFormat


def _png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def _mvtec(root: Path) -> Path:
    rng = np.random.default_rng(0)
    cat = root / "widget"
    for i in range(6):
        _png(cat / "train" / "good" / f"{i:03d}.png", rng.integers(0, 256, (32, 64, 3), dtype=np.uint8))
    for i in range(3):
        _png(cat / "test" / "good" / f"{i:03d}.png", rng.integers(0, 256, (32, 64, 3), dtype=np.uint8))
        _png(cat / "test" / "crack" / f"{i:03d}.png", rng.integers(0, 256, (32, 64, 3), dtype=np.uint8))
        mask = np.zeros((32, 64), np.uint8)
        mask[4:12, 8:20] = 255
        _png(cat / "ground_truth" / "crack" / f"{i:03d}_mask.png", mask)
    return root


def test_every_config_format_name_is_registered():
    assert set(DATASET_FORMATS) >= {"mvtec", "btad", "kolektorsdd2", "dagm", "folder"}
    assert DataConfig().format in DATASET_FORMATS
    for name, fmt in DATASET_FORMATS.items():
        assert fmt.name == name


def test_unknown_format_lists_the_choices():
    with pytest.raises(ValueError, match="unknown dataset format 'visa'.*btad.*dagm.*folder.*kolektorsdd2.*mvtec"):
        get_format("visa")


def test_register_rejects_a_second_class_and_an_incomplete_one():
    with pytest.raises(ValueError, match="already registered"):

        @register_format("mvtec")
        class Other:
            def categories(self, root):
                return []

            def list_samples(self, root, category, split):
                return []

    with pytest.raises(TypeError, match="list_samples"):

        @register_format("broken_test_format")
        class Broken:
            def categories(self, root):
                return []

    assert "broken_test_format" not in DATASET_FORMATS
    assert isinstance(DATASET_FORMATS["mvtec"], MVTecFormat)


def test_mvtec_format_is_the_mvtec_lister(tmp_path: Path):
    root = _mvtec(tmp_path)
    fmt = get_format("mvtec")
    assert fmt.categories(root) == ["widget"]
    assert fmt.categories(tmp_path / "missing") == []
    for split in ("train", "test"):
        assert fmt.list_samples(root, "widget", split) == list_samples(root, "widget", split)


def test_few_shot_split_format_keyword_keeps_mvtec_records(tmp_path: Path):
    root = _mvtec(tmp_path)
    default = few_shot_split(root, "widget", num_seen=2, seed=3)
    named = few_shot_split(root, "widget", num_seen=2, seed=3, format="mvtec")
    assert default.fingerprint() == named.fingerprint()
    assert "format" not in default.to_dict()
    with pytest.raises(ValueError, match="unknown dataset format"):
        few_shot_split(root, "widget", format="nope")


def test_mask_index_ignores_case_and_rejects_ambiguous_stems(tmp_path: Path):
    _png(tmp_path / "m" / "0001_label.PNG", np.zeros((8, 8), np.uint8))
    (tmp_path / "m" / "notes.txt").write_text("not an image")
    index = mask_index(tmp_path / "m")
    assert list(index) == ["0001_label"] and index["0001_label"].name == "0001_label.PNG"
    assert mask_index(tmp_path / "absent") == {}
    _png(tmp_path / "m" / "0001_label.bmp", np.zeros((8, 8), np.uint8))
    with pytest.raises(DatasetLayoutError, match="two masks share the name '0001_label'"):
        mask_index(tmp_path / "m")


def test_locate_extracted_looks_one_level_down(tmp_path: Path):
    (tmp_path / "Wrapped" / "data" / "train").mkdir(parents=True)
    is_root = lambda p: (p / "data" / "train").is_dir()  # noqa: E731
    assert locate_extracted(tmp_path, is_root, "data") == tmp_path / "Wrapped"
    with pytest.raises(DatasetLayoutError, match="does not hold the thing.*Wrapped"):
        locate_extracted(tmp_path, lambda p: False, "the thing")
