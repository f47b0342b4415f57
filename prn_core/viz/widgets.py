"""Interactive figures for a live kernel (Jupyter, Colab) that stay figures on a static page."""
from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from prn_core.metrics import f1_max
from prn_core.viz.evaluation import _pick_examples, plot_threshold

__all__ = ["ThresholdExplorer", "threshold_explorer"]


class ThresholdExplorer:
    """Two sliders (image and pixel threshold) above a :func:`plot_threshold` figure.

    Displaying it shows the sliders (an ipywidgets ``HBox``, also at ``.controls``) and the figure
    as a plain PNG with a display id, which every slider move replaces. So a static page of the
    executed notebook still shows the figure at the initial thresholds, while a live kernel
    (Jupyter, Colab) redraws it.
    """

    def __init__(self, images: np.ndarray, maps: np.ndarray, masks: np.ndarray, scores: np.ndarray,
                 labels: np.ndarray, count: int = 6) -> None:
        import ipywidgets as widgets

        self.images, self.maps, self.masks = images, np.asarray(maps), masks
        self.scores, self.labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
        self.indices = _pick_examples(self.labels, count)
        start = f1_max(self.labels, self.scores).threshold
        low, high = float(self.scores.min()), float(self.scores.max())
        self.image_slider = widgets.FloatSlider(value=start, min=low, max=high, step=(high - low) / 200 or 1e-6,
                                                readout_format=".4f", description="image t",
                                                continuous_update=False)
        bottom, top = float(self.maps.min()), float(self.maps.max())
        self.pixel_slider = widgets.FloatSlider(value=float(np.clip(start, bottom, top)), min=bottom, max=top,
                                                step=(top - bottom) / 200 or 1e-6,
                                                readout_format=".4f", description="pixel t",
                                                continuous_update=False)
        self.controls = widgets.HBox([self.image_slider, self.pixel_slider])
        self._handle: Any = None
        for slider in (self.image_slider, self.pixel_slider):
            slider.observe(self._redraw, names="value")

    def figure(self) -> Figure:
        """The figure at the sliders' current thresholds."""
        return plot_threshold(self.images, self.maps, self.masks, self.scores, self.labels,
                              self.image_slider.value, self.pixel_slider.value, indices=self.indices)

    def _png(self) -> Any:
        import io

        from IPython.display import Image

        fig = self.figure()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        return Image(data=buffer.getvalue(), format="png")

    def _redraw(self, _change: Any = None) -> None:
        if self._handle is not None:
            self._handle.update(self._png())

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.controls)
        self._handle = display(self._png(), display_id=True)


def threshold_explorer(images: np.ndarray, maps: np.ndarray, masks: np.ndarray, scores: np.ndarray,
                       labels: np.ndarray, count: int = 6) -> ThresholdExplorer | Figure:
    """An interactive :class:`ThresholdExplorer`, or without ipywidgets the static figure.

    Both thresholds start at the image F1-max threshold (see :func:`prn_core.metrics.f1_max`).
    """
    try:
        return ThresholdExplorer(images, maps, masks, scores, labels, count)
    except ImportError:
        start = f1_max(labels, scores).threshold
        return plot_threshold(images, maps, masks, scores, labels, start, start, count=count)
