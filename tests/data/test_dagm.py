"""DAGM 2007 adapter on fake classes: Label/ masks, Labels.txt cross-checks, greyscale, download."""
from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.data import DatasetLayoutError, ImageCache, few_shot_split, get_format
from prn_core.data.dagm import download_dagm, list_dagm_samples

S = 32  # DAGM images are 512x512 greyscale


def _write(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)
    return path


def make_class(
    root: Path, name: str = "Class1", n: int = 6, defective: tuple[int, ...] = (1, 4), labels_txt: bool = True
) -> Path:
    """Train/ and Test/ with ``n`` images each; ``defective`` indices get an ellipse mask."""
    rng = np.random.default_rng(0)
    for folder in ("Train", "Test"):
        split_dir = root / name / folder
        rows = ["1"]  # the count line the real files start with
        for i in range(n):
            image = f"{i:04d}.PNG"
            _write(split_dir / image, rng.integers(0, 256, (S, S), dtype=np.uint8))
            if i in defective:
                mask = cv2.ellipse(np.zeros((S, S), np.uint8), (16, 16), (8, 4), 30, 0, 360, 255, -1)
                _write(split_dir / "Label" / f"{i:04d}_label.PNG", mask)
                rows.append(f"{i + 1}\t1\t{image}\t1\t{i:04d}_label.PNG")
            else:
                rows.append(f"{i + 1}\t0\t{image}\t0\t")
        if labels_txt:
            (split_dir / "Label" / "Labels.txt").write_text("\n".join(rows) + "\n")
    return root


@pytest.fixture()
def dagm(tmp_path: Path) -> Path:
    return make_class(tmp_path / "dagm")


def test_lists_labels_from_label_folder(dagm: Path):
    train = list_dagm_samples(dagm, "Class1", "train")
    test = list_dagm_samples(dagm, "Class1", "test")
    assert [s.path.name for s in train] == ["0000.PNG", "0002.PNG", "0003.PNG", "0005.PNG"]  # defects left out
    assert [s.label for s in test] == [0, 1, 0, 0, 1, 0]
    assert [s.mask_path.name for s in test if s.label] == ["0001_label.PNG", "0004_label.PNG"]
    assert {s.split for s in train} == {"train"} and {s.split for s in test} == {"test"}


def test_labels_txt_is_optional(tmp_path: Path, dagm: Path):
    plain = make_class(tmp_path / "plain", labels_txt=False)
    strip = lambda samples: [(s.path.name, s.label, s.mask_path and s.mask_path.name) for s in samples]  # noqa: E731
    assert strip(list_dagm_samples(plain, "Class1", "test")) == strip(list_dagm_samples(dagm, "Class1", "test"))


def test_categories_are_sorted_numerically(tmp_path: Path):
    for name in ("Class10", "Class2", "Class1"):
        make_class(tmp_path / "d", name, n=2, defective=(1,))
    assert get_format("dagm").categories(tmp_path / "d") == ["Class1", "Class2", "Class10"]


def test_greyscale_images_load_as_rgb(dagm: Path):
    sample = list_dagm_samples(dagm, "Class1", "test")[1]
    cache = ImageCache((64, 64))
    image, mask = cache.image(sample), cache.mask(sample)
    assert image.shape == (64, 64, 3) and np.allclose(image[..., 0], image[..., 2])
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}


def test_labels_txt_defective_without_mask_is_an_error(dagm: Path):
    (dagm / "Class1" / "Test" / "Label" / "0004_label.PNG").unlink()
    with pytest.raises(DatasetLayoutError, match=r"marks 0004\.PNG defective but .* has no mask 0004_label"):
        list_dagm_samples(dagm, "Class1", "test")


def test_mask_for_an_image_labelled_normal_is_an_error(dagm: Path):
    label_dir = dagm / "Class1" / "Train" / "Label"
    shutil.copy(label_dir / "0001_label.PNG", label_dir / "0002_label.PNG")
    with pytest.raises(DatasetLayoutError, match=r"marks 0002\.PNG normal but .*0002_label\.PNG exists"):
        list_dagm_samples(dagm, "Class1", "train")


def test_image_missing_from_labels_txt_and_bad_label(dagm: Path):
    _write(dagm / "Class1" / "Test" / "0099.PNG", np.zeros((S, S), np.uint8))
    with pytest.raises(DatasetLayoutError, match=r"0099\.PNG is not listed in .*Labels\.txt"):
        list_dagm_samples(dagm, "Class1", "test")
    (dagm / "Class1" / "Train" / "Label" / "Labels.txt").write_text("1\n1\tyes\t0000.PNG\t0\n")
    with pytest.raises(DatasetLayoutError, match="line 2: label must be 0 or 1, got 'yes'"):
        list_dagm_samples(dagm, "Class1", "train")


def test_missing_split_folder(tmp_path: Path):
    (tmp_path / "d" / "Class3" / "Train").mkdir(parents=True)
    with pytest.raises(DatasetLayoutError, match="missing folder .*Class3/Test"):
        list_dagm_samples(tmp_path / "d", "Class3", "test")


def test_few_shot_split_on_dagm(dagm: Path):
    split = few_shot_split(dagm, "Class1", num_seen=1, seed=0, format="dagm")
    assert len(split.seen) == 1 and split.seen[0].label == 1 and len(split.test) == 5
    assert split.to_dict()["files"]["train"][0].startswith("Train/")


def test_download_checks_counts(tmp_path: Path):
    make_class(tmp_path / "src", "Class2", n=3, defective=(0,))
    archive = shutil.make_archive(str(tmp_path / "served" / "Class2"), "zip", tmp_path / "src")
    urls = {"Class2": Path(archive).as_uri()}
    root = download_dagm(tmp_path / "cache", ["Class2"], urls=urls, counts={"Class2": (6, 1, 1)})
    assert root == tmp_path / "cache" and len(list_dagm_samples(root, "Class2", "test")) == 3
    with pytest.raises(ValueError, match=r"\(6, 1, 1\) after download, expected \(1150, 66, 84\)"):
        download_dagm(tmp_path / "cache2", ["Class2"], urls=urls)
    with pytest.raises(ValueError, match=r"must come from .*Class10.*got \['Class11'\]"):
        download_dagm(tmp_path / "cache3", ["Class11"])
