"""Run an exported PRN (or the checkpoint itself) behind one interface, :class:`Engine`.

Every engine takes what :func:`prn_core.predict` takes, (N, H, W, 3) float images in [0, 1]
already resized as in training (``load_image(path, image_size, keep_aspect)``), and returns what
it returns, maps (N, H, W) and scores (N,), so a caller switches runtimes with one argument.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .exporters import describe_checkpoint
from .meta import ENGINES, MODEL_FILES, read_meta, require

__all__ = ["Engine", "load_engine"]

Runner = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # (B, 3, H, W) -> maps, scores


class Engine:
    """One loaded model: ``engine(images) -> (maps (N, H, W), scores (N,))``.

    Attributes:
        name: the engine (``torch``, ``pt2``, ``onnx`` or ``openvino``).
        meta: the export's ``prn_export.json`` (for ``torch``, the same fields built from the
            checkpoint), with the input size, padding rule, thresholds and fingerprint.
    """

    def __init__(self, name: str, meta: dict[str, Any], run: Runner) -> None:
        self.name = name
        self.meta = meta
        self.image_size: tuple[int, int] = tuple(meta["image_size"])
        self._run = run

    def __repr__(self) -> str:
        return (f"Engine({self.name!r}, precision={self.meta.get('precision')!r}, "
                f"image_size={self.image_size})")

    def __call__(self, images: np.ndarray, batch_size: int = 8) -> tuple[np.ndarray, np.ndarray]:
        """Anomaly maps (N, H, W) and image scores (N,) for (N, H, W, 3) images in [0, 1]."""
        images = self._check(images)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        maps, scores = [], []
        for start in range(0, len(images), batch_size):
            batch = np.ascontiguousarray(images[start : start + batch_size].transpose(0, 3, 1, 2))
            m, s = self._run(batch)
            maps.append(np.asarray(m, dtype=np.float32)[:, 0])
            scores.append(np.asarray(s, dtype=np.float32).reshape(-1))
        if not maps:
            return np.zeros((0, *self.image_size), np.float32), np.zeros((0,), np.float32)
        return np.concatenate(maps), np.concatenate(scores)

    def _check(self, images: Any) -> np.ndarray:
        images = np.asarray(images)
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be (N, H, W, 3) RGB, got shape {images.shape}")
        if tuple(images.shape[1:3]) != self.image_size:
            raise ValueError(
                f"images are {tuple(images.shape[1:3])} (H, W) but the model was exported for "
                f"{self.image_size}; resize with load_image(path, {self.image_size}, "
                f"keep_aspect={self.meta['keep_aspect']})"
            )
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be floats in [0, 1] (load_image output), got "
                             f"{images.dtype}; divide uint8 images by 255")
        if images.size and (images.min() < 0 or images.max() > 1):
            raise ValueError(f"images must be in [0, 1], got values in "
                             f"[{images.min():.3g}, {images.max():.3g}]")
        return images.astype(np.float32, copy=False)


def _torch_runner(module: Callable[[torch.Tensor], Any]) -> Runner:
    @torch.no_grad()
    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = module(torch.from_numpy(batch))  # PRNOutput or a plain (map, score) tuple
        return out[0].float().numpy(), out[1].float().numpy()

    return run


def _load_pt2(file: Path, threads: int | None) -> Runner:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="No complete tensor found")
        program = torch.export.load(file)
    return _torch_runner(program.module())


def _load_onnx(file: Path, threads: int | None) -> Runner:
    ort = require("onnxruntime", "the onnx engine")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default, one per core
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(file), options, providers=["CPUExecutionProvider"])

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        maps, scores = session.run(["anomaly_map", "score"], {"images": batch})
        return maps, scores

    return run


def _load_openvino(file: Path, threads: int | None) -> Runner:
    ov = require("openvino", "the openvino engine")
    # FP32 arithmetic: on CPUs with AVX512-BF16 or AMX, OpenVINO would otherwise run in bf16
    # by default, about 1e-2 off the PyTorch maps. INT8 layers stay INT8 under this hint.
    config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": "f32"}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = ov.Core().compile_model(str(file), "CPU", config)
    maps_out, scores_out = compiled.output("anomaly_map"), compiled.output("score")

    def run(batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        result = compiled(batch)
        return result[maps_out], result[scores_out]

    return run


_LOADERS = {"pt2": _load_pt2, "onnx": _load_onnx, "openvino": _load_openvino}


def load_engine(path: str | Path, engine: str, *, threads: int | None = None) -> Engine:
    """Load ``path`` to run with ``engine``.

    Args:
        path: for ``torch``, a model file (``model.pt``); otherwise an export folder written by
            :func:`~prn_core.deploy.export`, or the model file inside it.
        engine: ``torch``, ``pt2``, ``onnx`` or ``openvino``; must match the export's format.
        threads: CPU threads for the runtime (None: its default). For ``torch`` and ``pt2``
            this sets ``torch.set_num_threads`` for the whole process.
    """
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {list(ENGINES)}")
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be >= 1 or None, got {threads}")
    if engine in ("torch", "pt2") and threads:
        torch.set_num_threads(threads)
    path = Path(path)
    if engine == "torch":
        if path.is_dir():
            raise ValueError(f"engine 'torch' runs a model file (model.pt), but {path} is a "
                             f"folder; pass the checkpoint, or the export's engine")
        model, _, meta = describe_checkpoint(path)
        return Engine(engine, meta, _torch_runner(model.eval()))
    folder, meta = read_meta(path)
    if meta.get("format") != engine:
        raise ValueError(f"{folder} holds a {meta.get('format')!r} export, not {engine!r}; "
                         f"use engine={meta.get('format')!r} or export to {engine!r}")
    file = folder / MODEL_FILES[engine]
    if not file.is_file():
        raise FileNotFoundError(f"{folder / 'prn_export.json'} names {file.name}, which is "
                                f"missing; export again")
    return Engine(engine, meta, _LOADERS[engine](file, threads))
