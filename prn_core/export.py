"""Export a trained PRN for deployment: the entry points of :mod:`prn_core.deploy`.

``export(checkpoint, "pt2" | "onnx" | "openvino", out_dir, precision=...)`` writes the model
file and ``prn_export.json``; ``load_engine(path, engine)`` runs it (or the checkpoint itself,
``engine="torch"``) on images prepared as for :func:`prn_core.predict`. See
:mod:`prn_core.deploy` for usage, the accuracy budgets and the design choices.
"""
from __future__ import annotations

from .deploy import ENGINES, FORMATS, PRECISIONS, Engine, export, load_engine

__all__ = ["ENGINES", "Engine", "FORMATS", "PRECISIONS", "export", "load_engine"]
