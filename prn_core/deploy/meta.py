"""``prn_export.json``: what a consumer must know to feed an exported PRN and trust its output.

A graph file alone does not say how to prepare an image (size, padding rule, value range,
normalisation), which thresholds turn a score into a decision, or which trained weights it
holds. The JSON beside every export answers those, so a production line can check that the
file it runs is the one that was validated (``checkpoint_sha256``) and preprocess exactly as
training did. It is also read back by :func:`prn_core.deploy.load_engine`.
"""
from __future__ import annotations

import hashlib
import importlib
import json
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from .._version import __version__
from ..config import PRNConfig, to_dict

__all__ = [
    "META_FILE",
    "SCHEMA",
    "FORMATS",
    "ENGINES",
    "PRECISIONS",
    "MODEL_FILES",
    "INSTALL_HINT",
    "require",
    "fingerprint_file",
    "fingerprint_state",
    "build_meta",
    "read_meta",
]

META_FILE = "prn_export.json"
SCHEMA = "prn-export/1"
FORMATS: tuple[str, ...] = ("pt2", "onnx", "openvino")
ENGINES: tuple[str, ...] = ("torch", *FORMATS)  # "torch": the checkpoint in eager PyTorch
# Precisions each format supports on CPU. ONNX Runtime's CPU kernels gain nothing from FP16
# (they cast back to FP32), and torch's CPU FP16 convolutions are slower than FP32.
PRECISIONS: dict[str, tuple[str, ...]] = {
    "pt2": ("fp32",),
    "onnx": ("fp32",),
    "openvino": ("fp32", "fp16", "int8"),
}
MODEL_FILES = {"pt2": "model.pt2", "onnx": "model.onnx", "openvino": "model.xml"}
INSTALL_HINT = "pip install 'prn-core[deploy]'"
_CHUNK = 1 << 20


def require(name: str, purpose: str) -> ModuleType:
    """Import an optional deployment package, or say which extra installs it.

    The deployment runtimes are heavy and a training install never needs them, so they are
    imported here, inside the functions that use them, and never at module import.
    """
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise ModuleNotFoundError(
            f"{purpose} needs the optional package {name!r}, which is not installed: "
            f"{INSTALL_HINT}"
        ) from err


def fingerprint_file(path: str | Path) -> str:
    """sha256 of a file's bytes: the identity of a checkpoint a production line validated."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint_state(state: dict[str, Any]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes, in name order.

    Used when :func:`~prn_core.deploy.export` gets a model rather than a file: the same weights
    give the same fingerprint whatever the dict's insertion order or the tensors' layout.
    Non-tensor entries (the prototype bank's metadata) enter as sorted JSON.
    """
    digest = hashlib.sha256()
    for name in sorted(state):
        value = state[name]
        digest.update(name.encode())
        if isinstance(value, torch.Tensor):
            flat = value.detach().cpu().contiguous().reshape(-1)
            digest.update(f"{flat.dtype}{tuple(value.shape)}".encode())
            digest.update(flat.view(torch.uint8).numpy().tobytes())
        else:
            digest.update(json.dumps(value, sort_keys=True, default=str).encode())
    return digest.hexdigest()


def build_meta(
    cfg: PRNConfig,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    *,
    fmt: str,
    precision: str,
    fingerprint: str,
    fingerprint_of: str,
    thresholds: dict[str, Any] | None,
    **extra: Any,
) -> dict[str, Any]:
    """The ``prn_export.json`` content; ``extra`` adds format-specific fields (opset, ...)."""
    height, width = cfg.data.image_size
    return {
        "schema": SCHEMA,
        "format": fmt,
        "precision": precision,
        "model_file": MODEL_FILES.get(fmt),
        "input": {
            "name": "images",
            "shape": ["batch", 3, height, width],
            "dtype": "float32",
            "range": [0.0, 1.0],
            "channels": "RGB",
        },
        "outputs": {
            "anomaly_map": ["batch", 1, height, width],
            "score": ["batch"],
        },
        "image_size": [height, width],
        "keep_aspect": cfg.data.keep_aspect,
        "normalization": {"mean": list(mean), "std": list(std), "in_graph": True},
        "thresholds": thresholds,
        "prn_core_version": __version__,
        "torch_version": torch.__version__,
        "checkpoint_sha256": fingerprint,
        "fingerprint_of": fingerprint_of,
        **extra,
        "config": to_dict(cfg),
    }


def read_meta(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The export folder and its parsed ``prn_export.json``; ``path`` is the folder or a file
    in it. Raises ``FileNotFoundError`` when there is no export there."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; write an export with prn_core.export")
    folder = path if path.is_dir() else path.parent
    meta_path = folder / META_FILE
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"{folder} holds no {META_FILE}, so it is not an export folder of prn_core; write "
            f"one with export(checkpoint, format, out_dir) or `prn export`"
        )
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta_path} is not valid JSON ({err}); export again") from err
    if not isinstance(meta, dict) or meta.get("schema") != SCHEMA:
        raise ValueError(f"{meta_path} is not a {SCHEMA} file; export again with this version")
    return folder, meta
