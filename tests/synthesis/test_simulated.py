"""Simulated anomalies: blending formula, exact masks, untouched outside, beta limits, caching."""
from __future__ import annotations

import numpy as np
import pytest

from prn_core.config import SynthesisConfig
from prn_core.data import FolderTextures, load_image
from prn_core.synthesis.augment import TEXTURE_OPS, augment_texture
from prn_core.synthesis.simulated import SimulatedAnomaly

SIZE = (64, 96)


class CountingTextures:
    """Minimal texture source: fixed random textures on the 1/255 grid; counts loads."""

    def __init__(self, count: int = 3, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.images = [rng.integers(0, 256, (*SIZE, 3)).astype(np.float32) / 255.0 for _ in range(count)]
        self.loads = 0

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int, image_size: tuple[int, int]) -> np.ndarray:
        self.loads += 1
        return self.images[index]


def _image(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((*SIZE, 3), dtype=np.float32)


def test_output_types_range_and_untouched_outside():
    image = _image()
    for seed in range(10):
        out, mask = SimulatedAnomaly(CountingTextures(), SIZE)(image, np.random.default_rng(seed))
        assert out.shape == image.shape and out.dtype == np.float32 and mask.dtype == np.float32
        assert set(np.unique(mask).tolist()) <= {0.0, 1.0} and mask.any()
        assert 0.0 <= out.min() and out.max() <= 1.0
        np.testing.assert_array_equal(out[mask == 0], image[mask == 0])  # bit for bit


def test_mask_is_exactly_the_changed_pixels():
    class White(CountingTextures):
        def load(self, index, image_size):
            return np.ones((*image_size, 3), np.float32)

    image = np.zeros((*SIZE, 3), np.float32)
    for seed in range(5):
        out, mask = SimulatedAnomaly(White(), SIZE, beta_max=0.8, texture_ops=0)(image, np.random.default_rng(seed))
        np.testing.assert_array_equal((out != image).any(axis=2), mask > 0)


def test_beta_zero_pastes_the_pure_augmented_texture():
    textures = CountingTextures(count=1)
    flip = lambda im, rng: im[:, ::-1].copy()  # noqa: E731 - an injected, recognisable augmentation
    sim = SimulatedAnomaly(textures, SIZE, beta_max=0.0, texture_ops=1, ops=(flip,))
    out, mask = sim(_image(), np.random.default_rng(0))
    inside = mask > 0
    np.testing.assert_array_equal(out[inside], textures.images[0][:, ::-1][inside])


def test_beta_one_gives_the_original_image():
    image = _image()
    out, mask = SimulatedAnomaly(CountingTextures(), SIZE, beta_min=1.0, beta_max=1.0)(image, np.random.default_rng(0))
    assert mask.any()
    np.testing.assert_array_equal(out, image)
    out, _ = SimulatedAnomaly(CountingTextures(), SIZE, beta_min=0.999, beta_max=1.0)(image, np.random.default_rng(0))
    np.testing.assert_allclose(out, image, atol=1e-3)


def test_blend_follows_the_formula_for_a_known_beta():
    textures, image = CountingTextures(count=1), _image()
    sim = SimulatedAnomaly(textures, SIZE, beta_min=0.25, beta_max=0.25, texture_ops=0)
    out, mask = sim(image, np.random.default_rng(0))
    expected = (1 - mask[..., None]) * image + mask[..., None] * (0.75 * textures.images[0] + 0.25 * image)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_foreground_restriction():
    foreground = np.zeros(SIZE, bool)
    foreground[16:48, 24:72] = True
    sim = SimulatedAnomaly(CountingTextures(), SIZE)
    for seed in range(5):
        out, mask = sim(_image(), np.random.default_rng(seed), foreground)
        assert mask.any() and not mask[~foreground].any()
    image = _image()
    out, mask = sim(image, np.random.default_rng(0), np.zeros(SIZE, bool))
    assert not mask.any()  # nothing to put it on: an empty mask, which the mix labels normal
    np.testing.assert_array_equal(out, image)


def test_seeded_and_cached():
    textures = CountingTextures()
    sim = SimulatedAnomaly(textures, SIZE)
    a = sim(_image(), np.random.default_rng(5))
    b = sim(_image(), np.random.default_rng(5))
    c = sim(_image(), np.random.default_rng(6))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    for seed in range(30):
        sim(_image(), np.random.default_rng(seed))
    assert textures.loads == len(textures)  # each texture decoded once


def test_accepts_uint8_images():
    image = (np.random.default_rng(0).random((*SIZE, 3)) * 255).astype(np.uint8)
    out, mask = SimulatedAnomaly(CountingTextures(), SIZE)(image, np.random.default_rng(0))
    np.testing.assert_array_equal(out[mask == 0], image[mask == 0] / np.float32(255))


@pytest.mark.parametrize("op", TEXTURE_OPS, ids=lambda op: op.__name__)
def test_each_texture_op_keeps_uint8_shape_and_is_seeded(op):
    texture = (CountingTextures(count=1).images[0] * 255).astype(np.uint8)
    a, b = op(texture, np.random.default_rng(0)), op(texture, np.random.default_rng(0))
    assert a.shape == texture.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)


