"""Photometric and geometric texture augmentations for simulated anomalies.

DRAEM augments each texture with 3 ops drawn without replacement from the 10 below (imgaug's
GammaContrast, MultiplyAndAddToBrightness, EnhanceSharpness, AddToHueAndSaturation, Solarize,
Posterize, Invert, Autocontrast, Equalize, Affine). imgaug breaks on NumPy 2, so we rebuild
them with OpenCV. They work on uint8 ``(H, W, 3)`` RGB, because most of them are 256-entry
lookup tables there (``cv2.LUT`` costs microseconds) and because that is the domain these ops
are defined in; the caller converts to float32 [0, 1] once, before any blending arithmetic.

Every op takes ``(image, rng)`` and draws its parameters from ``rng`` only.
"""
from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

__all__ = ["TEXTURE_OPS", "TextureOp", "augment_texture"]

TextureOp = Callable[[np.ndarray, np.random.Generator], np.ndarray]

_LEVELS = np.arange(256, dtype=np.float32)


def _lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Apply a (256,) or per-channel (256, 3) table to a uint8 (H, W, 3) image."""
    table = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    if table.ndim == 2:
        table = np.ascontiguousarray(table.reshape(1, 256, 3))
    return cv2.LUT(image, table)


def gamma(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-channel gamma in [0.5, 2]: darker or lighter mid-tones, with a colour cast."""
    g = rng.uniform(0.5, 2.0, size=3).astype(np.float32)
    return _lut(image, 255.0 * (_LEVELS[:, None] / 255.0) ** g)


def brightness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Multiply by [0.8, 1.2] and add [-30, 30] grey levels."""
    mul, add = rng.uniform(0.8, 1.2), rng.uniform(-30.0, 30.0)
    return _lut(image, _LEVELS * mul + add)


def sharpness(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """PIL-style sharpness: blend with a 3x3 smoothed copy by a factor in [0.1, 1.9]."""
    factor = rng.uniform(0.1, 1.9)
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]], np.float32) / 13.0  # PIL's SMOOTH
    smooth = cv2.filter2D(image, -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return cv2.addWeighted(image, factor, smooth, 1.0 - factor, 0.0)


def hue_saturation(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shift hue and saturation by up to +-50 (imgaug's AddToHueAndSaturation range)."""
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)  # OpenCV hue is in [0, 180)
    dh, ds = rng.uniform(-50.0, 50.0, size=2)
    table = np.stack([(_LEVELS + dh * 180.0 / 255.0) % 180.0, _LEVELS + ds, _LEVELS], axis=1)
    return cv2.cvtColor(_lut(hsv, table), cv2.COLOR_HSV2RGB)


def solarize(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Invert every level above a threshold in [32, 128]."""
    threshold = rng.uniform(32.0, 128.0)
    return _lut(image, np.where(_LEVELS >= threshold, 255.0 - _LEVELS, _LEVELS))


def posterize(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Keep only 1 to 7 of the 8 bits per channel."""
    bits = int(rng.integers(1, 8))
    return np.bitwise_and(image, np.uint8((0xFF << (8 - bits)) & 0xFF))


def invert(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Photographic negative (draws no parameters)."""
    return cv2.bitwise_not(image)


def autocontrast(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Stretch each channel's [min, max] to [0, 255] (PIL's autocontrast with no cut-off)."""
    lo, hi = np.array([cv2.minMaxLoc(c)[:2] for c in cv2.split(image)], np.float32).T  # (3,) each; 30x numpy's
    scale = 255.0 / np.maximum(hi - lo, 1.0)
    return _lut(image, np.where(hi > lo, (_LEVELS[:, None] - lo) * scale, _LEVELS[:, None]))


def equalize(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Histogram-equalise each channel (PIL's equalize)."""
    return cv2.merge([cv2.equalizeHist(np.ascontiguousarray(c)) for c in cv2.split(image)])


def affine(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Rotate by [-45, 45] degrees about the centre, reflecting at the borders."""
    h, w = image.shape[:2]
    rot = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), float(rng.uniform(-45.0, 45.0)), 1.0)
    return cv2.warpAffine(image, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)


TEXTURE_OPS: tuple[TextureOp, ...] = (
    gamma,
    brightness,
    sharpness,
    hue_saturation,
    solarize,
    posterize,
    invert,
    autocontrast,
    equalize,
    affine,
)


def augment_texture(
    image: np.ndarray, rng: np.random.Generator, num_ops: int = 3, ops: tuple[TextureOp, ...] = TEXTURE_OPS
) -> np.ndarray:
    """Apply ``num_ops`` ops drawn without replacement from ``ops``, in the drawn order.

    ``image`` is uint8 ``(H, W, 3)`` RGB; the result is a new uint8 array of the same shape.
    ``num_ops=0`` returns an unchanged copy (useful to test blending in isolation).

    >>> tex = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    >>> out = augment_texture(tex, np.random.default_rng(1))
    >>> out.shape, out.dtype
    ((32, 32, 3), dtype('uint8'))
    """
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"augment_texture expects uint8 (H, W, 3) RGB, got {image.dtype} {image.shape}")
    if not 0 <= num_ops <= len(ops):
        raise ValueError(f"num_ops must be in [0, {len(ops)}], got {num_ops}")
    out = image.copy()
    for k in rng.choice(len(ops), size=num_ops, replace=False):
        out = ops[int(k)](out, rng)
    return out
