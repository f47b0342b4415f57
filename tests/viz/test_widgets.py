"""viz.widgets: the threshold explorer redraws in a live kernel and is a plain figure without one."""
from __future__ import annotations

import builtins
import sys

import pytest
from figure_checks import assert_pictures_in_range
from matplotlib.figure import Figure

from prn_core import viz
from prn_core.metrics import f1_max


def test_threshold_explorer_starts_at_f1_max_and_redraws(predictions):
    """ipywidgets is a hard requirement of the book (requirements.txt): no skip when missing."""
    images, maps, masks, scores, labels = predictions
    explorer = viz.threshold_explorer(images, maps, masks, scores, labels)
    assert isinstance(explorer, viz.ThresholdExplorer)
    assert explorer.image_slider.value == pytest.approx(f1_max(labels, scores).threshold)
    assert explorer.pixel_slider.min == pytest.approx(float(maps.min()))
    assert explorer.pixel_slider.max == pytest.approx(float(maps.max()))
    fig = explorer.figure()
    assert len(fig.axes) == 2 + 2 * 5 and assert_pictures_in_range(fig) == 5

    class Handle:
        updates: list = []

        def update(self, obj):
            self.updates.append(obj)

    explorer._handle = Handle()
    explorer.image_slider.value = explorer.image_slider.max
    assert len(Handle.updates) == 1 and Handle.updates[0].data[:4] == b"\x89PNG"


def test_threshold_explorer_without_ipywidgets_is_a_static_figure(predictions, monkeypatch):
    real_import = builtins.__import__

    def no_widgets(name, *args, **kwargs):
        if name == "ipywidgets":
            raise ImportError("no ipywidgets")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_widgets)
    images, maps, masks, scores, labels = predictions
    fig = viz.threshold_explorer(images, maps, masks, scores, labels)
    assert isinstance(fig, Figure) and len(fig.axes) == 2 + 2 * 5


def test_threshold_explorer_falls_back_to_a_figure_without_ipywidgets(predictions, monkeypatch):
    images, maps, masks, scores, labels = predictions
    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # import ipywidgets -> ImportError
    assert isinstance(viz.threshold_explorer(images, maps, masks, scores, labels, count=3), Figure)
