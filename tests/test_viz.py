"""Figure helpers: layout, input conventions (numpy/torch, HWC/CHW), and that they render."""
from __future__ import annotations

import io


import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from prn_core.synthesis import AnomalyMix, SimulatedAnomaly  # noqa: E402
from prn_core import viz  # noqa: E402
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


# --- issue 11, item 1: a figure's numbers are result.json's numbers ----------------------------


def _padded_eval() -> dict:
    """Maps whose padding (right third) is bright on normal pixels: it moves every pixel metric."""
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 32, 48), np.uint8)
    masks[3:, 8:16, 8:16] = 1
    maps = (rng.random(masks.shape) * 0.5 + masks * 0.4).astype(np.float32)
    valid = np.ones(masks.shape, bool)
    valid[:, :, 32:] = False
    maps[:, :, 32:] = 0.95
    return {
        "labels": np.array([0, 0, 0, 1, 1, 1]),
        "scores": rng.random(6),
        "masks": masks,
        "maps": maps,
        "valid": valid,
    }


def test_plot_curves_titles_equal_compute_metrics_with_padding(monkeypatch):
    from prn_core import metrics
    from prn_core.viz import plot_curves

    ev = _padded_eval()
    want = metrics.compute_metrics(**ev)
    assert want["pixel_auroc"] != metrics.compute_metrics(**{**ev, "valid": None})["pixel_auroc"]

    def image_level_only(labels, scores):  # the exact ROC is for one score per image only
        assert len(np.asarray(scores).reshape(-1)) == len(ev["labels"]), "exact ROC over pixels"
        return real_roc(labels, scores)

    real_roc = metrics.roc_curve
    monkeypatch.setattr(metrics, "roc_curve", image_level_only)
    fig = plot_curves(**ev)
    titles = [ax.get_title() for ax in fig.axes]
    assert f"AUROC {want['image_auroc']:.3f}" in titles[0]
    assert f"AUROC {want['pixel_auroc']:.3f}" in titles[1]
    assert f"AU-PRO {want['au_pro']:.3f}" in titles[2]


# --- issue 11, item 10: one line style per split in every figure -------------------------------


def test_validation_is_solid_and_test_dashed_in_every_figure():
    from prn_core.viz import plot_history, plot_stability

    history = [
        {
            "epoch": e,
            "loss": 1.0 / e,
            "smooth_l1": 0.1,
            "focal": 0.1,
            "val": {
                "image_auroc": 0.5 + e / 10,
                "pixel_auroc": 0.6,
                "au_pro": 0.5,
                "pixel_ap": 0.2,
            },
            "test": {
                "image_auroc": 0.4 + e / 10,
                "pixel_auroc": 0.5,
                "au_pro": 0.4,
                "pixel_ap": 0.1,
            },
        }
        for e in (1, 2, 3)
    ]
    styles: dict[str, set[str]] = {"val": set(), "test": set()}
    for fig in (plot_history(history), plot_stability(history)):
        for line in fig.axes[-1].get_lines() + fig.axes[1].get_lines():
            label = line.get_label()
            split = (
                "val" if label.startswith("val") else "test" if label.startswith("test") else None
            )
            if split:
                styles[split].add(line.get_linestyle())
    assert styles == {"val": {"-"}, "test": {"--"}}


def test_predictions_share_one_colour_scale_with_a_colorbar():
    rng = np.random.default_rng(0)
    images, maps = rng.random((3, 32, 32, 3)), rng.random((3, 32, 32)) * 0.5
    masks = np.zeros((3, 32, 32), np.uint8)
    fig = viz.show_predictions(images, masks, maps, np.array([0.1234, 0.5, 0.9]), np.array([0, 1, 1]))
    *grid, bar = fig.axes
    assert len(grid) == 9 and bar.get_ylabel() == "anomaly probability"
    assert all(ax.images[-1].get_clim() == (0, 1) for ax in grid[6:])  # not stretched to 0.5
    assert grid[0].get_title().startswith("score 0.123\n")
