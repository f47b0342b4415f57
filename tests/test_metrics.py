"""Metrics: agreement with scikit-learn, hand-computed AU-PRO values, a dense reference AU-PRO,
padding, input forms, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve

from prn_core.metrics import (
    au_pro,
    compute_metrics,
    confusion_counts,
    f1_max,
    image_auroc,
    pixel_ap,
    pixel_auroc,
    pixel_histogram,
    pro_curve,
    roc_curve,
)


def blob_masks(rng: np.random.Generator, n: int, size: int, normal: int = 2) -> np.ndarray:
    """(n, size, size) uint8 masks: the first ``normal`` empty, the rest 1-3 random blobs."""
    masks = np.zeros((n, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for m in masks[normal:]:
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(0, size, 2)
            r = rng.uniform(1.5, size / 6)
            m[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    return masks


def noisy_maps(rng: np.random.Generator, masks: np.ndarray, decimals: int | None) -> np.ndarray:
    """Scores that favour the anomalous pixels but overlap with the normal ones."""
    maps = rng.normal(size=masks.shape) + 1.5 * masks
    maps = ndimage.gaussian_filter(maps, sigma=(0, 1, 1))
    return (np.round(maps, decimals) if decimals is not None else maps).astype(np.float32)


def reference_au_pro(masks: np.ndarray, maps: np.ndarray, fpr_limit: float) -> float:
    """Dense, obviously-correct AU-PRO: one curve point per distinct score, 8-connectivity."""
    regions = []
    for mask, amap in zip(masks, maps):
        labels, n = ndimage.label(mask > 0, structure=np.ones((3, 3)))
        regions += [amap[labels == k] for k in range(1, n + 1)]
    thresholds = np.unique(maps)[::-1]

    def fraction_at_or_above(values: np.ndarray) -> np.ndarray:  # for every threshold
        below = np.searchsorted(np.sort(values), thresholds, side="left")
        return 1.0 - below / values.size

    xs = [0.0, *fraction_at_or_above(maps[masks == 0])]
    ys = [0.0, *np.mean([fraction_at_or_above(r) for r in regions], axis=0)]
    area = 0.0
    for x0, x1, y0, y1 in zip(xs[:-1], xs[1:], ys[:-1], ys[1:]):
        if x0 >= fpr_limit:
            break
        if x1 > fpr_limit:  # cut the crossing segment at the limit
            y1 = y0 + (y1 - y0) * (fpr_limit - x0) / (x1 - x0)
            x1 = fpr_limit
        area += (x1 - x0) * (y0 + y1) / 2
    return area / fpr_limit


def hand_case() -> tuple[np.ndarray, np.ndarray]:
    """One 10x10 image, two regions uniform inside, normal scores at three levels.

    Region A: 4 pixels at 0.8. Region B: 6 pixels at 0.4 (not touching A, not even diagonally).
    Normal pixels (90): 9 at 0.6, 18 at 0.2, 63 at 0.0.
    """
    mask = np.zeros((10, 10), np.uint8)
    amap = np.zeros((10, 10), np.float32)
    mask[0:2, 0:2] = 1
    amap[0:2, 0:2] = 0.8
    mask[5:7, 5:8] = 1
    amap[5:7, 5:8] = 0.4
    normal = np.flatnonzero(mask.reshape(-1) == 0)
    amap.reshape(-1)[normal[:9]] = 0.6
    amap.reshape(-1)[normal[9:27]] = 0.2
    return mask[None], amap[None]


# ------------------------------------------------------------------ image level


def test_image_metrics_match_sklearn_with_ties():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 300)
    scores = np.round(rng.normal(size=300) + labels, 1)  # many ties
    assert image_auroc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    curve = roc_curve(labels, scores)
    fpr, tpr, thr = sk_roc_curve(labels, scores, drop_intermediate=False)
    np.testing.assert_allclose(curve.x, fpr)
    np.testing.assert_allclose(curve.y, tpr)
    np.testing.assert_allclose(curve.thresholds[1:], thr[1:])
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-300)
    best = f1_max(labels, scores)
    assert best.f1 == pytest.approx(f1.max(), abs=1e-12)
    assert best.threshold == thresholds[np.argmax(f1[:-1])]


def test_f1_max_known_answer():
    # Threshold 0.35 flags 3 images, 2 of them anomalous: F1 = 2*2 / (2*2 + 1 + 0) = 0.8.
    assert f1_max([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == (0.8, 0.35)
    assert f1_max([0, 1], [0.2, 0.9]) == (1.0, 0.9)


def test_image_metric_errors_are_clear():
    with pytest.raises(ValueError, match="both normal and anomalous"):
        image_auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="one entry per image"):
        image_auroc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="0 \\(normal\\) or 1"):
        image_auroc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        f1_max([0, 1], [0.1, np.nan])


def test_confusion_counts_agree_with_sklearn_and_the_f1_max_threshold():
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(size=200) + labels, 1)  # ties at the threshold count as flagged
    best = f1_max(labels, scores)
    counts = confusion_counts(labels, scores, best.threshold)
    (tn, fp), (fn, tp) = confusion_matrix(labels, scores >= best.threshold)
    assert counts == {"TP": tp, "FN": fn, "FP": fp, "TN": tn}
    assert 2 * tp / (2 * tp + fp + fn) == pytest.approx(best.f1)
    assert confusion_counts([0, 0], [0.2, 0.9], 0.5) == {"TP": 0, "FN": 0, "FP": 1, "TN": 1}  # one class is fine


# ------------------------------------------------------------------ pixel AUROC / AP


def test_pixel_metrics_exact_when_few_distinct_scores():
    rng = np.random.default_rng(1)
    masks = blob_masks(rng, 12, 48)
    maps = noisy_maps(rng, masks, decimals=2)  # about 800 distinct values < NUM_BINS
    y, s = masks.reshape(-1), maps.reshape(-1)
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert pixel_ap(masks, maps) == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_pixel_metrics_binned_within_tolerance():
    # Continuous scores: more distinct values than bins, and a sample smaller than the data,
    # so both approximations are in play. With 1024 bins the AUROC bound is 0.5/1024 ~ 5e-4.
    rng = np.random.default_rng(2)
    masks = blob_masks(rng, 16, 64)
    maps = noisy_maps(rng, masks, decimals=None)
    y, s = masks.reshape(-1), maps.reshape(-1)
    hist = pixel_histogram(masks, maps, num_bins=1024, max_sample=20_000)
    assert len(hist.edges) == 1024
    assert abs(hist.auroc() - roc_auc_score(y, s)) < 5e-4
    assert abs(hist.average_precision() - average_precision_score(y, s)) < 2e-3
    assert abs(hist.au_pro() - reference_au_pro(masks, maps, 0.3)) < 2e-3
    # The default 2**16 bins, placed from a sample of a third of the pixels.
    hist = pixel_histogram(masks, maps, max_sample=20_000)
    assert abs(hist.auroc() - roc_auc_score(y, s)) < 1e-5
    assert abs(hist.average_precision() - average_precision_score(y, s)) < 1e-4
    assert abs(hist.au_pro() - reference_au_pro(masks, maps, 0.3)) < 1e-4
    # With no more distinct scores than bins and every pixel sampled, the result is exact.
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_subsampled_edges_are_deterministic():
    rng = np.random.default_rng(3)
    masks = blob_masks(rng, 6, 64)
    maps = noisy_maps(rng, masks, decimals=None)
    a = pixel_histogram(masks, maps, num_bins=256, max_sample=3000)
    b = pixel_histogram(masks, maps, num_bins=256, max_sample=3000)
    np.testing.assert_array_equal(a.edges, b.edges)
    assert a.auroc() == b.auroc() and a.au_pro() == b.au_pro()
    # Equal-mass bins: no bin holds much more than its share of the pixels.
    counts = a.positives + a.negatives
    assert counts.max() < 4 * masks.size / 256


# ------------------------------------------------------------------ AU-PRO


def test_au_pro_perfect_and_inverted_maps():
    rng = np.random.default_rng(4)
    masks = blob_masks(rng, 6, 32)
    assert au_pro(masks, masks.astype(np.float32)) == 1.0
    assert au_pro(masks, 1.0 - masks.astype(np.float32)) == 0.0


def test_au_pro_hand_computed():
    # PRO curve: (0,0) -> t=0.8 (0, 0.5) -> t=0.6 (0.1, 0.5) -> t=0.4 (0.1, 1) -> t=0.2 (0.3, 1)
    # -> t=0 (1, 1). Area to 0.3: 0.1*0.5 + 0.2*1 = 0.25, normalised 0.25/0.3 = 5/6.
    masks, maps = hand_case()
    assert au_pro(masks, maps) == pytest.approx(5 / 6, abs=1e-12)
    assert au_pro(masks, maps, fpr_limit=0.05) == pytest.approx(0.5, abs=1e-12)  # 0.05*0.5/0.05
    assert au_pro(masks, maps, fpr_limit=0.2) == pytest.approx(0.75, abs=1e-12)  # (0.05+0.1)/0.2
    curve = pro_curve(masks, maps)
    np.testing.assert_allclose(curve.x, [0, 0, 0.1, 0.1, 0.3, 1])
    np.testing.assert_allclose(curve.y, [0, 0.5, 0.5, 1, 1, 1])
    np.testing.assert_allclose(curve.thresholds[1:], [0.8, 0.6, 0.4, 0.2, 0.0])


def test_au_pro_cuts_a_diagonal_segment_at_the_limit():
    # Move the 9 normal pixels at 0.6 to 0.4, tied with region B: the curve goes straight from
    # (0, 0.5) to (0.1, 1). Area to 0.05: 0.05 * (0.5 + 0.75) / 2 = 0.03125 -> 0.625.
    masks, maps = hand_case()
    maps[maps == np.float32(0.6)] = 0.4
    assert au_pro(masks, maps, fpr_limit=0.05) == pytest.approx(0.625, abs=1e-12)
    assert au_pro(masks, maps) == pytest.approx((0.075 + 0.2) / 0.3, abs=1e-12)


def test_au_pro_regions_are_eight_connected_and_weighted_equally():
    # Two pixels touching only at a corner are ONE region; a far-away big region is another.
    mask = np.zeros((1, 20, 20), np.uint8)
    mask[0, 0, 0] = mask[0, 1, 1] = 1
    mask[0, 10:20, 10:20] = 1
    amap = mask.astype(np.float32) * 0.5
    amap[0, 0, 0] = 1.0  # half of the small region is found first
    hist = pixel_histogram(mask, amap)
    assert hist.num_regions == 2
    # Threshold 1.0: PRO = (1/2 + 0) / 2 = 0.25 at FPR 0; then 1 at FPR 0.
    np.testing.assert_allclose(hist.pro_curve().y[:3], [0, 0.25, 1])


def test_au_pro_matches_dense_reference():
    rng = np.random.default_rng(5)
    masks = blob_masks(rng, 8, 32)
    maps = noisy_maps(rng, masks, decimals=2)
    for limit in (0.3, 0.05, 1.0):
        assert au_pro(masks, maps, fpr_limit=limit) == pytest.approx(
            reference_au_pro(masks, maps, limit), abs=1e-12
        )


def test_au_pro_is_never_above_one():
    rng = np.random.default_rng(6)
    for seed in range(5):
        masks = blob_masks(np.random.default_rng(seed), 4, 24)
        maps = masks + rng.uniform(0, 1e-3, masks.shape).astype(np.float32)
        value = au_pro(masks, maps)
        assert 0.99 <= value <= 1.0
        assert pro_curve(masks, maps).y.max() <= 1.0


# ------------------------------------------------------------------ padding and input forms


def test_valid_mask_excludes_padding_exactly():
    rng = np.random.default_rng(7)
    masks = blob_masks(rng, 6, 32)
    maps = noisy_maps(rng, masks, decimals=2)
    # Pad every image on the right with 8 columns of misleading scores and anomalous mask.
    pad_masks = np.concatenate([masks, np.ones((6, 32, 8), np.uint8)], axis=2)
    pad_maps = np.concatenate([maps, np.full((6, 32, 8), -5, np.float32)], axis=2)
    valid = np.zeros(pad_maps.shape, bool)
    valid[:, :, :32] = True
    labels = masks.reshape(6, -1).max(axis=1)
    scores = maps.reshape(6, -1).max(axis=1)
    assert compute_metrics(labels, scores, pad_masks, pad_maps, valid) == compute_metrics(
        labels, scores, masks, maps
    )


def test_input_forms_give_the_same_answer():
    rng = np.random.default_rng(8)
    masks = blob_masks(rng, 5, 32)
    maps = noisy_maps(rng, masks, decimals=2).astype(np.float16)
    expected = au_pro(masks, maps.astype(np.float32))
    assert au_pro(list(masks), list(maps)) == expected
    assert au_pro(masks[:, None], maps[:, None]) == expected  # (N, 1, H, W), as the model outputs
    assert au_pro((m for m in masks), (a for a in maps)) == expected  # one-shot iterators
    # Images of different sizes, as in the magnetic-tile set.
    small_mask, small_map = blob_masks(rng, 3, 20)[2], rng.random((20, 20)).astype(np.float32)
    mixed = pixel_histogram([*masks, small_mask], [*maps, small_map])
    assert mixed.positives.sum() == masks.sum() + small_mask.sum()


def test_compute_metrics_agrees_with_each_function():
    rng = np.random.default_rng(9)
    masks = blob_masks(rng, 10, 32, normal=4)
    maps = noisy_maps(rng, masks, decimals=2)
    labels = masks.reshape(10, -1).max(axis=1)
    scores = maps.reshape(10, -1).max(axis=1)
    result = compute_metrics(labels, scores, masks, maps)
    assert set(result) == {"image_auroc", "image_f1_max", "pixel_auroc", "pixel_ap", "au_pro"}
    assert result["image_auroc"] == image_auroc(labels, scores)
    assert result["image_f1_max"] == f1_max(labels, scores).f1
    assert result["pixel_auroc"] == pixel_auroc(masks, maps)
    assert result["pixel_ap"] == pixel_ap(masks, maps)
    assert result["au_pro"] == au_pro(masks, maps)
    assert all(0.0 <= v <= 1.0 for v in result.values())


def test_pixel_metric_errors_are_clear():
    masks = np.zeros((2, 8, 8), np.uint8)
    maps = np.zeros((2, 8, 8), np.float32)
    with pytest.raises(ValueError, match="masks are empty"):
        au_pro(masks, maps)
    masks[1, 2:4, 2:4] = 255
    with pytest.raises(ValueError, match="Divide 0/255 masks by 255"):
        au_pro(masks, maps)
    masks[1] //= 255
    with pytest.raises(ValueError, match="masks\\[1\\] has shape \\(8, 8\\) but maps\\[1\\] has \\(4, 4\\)"):
        pixel_auroc(masks, [maps[0], maps[1, :4, :4]])
    with pytest.raises(ValueError, match="one mask"):
        pixel_auroc(masks, maps[:1])
    with pytest.raises(ValueError, match="fpr_limit"):
        au_pro(masks, maps, fpr_limit=0.0)
    maps[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        pixel_ap(masks, maps)
    with pytest.raises(ValueError, match="one label per map"):
        compute_metrics([0, 1, 1], [0.0, 1.0, 1.0], masks, maps)


def test_working_memory_does_not_grow_with_the_number_of_maps():
    import tracemalloc

    rng = np.random.default_rng(10)
    masks = blob_masks(rng, 80, 128)
    maps = noisy_maps(rng, masks, decimals=None)

    def peak_bytes(n: int) -> int:
        tracemalloc.start()
        pixel_histogram(masks[:n], maps[:n], num_bins=4096, max_sample=50_000).au_pro()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return peak

    # 4x the maps (1.3M pixels, 5 MiB of float32 input) must not need 4x the memory:
    # only the fixed-size sample, the bins and one map's temporaries are held.
    small, large = peak_bytes(20), peak_bytes(80)
    assert large < 1.3 * small
    assert large < 4 * 2**20


def test_metrics_by_group_scores_each_defect_type_against_all_normals():
    from prn_core.metrics import metrics_by_group

    rng = np.random.default_rng(0)
    masks = np.zeros((6, 8, 8), np.uint8)
    masks[2:4, 2:5, 2:5] = 1  # two "crack" images
    masks[4:6, 0:4, :] = 1  # two "uneven" images
    maps = rng.uniform(0, 0.2, (6, 8, 8)).astype(np.float32)
    maps[2:4] += 0.8 * masks[2:4]  # cracks are found exactly
    labels = np.array([0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.9, 0.8, 0.15, 0.05])  # uneven scores among the normals
    groups = ["good", "good", "crack", "crack", "uneven", "uneven"]
    out = metrics_by_group(labels, scores, masks, maps, groups)
    assert list(out) == ["crack", "uneven"]
    assert out["crack"]["count"] == 2 and out["uneven"]["count"] == 2
    assert out["crack"]["image_auroc"] == pytest.approx(1.0)
    assert out["uneven"]["image_auroc"] == pytest.approx(0.25)  # 0.15 beats 0.1 only
    assert out["crack"]["pixel_auroc"] == pytest.approx(1.0, abs=1e-3)
    keep = [0, 1, 4, 5]
    assert out["uneven"] == {**compute_metrics(labels[keep], scores[keep], masks[keep], maps[keep]),
                             "count": 2}
    with pytest.raises(ValueError, match="one group per image"):
        metrics_by_group(labels, scores, masks, maps, groups[:3])
