"""Perlin noise and masks: a reference answer, binary masks, scales, the empty-mask policy, speed."""
from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from prn_core.synthesis.perlin import perlin_mask, perlin_noise


def _textbook_perlin(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Per-pixel Perlin noise (DRAEM's rand_perlin_2d_np), same gradient draws, float64."""
    (h, w), (ry, rx) = shape, res
    angles = rng.random((ry + 1, rx + 1), dtype=np.float32) * np.float32(2 * np.pi)
    grad = np.stack([np.cos(angles), np.sin(angles)], -1).astype(np.float64)
    dy, dx = -(-h // ry), -(-w // rx)
    yy, xx = np.mgrid[0 : ry * dy, 0 : rx * dx]
    cy, cx, fy, fx = yy // dy, xx // dx, (yy % dy) / dy, (xx % dx) / dx

    def dot(oy: int, ox: int) -> np.ndarray:
        g = grad[cy + oy, cx + ox]
        return g[..., 0] * (fx - ox) + g[..., 1] * (fy - oy)

    fade = lambda t: 6 * t**5 - 15 * t**4 + 10 * t**3  # noqa: E731
    n0 = dot(0, 0) + fade(fx) * (dot(0, 1) - dot(0, 0))
    n1 = dot(1, 0) + fade(fx) * (dot(1, 1) - dot(1, 0))
    return np.sqrt(2) * (n0 + fade(fy) * (n1 - n0))[:h, :w]


@pytest.mark.parametrize("shape,res", [((64, 64), (1, 1)), ((256, 256), (4, 32)), ((96, 160), (3, 7))])
def test_noise_matches_textbook_implementation(shape, res):
    fast = perlin_noise(shape, res, np.random.default_rng(3))
    slow = _textbook_perlin(shape, res, np.random.default_rng(3))
    assert fast.shape == shape and fast.dtype == np.float32
    np.testing.assert_allclose(fast, slow, atol=1e-5)


def test_noise_is_zero_on_lattice_points_and_bounded():
    noise = perlin_noise((64, 64), (4, 4), np.random.default_rng(0))
    assert np.abs(noise[::16, ::16]).max() < 1e-6
    assert np.abs(noise).max() <= 1.0


def test_mask_is_binary_float_and_seeded():
    a = perlin_mask((128, 96), np.random.default_rng(7))
    b = perlin_mask((128, 96), np.random.default_rng(7))
    c = perlin_mask((128, 96), np.random.default_rng(8))
    assert a.shape == (128, 96) and a.dtype == np.float32
    assert set(np.unique(a).tolist()) <= {0.0, 1.0} and a.any()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_finer_scales_make_more_blobs():
    def blobs(scale: int) -> float:
        masks = [perlin_mask((128, 128), np.random.default_rng(s), scale, scale) for s in range(10)]
        counts = [cv2.connectedComponents(m.astype(np.uint8))[0] - 1 for m in masks]
        return float(np.mean(counts))

    assert blobs(5) > 3 * blobs(1)


def test_threshold_controls_coverage():
    rng = np.random.default_rng(0)
    assert perlin_mask((32, 32), rng, threshold=-2.0).all()
    low = np.mean([perlin_mask((64, 64), np.random.default_rng(s), threshold=0.3).mean() for s in range(10)])
    high = np.mean([perlin_mask((64, 64), np.random.default_rng(s), threshold=0.6).mean() for s in range(10)])
    assert low > 2 * high > 0


def test_empty_mask_policy_returns_empty_after_max_tries():
    mask = perlin_mask((64, 64), np.random.default_rng(0), threshold=1.5, max_tries=3)
    assert mask.shape == (64, 64) and not mask.any()


def test_default_masks_are_rarely_empty():
    empty = sum(not perlin_mask((64, 64), np.random.default_rng(s), max_tries=1).any() for s in range(200))
    assert empty < 30  # about 5 % per try; 8 tries make an empty result ~1e-10


@pytest.mark.parametrize("kwargs", [dict(min_scale=3, max_scale=2), dict(min_scale=-1), dict(max_tries=0)])
def test_bad_mask_arguments_raise(kwargs):
    with pytest.raises(ValueError):
        perlin_mask((32, 32), np.random.default_rng(0), **kwargs)


def test_bad_noise_resolution_raises():
    with pytest.raises(ValueError, match="positive"):
        perlin_noise((32, 32), (0, 2), np.random.default_rng(0))


def test_mask_is_faster_than_plain_numpy_reference():
    cv2.setNumThreads(1)
    rng = np.random.default_rng(0)
    perlin_mask((256, 256), rng)
    start = time.perf_counter()
    for _ in range(20):
        perlin_mask((256, 256), rng)
    per_mask = (time.perf_counter() - start) / 20
    assert per_mask < 8.5e-3, f"{per_mask * 1e3:.1f} ms per 256x256 mask; the plain numpy version takes ~8.5 ms"
