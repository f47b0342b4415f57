"""Foreground masks by background estimation, so extended anomalies land on the object.

The unofficial PRN code reads foreground masks from an external zip; we compute them. MVTec
objects are photographed on a plain, roughly uniform background that fills the image border,
so the background colour is the median of a thin border ring and the foreground is everything
far enough from it in CIELAB:

1. shrink to about 128 px and blur lightly (speed, sensor noise);
2. distance to the border median colour; threshold at the larger of a fraction of Otsu's
   threshold and a multiple of the border's own spread (its noise level);
3. close gaps, fill holes, drop specks, then dilate by a small margin, because defects
   (broken rims, missing pieces) sit exactly on the object's outline.

When there is no distinct object -- the border is not uniform, what stands out is scattered
specks with no dominant component (a sparse pattern such as terrazzo), the "object" covers
nearly the whole image, or nothing is found -- the image is a texture and the mask is all True: any
location can hold a defect. ``benchmarks/foreground_coverage.py`` measures how many
defect pixels of the seen anomalies (never the test split's) fall inside these masks on the real
bottle and hazelnut sets, and how large the masks are on normal images.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np

from prn_core.atomic import write_image_atomic
from prn_core.data.images import default_cache_dir, load_image

__all__ = ["estimate_foreground", "cached_foreground", "FOREGROUND_VERSION", "FOREGROUND_SETTINGS"]

FOREGROUND_VERSION = 1  # part of the cache key: bump when the algorithm changes
_WORK_SIDE = 128  # analysis resolution (long side), px
_BORDER = 0.04  # border ring width, fraction of the short side
_OTSU_FRACTION = 0.5  # threshold = this x Otsu's threshold on the distance map ...
_NOISE_FACTOR = 3.0  # ... but at least this x the 90th percentile of border distances
_MIN_CONTRAST = 6.0  # CIELAB units: weaker than this is not an object
_MAX_BORDER_FOREGROUND = 0.2  # more of the border above threshold -> the border is not background
_MAX_AREA = 0.9  # foreground larger than this -> texture
_MIN_AREA = 0.01  # foreground smaller than this -> nothing found
_MIN_MAIN_SHARE = 0.5  # the largest component must hold this share of the thresholded pixels
_KEEP_COMPONENT = 0.1  # keep components at least this fraction of the largest one
_MARGIN = 0.03  # final dilation, fraction of the short side
FOREGROUND_SETTINGS = {  # recorded next to measurements (benchmarks/foreground_coverage.py)
    "version": FOREGROUND_VERSION, "work_side": _WORK_SIDE, "border": _BORDER, "otsu_fraction": _OTSU_FRACTION,
    "noise_factor": _NOISE_FACTOR, "min_contrast": _MIN_CONTRAST, "max_border_foreground": _MAX_BORDER_FOREGROUND,
    "max_area": _MAX_AREA, "min_area": _MIN_AREA, "min_main_share": _MIN_MAIN_SHARE,
    "keep_component": _KEEP_COMPONENT, "margin": _MARGIN,
}  # fmt: skip


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill every background region not connected to the image border (uint8 {0,1})."""
    padded = np.pad(mask, 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    return (padded | (1 - flood))[1:-1, 1:-1]


def _largest_components(mask: np.ndarray) -> np.ndarray:
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= _KEEP_COMPONENT * areas.max()) + 1
    return np.isin(labels, keep).astype(np.uint8)


def _scattered(mask: np.ndarray) -> bool:
    """True when no single component holds most of the mask: specks of a pattern, not an object."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    return n <= 1 or areas.max() < _MIN_MAIN_SHARE * areas.sum()


def estimate_foreground(image: np.ndarray) -> np.ndarray:
    """bool (H, W) foreground of a float32 (H, W, 3) RGB image in [0, 1] (uint8 is accepted too);
    all True for textures.

    >>> img = np.full((96, 128, 3), 0.9, np.float32)
    >>> img[30:70, 40:90] = 0.2  # a dark object on a light background
    >>> fg = estimate_foreground(img)
    >>> bool(fg[50, 60]), bool(fg[5, 5]), bool(0.1 < fg.mean() < 0.4)
    (True, False, True)
    >>> bool(estimate_foreground(np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)).all())
    True
    """
    if image.dtype == np.uint8:  # tolerate a cached uint8 image
        image = image.astype(np.float32) / 255.0
    h, w = image.shape[:2]
    scale = _WORK_SIDE / max(h, w)
    hs, ws = max(8, round(h * scale)), max(8, round(w * scale))
    small = cv2.resize(np.ascontiguousarray(image, dtype=np.float32), (ws, hs), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(cv2.GaussianBlur(small, (0, 0), 1.0), cv2.COLOR_RGB2Lab)  # (hs, ws, 3)

    b = max(2, round(_BORDER * min(hs, ws)))
    ring = np.ones((hs, ws), dtype=bool)
    ring[b:-b, b:-b] = False
    dist = np.linalg.norm(lab - np.median(lab[ring], axis=0), axis=-1)  # (hs, ws)
    top = float(dist.max())
    if top < _MIN_CONTRAST:
        return np.ones((h, w), dtype=bool)
    otsu = cv2.threshold(np.round(dist / top * 255).astype(np.uint8), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[0]
    threshold = max(_OTSU_FRACTION * otsu / 255 * top, _NOISE_FACTOR * np.percentile(dist[ring], 90), _MIN_CONTRAST)
    fg = (dist > threshold).astype(np.uint8)
    if fg[ring].mean() > _MAX_BORDER_FOREGROUND or _scattered(fg):
        return np.ones((h, w), dtype=bool)

    side = min(hs, ws)
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, _disk(max(1, round(0.03 * side))))
    fg = _largest_components(_fill_holes(fg))
    area = fg.mean()
    if not _MIN_AREA <= area <= _MAX_AREA:
        return np.ones((h, w), dtype=bool)
    fg = cv2.dilate(fg, _disk(max(1, round(_MARGIN * side))))
    return cv2.resize(fg, (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)


def cached_foreground(
    path: Path, image_size: tuple[int, int], cache_dir: Path | None = None, keep_aspect: bool = False
) -> np.ndarray:
    """Foreground (bool (H, W)) of an image file at ``image_size``, cached on disk as a PNG.

    The key covers the resolved path, file size and modification time, ``image_size``,
    ``keep_aspect`` and :data:`FOREGROUND_VERSION`, so an edited image or a new algorithm never
    reuses a stale mask. ``cache_dir`` defaults to ``default_cache_dir() / "foreground"``.
    """
    path = Path(path).resolve()
    stat = path.stat()
    key = f"{path}|{stat.st_size}|{stat.st_mtime_ns}|{tuple(image_size)}|{keep_aspect}|v{FOREGROUND_VERSION}"
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "foreground"
    file = cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.png"
    if file.is_file():
        cached = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
        if cached is not None and cached.shape == tuple(image_size):
            return cached > 0
    fg = estimate_foreground(load_image(path, image_size, keep_aspect))
    write_image_atomic(file, fg.astype(np.uint8) * 255)  # workers never read half a mask
    return fg
