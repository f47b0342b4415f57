"""An embedded demo dataset in MVTec layout, generated from a seed in a few seconds.

It lets the main job, the tests and the CI book run on a fresh machine with no download. Two
categories mirror MVTec's two families:

* ``demo_washer`` -- an object: a brushed steel washer on a plain backdrop, with a soft shadow,
  a light direction, and jitter in position, size, ellipticity and exposure;
* ``demo_terrazzo`` -- a surface: polished terrazzo, stone chips of four kinds in a binder.

Defects are ``crack``, ``scratch``, ``spot`` and ``missing_piece``. Each defective image is
rendered from its clean twin (same noise), and its mask is *exactly* the set of pixels whose
saved values differ from the twin, so the masks never over- or under-state a defect.

There is no per-pixel sensor noise: it would triple the PNG sizes (the demo stays near 6 MB),
and the shading, brushing and chip layout already vary from image to image.

Images depend only on ``(seed, category, split, defect type, index)`` and are written with
``cv2.imwrite`` (deterministic), so the same seed gives byte-identical files.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np

from prn_core.atomic import write_text_atomic
from prn_core.data.images import cache_subdir
from prn_core.data.textures import fractal_noise, value_noise

__all__ = ["DEMO_CATEGORIES", "DEMO_DEFECTS", "DEMO_VERSION", "make_demo_dataset", "render_demo_image"]

DEMO_VERSION = 1  # bump when rendering changes: cached demo folders are then regenerated
DEMO_CATEGORIES: tuple[str, ...] = ("demo_washer", "demo_terrazzo")
DEMO_DEFECTS: tuple[str, ...] = ("crack", "scratch", "spot", "missing_piece")
_MARKER = ".prn_demo.json"
_SS = 4  # supersampling factor for anti-aliased strokes
_SPLIT_CODES = {"train": 0, "test": 1}


# --- shared helpers (all images are float32 in [0, 1]) ----------------------------------------


def _strokes(shape: tuple[int, int], paths: list[np.ndarray], width: float) -> np.ndarray:
    """Anti-aliased polylines as coverage in [0, 1], (H, W); points are (N, 2) x, y in pixels."""
    canvas = np.zeros((shape[0] * _SS, shape[1] * _SS), np.uint8)
    pts = [np.round(p * _SS + (_SS - 1) / 2).astype(np.int32) for p in paths]
    cv2.polylines(canvas, pts, False, 255, thickness=max(1, round(width * _SS)), lineType=cv2.LINE_AA)
    return cv2.resize(canvas.astype(np.float32) / 255, (shape[1], shape[0]), interpolation=cv2.INTER_AREA)


def _blob(shape: tuple[int, int], centre: np.ndarray, radius: float, rng: np.random.Generator) -> np.ndarray:
    """An irregular soft blob as coverage in [0, 1], (H, W)."""
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float32)
    d = np.hypot(xx - centre[0], yy - centre[1]) / radius
    wobble = 0.6 * (value_noise(shape, rng, max(2, shape[0] // int(radius * 0.8 + 1))) - 0.5)
    return np.clip((1.0 + wobble - d) * radius / 1.5, 0, 1)


def _crack_paths(start: np.ndarray, rng: np.random.Generator, steps: int) -> list[np.ndarray]:
    """A jagged random walk plus one or two shorter branches, as (N, 2) point arrays."""
    def walk(p: np.ndarray, angle: float, n: int) -> np.ndarray:
        pts = [p]
        for _ in range(n):
            angle += rng.normal(0, 0.45)
            pts.append(pts[-1] + rng.uniform(3, 7) * np.array([np.cos(angle), np.sin(angle)]))
        return np.array(pts)

    main = walk(start, rng.uniform(0, 2 * np.pi), steps)
    paths = [main]
    for _ in range(int(rng.integers(1, 3))):
        at = main[int(rng.integers(2, len(main) - 1))]
        paths.append(walk(at, rng.uniform(0, 2 * np.pi), steps // 3))
    return paths


def _scratch_path(start: np.ndarray, rng: np.random.Generator, length: float) -> np.ndarray:
    """A gently curved quadratic Bezier of about ``length`` px, (40, 2)."""
    angle = rng.uniform(0, 2 * np.pi)
    end = start + length * np.array([np.cos(angle), np.sin(angle)])
    ctrl = (start + end) / 2 + rng.normal(0, length * 0.15, 2)
    t = np.linspace(0, 1, 40)[:, None]
    return (1 - t) ** 2 * start + 2 * (1 - t) * t * ctrl + t**2 * end


def _over(image: np.ndarray, colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Alpha-composite ``colour`` ((H, W, 3) or (3,)) over ``image`` with coverage (H, W)."""
    a = alpha[..., None]
    return image * (1 - a) + colour * a


