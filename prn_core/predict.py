"""Inference on image files: what ``prn predict`` and a production line use.

For every image: a heatmap PNG (the anomaly map blended over the input, at the model's input
size), a binary defect-mask PNG at the image's own size (255 where the map reaches the pixel
threshold), and a decision ``anomalous = score >= threshold``. ``scores.json`` and
``scores.csv`` list them with the thresholds used and where each came from: the thresholds
calibrated on the validation split and stored in the model file (:mod:`prn_core.calibrate`),
or ``--threshold`` / ``--pixel-threshold``. A model file saved before calibration existed holds
no threshold; asking it for decisions without one is an error that says which flag to pass.

Inputs are files, folders (searched recursively for PNG/JPEG/BMP/TIFF images) and glob patterns;
they are resized exactly as in training (squashed, or padded with ``keep_aspect``). Output names
are the image stems, made unique with ``_1``, ``_2``... when two inputs share one; a folder that
already holds predictions is only written over with ``overwrite=True`` (``--overwrite``).

Engines: ``torch`` runs the model file (``model.pt``) with padding excluded from the score;
``pt2``, ``onnx`` and ``openvino`` run an export folder written by ``prn export``
(:mod:`prn_core.deploy`), with the thresholds from its ``prn_export.json``.
"""
from __future__ import annotations

import csv
import glob
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
import torch
from tqdm.auto import tqdm

from .atomic import write_image_atomic, write_json_atomic, write_text_atomic
from .calibrate import Thresholds, check_threshold
from .checkpoint import load_checkpoint
from .config import PRNConfig, from_dict
from .data import IMAGE_EXTENSIONS, load_image
from .data.images import image_size_of, valid_region
from .evaluation import predict

__all__ = [
    "ENGINES",
    "IMAGE_SUFFIXES",
    "SCORES_JSON",
    "SCORES_CSV",
    "collect_images",
    "heatmap_overlay",
    "defect_mask",
    "predict_files",
]

ENGINES = ("torch", "pt2", "onnx", "openvino")
IMAGE_SUFFIXES = (*IMAGE_EXTENSIONS, ".tif", ".tiff")  # what a folder input is searched for
SCORES_JSON = "scores.json"
SCORES_CSV = "scores.csv"
_GLOB_CHARS = set("*?[")
CSV_COLUMNS = ("image", "score", "anomalous", "threshold", "threshold_source", "pixel_threshold",
               "pixel_threshold_source", "defect_fraction", "max_pixel", "heatmap", "mask")
# (B, H, W, 3) images in [0, 1] and (B, H, W) valid masks or None -> (B, H, W) maps, (B,) scores
Runner = Callable[[np.ndarray, "np.ndarray | None"], "tuple[np.ndarray, np.ndarray]"]


def collect_images(inputs: Sequence[str | Path]) -> list[Path]:
    """Files as given, folders searched recursively, glob patterns expanded; no duplicates.

    A missing file, a folder without images, or a pattern that matches no image is an error
    naming it: a production line must not silently score nothing.
    """
    found: dict[Path, None] = {}
    for item in inputs:
        path = Path(item).expanduser()
        if path.is_dir():
            hits = sorted(p for p in path.rglob("*") if _is_image(p))
            if not hits:
                raise ValueError(f"folder {path} holds no image ({'/'.join(IMAGE_SUFFIXES)}); "
                                 f"pass image files, a folder of images or a glob pattern")
        elif path.is_file():
            hits = [path]
        elif _GLOB_CHARS & set(str(item)):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True))
            hits = [p for p in matches if _is_image(p)]
            if not hits:
                raise ValueError(f"pattern {str(item)!r} matches no image file; check the "
                                 f"pattern (quote it so the shell does not expand it)")
        else:
            raise FileNotFoundError(f"image {path} does not exist")
        found.update(dict.fromkeys(hits))
    return list(found)


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and \
        path.suffix.lower() in IMAGE_SUFFIXES


