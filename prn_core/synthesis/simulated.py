"""Simulated ("unseen appearance") anomalies: a Perlin-shaped patch of augmented texture.

DRAEM-style (Zavrtanik et al., ICCV 2021), as PRN uses them for anomalies of unseen appearance:

    out = (1 - M) * I + M * ((1 - beta) * T + beta * I),   beta ~ U[beta_min, beta_max)

with ``M`` a rotated, thresholded Perlin mask, ``T`` an augmented texture and ``I`` the normal
image. Everything is float32 RGB in [0, 1]: the unofficial PRN code blends 0-255 textures into
0-1 images, which is why its "textures" come out as dark blobs.

With ``shading_prob`` > 0 (ours, not the paper's), that share of the anomalies changes only the
brightness inside ``M``, ``out = clip(g * I)`` with a gain ``g = exp(+-u)``, ``u ~ U[0.15, 0.5)``:
the low-contrast, large-area kind of defect (uneven surfaces, stains, discolouring) that a
texture patch does not look like.

Pixels outside ``M`` are copied with ``np.where`` rather than computed by the formula, so they
are bit-for-bit the input. Textures are decoded and resized once, then cached as uint8 (the
domain of the augmentation ops); a 900 px PNG costs ~30 ms to decode, which would dominate.
"""
from __future__ import annotations

import numpy as np

from prn_core.config import SynthesisConfig
from prn_core.data.textures import TextureSource
from prn_core.synthesis.augment import TEXTURE_OPS, TextureOp, augment_texture
from prn_core.synthesis.perlin import perlin_mask

__all__ = ["SimulatedAnomaly", "as_float_image", "SHADING_LOG_GAIN"]

SHADING_LOG_GAIN = (0.15, 0.5)  # |log g| of a shading anomaly: 14% to 39% darker, 16% to 65% brighter