# --- demo_washer: an object on a plain background ---------------------------------------------


class _Washer:
    """Geometry and appearance of one washer; ``render`` gives the clean image (H, W, 3)."""

    def __init__(self, size: int, rng: np.random.Generator) -> None:
        s = size / 256
        self.size = size
        self.centre = np.array([size / 2, size / 2]) + rng.normal(0, 4 * s, 2)
        self.outer = (88 + rng.normal(0, 2.5)) * s
        self.inner = (38 + rng.normal(0, 1.5)) * s
        self.ellipticity = rng.uniform(-0.03, 0.03)
        self.tilt = rng.uniform(0, np.pi)
        self.light = -2.3 + rng.normal(0, 0.25)  # light from the upper left, radians
        self.exposure = 1 + rng.normal(0, 0.03)
        self.bg = np.array([0.82, 0.84, 0.87]) + rng.normal(0, 0.01, 3)
        self.bg_shading = (value_noise((size, size), rng, 2) - 0.5) * 0.06
        self.brush = np.convolve(rng.normal(0, 1, 2 * size), [0.25, 0.5, 0.25], mode="same")  # per half-px radius
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        dx, dy = xx - self.centre[0], yy - self.centre[1]
        c, sn = np.cos(self.tilt), np.sin(self.tilt)
        u, v = (c * dx + sn * dy) / (1 + self.ellipticity), (-sn * dx + c * dy) / (1 - self.ellipticity)
        self.radius = np.hypot(u, v)  # (H, W) elliptical radius
        self.theta = np.arctan2(dy, dx)  # (H, W)
        self.alpha = np.clip(self.outer - self.radius + 0.5, 0, 1) * np.clip(self.radius - self.inner + 0.5, 0, 1)
        shadow = np.roll(self.alpha, (round(5 * s), round(4 * s)), axis=(0, 1))
        self.shadow = cv2.GaussianBlur(shadow, (0, 0), 5 * s) * 0.35

    def background(self) -> np.ndarray:
        yy = np.linspace(-1, 1, self.size, dtype=np.float32)[:, None, None]
        bg = self.bg * (1 + self.bg_shading[..., None] - 0.03 * yy)
        return bg * (1 - self.shadow[..., None])

    def render(self) -> np.ndarray:
        t = np.clip((self.radius - self.inner) / (self.outer - self.inner), 0, 1)  # 0 inner .. 1 outer edge
        profile = 0.42 + 0.3 * np.exp(-(((t - 0.18) / 0.09) ** 2)) + 0.16 * np.exp(-(((t - 0.85) / 0.08) ** 2))
        lit = 1 + 0.28 * np.cos(self.theta - self.light)
        brushed = 0.035 * self.brush[np.clip(self.radius * 2, 0, 2 * self.size - 1).astype(int)]  # concentric lines
        grey = (profile * lit + brushed) * self.exposure
        metal = np.clip(grey[..., None] * np.array([0.93, 0.95, 1.0]), 0, 1)
        return _over(self.background(), metal, self.alpha)

    def on_object(self, rng: np.random.Generator, margin: float) -> np.ndarray:
        """A random (x, y) point on the ring at least ``margin`` px from both edges."""
        r = rng.uniform(self.inner + margin, self.outer - margin)
        a = rng.uniform(0, 2 * np.pi)
        return self.centre + r * np.array([np.cos(a), np.sin(a)])


