"""viz.data: samples, the split, foregrounds, resizing, Perlin masks, textures, extended anomalies,
the epoch mix and anomaly galleries."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from figure_checks import array, assert_pictures_in_range, scale

from prn_core import viz
from prn_core.config import SynthesisConfig
from prn_core.data import DEMO_DEFECTS, ImageCache, ProceduralTextures, few_shot_split, list_samples, make_demo_dataset
from prn_core.data.images import resize_image
from prn_core.models import image_array
from prn_core.synthesis import AnomalyMix, ExtendedAnomaly, SimulatedAnomaly, perlin_mask, perlin_noise
from prn_core.synthesis.mix import KINDS


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), num_train=6, num_test_good=2, num_per_defect=2, size=64)


def _defect(size: int = 48):
    image = np.full((size, size, 3), 0.5, np.float32)
    mask = np.zeros((size, size), np.uint8)
    image[10:18, 10:20], mask[10:18, 10:20] = 1.0, 1
    return image, mask


class _Flat:
    """A texture source of one white texture."""

    def __len__(self) -> int:
        return 1

    def load(self, index: int, image_size: tuple[int, int]) -> np.ndarray:
        return np.ones((*image_size, 3), np.float32)


# --- anomalies, galleries and samples -------------------------------------------------------


def test_show_anomalies_layout_and_tensor_inputs():
    images = [np.random.default_rng(0).random((16, 16, 3)), torch.rand(3, 16, 16)]
    masks = [np.eye(16), torch.ones(1, 16, 16)]
    fig = viz.show_anomalies(images, masks, titles=["a", "b"])
    assert len(fig.axes) == 3 * 2  # rows image, mask, overlay; one column per sample
    assert assert_pictures_in_range(fig) == 4
    assert all(scale(ax.images[0]) == ("gray", 0, 1) for ax in fig.axes[2:4])
    np.testing.assert_allclose(array(fig.axes[1]), images[1].permute(1, 2, 0).numpy())  # CHW drawn as HWC
    assert len(viz.show_anomalies(images, masks, rows=("overlay",)).axes) == 2


def test_show_anomalies_rejects_bad_input():
    with pytest.raises(ValueError, match="as many masks"):
        viz.show_anomalies([np.zeros((4, 4, 3))], [])
    with pytest.raises(ValueError, match="unknown rows"):
        viz.show_anomalies([np.zeros((4, 4, 3))], [np.zeros((4, 4))], rows=("heatmap",))


def test_anomaly_gallery_from_a_mix_and_from_generators():
    size = (64, 64)
    normals = [np.random.default_rng(i).random((*size, 3), dtype=np.float32) for i in range(4)]
    sim = SimulatedAnomaly(_Flat(), size)
    mix = AnomalyMix(normals, sim, epoch_size=16)
    fig = viz.anomaly_gallery(mix, per_kind=3)
    kinds = [k for k in KINDS if k in mix.schedule()[0]]
    assert len(fig.axes) == 2 * len(kinds) * 3  # (image, overlay) per kind, 3 columns
    assert [ax.get_ylabel().split("\n")[0] for ax in fig.axes[::6]] == kinds  # blocks in KINDS order
    assert assert_pictures_in_range(fig) == len(fig.axes)
    makers = {"simulated": lambda rng: sim(normals[0], rng)}
    fig = viz.anomaly_gallery(makers, per_kind=2, rows=("image", "mask", "overlay"))
    assert len(fig.axes) == 6
    expected, _ = sim(normals[0], np.random.default_rng([0, 1]))  # column i draws with rng [seed, i]
    np.testing.assert_allclose(array(fig.axes[1]), image_array(expected))


def test_show_samples_shows_the_first_sample_of_each_type_good_first(demo_root):
    samples = list_samples(demo_root, "demo_washer", "test")
    fig = viz.show_samples(samples, (64, 64))
    firsts = {}
    for s in samples:
        firsts.setdefault(s.defect_type, s)
    chosen = [firsts["good"], *(firsts[t] for t in sorted(DEMO_DEFECTS))]
    assert len(fig.axes) == 2 * len(chosen)  # image and overlay rows
    cache = ImageCache((64, 64))
    for ax, sample in zip(fig.axes[: len(chosen)], chosen):
        np.testing.assert_allclose(array(ax), image_array(cache.image(sample)))
    assert assert_pictures_in_range(fig) == len(fig.axes)


def test_show_samples_all_and_errors(demo_root):
    samples = list_samples(demo_root, "demo_washer", "test")[:3]
    fig = viz.show_samples(samples, (64, 64), per_type=None, rows=("overlay",))
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="no samples"):
        viz.show_samples([], (64, 64))


def test_plot_split_counts_match_the_split(demo_root):
    split = few_shot_split(demo_root, "demo_washer", num_seen=3, seed=1)
    ax = viz.plot_split(split).axes[0]
    widths = [int(p.get_width()) for p in ax.patches]
    assert sum(widths) == len(split.train) + len(split.val) + len(split.seen) + len(split.test)
    leaky = viz.plot_split(few_shot_split(demo_root, "demo_washer", num_seen=3, seed=1, leaky=True)).axes[0]
    assert sum(int(p.get_width()) for p in leaky.patches) == sum(widths) + 3  # seen files stay in test


def test_show_foregrounds_dims_the_background():
    image = np.full((64, 64, 3), 0.9, np.float32)
    image[16:48, 16:48] = 0.2
    fig = viz.show_foregrounds([image])
    assert len(fig.axes) == 2 and assert_pictures_in_range(fig) == 2
    dimmed = array(fig.axes[1])
    assert np.isclose(dimmed[2, 2, 0], 0.25 * 0.9) and np.isclose(dimmed[32, 32, 0], 0.2)
    fig = viz.show_foregrounds([image], [np.ones((64, 64), bool)], titles=["all"])
    np.testing.assert_allclose(array(fig.axes[1]), image)  # all foreground: nothing dimmed, no outline
    assert not fig.axes[1].collections
    with pytest.raises(ValueError, match="no images"):
        viz.show_foregrounds([])


# --- resizing to the model's size ------------------------------------------------------------


@pytest.fixture()
def long_image(tmp_path):
    """A 64x160 image (aspect 0.4) with a 10x10 defect and its mask."""
    image = np.random.default_rng(0).integers(0, 256, (64, 160, 3), dtype=np.uint8)
    mask = np.zeros((64, 160), np.uint8)
    mask[20:30, 100:110] = 255
    assert cv2.imwrite(str(tmp_path / "long.png"), image) and cv2.imwrite(str(tmp_path / "long_mask.png"), mask)
    return tmp_path / "long.png", tmp_path / "long_mask.png"


def test_show_resizing_panels_keep_their_shapes_and_the_valid_region(long_image):
    path, mask = long_image
    fig = viz.show_resizing(path, (64, 96), mask)
    assert len(fig.axes) == 4 and assert_pictures_in_range(fig) == 3
    shapes = [array(ax).shape[:2] for ax in fig.axes]
    assert shapes == [(64, 160), (64, 96), (64, 96), (64, 96)]
    # 64x160 fitted into 64x96: scale 0.6 -> 38x96 content in rows 13..50, the rest padding
    valid = array(fig.axes[3])
    assert valid[:13].max() == 0 and valid[13:51].min() == 1 and valid[51:].max() == 0
    assert scale(fig.axes[3].images[0]) == ("gray", 0, 1)
    padded = array(fig.axes[2])
    assert (padded[..., 0] > padded[..., 1] + 0.2).any(), "the defect is not tinted in the padded panel"


def test_show_resizing_without_mask_tints_nothing(long_image):
    fig = viz.show_resizing(long_image[0], (64, 64))
    assert [array(ax).shape[:2] for ax in fig.axes] == [(64, 160), (64, 64), (64, 64), (64, 64)]
    raw = cv2.cvtColor(cv2.imread(str(long_image[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_allclose(array(fig.axes[1]), image_array(resize_image(raw, (64, 64), keep_aspect=False)))
    valid = array(fig.axes[3])  # the valid region of the padded panel: a band across the middle
    assert valid[0].max() == 0 and valid[32].min() == 1 and valid[-1].max() == 0


# --- synthesis -------------------------------------------------------------------------------


def test_show_perlin_masks_rows_are_scales_and_reproducible():
    fig = viz.show_perlin_masks((32, 32), scales=(1, 3), per_scale=2, seed=5)
    assert len(fig.axes) == 2 * 3  # one row per scale: the noise, then 2 masks
    expected = perlin_mask((32, 32), np.random.default_rng([5, 3, 1]), 3, 3)
    assert np.array_equal(array(fig.axes[5]), expected)
    noise = perlin_noise((32, 32), (8, 8), np.random.default_rng([5, 3, 2]))
    np.testing.assert_array_equal(array(fig.axes[3]), noise)
    assert scale(fig.axes[3].images[0]) == ("RdBu_r", -1, 1)
    assert {scale(fig.axes[i].images[0]) for i in (1, 2, 4, 5)} == {("gray", 0, 1)}


def test_show_textures_draws_uint8_textures_and_their_augmented_copies():
    source = ProceduralTextures(count=3)
    fig = viz.show_textures(source, (64, 64), count=5)
    assert len(fig.axes) == 2 * 3  # count is capped by the source's length
    assert assert_pictures_in_range(fig) == 6
    top, bottom = array(fig.axes[0]), array(fig.axes[3])
    assert top.dtype == np.uint8 and top.shape == bottom.shape == (64, 64, 3)
    np.testing.assert_array_equal(top, np.clip(np.rint(source.load(0, (64, 64)) * 255), 0, 255).astype(np.uint8))
    with pytest.raises(ValueError, match="at least one texture"):
        viz.show_textures(ProceduralTextures(count=1), count=0)


def test_show_extended_layout_and_errors():
    image, mask = _defect()
    normals = [np.zeros((48, 48, 3), np.float32)] * 2
    fig = viz.show_extended([image, image], [mask, mask], normals, count=3, labels=["a", "b"])
    assert len(fig.axes) == 2 * 4  # per seen defect: the real one and 3 extended ones
    assert assert_pictures_in_range(fig) == 8
    assert (array(fig.axes[1]) > 0).any()  # the defect landed on the black normal image
    with pytest.raises(ValueError, match="one mask per seen image"):
        viz.show_extended([image], [], normals)


def test_plot_epoch_mix_shows_the_schedule():
    image, mask = _defect()
    normals = [np.random.default_rng(i).random((48, 48, 3)).astype(np.float32) for i in range(4)]
    mix = AnomalyMix(normals, SimulatedAnomaly(_Flat(), (48, 48), texture_ops=0), seen_images=[image],
                     seen_masks=[mask], extended=ExtendedAnomaly([image], [mask]), config=SynthesisConfig(),
                     epoch_size=20, batch_size=8, seed=0)
    ax = viz.plot_epoch_mix(mix, epoch=1).axes[0]
    grid = ax.images[0].get_array()
    kinds, _ = mix.schedule(1)
    assert grid.shape == (3, 8) and grid.mask.sum() == 4  # 20 samples in 3 batches of 8
    assert grid.compressed().tolist() == [KINDS.index(k) for k in kinds]  # row by row, batch by batch
    counts = {t.get_text().split(" ")[0]: int(t.get_text().split("(")[1][:-1]) for t in ax.get_legend().get_texts()}
    assert counts == {k: kinds.count(k) for k in KINDS}
