"""Figure helpers of chapter 6: region overlap, score histograms, thresholds and the explorer."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from prn_core import viz



@pytest.fixture()
def predictions():
    """6 images of 16x16: 3 normal, 3 with a 4x4 defect that the maps find more or less well."""
    rng = np.random.default_rng(0)
    labels = np.array([0, 0, 0, 1, 1, 1])
    masks = np.zeros((6, 16, 16), np.uint8)
    masks[3:, 4:8, 4:8] = 1
    maps = rng.uniform(0.0, 0.3, (6, 16, 16)).astype(np.float32)
    maps[3:, 4:8, 4:8] += np.array([0.6, 0.4, 0.1], np.float32)[:, None, None]
    scores = np.array([0.1, 0.2, 0.45, 0.9, 0.5, 0.3])
    images = rng.uniform(0, 1, (6, 16, 16, 3)).astype(np.float32)
    return images, maps, masks, scores, labels


def _toy():
    mask = np.zeros((32, 32), np.uint8)
    mask[4:14, 4:14] = 1
    mask[24:27, 24:27] = 1
    toy = np.full((32, 32), 0.1, np.float32)
    toy[4:14, 4:14] = 0.9
    toy[24:27, 24:27] = 0.2
    toy[16:22, :] = 0.5
    return mask, toy


def test_show_region_overlap_reports_per_region_overlap_and_fpr():
    mask, toy = _toy()
    fig = viz.show_region_overlap(mask, toy, threshold=0.5)
    assert isinstance(fig, Figure)
    titles = [ax.get_title() for ax in fig.axes]
    assert "ground truth: 2 regions" in titles
    assert "map >= 0.5: PRO 0.50, FPR 0.21" in titles  # regions overlap 1 and 0; 192 of 915 normal pixels
    assert sorted(t.get_text() for t in fig.axes[2].texts) == ["1: 1.00", "2: 0.00"]
    legend = [t.get_text() for t in fig.axes[3].get_legend().get_texts()]
    assert any("AU-PRO 0.650" in t for t in legend) and any("AUROC 0.983" in t for t in legend)


def test_plot_score_histograms_counts_every_pixel_once(predictions):
    _, maps, masks, scores, labels = predictions
    fig = viz.plot_score_histograms(labels, scores, masks, maps)
    legend = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    anomalous = int(masks.sum())
    assert legend == [f"normal pixels ({maps.size - anomalous:,})", f"anomalous pixels ({anomalous:,})"]
    image_legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert image_legend == ["normal images (3)", "anomalous images (3)"]


def test_plot_threshold_confusion_counts(predictions):
    images, maps, masks, scores, labels = predictions
    fig = viz.plot_threshold(images, maps, masks, scores, labels, image_threshold=0.4, pixel_threshold=0.5)
    table = fig.axes[1]
    cells = sorted(t.get_text() for t in table.texts)
    # flagged: 0.45 (normal), 0.9 and 0.5 (anomalous); passed: 0.1, 0.2 (normal), 0.3 (anomalous)
    assert cells == ["FN\n1", "FP\n1", "TN\n2", "TP\n2"]
    assert table.get_title() == "TPR 0.67, FPR 0.33"
    # scores, table, and two rows of examples: 2 of the 3 normals (a third of 6), then all 3 anomalous
    assert len(fig.axes) == 2 + 2 * 5


def test_plot_threshold_indices_pick_the_examples(predictions):
    images, maps, masks, scores, labels = predictions
    fig = viz.plot_threshold(images, maps, masks, scores, labels, 0.4, 0.5, indices=[3, 0])
    assert len(fig.axes) == 2 + 2 * 2
    assert fig.axes[2].get_title().startswith("defect, flagged")
    assert fig.axes[4].get_title().startswith("good, passed")


def test_threshold_explorer_starts_at_f1_max_and_redraws(predictions, monkeypatch):
    """ipywidgets is a hard requirement of the book (requirements.txt): no skip when missing."""
    from prn_core.metrics import f1_max

    images, maps, masks, scores, labels = predictions
    explorer = viz.threshold_explorer(images, maps, masks, scores, labels)
    assert isinstance(explorer, viz.ThresholdExplorer)
    assert explorer.image_slider.value == pytest.approx(f1_max(labels, scores).threshold)
    assert explorer.pixel_slider.min == pytest.approx(float(maps.min()))
    assert explorer.pixel_slider.max == pytest.approx(float(maps.max()))

    class Handle:
        updates: list = []

        def update(self, obj):
            self.updates.append(obj)

    explorer._handle = Handle()
    explorer.image_slider.value = explorer.image_slider.max
    assert len(Handle.updates) == 1 and Handle.updates[0].data[:4] == b"\x89PNG"


def test_threshold_explorer_without_ipywidgets_is_a_static_figure(predictions, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_widgets(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError("no ipywidgets")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_widgets)
    images, maps, masks, scores, labels = predictions
    fig = viz.threshold_explorer(images, maps, masks, scores, labels)
    assert isinstance(fig, Figure)


def test_threshold_explorer_falls_back_to_a_figure_without_ipywidgets(predictions, monkeypatch):
    import sys

    images, maps, masks, scores, labels = predictions
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    assert isinstance(viz.threshold_explorer(images, maps, masks, scores, labels), Figure)