def _washer_defect(w: _Washer, clean: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    shape = clean.shape[:2]
    s = w.size / 256
    if kind == "missing_piece":  # a bite out of the outer rim shows the background behind it
        a = rng.uniform(0, 2 * np.pi)
        centre = w.centre + (w.outer + rng.uniform(0, 6) * s) * np.array([np.cos(a), np.sin(a)])
        bite = _blob(shape, centre, rng.uniform(16, 26) * s, rng) * w.alpha
        return _over(clean, w.background(), np.clip(bite * 1.5, 0, 1))
    if kind == "spot":  # a dried stain: brownish and translucent
        blob = _blob(shape, w.on_object(rng, 9 * s), rng.uniform(6, 12) * s, rng)
        colour = np.array([0.45, 0.3, 0.12]) + rng.normal(0, 0.05, 3)
        return _over(clean, colour, blob * rng.uniform(0.6, 0.85) * w.alpha)
    if kind == "crack":  # a dark fracture line that stays on the metal
        cov = _strokes(shape, _crack_paths(w.on_object(rng, 10 * s), rng, 12), rng.uniform(1.2, 2.0) * s)
        return _over(clean, clean * 0.2, cov * w.alpha)
    # scratch: a thin bright line where the surface caught the light
    path = _scratch_path(w.on_object(rng, 6 * s), rng, rng.uniform(40, 90) * s)
    cov = _strokes(shape, [path], rng.uniform(0.8, 1.4) * s)
    return _over(clean, np.array([0.98, 0.98, 1.0]), cov * 0.9 * w.alpha)


# --- demo_terrazzo: a surface --------------------------------------------------------------------

_CHIP_COLOURS = np.array([[0.25, 0.25, 0.27], [0.96, 0.95, 0.93], [0.66, 0.38, 0.28], [0.52, 0.56, 0.5]])
_CHIP_SHARES = (0.35, 0.3, 0.2, 0.15)


def _terrazzo(size: int, rng: np.random.Generator) -> np.ndarray:
    """Polished terrazzo: stone chips (irregular polygons) set in a cream binder, (H, W, 3).

    Flat colours with anti-aliased edges keep each PNG near 50 KB at 256 px.
    """
    s = size / 256
    base = np.array([0.86, 0.83, 0.76]) + rng.normal(0, 0.012, 3)
    canvas = np.ones((size * _SS, size * _SS, 3), np.float32) * base
    for _ in range(int(rng.integers(420, 520))):
        centre = rng.uniform(-10 * s, size + 10 * s, 2)
        k = int(rng.integers(5, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, k))
        radii = rng.uniform(1.5, 7.5) * s * rng.uniform(0.6, 1.0, k)
        pts = centre + radii[:, None] * np.stack([np.cos(angles), np.sin(angles)], -1)
        colour = _CHIP_COLOURS[rng.choice(len(_CHIP_COLOURS), p=_CHIP_SHARES)] + rng.normal(0, 0.03, 3)
        cv2.fillPoly(canvas, [np.round(pts * _SS).astype(np.int32)], colour.tolist())
    image = cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)
    light = 1 - rng.uniform(0.02, 0.05) * np.linspace(-1, 1, size, dtype=np.float32)  # soft light fall-off
    return image * (light[:, None, None] if rng.random() < 0.5 else light[None, :, None])


