"""Image and mask loading, resizing, keep-aspect padding and the image cache."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from prn_core.data import images as images_mod
from prn_core.data.images import ImageCache, load_image, load_mask, read_mask
from prn_core.data.mvtec import list_samples

from fake_mvtec import make_tree, write_image

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
    write_image(tmp_path / "red.png", bgr)
    assert np.allclose(load_image(tmp_path / "red.png", (64, 64))[10, 10], [1, 0, 0])


def test_masks_saved_as_zero_one_and_with_noise_binarise(tmp_path: Path):
    m = np.zeros((20, 20), np.uint8)
    m[5:10, 5:10] = 1
    write_image(tmp_path / "01.png", m)
    assert read_mask(tmp_path / "01.png").sum() == 25
    m255 = m * 255
    m255[0, 0] = 100  # anti-aliasing below half is background
    write_image(tmp_path / "0255.png", m255)
    assert read_mask(tmp_path / "0255.png").sum() == 25


def test_mask_resize_is_nearest_and_small_defects_survive(tmp_path: Path):
    m = np.zeros((256, 256), np.uint8)
    m[100:164, 100:164] = 255
    m[10, 10] = 255  # one pixel: nearest neighbour at 1/8 scale would usually drop it ...
    write_image(tmp_path / "m.png", m)
    small = load_mask(tmp_path / "m.png", (64, 64))
    assert set(np.unique(small)) == {0, 1} and small[25:41, 25:41].all()
    tiny = np.zeros((256, 256), np.uint8)
    tiny[9, 9] = 255  # ... and a mask that is only that pixel must not become empty
    write_image(tmp_path / "tiny.png", tiny)
    assert load_mask(tmp_path / "tiny.png", (32, 32)).sum() >= 1


def test_keep_aspect_pads_and_reports_the_valid_region(tmp_path: Path):
    write_image(tmp_path / "wide.png", np.full((50, 100, 3), 200, np.uint8))
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