def as_float_image(image: np.ndarray) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] from uint8 or float input, without copying float32 input."""
    if image.dtype == np.uint8:
        return image.astype(np.float32) / np.float32(255.0)  # division, so k/255 is exact-as-float32
    return np.asarray(image, dtype=np.float32)


class SimulatedAnomaly:
    """Callable ``(image, rng, foreground=None) -> (image, mask)`` making DRAEM-style anomalies.

    Args:
        textures: a :class:`~prn_core.data.TextureSource`: anything with ``__len__`` and
            ``load(index, image_size) -> float32 (H, W, 3)``; loaded textures are cached here.
        image_size: ``(H, W)`` of the images this will be applied to.
        beta_max, beta_min: texture opacity ``beta ~ U[beta_min, beta_max)``; beta = 0 pastes the
            pure texture, beta = 1 leaves the image as it was.
        texture_ops: number of augmentation ops per texture (0 disables augmentation).
        min_scale, max_scale, threshold: Perlin mask parameters (see :func:`perlin_mask`).
        max_tries: how often an empty mask (also after the foreground restriction) is redrawn
            before giving up and returning an empty mask, which the caller labels normal.
        ops: the augmentation pool to draw ``texture_ops`` from.
        shading_prob: share of anomalies that change only the brightness inside the mask.

    Returns from ``__call__``: float32 ``(H, W, 3)`` image in [0, 1] and float32 ``(H, W)`` mask
    in {0, 1}.

    >>> class Flat:
    ...     def __len__(self): return 1
    ...     def load(self, index, image_size): return np.ones((*image_size, 3), np.float32)
    >>> sim = SimulatedAnomaly(Flat(), (64, 64), beta_max=0.0, texture_ops=0)
    >>> out, mask = sim(np.zeros((64, 64, 3), np.float32), np.random.default_rng(0))
    >>> bool(mask.any()), bool((out[mask > 0] == 1).all()), bool((out[mask == 0] == 0).all())
    (True, True, True)
    """

    def __init__(
        self,
        textures: TextureSource,
        image_size: tuple[int, int],
        beta_max: float = 0.8,
        *,
        beta_min: float = 0.0,
        texture_ops: int = 3,
        min_scale: int = 0,
        max_scale: int = 5,
        threshold: float = 0.5,
        max_tries: int = 8,
        ops: tuple[TextureOp, ...] = TEXTURE_OPS,
        shading_prob: float = 0.0,
    ) -> None:
        if len(textures) == 0:
            raise ValueError("SimulatedAnomaly needs at least one texture; the texture source is empty")
        if not 0.0 <= beta_min <= beta_max <= 1.0:
            raise ValueError(f"need 0 <= beta_min <= beta_max <= 1, got beta_min={beta_min}, beta_max={beta_max}")
        if not 0.0 <= shading_prob <= 1.0:
            raise ValueError(f"shading_prob must be in [0, 1], got {shading_prob}")
        if not 0 <= texture_ops <= len(ops):
            raise ValueError(f"texture_ops must be in [0, {len(ops)}], got {texture_ops}")
        self.textures = textures
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self.texture_ops, self.ops = int(texture_ops), tuple(ops)
        self.min_scale, self.max_scale, self.threshold = int(min_scale), int(max_scale), float(threshold)
        self.max_tries = int(max_tries)
        self.shading_prob = float(shading_prob)
        self._cache: dict[int, np.ndarray] = {}  # texture index -> uint8 (H, W, 3)

    @classmethod
    def from_config(
        cls, textures: TextureSource, image_size: tuple[int, int], config: SynthesisConfig
    ) -> SimulatedAnomaly:
        """Build from :class:`~prn_core.config.SynthesisConfig` (beta, Perlin and op settings)."""
        return cls(
            textures,
            image_size,
            config.beta_max,
            texture_ops=config.texture_ops,
            min_scale=config.perlin_min_scale,
            max_scale=config.perlin_max_scale,
            threshold=config.perlin_threshold,
            shading_prob=config.shading_prob,
        )

    def texture(self, index: int) -> np.ndarray:
        """The cached, un-augmented texture ``index`` as uint8 ``(H, W, 3)`` at ``image_size``."""
        cached = self._cache.get(index)
        if cached is None:
            tex = np.asarray(self.textures.load(index, self.image_size), dtype=np.float32)
            if tex.shape != (*self.image_size, 3):
                raise ValueError(
                    f"texture {index} has shape {tex.shape}, expected {(*self.image_size, 3)}; "
                    "the texture source must resize to the image_size it is given"
                )
            cached = np.clip(np.rint(tex * 255.0), 0, 255).astype(np.uint8)
            self._cache[index] = cached
        return cached

    def mask(self, rng: np.random.Generator, foreground: np.ndarray | None = None) -> np.ndarray:
        """A Perlin mask, restricted to ``foreground`` (bool (H, W)) and redrawn while empty."""
        mask = np.zeros(self.image_size, np.float32)
        if foreground is not None and not foreground.any():
            return mask  # nowhere to put an anomaly: the sample stays normal
        for _ in range(self.max_tries):
            mask = perlin_mask(
                self.image_size, rng, self.min_scale, self.max_scale, self.threshold, max_tries=self.max_tries
            )
            if foreground is not None:
                mask *= foreground
            if mask.any():
                break
        return mask

    def __call__(
        self, image: np.ndarray, rng: np.random.Generator, foreground: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        image = as_float_image(image)
        if image.shape != (*self.image_size, 3):
            raise ValueError(f"image has shape {image.shape}, expected {(*self.image_size, 3)} (image_size)")
        if foreground is not None and foreground.shape != self.image_size:
            raise ValueError(f"foreground has shape {foreground.shape}, expected {self.image_size}")
        mask = self.mask(rng, foreground)
        if not mask.any():
            return image.copy(), mask
        # drawn only when enabled, so the random stream (and every result) is unchanged at 0
        if self.shading_prob > 0 and rng.random() < self.shading_prob:
            log_gain = rng.uniform(*SHADING_LOG_GAIN) * rng.choice((-1.0, 1.0))
            shaded = np.clip(image * np.float32(np.exp(log_gain)), 0.0, 1.0)
            return np.where(mask[..., None] > 0, shaded, image), mask
        texture = augment_texture(self.texture(int(rng.integers(len(self.textures)))), rng, self.texture_ops, self.ops)
        beta = np.float32(rng.uniform(self.beta_min, self.beta_max))
        blended = as_float_image(texture) * (np.float32(1.0) - beta) + image * beta  # (H, W, 3)
        out = np.where(mask[..., None] > 0, np.clip(blended, 0.0, 1.0), image)
        return out, mask
