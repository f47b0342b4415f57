"""Figure helpers of chapter 2: Perlin masks, textures, extended anomalies, the epoch mix."""
from __future__ import annotations


import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from prn_core.config import SynthesisConfig  # noqa: E402
from prn_core.data import ProceduralTextures  # noqa: E402
from prn_core.data.textures import PROCEDURAL_KINDS  # noqa: E402
from prn_core.synthesis import AnomalyMix, ExtendedAnomaly, SimulatedAnomaly, perlin_mask  # noqa: E402
from prn_core.viz import plot_epoch_mix, show_extended, show_perlin_masks, show_textures  # noqa: E402


def test_show_perlin_masks_rows_are_scales_and_reproducible():
    fig = show_perlin_masks((32, 32), scales=(1, 3), per_scale=2, seed=5)
    assert len(fig.axes) == 2 * 3
    assert fig.axes[3].get_ylabel().startswith("s = 3")
    expected = perlin_mask((32, 32), np.random.default_rng([5, 3, 1]), 3, 3)
    assert np.array_equal(fig.axes[5].images[0].get_array(), expected)
    plt.close(fig)


def test_show_textures_names_procedural_kinds():
    fig = show_textures(ProceduralTextures(count=3), (64, 64), count=5)
    assert len(fig.axes) == 2 * 3  # count is capped by the source's length
    assert [ax.get_title() for ax in fig.axes[:3]] == list(PROCEDURAL_KINDS)[:3]
    top, bottom = fig.axes[0].images[0].get_array(), fig.axes[3].images[0].get_array()
    assert top.dtype == np.uint8 and top.shape == bottom.shape == (64, 64, 3)
    plt.close(fig)


def _defect(size: int = 48):
    image = np.full((size, size, 3), 0.5, np.float32)
    mask = np.zeros((size, size), np.uint8)
    image[10:18, 10:20], mask[10:18, 10:20] = 1.0, 1
    return image, mask


def test_show_extended_layout_and_errors():
    image, mask = _defect()
    normals = [np.zeros((48, 48, 3), np.float32)] * 2
    fig = show_extended([image, image], [mask, mask], normals, count=3, labels=["a", "b"])
    assert len(fig.axes) == 2 * 4
    assert fig.axes[0].get_title() == "seen (real)" and fig.axes[4].get_ylabel() == "b"
    pasted = fig.axes[1].images[0].get_array()
    assert (pasted > 0).any()  # the defect landed on the black normal image
    plt.close(fig)
    with pytest.raises(ValueError, match="one mask per seen image"):
        show_extended([image], [], normals)


def test_plot_epoch_mix_shows_the_schedule():
    image, mask = _defect()
    normals = [np.random.default_rng(i).random((48, 48, 3)).astype(np.float32) for i in range(4)]

    class Flat:
        def __len__(self):
            return 1

        def load(self, index, image_size):
            return np.ones((*image_size, 3), np.float32)

    mix = AnomalyMix(normals, SimulatedAnomaly(Flat(), (48, 48), texture_ops=0), seen_images=[image],
                     seen_masks=[mask], extended=ExtendedAnomaly([image], [mask]), config=SynthesisConfig(),
                     epoch_size=20, batch_size=8, seed=0)
    fig = plot_epoch_mix(mix, epoch=1)
    ax = fig.axes[0]
    grid = ax.images[0].get_array()
    kinds, _ = mix.schedule(1)
    assert grid.shape == (3, 8) and grid.mask.sum() == 4  # 20 samples in 3 batches of 8
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0] == f"normal ({kinds.count('normal')})" and "epoch 1" in ax.get_title()
    plt.close(fig)