def _terrazzo_defect(clean: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    shape = clean.shape[:2]
    size = shape[0]
    s = size / 256
    anywhere = rng.uniform(0.15, 0.85, 2) * size
    if kind == "missing_piece":  # a chip: a rough, darker recess lit from the upper left
        chip = _blob(shape, anywhere, rng.uniform(9, 18) * s, rng)
        gy, gx = np.gradient(cv2.GaussianBlur(chip, (0, 0), 1.5))
        floor = 0.38 + 0.08 * fractal_noise(shape, rng, (32, 64)) + 1.5 * (gx + gy)
        return _over(clean, np.clip(floor, 0, 1)[..., None] * np.array([0.95, 0.93, 0.9]), chip)
    if kind == "spot":  # an oily stain that darkens and warms the stone
        stain = _blob(shape, anywhere, rng.uniform(6, 14) * s, rng)
        return _over(clean, clean * np.array([0.55, 0.45, 0.35]), stain * rng.uniform(0.7, 0.95))
    if kind == "crack":
        cov = _strokes(shape, _crack_paths(anywhere, rng, 20), rng.uniform(1.2, 2.2) * s)
        return _over(clean, clean * 0.15, cov)
    cov = _strokes(shape, [_scratch_path(anywhere, rng, rng.uniform(60, 140) * s)], rng.uniform(0.9, 1.5) * s)
    return _over(clean, np.array([0.97, 0.97, 0.96]), cov * 0.85)


# --- rendering and writing ---------------------------------------------------------------------


def _quantise(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def render_demo_image(
    category: str, defect: str | None, rng: np.random.Generator, size: int = 256
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render ``(clean, image, mask)``: uint8 RGB (H, W, 3) twice and uint8 (H, W) in {0, 1}.

    ``defect`` None gives a normal image (``image == clean``, empty mask). The mask is exactly
    the pixels where ``image`` and ``clean`` differ; a defect too faint to change at least 20
    pixels is redrawn.

    >>> clean, image, mask = render_demo_image("demo_washer", "crack", np.random.default_rng(0), size=128)
    >>> bool(((clean != image).any(-1) == mask.astype(bool)).all()), int(mask.max())
    (True, 1)
    """
    if category not in DEMO_CATEGORIES:
        raise ValueError(f"unknown demo category {category!r}; choose from {DEMO_CATEGORIES}")
    if defect is not None and defect not in DEMO_DEFECTS:
        raise ValueError(f"unknown demo defect {defect!r}; choose from {DEMO_DEFECTS}")
    if category == "demo_washer":
        washer = _Washer(size, rng)
        clean = washer.render()
    else:
        washer, clean = None, _terrazzo(size, rng)
    clean_u8 = _quantise(clean)
    if defect is None:
        return clean_u8, clean_u8.copy(), np.zeros(clean.shape[:2], np.uint8)
    while True:
        bad = _washer_defect(washer, clean, defect, rng) if washer else _terrazzo_defect(clean, defect, rng)
        image = _quantise(bad)
        mask = (image != clean_u8).any(-1).astype(np.uint8)
        if mask.sum() >= 20:
            return clean_u8, image, mask


def _write_category(folder: Path, category: str, seed: int, counts: dict[str, int], size: int) -> None:
    cat_index = DEMO_CATEGORIES.index(category)
    jobs = [("train", "good", None, counts["train"]), ("test", "good", None, counts["test_good"])]
    jobs += [("test", d, d, counts["per_defect"]) for d in DEMO_DEFECTS]
    for split, name, defect, n in jobs:
        out = folder / split / name
        out.mkdir(parents=True)
        stream = [seed, cat_index, _SPLIT_CODES[split], (DEMO_DEFECTS.index(defect) + 1) if defect else 0]
        for i in range(n):
            _, image, mask = render_demo_image(category, defect, np.random.default_rng([*stream, i]), size)
            cv2.imwrite(str(out / f"{i:03d}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            if defect:
                gt = folder / "ground_truth" / name
                gt.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(gt / f"{i:03d}_mask.png"), mask * 255)



def make_demo_dataset(
    root: str | Path | None = None,
    seed: int = 0,
    num_train: int = 40,
    num_test_good: int = 8,
    num_per_defect: int = 4,
    size: int = 256,
) -> Path:
    """Generate (or reuse) the demo dataset and return its root, which holds
    :data:`DEMO_CATEGORIES` in MVTec layout.

    ``root`` defaults to ``default_cache_dir() / "demo"``. A root already holding a complete
    demo with the same settings and :data:`DEMO_VERSION` is reused as is; otherwise the demo
    category folders are rebuilt in a temporary folder and moved in, so an interrupted run
    never leaves a half-written dataset behind.
    """
    root = cache_subdir(root, "demo")
    counts = {"train": num_train, "test_good": num_test_good, "per_defect": num_per_defect}
    if min(counts.values()) < 1 or size < 64:
        raise ValueError(
            f"demo dataset needs at least one image of each kind and size >= 64, got {counts}, size={size}"
        )
    settings = {"version": DEMO_VERSION, "seed": seed, "size": size, **counts}
    marker = root / _MARKER
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        if all((root / c / "train" / "good").is_dir() for c in DEMO_CATEGORIES):
            return root
    root.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    tmp = root / f".demo-tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for category in DEMO_CATEGORIES:
            _write_category(tmp / category, category, seed, counts, size)
        for category in DEMO_CATEGORIES:
            shutil.rmtree(root / category, ignore_errors=True)
            os.replace(tmp / category, root / category)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_text_atomic(marker, json.dumps(settings, indent=1))
    return root
