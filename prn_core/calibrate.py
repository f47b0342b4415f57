"""Decision thresholds calibrated on the validation split, never on the test set.

A production line needs a yes/no per image and a defect mask, so a trained model carries
thresholds. They are chosen at the end of training on the validation split (held-out normal
images plus simulated anomalies, :func:`prn_core.prepare.validation_set`), which holds no real
anomaly and no test image, so the test metrics at these thresholds stay an honest estimate.
The test-set F1-max (``image_f1_max`` in the metrics) picks its threshold on the test labels:
it says how good the best threshold could be, not what a deployed model achieves.

Three thresholds, all on the rule ``anomalous  <=>  score >= threshold``:

* ``image`` (rule ``val_f1``): the threshold of the best F1 on the validation image scores;
* ``image_normal_q995``: the 99.5th percentile of the normal validation image scores, an
  alternative that needs no anomaly at all and bounds the false alarms (about 0.5% of normal
  parts), at the price of recall;
* ``pixel``: the best pixel F1 over all valid validation pixels, from the equal-mass
  histogram of :func:`prn_core.metrics.pixel_histogram`, so memory stays bounded whatever the
  number of maps.

An F1-optimal threshold is any value between the lowest score called anomalous and the next
lower score; we take the midpoint, so a new score that falls in the gap goes to the nearer
side. For pixels the gap is between histogram bins: exact when each bin holds one distinct
score, otherwise off by at most one bin (``1 / NUM_BINS`` of the pixels).

Pure numpy over :mod:`prn_core.metrics`: no model, no data, no file.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import numpy as np
from numpy.typing import ArrayLike

from .metrics import f1_max, pixel_histogram

__all__ = [
    "IMAGE_RULE",
    "NORMAL_QUANTILE",
    "Thresholds",
    "image_f1_threshold",
    "normal_quantile_threshold",
    "pixel_f1_threshold",
    "calibrate",
    "metrics_at_threshold",
    "check_threshold",
]

IMAGE_RULE = "val_f1"  # how ``Thresholds.image`` was chosen
NORMAL_QUANTILE = 0.995  # the quantile of normal validation scores for the alternative


@dataclass(frozen=True)
class Thresholds:
    """The calibrated thresholds a model file and ``result.json`` carry (``None``: not set)."""

    image: float | None
    image_normal_q995: float | None = None
    pixel: float | None = None
    image_rule: str | None = IMAGE_RULE
    note: str | None = None  # why a threshold is missing, when one is

    def to_dict(self) -> dict[str, Any]:
        """Plain floats and strings: JSON-ready and loadable with ``weights_only=True``."""
        out = asdict(self)
        return {
            "image": out["image"],
            "image_rule": out["image_rule"],
            "image_normal_q995": out["image_normal_q995"],
            "pixel": out["pixel"],
            **({"note": self.note} if self.note else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "thresholds") -> Thresholds:
        """The inverse of :meth:`to_dict`; a model file from before calibration has none."""
        if data is None:
            return cls(None, None, None, None, "saved before thresholds were calibrated")
        if not isinstance(data, Mapping):
            raise ValueError(f"{where} must be a mapping of threshold names to numbers, "
                             f"got {type(data).__name__}")
        values = {}
        for key in ("image", "image_normal_q995", "pixel"):
            value = data.get(key)
            if value is not None and not (isinstance(value, (int, float))
                                          and math.isfinite(value)):
                raise ValueError(f"{where}.{key} must be a finite number or null, got {value!r}")
            values[key] = None if value is None else float(value)
        return cls(**values, image_rule=data.get("image_rule"), note=data.get("note"))


def _midpoint(lowest_anomalous: float, below: np.ndarray) -> float:
    """Halfway between the lowest score called anomalous and the highest one below it."""
    if not below.size:
        return float(lowest_anomalous)
    lower = float(below.max())
    mid = (lower + float(lowest_anomalous)) / 2
    return mid if lower < mid <= lowest_anomalous else float(lowest_anomalous)


def image_f1_threshold(labels: ArrayLike, scores: ArrayLike) -> float:
    """The image threshold of the best F1 (``score >= t`` is anomalous), midway in its gap.

    Needs both normal and anomalous images.

    >>> image_f1_threshold([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9])
    0.5
    """
    best = f1_max(labels, scores)
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    return _midpoint(best.threshold, values[values < best.threshold])


def normal_quantile_threshold(labels: ArrayLike, scores: ArrayLike,
                              quantile: float = NORMAL_QUANTILE) -> float:
    """The ``quantile`` of the normal images' scores (numpy's linear interpolation).

    >>> normal_quantile_threshold([0, 0, 0, 1], [0.0, 1.0, 2.0, 9.0], 0.5)
    1.0
    """
    if not 0.0 < quantile < 1.0:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"need one label per score; got {y.size} labels and {s.size} scores")
    normal = s[y == 0]
    if not normal.size:
        raise ValueError("the normal-quantile threshold needs normal images (label 0); got none")
    if not np.isfinite(normal).all():
        raise ValueError("scores contain NaN or infinity; check the model output")
    return float(np.quantile(normal, quantile))


def pixel_f1_threshold(masks: Any, maps: Any, valid: Any | None = None) -> float:
    """The pixel threshold of the best F1 over all valid pixels, in bounded memory.

    ``masks``/``maps``/``valid`` are as for :func:`prn_core.metrics.pixel_histogram`.

    >>> masks = np.zeros((2, 4, 4), np.uint8); masks[1, :2, :2] = 1
    >>> pixel_f1_threshold(masks, np.where(masks, 0.75, 0.25).astype(np.float32))
    0.5
    """
    hist = pixel_histogram(masks, maps, valid)
    curve = hist.roc_curve()  # points from the highest threshold down; raises without both kinds
    positives, negatives = int(hist.positives.sum()), int(hist.negatives.sum())
    tp, fp = curve.y * positives, curve.x * negatives
    f1 = 2 * tp / (tp + fp + positives)
    best = int(np.argmax(f1))  # the highest threshold among equal F1, as for images
    uppers = curve.thresholds[1:]  # (K,) upper score of each occupied bin, descending
    return _midpoint(float(curve.thresholds[best]), uppers[best:])


def calibrate(labels: ArrayLike, scores: ArrayLike, masks: Any, maps: Any,
              valid: Any | None = None) -> Thresholds:
    """All three thresholds from validation labels, image scores, masks and maps."""
    return Thresholds(
        image=image_f1_threshold(labels, scores),
        image_normal_q995=normal_quantile_threshold(labels, scores),
        pixel=pixel_f1_threshold(masks, maps, valid),
    )


def check_threshold(value: float, name: str = "threshold") -> float:
    """``value`` as a float when it can be compared with PRN scores (probabilities in [0, 1])."""
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:  # NaN fails this too
        raise ValueError(f"{name} must be a number in [0, 1] (scores are probabilities), "
                         f"got {value}")
    return value


def metrics_at_threshold(labels: ArrayLike, scores: ArrayLike,
                         threshold: float) -> dict[str, float | int]:
    """Precision, recall and F1 of the decisions ``score >= threshold``, with the counts.

    Precision is 0 when nothing is called anomalous (scikit-learn's ``zero_division=0``).

    >>> m = metrics_at_threshold([0, 0, 1, 1], [0.1, 0.6, 0.4, 0.9], 0.5)
    >>> m["precision"], m["recall"], m["f1"], m["fp"]
    (0.5, 0.5, 0.5, 1)
    """
    y = np.asarray(labels).reshape(-1).astype(bool)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"need one label per score; got {y.size} labels and {s.size} scores")
    called = s >= threshold
    tp, fp = int((called & y).sum()), int((called & ~y).sum())
    fn, tn = int((~called & y).sum()), int((~called & ~y).sum())
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0
    return {"threshold": float(threshold), "precision": precision, "recall": recall, "f1": f1,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}
