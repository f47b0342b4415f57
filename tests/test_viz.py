"""Figure helpers: layout, input conventions (numpy/torch, HWC/CHW), and that they render."""
from __future__ import annotations

import io


import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from prn_core.synthesis import AnomalyMix, SimulatedAnomaly  # noqa: E402
from prn_core.viz import anomaly_gallery, overlay_mask, show_anomalies  # noqa: E402


def _render(fig) -> int:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return len(buffer.getvalue())


def test_show_anomalies_layout_and_tensor_inputs():
    images = [np.random.default_rng(0).random((16, 16, 3)), torch.rand(3, 16, 16)]
    masks = [np.eye(16), torch.ones(1, 16, 16)]
    fig = show_anomalies(images, masks, titles=["a", "b"])
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "a"
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["image", "mask", "overlay"]
    assert _render(fig) > 1000
    assert len(show_anomalies(images, masks, rows=("overlay",)).axes) == 2


def test_show_anomalies_rejects_bad_input():
    with pytest.raises(ValueError, match="as many masks"):
        show_anomalies([np.zeros((4, 4, 3))], [])
    with pytest.raises(ValueError, match="unknown rows"):
        show_anomalies([np.zeros((4, 4, 3))], [np.zeros((4, 4))], rows=("heatmap",))


def test_overlay_tints_only_the_mask():
    image = np.full((4, 4, 3), 0.5, np.float32)
    mask = np.zeros((4, 4))
    mask[1, 2] = 1
    out = overlay_mask(image, mask)
    changed = (out != image).any(axis=2)
    np.testing.assert_array_equal(changed, mask > 0)
    assert out[1, 2, 0] > out[1, 2, 1]  # red


class _Textures:
    def __len__(self) -> int:
        return 1

    def load(self, index: int, image_size: tuple[int, int]) -> np.ndarray:
        return np.random.default_rng(index).random((*image_size, 3), dtype=np.float32)


def test_anomaly_gallery_from_a_mix_and_from_generators():
    size = (64, 64)
    normals = [np.random.default_rng(i).random((*size, 3), dtype=np.float32) for i in range(4)]
    sim = SimulatedAnomaly(_Textures(), size)
    fig = anomaly_gallery(AnomalyMix(normals, sim, epoch_size=16), per_kind=3)
    labels = [ax.get_ylabel() for ax in fig.axes[::3]]
    assert labels == ["normal\nimage", "overlay", "simulated\nimage", "overlay"]
    assert _render(fig) > 1000
    makers = {"simulated": lambda rng: sim(normals[0], rng)}
    fig = anomaly_gallery(makers, per_kind=2, rows=("image", "mask", "overlay"))
    assert len(fig.axes) == 6
    plt.close(fig)
