"""Deployment: export a trained PRN to pt2, ONNX or OpenVINO IR, and run any of them alike.

A production line wants a frozen graph it can load without the training stack, and evidence
that the graph computes what was validated. :func:`export` writes the model file and
``prn_export.json`` beside it (input size, padding rule, normalisation, calibrated thresholds,
package version, the checkpoint's sha256, format, precision, opset); :func:`load_engine` runs
an export, or the checkpoint itself, behind one call::

    from prn_core.deploy import export, load_engine
    from prn_core.data import load_image

    export("runs/bottle/model.pt", "onnx", "deploy/onnx")           # -> deploy/onnx/model.onnx
    export("deploy/onnx", "openvino", "deploy/ov16", precision="fp16")  # converts the ONNX
    export("runs/bottle/model.pt", "openvino", "deploy/ov8", precision="int8",
           calibration_images=normals)                               # (N, H, W, 3) in [0, 1]

    engine = load_engine("deploy/onnx", "onnx")                      # or torch / pt2 / openvino
    size, pad = tuple(engine.meta["image_size"]), engine.meta["keep_aspect"]
    images = np.stack([load_image(p, size, keep_aspect=pad) for p in paths])
    maps, scores = engine(images)                  # (N, H, W) probabilities, (N,) scores
    anomalous = scores >= engine.meta["thresholds"]["image"]

Inputs are exactly what :func:`prn_core.predict` takes: RGB float images in [0, 1], resized (and
padded under ``keep_aspect``) as in training. Normalisation is inside every graph. The graph
scores every pixel, padding included, as ``prn predict`` does; :func:`prn_core.evaluate` leaves
``keep_aspect`` padding out of the score, so for such models the two can differ slightly.

Design choices:

* **One traced graph.** ``torch.export`` traces the eval model once; ``.pt2`` saves it, ONNX is
  converted from it (the dynamo exporter, falling back to the TorchScript exporter, recorded as
  ``exporter`` in the JSON), and OpenVINO IR is converted from the ONNX file.
* **Dynamic batch.** ``torch.cdist`` (nearest prototype) picks a matrix-product formula above 25
  rows, which would pin the traced batch to 2..25 and has no ONNX translation; it is traced as
  the direct formula, what torch itself uses up to 25 rows, so any batch size runs.
* **FP32 arithmetic in OpenVINO.** Its CPU plugin runs bf16 by default on AVX512-BF16/AMX CPUs
  (about 1e-2 off per pixel); engines ask for f32, so FP32 means FP32.
* **Optional runtimes.** onnx, onnxscript, onnxruntime, openvino and nncf are imported inside
  the functions that need them: ``pip install 'prn-core[deploy]'``.

Accuracy budgets, checked by ``tests/deploy`` on the demo test split against eager PyTorch:

* FP32 (pt2, onnx, openvino): max per-pixel map difference <= 1e-4 (measured under 1e-6),
  identical decisions at the threshold, image and pixel AUROC equal to 4 decimals.
* OpenVINO FP16 (weights stored in FP16, arithmetic in FP32): <= 5e-3 per pixel (measured
  9e-4), AUROCs within 0.005, at most one decision in 20 changed.
* OpenVINO INT8 (NNCF post-training quantisation on normal images): mean per-pixel difference
  <= 0.01 (measured 0.0035; the largest single pixel moved 0.18), image AUROC within 0.05
  (measured equal) and pixel AUROC within 0.02 (measured 0.009 lower). Validate an INT8 model
  on your own data before trusting its thresholds: they were calibrated in FP32.
"""
from __future__ import annotations

from .engines import Engine, load_engine
from .exporters import export
from .meta import ENGINES, FORMATS, META_FILE, PRECISIONS

__all__ = ["ENGINES", "Engine", "FORMATS", "META_FILE", "PRECISIONS", "export", "load_engine"]
