"""Inference on image files: what ``prn predict`` and deployment use.

A heatmap PNG per image (the anomaly map blended over the input) plus ``scores.json`` with the
image score and the largest pixel probability. Inputs are resized exactly as in training
(squashed, or padded when the model was trained with ``keep_aspect``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from .data import load_image
from .runinfo import write_json_atomic
from .checkpoint import load_model
from .evaluation import predict

__all__ = ["predict_files", "heatmap_overlay"]


def heatmap_overlay(image: np.ndarray, anomaly_map: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) float image in [0, 1] and (H, W) map in [0, 1] -> (H, W, 3) uint8 RGB overlay."""
    heat = cv2.applyColorMap(np.clip(anomaly_map * 255, 0, 255).astype(np.uint8), cv2.COLORMAP_JET)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB).astype(np.float32) / 255
    return (np.clip((1 - alpha) * image + alpha * heat, 0, 1) * 255).round().astype(np.uint8)


def predict_files(images: Sequence[str | Path], checkpoint: str | Path, out_dir: str | Path,
                  batch_size: int = 8) -> Path:
    """Score image files with a saved model; returns the path of ``scores.json``."""
    model, cfg = load_model(checkpoint)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [Path(p) for p in images]
    for p in paths:
        if not p.is_file():
            raise FileNotFoundError(f"image {p} does not exist")
    rows = []
    for start in range(0, len(paths), batch_size):
        part = paths[start : start + batch_size]
        batch = np.stack([load_image(p, cfg.data.image_size, keep_aspect=cfg.data.keep_aspect) for p in part])
        maps, scores = predict(model, batch, batch_size=batch_size)
        for path, img, amap, score in zip(part, batch, maps, scores):
            heat_path = out_dir / f"{path.stem}_heatmap.png"
            cv2.imwrite(str(heat_path), cv2.cvtColor(heatmap_overlay(img, amap), cv2.COLOR_RGB2BGR))
            rows.append({"image": str(path), "score": float(score), "heatmap": str(heat_path),
                         "max_pixel": float(amap.max())})
    return write_json_atomic(out_dir / "scores.json", {"checkpoint": str(checkpoint), "predictions": rows})
