"""Anomaly-detection metrics: image AUROC and F1-max, pixel AUROC and AP, and AU-PRO.

Pure numpy (plus ``scipy.ndimage.label``): metrics know neither the model nor the data, so the
trainer, the CLI and the book all score maps the same way (DESIGN section 4).

Image-level metrics are exact; they see one score per image (:mod:`~prn_core.metrics.image`).
Pixel-level metrics count all maps into equal-mass score bins in two streaming passes, so a
whole MVTec AD test set fits in bounded memory (:mod:`~prn_core.metrics.pixel`, which also says
how accurate binning is, how AU-PRO is defined, how padding is left out and how sharded
evaluation adds up). Both draw their curves from per-threshold counts
(:mod:`~prn_core.metrics.curves`); :func:`compute_metrics` (:mod:`~prn_core.metrics.compute`)
returns the five numbers of a result file, and :func:`metrics_by_group` the same per defect type.

May import: numpy and scipy; never ``data``, ``synthesis``, ``models``, ``train`` or ``viz``.
"""
from prn_core.metrics.compute import compute_metrics, metrics_by_group
from prn_core.metrics.curves import Curve
from prn_core.metrics.image import F1Max, confusion_counts, f1_max, image_auroc, roc_curve
from prn_core.metrics.pixel import (
    MAX_SAMPLE,
    NUM_BINS,
    PixelHistogram,
    Shards,
    au_pro,
    pixel_ap,
    pixel_auroc,
    pixel_histogram,
    pro_curve,
)

__all__ = [
    "NUM_BINS",
    "MAX_SAMPLE",
    "Curve",
    "F1Max",
    "PixelHistogram",
    "Shards",
    "roc_curve",
    "image_auroc",
    "f1_max",
    "confusion_counts",
    "pixel_histogram",
    "pixel_auroc",
    "pixel_ap",
    "pro_curve",
    "au_pro",
    "compute_metrics",
    "metrics_by_group",
]
