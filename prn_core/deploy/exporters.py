"""Writers for each export format, and :func:`export`, the one entry point that picks one.

All formats start from the same eval-mode graph, :class:`MapsAndScores`: images (B, 3, H, W)
in [0, 1] in, ``(anomaly_map (B, 1, H, W), score (B,))`` out, normalisation inside. It is
traced once with ``torch.export`` under :class:`DirectCdist`, which makes the batch dimension
dynamic (see :mod:`prn_core.deploy` for why that needs care). ONNX is converted from that
program; OpenVINO IR from the ONNX file, so the two runtimes read the same graph.
"""
from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from ..atomic import atomic_path, write_json_atomic
from ..config import PRNConfig
from ..models import PRN
from .meta import (
    FORMATS,
    META_FILE,
    MODEL_FILES,
    PRECISIONS,
    build_meta,
    fingerprint_file,
    fingerprint_state,
    read_meta,
    require,
)

__all__ = ["MapsAndScores", "DirectCdist", "trace", "export", "describe_checkpoint"]

OPSET = 18  # the dynamo exporter's well-tested opset; onnxruntime >= 1.14 and OpenVINO read it
TORCHSCRIPT_OPSET = 17  # the fallback exporter's newest fully supported opset
INPUT_NAMES = ["images"]
OUTPUT_NAMES = ["anomaly_map", "score"]
TRACE_BATCH = 2  # example batch while tracing; 0 and 1 would be specialised into the graph
# torch warns when saving or loading weights stored as views (channels_last); harmless on CPU
_VIEW_WARNING = "No complete tensor found"
_DYNAMIC_NOTE = (
    "batch is dynamic: torch.cdist (nearest prototype) is traced as the direct formula "
    "sqrt(sum((a - b)^2)), because torch's own cdist switches to a matrix-product formula "
    "above 25 rows and that switch would pin the exported batch to <= 25"
)


class MapsAndScores(nn.Module):
    """Eval-mode PRN returning a plain tuple ``(anomaly_map (B, 1, H, W), score (B,))``.

    An exported graph's outputs should be plain tensors, so that a consumer without
    ``prn_core`` never needs the :class:`~prn_core.models.PRNOutput` class.
    """

    def __init__(self, model: PRN) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return out.anomaly_map, out.score


class DirectCdist(TorchFunctionMode):
    """Trace Euclidean ``torch.cdist`` as ``sqrt(sum((a - b)^2))`` (what torch computes for
    up to 25 rows), so the graph has no batch-size branch and no op ONNX lacks."""

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        kwargs = kwargs or {}
        if func is torch.cdist and float(kwargs.get("p", args[2] if len(args) > 2 else 2.0)) == 2:
            x1, x2 = args[0], args[1]  # (..., P, M), (..., R, M)
            return (x1.unsqueeze(-2) - x2.unsqueeze(-3)).square().sum(-1).sqrt()  # (..., P, R)
        return func(*args, **kwargs)


def trace(model: PRN) -> torch.export.ExportedProgram:
    """The eval-mode graph of ``model`` on CPU with a dynamic batch dimension."""
    model = _on_cpu(model)
    gen = torch.Generator().manual_seed(0)
    example = torch.rand(TRACE_BATCH, 3, *model.image_size, generator=gen)  # (2, 3, H, W)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad(), DirectCdist():
        return torch.export.export(MapsAndScores(model), (example,), dynamic_shapes=({0: batch},))


def _on_cpu(model: PRN) -> PRN:
    """``model`` itself when on CPU, else a CPU copy: exporting must not move the caller's."""
    if next(model.parameters()).device.type == "cpu":
        return model.eval()
    return copy.deepcopy(model).cpu().eval()


# --- sources -------------------------------------------------------------------------------


@dataclass
class _Source:
    """What an export starts from: a model and its identity, or an existing ONNX export."""

    meta: dict[str, Any]  # prn_export.json fields that do not depend on the format
    model: PRN | None = None
    cfg: PRNConfig | None = None
    onnx_file: Path | None = None  # set when converting an ONNX export folder to OpenVINO


def _model_meta(model: PRN, cfg: PRNConfig, fingerprint: str, fingerprint_of: str,
                thresholds: dict[str, Any] | None) -> dict[str, Any]:
    norm = model.backbone.normalize
    mean = [round(float(v), 6) for v in norm.mean.flatten()]
    std = [round(float(v), 6) for v in norm.std.flatten()]
    return build_meta(cfg, mean, std, fmt="torch", precision="fp32", fingerprint=fingerprint,
                      fingerprint_of=fingerprint_of, thresholds=thresholds)


