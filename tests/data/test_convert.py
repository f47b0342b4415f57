"""write_folder_dataset: any dataset's samples in the folder layout, readable by the folder format."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from prn_core.data import get_format, list_samples, read_image, read_mask
from prn_core.data.convert import write_folder_dataset


@pytest.fixture(scope="module")
def demo_samples(tmp_path_factory):
    from prn_core.data import make_demo_dataset

    root = make_demo_dataset(tmp_path_factory.mktemp("demo"), num_train=6, num_test_good=2, num_per_defect=1, size=96)
    return list_samples(root, "demo_washer", "train") + list_samples(root, "demo_washer", "test")


def test_round_trip_keeps_labels_masks_and_pixels(demo_samples, tmp_path):
    dest = write_folder_dataset(demo_samples, tmp_path / "parts")
    assert sorted(p.name for p in dest.iterdir()) == ["defect", "good", "masks"]
    fmt = get_format("folder")
    written = fmt.list_samples(tmp_path, "parts", "train") + fmt.list_samples(tmp_path, "parts", "test")
    assert len(written) == len(demo_samples)
    assert sum(s.label for s in written) == sum(s.label for s in demo_samples)
    assert all(s.mask_path is not None for s in written if s.label)
    by_name = {s.path.name: s for s in written}
    source = next(s for s in demo_samples if s.label)
    copy = by_name[f"{source.defect_type}_{source.path.stem}.png"]
    np.testing.assert_array_equal(read_image(copy.path), read_image(source.path))
    np.testing.assert_array_equal(read_mask(copy.mask_path), read_mask(source.mask_path))


def test_resize_and_one_folder_per_defect_type(demo_samples, tmp_path):
    dest = write_folder_dataset(demo_samples, tmp_path / "long", image_size=(64, 128), defect_folder=None)
    types = {s.defect_type for s in demo_samples}
    assert {p.name for p in dest.iterdir()} == types | {"masks"}
    for path in list((dest / "good").iterdir())[:2] + list((dest / "masks").iterdir())[:2]:
        assert read_image(path).shape[:2] == (64, 128)
    masks = [read_mask(p) for p in (dest / "masks").iterdir()]
    assert all(m.any() for m in masks), "a resized mask lost its defect"


def test_refuses_an_existing_destination_and_no_samples(demo_samples, tmp_path):
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        write_folder_dataset(demo_samples, tmp_path / "taken")
    with pytest.raises(ValueError, match="no samples"):
        write_folder_dataset([], tmp_path / "empty")
    assert not Path(tmp_path / "empty").exists()
