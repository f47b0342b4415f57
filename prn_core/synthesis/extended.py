"""Extended anomalies: real seen defects, jointly augmented and pasted onto normal images.

PRN widens the "seen appearance" of its few real anomalies by cutting out each defect, augmenting
defect and mask *together* (flip, rotation, scale, mild elastic distortion; colour on the image
only) and pasting it into the foreground of a random normal training image.

Design choices:

* Only the defect's bounding box (plus a small margin) is transformed, with one fused
  ``cv2.remap`` per array: bilinear for the image, nearest for the mask, so the mask stays binary.
* Placement: the defect's centroid goes to a random foreground pixel. If no try puts at least
  ``min_foreground_fraction`` (2/3) of it on the foreground, each connected component is moved on
  its own to the foreground location (out of a few random tries) where most of it lands there.
* Pasted pixels are clipped to the foreground, so an extended anomaly never lies on the
  background. ``None`` or an all-False foreground means "the whole image".
* The returned mask is exactly the set of pasted pixels; every other pixel is the normal image,
  bit for bit.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from prn_core.synthesis.simulated import as_float_image

__all__ = ["ExtendedAnomaly"]

_MARGIN = 4  # context pixels kept around a defect so bilinear sampling at its border is sound


@dataclass(frozen=True)
class _Defect:
    """A defect cut out of a seen anomaly: float32 (h, w, 3) pixels and a bool (h, w) mask."""

    image: np.ndarray
    mask: np.ndarray


def _crop_to_mask(image: np.ndarray, mask: np.ndarray, margin: int) -> _Defect:
    ys, xs = np.nonzero(mask)
    y0, x0 = max(int(ys.min()) - margin, 0), max(int(xs.min()) - margin, 0)
    y1, x1 = min(int(ys.max()) + 1 + margin, mask.shape[0]), min(int(xs.max()) + 1 + margin, mask.shape[1])
    return _Defect(np.ascontiguousarray(image[y0:y1, x0:x1]), np.ascontiguousarray(mask[y0:y1, x0:x1]))


def _window(
    shape: tuple[int, int], size: tuple[int, int], top_left: tuple[int, int]
) -> tuple[slice, slice, slice, slice] | None:
    """Slices (dst_y, dst_x, src_y, src_x) of a ``size`` patch at ``top_left`` clipped to ``shape``."""
    (h, w), (ph, pw), (y0, x0) = shape, size, top_left
    ys, ye, xs, xe = max(y0, 0), min(y0 + ph, h), max(x0, 0), min(x0 + pw, w)
    if ys >= ye or xs >= xe:
        return None
    return slice(ys, ye), slice(xs, xe), slice(ys - y0, ye - y0), slice(xs - x0, xe - x0)


class ExtendedAnomaly:
    """Callable ``(normal_image, foreground, rng) -> (image, mask)`` pasting augmented seen defects.

    Args:
        seen_images: real anomalous images, uint8 or float32 ``(H, W, 3)`` RGB.
        seen_masks: their defect masks ``(H, W)`` in {0, 1}; none may be empty.
        augment: apply the joint augmentation (False pastes the defect as it is; for tests).
        max_rotation: rotation angle drawn from [-max_rotation, max_rotation] degrees.
        scale_range: isotropic scale factor range.
        elastic: standard deviation of the smooth elastic displacement, as a fraction of the
            defect's size ("mild": a few pixels).
        colour: strength of the brightness / contrast / saturation jitter (image only).
        min_foreground_fraction: below this share on the foreground, components move one by one.
        placement_tries: random locations tried per placement.

    Returns from ``__call__``: float32 ``(H, W, 3)`` image in [0, 1] and float32 ``(H, W)`` mask
    in {0, 1}, equal to 1 exactly where a defect pixel was pasted.

    >>> seen = np.zeros((64, 64, 3), np.float32); seen[20:30, 20:30] = 1.0
    >>> mask = np.zeros((64, 64), np.uint8); mask[20:30, 20:30] = 1
    >>> ext = ExtendedAnomaly([seen], [mask], augment=False)
    >>> out, m = ext(np.zeros((64, 64, 3), np.float32), None, np.random.default_rng(0))
    >>> int(m.sum()), bool((out[m > 0] == 1).all()), bool((out[m == 0] == 0).all())
    (100, True, True)
    """

    def __init__(
        self,
        seen_images: Sequence[np.ndarray],
        seen_masks: Sequence[np.ndarray],
        *,
        augment: bool = True,
        max_rotation: float = 180.0,
        scale_range: tuple[float, float] = (0.8, 1.2),
        elastic: float = 0.03,
        colour: float = 0.15,
        min_foreground_fraction: float = 2.0 / 3.0,
        placement_tries: int = 8,
    ) -> None:
        if len(seen_images) != len(seen_masks):
            raise ValueError(f"got {len(seen_images)} seen images but {len(seen_masks)} masks; pass one mask per image")
        if len(seen_images) == 0:
            raise ValueError("ExtendedAnomaly needs at least one seen anomaly; pass extended=None when there are none")
        if not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must be 0 < low <= high, got {scale_range}")
        self.defects: list[_Defect] = []
        for i, (image, mask) in enumerate(zip(seen_images, seen_masks)):
            image, mask = as_float_image(image), np.asarray(mask) > 0
            if image.ndim != 3 or image.shape[2] != 3 or mask.shape != image.shape[:2]:
                raise ValueError(
                    f"seen anomaly {i}: image {image.shape} and mask {mask.shape} must be (H, W, 3) and (H, W)"
                )
            if not mask.any():
                raise ValueError(f"seen anomaly {i} has an empty mask; every seen anomaly needs its defect mask")
            self.defects.append(_crop_to_mask(image, mask, _MARGIN))
        self.augment, self.max_rotation, self.scale_range = augment, float(max_rotation), scale_range
        self.elastic, self.colour = float(elastic), float(colour)
        self.min_foreground_fraction, self.placement_tries = float(min_foreground_fraction), int(placement_tries)

    def __len__(self) -> int:
        return len(self.defects)

    def augment_defect(self, defect: _Defect, rng: np.random.Generator) -> _Defect:
        """Flip, rotate, scale and elastically distort image and mask together; jitter colour."""
        h, w = defect.mask.shape
        flip = np.diag([rng.choice([-1.0, 1.0]), rng.choice([-1.0, 1.0])])
        theta = np.deg2rad(rng.uniform(-self.max_rotation, self.max_rotation))
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        lin = rng.uniform(*self.scale_range) * rot @ flip  # (2, 2) forward map about the centre
        centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
        corners = (np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]]) - centre) @ lin.T
        out_w, out_h = (np.ceil(corners.max(0) - corners.min(0)).astype(int) + 1).tolist()
        out_centre = np.array([(out_w - 1) / 2.0, (out_h - 1) / 2.0])
        inv = np.linalg.inv(lin)  # output pixel -> source pixel

        u = np.arange(out_w, dtype=np.float32) - np.float32(out_centre[0])  # (out_w,)
        v = np.arange(out_h, dtype=np.float32)[:, None] - np.float32(out_centre[1])  # (out_h, 1)
        sigma = self.elastic * max(out_h, out_w)
        dx, dy = (  # (out_h, out_w) smooth displacements from a 3x3 grid of random offsets
            cv2.resize(rng.normal(0.0, sigma, (3, 3)).astype(np.float32), (out_w, out_h), interpolation=cv2.INTER_CUBIC)
            for _ in range(2)
        )
        a, b, c, d = (np.float32(x) for x in inv.ravel())  # float32 scalars keep the maps float32
        map_x = a * u + b * v + np.float32(centre[0]) + dx  # (out_h, out_w)
        map_y = c * u + d * v + np.float32(centre[1]) + dy
        image = cv2.remap(defect.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        mask = cv2.remap(defect.mask.view(np.uint8), map_x, map_y, cv2.INTER_NEAREST, borderMode=cv2.BORDER_CONSTANT)
        mask = mask > 0
        if not mask.any():  # a sliver scaled away: keep the defect as it was rather than lose it
            return defect

        gain, contrast, saturation = rng.uniform(1.0 - self.colour, 1.0 + self.colour, size=3).astype(np.float32)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None]  # (h, w, 1)
        image = grey + saturation * (image - grey)
        mean = np.float32(cv2.mean(image, mask=mask.view(np.uint8))[:3])  # (3,) defect colour: contrast pivot
        image = np.clip(gain * contrast * image + gain * (1 - contrast) * mean, 0.0, 1.0)
        return _crop_to_mask(image, mask, 0)

    def _best_spot(
        self, mask: np.ndarray, foreground: np.ndarray, fg_pixels: np.ndarray, rng: np.random.Generator
    ) -> tuple[tuple[int, int], float]:
        """Top-left corner (out of a few random tries) putting most of ``mask`` on the foreground."""
        ys, xs = np.nonzero(mask)
        cy, cx, total = ys.mean(), xs.mean(), len(ys)
        best, best_frac = (0, 0), -1.0
        for flat in rng.choice(fg_pixels, size=self.placement_tries):
            py, px = divmod(int(flat), foreground.shape[1])
            top_left = (int(round(py - cy)), int(round(px - cx)))
            win = _window(foreground.shape, mask.shape, top_left)
            frac = 0.0 if win is None else np.count_nonzero(foreground[win[0], win[1]] & mask[win[2], win[3]]) / total
            if frac > best_frac:
                best, best_frac = top_left, frac
            if frac >= self.min_foreground_fraction:
                break
        return best, best_frac

    def __call__(
        self, normal_image: np.ndarray, foreground: np.ndarray | None, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        out = as_float_image(normal_image).copy()
        shape = out.shape[:2]
        if foreground is None or not foreground.any():
            foreground = np.ones(shape, bool)
        elif foreground.shape != shape:
            raise ValueError(f"foreground has shape {foreground.shape}, expected the image's {shape}")
        foreground = foreground.astype(bool, copy=False)
        fg_pixels = np.flatnonzero(foreground)

        defect = self.defects[int(rng.integers(len(self.defects)))]
        if self.augment:
            defect = self.augment_defect(defect, rng)
        top_left, frac = self._best_spot(defect.mask, foreground, fg_pixels, rng)
        pieces = [(defect.image, defect.mask, top_left)]
        if frac < self.min_foreground_fraction:
            count, labels, stats, _ = cv2.connectedComponentsWithStats(defect.mask.view(np.uint8), connectivity=8)
            pieces = []
            for c in range(1, count):
                x, y, w, h = stats[c, :4]
                piece_mask = labels[y : y + h, x : x + w] == c
                spot, _ = self._best_spot(piece_mask, foreground, fg_pixels, rng)
                pieces.append((defect.image[y : y + h, x : x + w], piece_mask, spot))

        mask = np.zeros(shape, bool)
        for image, piece_mask, spot in pieces:
            win = _window(shape, piece_mask.shape, spot)
            if win is None:
                continue
            dy, dx, sy, sx = win
            paste = piece_mask[sy, sx] & foreground[dy, dx]  # (h', w') pixels that land on the object
            out[dy, dx][paste] = image[sy, sx][paste]
            mask[dy, dx] |= paste
        return out, mask.astype(np.float32)
