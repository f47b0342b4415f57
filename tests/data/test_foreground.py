"""Foreground masks: objects vs textures, the disk cache, and coverage of real defects."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.data import foreground as fg_mod
from prn_core.data.demo import render_demo_image
from prn_core.data.foreground import cached_foreground, estimate_foreground
from prn_core.config import get_profile
from prn_core.data.images import ImageCache
from prn_core.data.split import few_shot_split
from prn_core.data.textures import ProceduralTextures


def _disc_image(h: int = 120, w: int = 160, rng_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A shaded disc on a slightly noisy light background, float32 (H, W, 3), and its mask."""
    rng = np.random.default_rng(rng_seed)
    yy, xx = np.mgrid[0:h, 0:w]
    disc = (yy - h / 2) ** 2 + (xx - w / 2) ** 2 < (h / 3) ** 2
    img = np.full((h, w, 3), 0.85, np.float32) + rng.normal(0, 0.01, (h, w, 3)).astype(np.float32)
    img[disc] = (0.3 + 0.2 * (xx[disc] / w))[:, None] * np.array([1.0, 0.8, 0.6])
    return np.clip(img, 0, 1), disc


def test_object_mask_covers_the_object_and_not_the_corners():
    img, disc = _disc_image()
    fg = estimate_foreground(img)
    assert fg.shape == disc.shape and fg.dtype == bool
    assert fg[disc].mean() == 1.0  # the whole object, outline included
    assert not fg[:10, :10].any() and not fg[-10:, -10:].any()
    assert fg.mean() < disc.mean() * 1.5  # a margin, not the whole image


def test_holes_are_filled_and_outline_defects_are_inside():
    img, disc = _disc_image()
    img[55:65, 75:85] = 0.85  # a background-coloured patch inside the object (a reflection)
    img[20:40, 76:84] = 0.85  # a notch cut into the outline (a missing piece)
    fg = estimate_foreground(img)
    assert fg[55:65, 75:85].all() and fg[20:40, 76:84].all()


@pytest.mark.parametrize("index", range(6))
def test_textures_are_all_foreground(index: int):
    tex = ProceduralTextures(count=6, seed=3).load(index, (96, 96))
    assert estimate_foreground(tex).all()


def test_flat_image_is_all_foreground():
    assert estimate_foreground(np.full((64, 64, 3), 0.5, np.float32)).all()


def test_demo_categories_object_vs_surface():
    _, washer, _ = render_demo_image("demo_washer", None, np.random.default_rng(0), size=128)
    fg = estimate_foreground(washer.astype(np.float32) / 255)
    assert 0.3 < fg.mean() < 0.8 and not fg[:5, :5].any()
    _, terrazzo, _ = render_demo_image("demo_terrazzo", None, np.random.default_rng(0), size=128)
    assert estimate_foreground(terrazzo.astype(np.float32) / 255).all()


def test_cache_reuses_and_invalidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    img, disc = _disc_image()
    path = tmp_path / "obj.png"
    cv2.imwrite(str(path), cv2.cvtColor((img * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
    cache = tmp_path / "cache"
    first = cached_foreground(path, (64, 96), cache_dir=cache)
    assert first.shape == (64, 96) and first.dtype == bool and len(list(cache.glob("*.png"))) == 1

    def boom(_):
        raise AssertionError("recomputed although cached")

    monkeypatch.setattr(fg_mod, "estimate_foreground", boom)
    assert np.array_equal(cached_foreground(path, (64, 96), cache_dir=cache), first)
    with pytest.raises(AssertionError, match="recomputed"):
        cached_foreground(path, (64, 64), cache_dir=cache)  # another size is another key
    os.utime(path, ns=(1, 1))  # a touched file must not reuse the old mask
    with pytest.raises(AssertionError, match="recomputed"):
        cached_foreground(path, (64, 96), cache_dir=cache)


@pytest.mark.realdata
@pytest.mark.parametrize("folder,category", [("mvtec", "bottle"), ("hazelnut_toy", "hazelnut")])
def test_seen_defects_fall_inside_the_foreground_of_plausible_masks(shared_data: Path, folder: str,
                                                                     category: str):
    """>= 95 % of the *seen* anomalies' defect pixels inside the foreground, and object-sized
    masks on the normal training images. Only what training may look at is used: the test
    split's masks never tune the foreground (issue 11, item 8)."""
    root = shared_data / folder
    cfg = get_profile("cpu")
    split = few_shot_split(root, category, num_seen=cfg.data.num_seen, seed=cfg.seed)
    cache = ImageCache((256, 256))
    inside = total = 0
    for s in split.seen:
        mask = cache.mask(s).astype(bool)
        inside += int((estimate_foreground(cache.image(s)) & mask).sum())
        total += int(mask.sum())
    assert len(split.seen) == cfg.data.num_seen and inside / total >= 0.95
    areas = [estimate_foreground(cache.image(s)).mean() for s in split.train[::5]]
    assert 0.1 < min(areas) and max(areas) < 0.8  # a real object mask, not "everything"
