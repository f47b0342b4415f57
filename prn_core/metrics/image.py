"""Image-level metrics: exact, from one score per image.

The ROC curve and its area (equal to scikit-learn's), the best F1 over all thresholds, and the
confusion counts at one threshold.
"""
from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from prn_core.metrics.curves import Curve, _cumulative, _roc_from_counts, _trapezoid

__all__ = ["ArrayLike", "F1Max", "confusion_counts", "f1_max", "image_auroc", "roc_curve"]

ArrayLike = Any  # numpy array, sequence of arrays, or a CPU torch tensor


class F1Max(NamedTuple):
    """The best F1 over all thresholds, and the threshold that reaches it (``score >= t``)."""

    f1: float
    threshold: float


def _image_counts(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores ascending with the positive and negative count at each."""
    y = np.asarray(labels).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(
            f"labels and scores must have one entry per image; got {y.size} labels and "
            f"{s.size} scores"
        )
    if not np.isin(y, (0, 1)).all():
        raise ValueError(
            f"labels must be 0 (normal) or 1 (anomalous); found values {np.unique(y)[:10]}"
        )
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinity; check the model output")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise ValueError(
            f"image metrics need both normal and anomalous images; got {int(y.sum())} "
            f"anomalous of {y.size}. Evaluate on a test set with both kinds"
        )
    values, inverse = np.unique(s, return_inverse=True)
    pos = np.bincount(inverse[y], minlength=len(values))
    neg = np.bincount(inverse[~y], minlength=len(values))
    return values, pos, neg


def roc_curve(labels: ArrayLike, scores: ArrayLike) -> Curve:
    """Image-level ROC curve (exact, one point per distinct score).

    >>> c = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> c.x.tolist(), c.y.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    values, pos, neg = _image_counts(labels, scores)
    fpr, tpr = _roc_from_counts(pos, neg)
    return Curve(fpr, tpr, np.concatenate([[np.inf], values[::-1]]))


def image_auroc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the image-level ROC curve; equals ``sklearn.metrics.roc_auc_score``.

    >>> image_auroc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    curve = roc_curve(labels, scores)
    return _trapezoid(curve.x, curve.y)


def f1_max(labels: ArrayLike, scores: ArrayLike) -> F1Max:
    """The best image-level F1 over all thresholds ``score >= t``, and that threshold.

    The book reports it because a deployed detector needs one threshold, and F1-max tells how
    good the best one could be (an optimistic figure: it is chosen on the test labels).

    >>> f1_max([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    F1Max(f1=0.8, threshold=0.35)
    """
    values, pos, neg = _image_counts(labels, scores)
    tp, fp = _cumulative(pos), _cumulative(neg)
    f1 = 2 * tp / (tp + fp + tp[-1])  # 2TP / (2TP + FP + FN) with FN = P - TP
    best = int(np.argmax(f1))
    return F1Max(float(f1[best]), float(values[::-1][best]))


def confusion_counts(labels: ArrayLike, scores: ArrayLike, threshold: float) -> dict[str, int]:
    """Image-level confusion counts when ``score >= threshold`` means anomalous (label 1).

    Returns ``{"TP", "FN", "FP", "TN"}``. Unlike the curves it accepts a test set of one class:
    a threshold still sorts its images.

    >>> confusion_counts([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], threshold=0.35)
    {'TP': 2, 'FN': 0, 'FP': 1, 'TN': 1}
    """
    positive, predicted = np.asarray(labels) == 1, np.asarray(scores) >= threshold
    return {"TP": int((positive & predicted).sum()), "FN": int((positive & ~predicted).sum()),
            "FP": int((~positive & predicted).sum()), "TN": int((~positive & ~predicted).sum())}