def describe_checkpoint(path: str | Path) -> tuple[PRN, PRNConfig, dict[str, Any]]:
    """Model, config and export metadata of a model file (``model.pt``); thresholds included
    when training calibrated them."""
    from ..checkpoint import load_model, read_model_file

    path = Path(path)
    thresholds = read_model_file(path).get("thresholds")
    model, cfg = load_model(path)
    meta = _model_meta(model, cfg, fingerprint_file(path), f"checkpoint file {path.name}",
                       thresholds)
    return model, cfg, {**meta, "model_file": path.name}


def _load_source(source: Any, fmt: str) -> _Source:
    if isinstance(source, tuple) and len(source) == 2 and isinstance(source[0], PRN) \
            and isinstance(source[1], PRNConfig):
        model, cfg = source
        if tuple(cfg.data.image_size) != tuple(model.image_size):
            raise ValueError(
                f"the config's image_size {cfg.data.image_size} differs from the model's "
                f"{model.image_size}; pass the config the model was trained with (load_model "
                f"returns both)"
            )
        meta = _model_meta(model, cfg, fingerprint_state(model.state_dict()), "state dict", None)
        return _Source(meta, model, cfg)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            folder, meta = read_meta(path)
            if fmt != "openvino" or meta.get("format") != "onnx" or meta.get("precision") != "fp32":
                raise ValueError(
                    f"{path} is a {meta.get('format')} ({meta.get('precision')}) export folder; "
                    f"only an fp32 onnx export converts further (to openvino). Pass the model "
                    f"file (model.pt) instead"
                )
            return _Source(meta, onnx_file=folder / MODEL_FILES["onnx"])
        model, cfg, meta = describe_checkpoint(path)
        return _Source(meta, model, cfg)
    raise TypeError(
        f"export() takes a model file path, a (PRN, PRNConfig) pair as load_model returns, or "
        f"an onnx export folder; got {type(source).__name__}"
    )


# --- formats -------------------------------------------------------------------------------