def heatmap_overlay(image: np.ndarray, anomaly_map: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) float image in [0, 1] and (H, W) map in [0, 1] -> (H, W, 3) uint8 RGB overlay."""
    heat = cv2.applyColorMap(np.clip(anomaly_map * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    return (np.clip((1 - alpha) * image + alpha * heat, 0, 1) * 255).round().astype(np.uint8)


def defect_mask(anomaly_map: np.ndarray, threshold: float, source_hw: tuple[int, int],
                keep_aspect: bool = False) -> np.ndarray:
    """(H, W) map at the model's size -> uint8 (H0, W0) mask of the source image: 255 = defect.

    The padding of a ``keep_aspect`` input is cut off first, so the mask lines up with the
    image file a person or a robot looks at.
    """
    region = valid_region(source_hw, anomaly_map.shape, keep_aspect)
    rows, cols = np.flatnonzero(region.any(1)), np.flatnonzero(region.any(0))
    content = anomaly_map[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
    resized = cv2.resize(content, (source_hw[1], source_hw[0]), interpolation=cv2.INTER_LINEAR)
    return np.where(resized >= threshold, 255, 0).astype(np.uint8)


@dataclass(frozen=True)
class _Decider:
    """The two thresholds in use and where each came from."""

    image: float
    image_source: str
    pixel: float
    pixel_source: str


def _decider(thresholds: Thresholds, threshold: float | None, pixel_threshold: float | None,
             checkpoint: str | Path) -> _Decider:
    """Flags win over the calibrated thresholds; a missing one is an error naming its flag."""
    def pick(flag_value: float | None, stored: float | None, flag: str, rule: str) -> tuple:
        if flag_value is not None:
            return check_threshold(flag_value, flag), flag
        if stored is None:
            why = f" ({thresholds.note})" if thresholds.note else ""
            raise ValueError(f"checkpoint {checkpoint} holds no calibrated {rule} threshold"
                             f"{why}; pass {flag} T (a score in [0, 1]) or retrain")
        return float(stored), f"checkpoint ({rule})"

    image, image_source = pick(threshold, thresholds.image, "--threshold",
                               thresholds.image_rule or "image")
    pixel, pixel_source = pick(pixel_threshold, thresholds.pixel, "--pixel-threshold", "pixel")
    return _Decider(image, image_source, pixel, pixel_source)


def _torch_runner(checkpoint: str | Path, batch_size: int) -> tuple[Runner, PRNConfig, Thresholds]:
    model, cfg, thresholds = load_checkpoint(checkpoint)
    return (lambda images, valid: predict(model, images, batch_size=batch_size, valid=valid),
            cfg, thresholds)


def _runner(engine: str, checkpoint: str | Path,
            batch_size: int) -> tuple[Runner, PRNConfig, Thresholds]:
    """``torch`` runs the model file here, padding-aware; the others run an export folder of
    :mod:`prn_core.deploy`, thresholds read from its ``prn_export.json``."""
    if engine == "torch":
        return _torch_runner(checkpoint, batch_size)
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    from .deploy import load_engine  # optional runtimes load only when asked for

    exported = load_engine(checkpoint, engine)
    cfg = from_dict(exported.meta["config"])
    thresholds = Thresholds.from_dict(exported.meta.get("thresholds"),
                                      where=f"{checkpoint}: thresholds")
    return (lambda images, valid: exported(images, batch_size=batch_size)), cfg, thresholds


def _unique_names(paths: Sequence[Path]) -> list[str]:
    """Image stems, with ``_1``, ``_2``... added where two inputs share one (in input order)."""
    names: list[str] = []
    taken: set[str] = set()
    for path in paths:
        name, n = path.stem, 0
        while name in taken:
            n += 1
            name = f"{path.stem}_{n}"
        taken.add(name)
        names.append(name)
    return names


def _check_out(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"--out {out_dir} is a file; pass a folder for the predictions")
    if (out_dir / SCORES_JSON).exists() and not overwrite:
        raise ValueError(f"--out {out_dir} already holds predictions ({SCORES_JSON}); pass "
                         f"--overwrite to replace them, or choose another folder")


def predict_files(images: Sequence[str | Path], checkpoint: str | Path, out_dir: str | Path,
                  batch_size: int = 8, threshold: float | None = None,
                  pixel_threshold: float | None = None, engine: str = "torch",
                  overwrite: bool = False, progress: bool = True) -> Path:
    """Score image files with a saved model and decide each one; returns ``scores.json``'s path.

    ``threshold`` / ``pixel_threshold`` override the calibrated thresholds of the model file.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    for value, flag in ((threshold, "--threshold"), (pixel_threshold, "--pixel-threshold")):
        if value is not None:
            check_threshold(value, flag)
    run, cfg, thresholds = _runner(engine, checkpoint, batch_size)
    decide = _decider(thresholds, threshold, pixel_threshold, checkpoint)
    paths = collect_images(images)
    out_dir = Path(out_dir)
    _check_out(out_dir, overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    size, keep = tuple(cfg.data.image_size), cfg.data.keep_aspect
    rows: list[dict[str, Any]] = []
    names = _unique_names(paths)
    bar = tqdm(total=len(paths), desc="predict", unit="image", disable=None if progress else True,
               leave=False)
    for start in range(0, len(paths), batch_size):
        part = paths[start : start + batch_size]
        batch = np.stack([load_image(p, size, keep_aspect=keep) for p in part])
        source_hw = [image_size_of(p) for p in part]
        valid = np.stack([valid_region(hw, size, keep) for hw in source_hw]) if keep else None
        maps, scores = run(batch, valid)
        for i, (path, img, amap, score) in enumerate(zip(part, batch, maps, scores)):
            name = names[start + i]
            heat = write_image_atomic(out_dir / f"{name}_heatmap.png",
                                      cv2.cvtColor(heatmap_overlay(img, amap), cv2.COLOR_RGB2BGR))
            mask = defect_mask(amap, decide.pixel, source_hw[i], keep)
            mask_path = write_image_atomic(out_dir / f"{name}_mask.png", mask)
            rows.append({
                "image": str(path), "score": float(score),
                "anomalous": bool(score >= decide.image), "threshold": decide.image,
                "threshold_source": decide.image_source, "pixel_threshold": decide.pixel,
                "pixel_threshold_source": decide.pixel_source,
                "defect_fraction": float((mask > 0).mean()), "max_pixel": float(amap.max()),
                "heatmap": str(heat), "mask": str(mask_path),
            })
        bar.update(len(part))
    bar.close()
    _write_csv(out_dir / SCORES_CSV, rows)
    return write_json_atomic(out_dir / SCORES_JSON, {
        "checkpoint": str(checkpoint), "engine": engine,
        "thresholds": {"image": decide.image, "image_source": decide.image_source,
                       "pixel": decide.pixel, "pixel_source": decide.pixel_source},
        "predictions": rows,
    })


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """One row per image, the columns of :data:`CSV_COLUMNS`, for a spreadsheet or a PLC log."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return write_text_atomic(path, buffer.getvalue())

