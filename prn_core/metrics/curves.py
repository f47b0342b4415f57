"""Curves from per-threshold counts, shared by the exact image-level and binned pixel metrics.

Counts come per threshold, thresholds ascending; every curve is a cumulative sum from the top
threshold down and starts at ``(0, 0)`` (nothing predicted anomalous).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Curve"]


class Curve(NamedTuple):
    """A curve for plotting: ``y`` against ``x``, reached by predicting ``score >= threshold``.

    Points are ordered by decreasing threshold; the first point is ``(0, 0)`` with threshold
    ``+inf`` (nothing predicted anomalous). For binned pixel curves a point's threshold is the
    largest score of its bin, so it is exact only up to the width of one bin.
    """

    x: np.ndarray  # (K,) false-positive rate
    y: np.ndarray  # (K,) true-positive rate (ROC) or per-region overlap (PRO)
    thresholds: np.ndarray  # (K,)


def _cumulative(counts: np.ndarray) -> np.ndarray:
    """Counts per threshold ascending -> counts at or above each threshold, descending."""
    return np.cumsum(counts[::-1], dtype=np.float64)


def _roc_from_counts(pos: np.ndarray, neg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fpr, tpr) from per-threshold positive/negative counts (thresholds ascending).

    Ties inside one threshold become a diagonal segment, as in scikit-learn.
    """
    tp, fp = _cumulative(pos), _cumulative(neg)
    tpr = np.concatenate([[0.0], tp / tp[-1]])
    fpr = np.concatenate([[0.0], fp / fp[-1]])
    return fpr, tpr


def _ap_from_counts(pos: np.ndarray, neg: np.ndarray) -> float:
    """Average precision as scikit-learn defines it: sum of (R_k - R_{k-1}) * P_k."""
    tp, fp = _cumulative(pos), _cumulative(neg)
    gained = pos[::-1] > 0  # recall only grows at thresholds that add positives
    precision = tp[gained] / (tp[gained] + fp[gained])
    return float(np.sum(pos[::-1][gained] / tp[-1] * precision))


def _trapezoid(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) * 0.5))


def _area_up_to(x: np.ndarray, y: np.ndarray, x_max: float) -> float:
    """Trapezoidal area under ``y(x)`` for ``x`` in ``[0, x_max]``; ``x`` non-decreasing from 0.

    The curve is cut at ``x_max`` by linear interpolation on the segment that crosses it, as the
    MVTec AD reference ``trapezoid(..., x_max=0.3)`` does.
    """
    end = int(np.searchsorted(x, x_max, side="right"))  # x[:end] <= x_max
    area = _trapezoid(x[:end], y[:end])
    if end < len(x) and x[end - 1] < x_max:
        frac = (x_max - x[end - 1]) / (x[end] - x[end - 1])
        y_cut = y[end - 1] + frac * (y[end] - y[end - 1])
        area += (x_max - x[end - 1]) * (y[end - 1] + y_cut) * 0.5
    return area