def _write_pt2(program: torch.export.ExportedProgram, path: Path, meta: dict[str, Any]) -> None:
    """The program with ``prn_export.json`` inside too: the .pt2 alone is self-describing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_VIEW_WARNING)
        with atomic_path(path) as tmp:
            torch.export.save(program, tmp, extra_files={META_FILE: json.dumps(meta)})


def _without_bank_state(model: PRN) -> PRN:
    """A copy whose prototype bank keeps its metadata out of ``state_dict``.

    The TorchScript exporter reads ``state_dict()`` and fails on the bank's dict-valued extra
    state; the metadata is not part of the graph, so the copy loses nothing the graph needs.
    """
    clone = copy.deepcopy(model)
    bank = clone.prototypes
    bank.__class__ = type("ExportedBank", (type(bank),),
                          {"get_extra_state": nn.Module.get_extra_state})
    return clone


def _write_onnx(model: PRN, program: torch.export.ExportedProgram, path: Path) -> dict[str, Any]:
    """ONNX through the dynamo exporter, or the TorchScript one if dynamo fails."""
    require("onnx", "ONNX export")
    require("onnxscript", "ONNX export (torch's dynamo exporter)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            onnx_program = torch.onnx.export(program, input_names=INPUT_NAMES, dynamo=True,
                                             output_names=OUTPUT_NAMES, opset_version=OPSET,
                                             verbose=False)
    except Exception as err:  # the dynamo exporter raises many types; all mean "fall back"
        reason = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}"
    else:
        with atomic_path(path) as tmp:
            onnx_program.save(tmp, external_data=False)
        return {"exporter": "torch.onnx dynamo", "opset": OPSET}
    dynamic = {name: {0: "batch"} for name in INPUT_NAMES + OUTPUT_NAMES}
    example = torch.rand(TRACE_BATCH, 3, *model.image_size)
    with warnings.catch_warnings(), torch.no_grad(), atomic_path(path) as tmp:
        warnings.simplefilter("ignore")  # TracerWarnings for shape checks that stay constant
        torch.onnx.export(MapsAndScores(_without_bank_state(_on_cpu(model))), (example,), tmp,
                          dynamo=False, opset_version=TORCHSCRIPT_OPSET, dynamic_axes=dynamic,
                          input_names=INPUT_NAMES, output_names=OUTPUT_NAMES)
    return {"exporter": "torch.onnx torchscript", "opset": TORCHSCRIPT_OPSET,
            "dynamo_error": reason}


def _quantize(ov_model: Any, images: np.ndarray) -> Any:
    """Post-training INT8 with NNCF on normal images (N, H, W, 3) in [0, 1]."""
    nncf = require("nncf", "INT8 export")
    nncf.set_log_level(logging.ERROR)
    batches = [np.ascontiguousarray(images[i : i + 1].transpose(0, 3, 1, 2))  # (1, 3, H, W)
               for i in range(len(images))]
    return nncf.quantize(ov_model, nncf.Dataset(batches), subset_size=len(batches))


def _write_openvino(onnx_file: Path, path: Path, precision: str,
                    calibration: np.ndarray | None) -> dict[str, Any]:
    """IR (``model.xml`` + ``model.bin``) converted from ``onnx_file``.

    ``save_model`` writes the pair side by side, named after the xml; both go to temporary
    names first, the weights are renamed into place before the graph that needs them.
    """
    ov = require("openvino", "OpenVINO export")
    ov_model = ov.convert_model(str(onnx_file))
    if precision == "int8":
        ov_model = _quantize(ov_model, calibration)
    with atomic_path(path) as tmp_xml, atomic_path(path.with_suffix(".bin")) as tmp_bin:
        written_bin = tmp_xml.with_suffix(".bin")
        try:
            ov.save_model(ov_model, str(tmp_xml), compress_to_fp16=precision == "fp16")
            os.replace(written_bin, tmp_bin)
        finally:
            written_bin.unlink(missing_ok=True)
    extra: dict[str, Any] = {"openvino_version": ov.get_version(), "weights_file": "model.bin",
                             "inference_precision_hint": "f32"}
    if precision == "int8":
        extra["quantization"] = {"method": "nncf.quantize post-training, default preset",
                                 "calibration_images": int(len(calibration))}
    return extra


# --- the entry point -----------------------------------------------------------------------


def _check_options(fmt: str, precision: str, calibration: Any) -> np.ndarray | None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {list(FORMATS)}")
    if precision not in PRECISIONS[fmt]:
        raise ValueError(f"format {fmt!r} supports precision {list(PRECISIONS[fmt])}, "
                         f"not {precision!r}")
    if precision != "int8":
        if calibration is not None:
            raise ValueError(f"calibration_images are only used by precision 'int8', "
                             f"not {precision!r}; drop them")
        return None
    if calibration is None:
        raise ValueError("precision 'int8' needs calibration_images: a few normal training "
                         "images (N, H, W, 3) in [0, 1], as load_image returns")
    images = np.asarray(calibration, dtype=np.float32)
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) == 0:
        raise ValueError(f"calibration_images must be (N, H, W, 3) with N >= 1, got shape "
                         f"{images.shape}")
    return images


def export(checkpoint_or_model: Any, format: str, out_dir: str | Path, *,  # noqa: A002
           precision: str = "fp32", calibration_images: np.ndarray | None = None) -> Path:
    """Export a trained PRN to ``out_dir`` and return the model file's path.

    Args:
        checkpoint_or_model: a model file (``model.pt``), a ``(PRN, PRNConfig)`` pair as
            :func:`~prn_core.load_model` returns, or (for ``openvino``) an fp32 ``onnx`` export
            folder, which skips tracing again.
        format: ``pt2``, ``onnx`` or ``openvino``.
        out_dir: folder for the model file and ``prn_export.json``.
        precision: ``fp32``; ``openvino`` also takes ``fp16`` (weights) and ``int8`` (NNCF).
        calibration_images: (N, H, W, 3) normal images in [0, 1] for ``int8``, else None.
    """
    calibration = _check_options(format, precision, calibration_images)
    out_dir = Path(out_dir)
    if out_dir.is_file():
        raise ValueError(f"out_dir {out_dir} is a file; export writes a folder")
    src = _load_source(checkpoint_or_model, format)
    size = tuple(src.meta["image_size"])
    if calibration is not None and tuple(calibration.shape[1:3]) != size:
        raise ValueError(f"calibration_images are {tuple(calibration.shape[1:3])} but the model "
                         f"takes {size} (H, W); load them with load_image(path, {size})")
    target = out_dir / MODEL_FILES[format]
    base = {**src.meta, "format": format, "precision": precision, "model_file": target.name}
    if format == "pt2":
        meta = {**base, "exporter": "torch.export", "opset": None, "batch": "dynamic",
                "batch_note": _DYNAMIC_NOTE}
        _write_pt2(trace(src.model), target, meta)
    elif src.onnx_file is not None:  # openvino from an existing onnx export
        meta = {**base, **_write_openvino(src.onnx_file, target, precision, calibration),
                "converted_from": "onnx export"}
    else:
        with tempfile.TemporaryDirectory() as scratch:
            onnx_file = target if format == "onnx" else Path(scratch) / "model.onnx"
            extra = _write_onnx(src.model, trace(src.model), onnx_file)
            meta = {**base, **extra, "batch": "dynamic", "batch_note": _DYNAMIC_NOTE}
            if format == "openvino":
                meta.update(_write_openvino(onnx_file, target, precision, calibration))
    write_json_atomic(out_dir / META_FILE, meta)
    return target
