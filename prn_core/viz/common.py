"""What every figure shares: image and mask conversion, the red overlay, colour scales and
line styles, small axes helpers.

Images are ``(H, W, 3)`` or ``(3, H, W)`` numpy arrays or torch tensors, float in [0, 1] or
uint8; masks ``(H, W)`` or ``(1, H, W)`` in {0, 1}. The image convention belongs to the models
(:func:`prn_core.models.image_array`, what the encoders take); masks are converted here.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from prn_core.models import image_array

__all__ = ["overlay_mask"]

SPLIT_STYLES = {"val": "-", "test": "--"}  # one convention in every figure: validation solid
CLASS_COLOURS = ((0, "normal", "#2b6cb0"), (1, "anomalous", "#c0392b"))  # (label, name, colour) everywhere
PROBABILITY_SCALE = {"cmap": "jet", "vmin": 0, "vmax": 1}  # anomaly maps: fixed [0, 1], never stretched
BINARY_SCALE = {"cmap": "gray", "vmin": 0, "vmax": 1}  # masks and binarised maps
_ROWS = ("image", "mask", "overlay")
_OVERLAY_COLOUR = np.array([1.0, 0.15, 0.1], np.float32)  # red tint for anomalous pixels

_to_image = image_array  # float32 (H, W, 3) in [0, 1] from any image the package accepts


def _to_mask(mask: Any) -> np.ndarray:
    """bool (H, W) from a numpy/torch mask of shape (H, W) or (1, H, W)."""
    array = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    return np.squeeze(array) > 0.5 if array.ndim == 3 else array > 0.5


def overlay_mask(image: Any, mask: Any, alpha: float = 0.45) -> np.ndarray:
    """The image with anomalous pixels tinted red: float32 (H, W, 3).

    >>> out = overlay_mask(np.zeros((2, 2, 3)), np.eye(2))
    >>> bool(out[0, 0, 0] > 0.4), bool((out[0, 1] == 0).all())
    (True, True)
    """
    image, mask = _to_image(image), _to_mask(mask)
    out = image.copy()
    out[mask] = (1.0 - alpha) * image[mask] + alpha * _OVERLAY_COLOUR
    return out


def _draw_column(axes: np.ndarray, image: np.ndarray, mask: np.ndarray, rows: Sequence[str]) -> None:
    """Draw ``image`` and bool ``mask`` into ``axes``, one panel per name in ``rows``."""
    for ax, name in zip(axes, rows):
        if name == "image":
            ax.imshow(image)
        elif name == "mask":
            ax.imshow(mask, **BINARY_SCALE)
        else:
            ax.imshow(overlay_mask(image, mask))
            if mask.any() and not mask.all():
                ax.contour(mask.astype(np.float32), levels=[0.5], colors="yellow", linewidths=0.6)
        ax.set_xticks([])
        ax.set_yticks([])


def _no_ticks(axes: Any) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])
