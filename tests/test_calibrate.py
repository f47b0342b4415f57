"""Thresholds calibrated on validation: known answers, numpy agreement, the stored format."""
from __future__ import annotations

import math

import numpy as np
import pytest

from prn_core.calibrate import (
    Thresholds,
    calibrate,
    check_threshold,
    image_f1_threshold,
    metrics_at_threshold,
    normal_quantile_threshold,
    pixel_f1_threshold,
)
from prn_core.metrics import f1_max


def test_separable_image_scores_give_a_threshold_between_the_classes():
    labels = [0, 0, 0, 1, 1]
    scores = [0.05, 0.2, 0.3, 0.7, 0.95]
    t = image_f1_threshold(labels, scores)
    assert t == pytest.approx(0.5)  # midway between the highest normal and the lowest anomaly
    assert metrics_at_threshold(labels, scores, t)["f1"] == 1.0


def test_image_threshold_reaches_f1_max_on_overlapping_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    scores = rng.random(200) * 0.6 + labels * 0.3
    t = image_f1_threshold(labels, scores)
    assert metrics_at_threshold(labels, scores, t)["f1"] == pytest.approx(
        f1_max(labels, scores).f1
    )
    assert not np.any(scores == t)  # midway in a gap, never on a score


def test_normal_quantile_matches_numpy():
    rng = np.random.default_rng(1)
    scores = rng.random(301)
    labels = (np.arange(301) % 3 == 0).astype(int)
    want = np.quantile(scores[labels == 0], 0.995)
    assert normal_quantile_threshold(labels, scores) == pytest.approx(want, abs=0)
    with pytest.raises(ValueError, match="needs normal images"):
        normal_quantile_threshold([1, 1], [0.2, 0.4])
    with pytest.raises(ValueError, match="quantile must be in"):
        normal_quantile_threshold(labels, scores, 1.0)


def test_pixel_threshold_separates_separable_pixels_and_ignores_padding():
    masks = np.zeros((3, 16, 16), np.uint8)
    masks[1, 4:8, 4:8] = 1
    masks[2, 10:14, 2:9] = 1
    maps = np.where(masks, 0.75, 0.25).astype(np.float32)
    assert pixel_f1_threshold(masks, maps) == 0.5
    valid = np.ones_like(masks, bool)
    valid[0, :, :3] = False
    maps[0, :, :3] = 0.625  # brighter padding: counted, it would narrow the gap
    assert pixel_f1_threshold(masks, maps, valid) == 0.5
    assert pixel_f1_threshold(masks, maps) == 0.6875  # between 0.625 and 0.75


def test_pixel_threshold_is_the_exact_f1_optimum_on_few_distinct_values():
    rng = np.random.default_rng(2)
    masks = (rng.random((4, 12, 12)) < 0.2).astype(np.uint8)
    maps = (np.round(rng.random((4, 12, 12)) * 20) / 20 + masks * 0.3).astype(np.float32)
    t = pixel_f1_threshold(masks, maps)
    flat_y, flat_s = masks.reshape(-1), maps.reshape(-1).astype(np.float64)
    best = max(metrics_at_threshold(flat_y, flat_s, v)["f1"] for v in np.unique(flat_s))
    assert metrics_at_threshold(flat_y, flat_s, t)["f1"] == pytest.approx(best)


def test_calibrate_returns_all_three_and_round_trips():
    labels = np.array([0, 1, 0, 1])
    masks = np.zeros((4, 8, 8), np.uint8)
    masks[[1, 3], 2:5, 2:5] = 1
    maps = np.where(masks, 0.75, 0.25).astype(np.float32)
    scores = np.array([0.1, 0.8, 0.2, 0.9])
    th = calibrate(labels, scores, masks, maps)
    assert th.image == pytest.approx(0.5) and th.pixel == 0.5 and th.image_rule == "val_f1"
    assert th.image_normal_q995 == pytest.approx(np.quantile([0.1, 0.2], 0.995))
    assert Thresholds.from_dict(th.to_dict()) == th
    old = Thresholds.from_dict(None)
    assert old.image is None and old.pixel is None and "before thresholds" in old.note
    with pytest.raises(ValueError, match="image must be a finite number"):
        Thresholds.from_dict({"image": float("nan")})


@pytest.mark.parametrize("bad", [-0.1, 1.5, math.nan, math.inf, "x"])
def test_check_threshold_refuses_values_a_score_cannot_meet(bad):
    with pytest.raises(ValueError, match=r"--threshold must be a number in \[0, 1\]"):
        check_threshold(bad, "--threshold")
    assert check_threshold(0.25) == 0.25


def test_metrics_at_threshold_counts():
    m = metrics_at_threshold([0, 0, 1, 1, 1], [0.1, 0.6, 0.4, 0.9, 0.7], 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["tn"]) == (2, 1, 1, 1)
    assert m["precision"] == pytest.approx(2 / 3) and m["recall"] == pytest.approx(2 / 3)
    nothing = metrics_at_threshold([0, 1], [0.1, 0.2], 0.9)
    assert nothing["precision"] == 0.0 and nothing["recall"] == 0.0 and nothing["f1"] == 0.0