def test_augment_texture_draws_distinct_ops():
    texture = np.full((8, 8, 3), 100, np.uint8)
    calls: list[int] = []
    ops = tuple((lambda k: lambda im, rng: (calls.append(k), im)[1])(k) for k in range(10))
    augment_texture(texture, np.random.default_rng(0), 3, ops)
    assert len(calls) == 3 and len(set(calls)) == 3
    np.testing.assert_array_equal(augment_texture(texture, np.random.default_rng(0), 0), texture)
    with pytest.raises(ValueError, match="uint8"):
        augment_texture(texture.astype(np.float32), np.random.default_rng(0))


def test_from_config_takes_the_synthesis_settings():
    config = SynthesisConfig(beta_max=0.3, perlin_max_scale=2, perlin_threshold=0.4, texture_ops=1)
    sim = SimulatedAnomaly.from_config(CountingTextures(), SIZE, config)
    assert (sim.beta_max, sim.max_scale, sim.threshold, sim.texture_ops) == (0.3, 2, 0.4, 1)


def test_user_errors():
    class Empty(CountingTextures):
        def __len__(self):
            return 0

    with pytest.raises(ValueError, match="at least one texture"):
        SimulatedAnomaly(Empty(), SIZE)
    with pytest.raises(ValueError, match="beta"):
        SimulatedAnomaly(CountingTextures(), SIZE, beta_max=1.5)
    with pytest.raises(ValueError, match="image_size"):
        SimulatedAnomaly(CountingTextures(), SIZE)(np.zeros((32, 32, 3), np.float32), np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"texture \d+ has shape"):
        SimulatedAnomaly(CountingTextures(), (32, 32))(np.zeros((32, 32, 3), np.float32), np.random.default_rng(0))


@pytest.mark.realdata
@pytest.mark.parametrize("category", ["mvtec/bottle", "hazelnut_toy/hazelnut"])
def test_real_images_and_gimp_textures_make_visible_textures(shared_data, category):
    size = (128, 128)
    gimp = FolderTextures(shared_data / "textures" / "gimp")
    image = load_image(sorted((shared_data / category / "train" / "good").iterdir())[0], size)
    sim = SimulatedAnomaly(gimp, size, beta_max=0.0, texture_ops=0)
    textures = [gimp.load(i, size) for i in range(len(gimp))]
    for seed in range(4):
        out, mask = sim(image, np.random.default_rng(seed))
        inside = mask > 0
        np.testing.assert_array_equal(out[~inside], image[~inside])
        # beta = 0 without ops: exactly the texture's pixels (to uint8 precision), not a dark blob
        assert any(np.abs(out[inside] - t[inside]).max() <= 0.5 / 255 + 1e-6 for t in textures)


def test_shading_only_scales_brightness_inside_the_mask():
    """shading_prob=1: every anomaly is a gain g = exp(+-u), u in [0.15, 0.5), on the masked pixels."""
    image = np.full((*SIZE, 3), 0.5, np.float32)
    gains = []
    for seed in range(20):
        out, mask = SimulatedAnomaly(CountingTextures(), SIZE, shading_prob=1.0)(
            image, np.random.default_rng(seed))
        inside = out[mask > 0]
        assert mask.any() and np.array_equal(out[mask == 0], image[mask == 0])
        assert np.allclose(inside, inside[0])  # one gain, no texture
        gains.append(float(inside[0, 0] / 0.5))
    log_gains = np.abs(np.log(gains))
    assert log_gains.min() >= 0.15 - 1e-6 and log_gains.max() < 0.5
    assert min(gains) < 1 < max(gains)  # darker and brighter both occur


def test_shading_prob_is_checked():
    with pytest.raises(ValueError, match="shading_prob"):
        SimulatedAnomaly(CountingTextures(), SIZE, shading_prob=1.5)
    with pytest.raises(ValueError, match="synthesis.shading_prob"):
        SynthesisConfig(shading_prob=-0.1)
