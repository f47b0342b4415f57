"""Texture sources: procedural determinism and variety, folders, DTD's offline error."""
from __future__ import annotations

import urllib.error
from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.data import textures as tex_mod
from prn_core.data.textures import (
    PROCEDURAL_KINDS,
    DTDTextures,
    FolderTextures,
    ProceduralTextures,
    TextureSource,
    make_texture_source,
    procedural_texture,
)


def test_procedural_is_deterministic_and_seed_dependent():
    a = ProceduralTextures(count=12, seed=0)
    b = ProceduralTextures(count=12, seed=0)
    c = ProceduralTextures(count=12, seed=1)
    for i in range(12):
        assert np.array_equal(a.load(i, (48, 64)), b.load(i, (48, 64)))
    assert sum(not np.array_equal(a.load(i, (48, 64)), c.load(i, (48, 64))) for i in range(12)) == 12


def test_procedural_shapes_range_and_variety():
    src = ProceduralTextures(count=len(PROCEDURAL_KINDS) * 2, seed=5)
    assert isinstance(src, TextureSource) and len(src) == 12
    images = [src.load(i, (64, 96)) for i in range(len(src))]
    for img in images:
        assert img.shape == (64, 96, 3) and img.dtype == np.float32
        assert 0.0 <= img.min() and img.max() <= 1.0
        assert img.std() > 0.03  # visible structure, never a flat colour
    means = np.array([img.mean(axis=(0, 1)) for img in images])
    assert means.std(axis=0).min() > 0.05  # colours differ across textures


def test_procedural_rejects_unknown_kind_and_bad_count():
    with pytest.raises(ValueError, match="unknown procedural texture 'plaid'"):
        procedural_texture("plaid", (32, 32), np.random.default_rng(0))
    with pytest.raises(ValueError, match="count >= 1"):
        ProceduralTextures(count=0)
    with pytest.raises(IndexError):
        ProceduralTextures(count=2).load(2, (32, 32))


def test_folder_textures_recursive_and_resized(tmp_path: Path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((20, 30, 3), np.uint8))
    cv2.imwrite(str(tmp_path / "a" / "b" / "two.JPG"), np.full((50, 10), 255, np.uint8))
    (tmp_path / "a" / "readme.txt").write_text("not an image")
    src = FolderTextures(tmp_path)
    assert len(src) == 2 and [p.name for p in src.files] == ["two.JPG", "one.png"]
    img = src.load(0, (32, 32))
    assert img.shape == (32, 32, 3) and img.min() == 1.0


def test_folder_textures_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FolderTextures(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="holds no .png"):
        FolderTextures(tmp_path)


def test_make_texture_source_dispatch(tmp_path: Path):
    assert isinstance(make_texture_source(None, seed=3), ProceduralTextures)
    assert make_texture_source("procedural", seed=3).seed == 3
    cv2.imwrite(str(tmp_path / "t.png"), np.zeros((8, 8, 3), np.uint8))
    assert isinstance(make_texture_source(str(tmp_path)), FolderTextures)


def test_dtd_offline_error_names_the_alternatives(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="procedural textures"):
        DTDTextures(tmp_path, download=False)


def test_dtd_download_failure_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.datasets, "DTD", offline)
    with pytest.raises(FileNotFoundError, match="When offline, set data.textures to a folder"):
        tex_mod.DTDTextures(tmp_path, download=True)


@pytest.mark.realdata
def test_gimp_folder_loads(shared_data: Path):
    src = FolderTextures(shared_data / "textures" / "gimp")
    assert len(src) == 168
    img = src.load(len(src) - 1, (64, 64))
    assert img.shape == (64, 64, 3) and img.dtype == np.float32
