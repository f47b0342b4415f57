"""viz.evaluation: the history, predictions, curves, the focal loss, region overlap, score
histograms, thresholds, calibrated thresholds, heatmap and mask files; every number drawn is
the metrics' own."""
from __future__ import annotations

import cv2
import matplotlib.pyplot as plt
import numpy as np
import pytest
from figure_checks import array, assert_pictures_in_range, scale
from matplotlib.figure import Figure

from prn_core import metrics, viz


def _history() -> list[dict]:
    return [{"epoch": e, "loss": 1.0 / e, "smooth_l1": 0.1, "focal": 0.1,
             "val": {"image_auroc": 0.5 + e / 10, "pixel_ap": 0.2, "au_pro": 0.5},
             "test": {"image_auroc": 0.4 + e / 10, "pixel_ap": 0.1, "au_pro": 0.4}} for e in (1, 2, 3)]


def _padded_eval() -> dict:
    """Maps whose padding (right third) is bright on normal pixels: it moves every pixel metric."""
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 32, 48), np.uint8)
    masks[3:, 8:16, 8:16] = 1
    maps = (rng.random(masks.shape) * 0.5 + masks * 0.4).astype(np.float32)
    valid = np.ones(masks.shape, bool)
    valid[:, :, 32:] = False
    maps[:, :, 32:] = 0.95
    return {"labels": np.array([0, 0, 0, 1, 1, 1]), "scores": rng.random(6), "masks": masks, "maps": maps,
            "valid": valid}


# --- training --------------------------------------------------------------------------------


def test_plot_history_draws_every_loss_and_logged_metric_validation_solid_test_dashed():
    fig = viz.plot_history(_history())
    assert len(fig.axes) == 2
    assert [list(line.get_ydata()) for line in fig.axes[0].get_lines()][0] == [1.0, 0.5, 1 / 3]
    styles = {line.get_label().split()[0]: line.get_linestyle() for line in fig.axes[1].get_lines()}
    assert styles == {"val": "-", "test": "--"}
    assert len(fig.axes[1].get_lines()) == 2 * 3
    assert "test monitor" in fig.axes[1].get_title()


def test_plot_history_names_no_test_monitor_when_none_was_logged():
    history = [{k: v for k, v in row.items() if k != "test"} for row in _history()]
    ax = viz.plot_history(history).axes[1]
    assert {line.get_label().split()[0] for line in ax.get_lines()} == {"val"}
    assert "test" not in ax.get_title()


def test_predictions_share_one_colour_scale_with_a_colorbar(predictions):
    images, maps, masks, scores, labels = predictions
    fig = viz.show_predictions(images, masks, maps * 0.5, scores, labels)
    *grid, bar = fig.axes
    assert len(grid) == 3 * 6
    heat = [ax.images[-1] for ax in grid[12:]]
    assert all(scale(image) == ("jet", 0, 1) for image in heat)  # not stretched to the maps' maximum
    assert heat[-1].colorbar is not None and heat[-1].colorbar.ax is bar
    assert all(scale(ax.images[0]) == ("gray", 0, 1) for ax in grid[6:12])  # ground truth
    assert assert_pictures_in_range(fig) == 12


def test_stretch_maps_uses_one_shared_scale():
    maps = np.array([[[0.01, 0.02]], [[0.03, 0.01]]], np.float32)
    out = viz.stretch_maps(maps)
    assert out.shape == maps.shape and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert out[0, 0, 1] == pytest.approx(0.5)
    assert not viz.stretch_maps(np.full((2, 3, 3), 0.4)).any()  # constant maps: all zero, no NaN


def test_plot_focal_loss_shares_show_focal_favours_the_rare_hard_pixels():
    fig = viz.plot_focal_loss(gammas=(4.0,))
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    curve_ax, share_ax = fig.axes
    assert [line.get_label() for line in curve_ax.get_lines()] == [
        "cross-entropy", "focal, gamma 4", "smooth L1", "PRN total"]
    # bars: first the anomalous shares (one per loss), then the normal remainders
    shares = [patch.get_width() for patch in share_ax.patches[:4]]
    rest = [patch.get_width() for patch in share_ax.patches[4:]]
    assert [s + r for s, r in zip(shares, rest)] == pytest.approx([1.0] * 4)
    cross_entropy, focal = shares[0], shares[1]
    assert 0.15 < cross_entropy < 0.3  # 64 hard pixels vs 4032 easy ones under plain cross-entropy
    assert focal > 0.99  # gamma 4 all but silences the easy pixels


def test_plot_focal_loss_curves_decrease_with_p_t():
    fig = viz.plot_focal_loss()
    for line in fig.axes[0].get_lines():
        y = line.get_ydata()
        assert np.all(np.diff(y) <= 1e-12), line.get_label()


# --- metrics and curves ----------------------------------------------------------------------


def test_plot_curves_draws_the_metrics_curves_on_valid_pixels_only(monkeypatch):
    """The numbers of a figure are result.json's: same function, same inputs, padding left out."""
    ev = _padded_eval()
    want = metrics.compute_metrics(**ev)
    assert want["pixel_auroc"] != metrics.compute_metrics(**{**ev, "valid": None})["pixel_auroc"]

    def image_level_only(labels, scores):  # the exact ROC is for one score per image only
        assert len(np.asarray(scores).reshape(-1)) == len(ev["labels"]), "exact ROC over pixels"
        return real_roc(labels, scores)

    real_roc = metrics.roc_curve
    monkeypatch.setattr(metrics, "roc_curve", image_level_only)
    fig = viz.plot_curves(**ev)
    assert len(fig.axes) == 3
    hist = metrics.pixel_histogram(ev["masks"], ev["maps"], ev["valid"])
    np.testing.assert_array_equal(fig.axes[1].get_lines()[0].get_xdata(), hist.roc_curve().x)
    pro = hist.pro_curve()
    np.testing.assert_array_equal(fig.axes[2].get_lines()[0].get_ydata(), pro.y[pro.x <= 0.3])
    numbers = [want["image_auroc"], want["pixel_auroc"], want["au_pro"]]
    assert all(f"{value:.3f}" in ax.get_title() for ax, value in zip(fig.axes, numbers))


def _toy():
    """Two regions (10x10 found, 3x3 missed) and a bright band of false positives."""
    mask = np.zeros((32, 32), np.uint8)
    mask[4:14, 4:14] = 1
    mask[24:27, 24:27] = 1
    toy = np.full((32, 32), 0.1, np.float32)
    toy[4:14, 4:14] = 0.9
    toy[24:27, 24:27] = 0.2
    toy[16:22, :] = 0.5
    return mask, toy


def test_show_region_overlap_draws_regions_overlaps_and_the_metrics_curves():
    mask, toy = _toy()
    fig = viz.show_region_overlap(mask, toy, threshold=0.5)
    regions, score, binary, curves = fig.axes[:4]
    assert len(fig.axes) == 5  # four panels and the map's colorbar
    assert np.unique(regions.images[0].get_array().compressed()).tolist() == [1, 2]  # background masked
    assert scale(score.images[0]) == ("jet", 0, 1) and score.images[0].colorbar is not None
    np.testing.assert_array_equal(array(binary), toy >= 0.5)
    assert sorted(t.get_text() for t in binary.texts) == ["1: 1.00", "2: 0.00"]  # per-region overlap
    hist = metrics.pixel_histogram(mask[None], toy[None])
    roc, pro = (line.get_ydata() for line in curves.get_lines())
    np.testing.assert_array_equal(roc, hist.roc_curve().y)
    np.testing.assert_array_equal(pro, hist.pro_curve().y)
    legend = " ".join(t.get_text() for t in curves.get_legend().get_texts())
    assert f"{hist.au_pro(0.3):.3f}" in legend and f"{hist.auroc():.3f}" in legend


def test_plot_score_histograms_counts_every_pixel_once(predictions):
    _, maps, masks, scores, labels = predictions
    fig = viz.plot_score_histograms(labels, scores, masks, maps)
    assert len(fig.axes) == 2
    image_ax, pixel_ax = fig.axes
    assert sum(p.get_height() for p in image_ax.patches) == len(scores)
    anomalous = int(masks.sum())
    counts = [int(t.get_text().split("(")[1][:-1].replace(",", "")) for t in pixel_ax.get_legend().get_texts()]
    assert counts == [maps.size - anomalous, anomalous]
    assert pixel_ax.get_yscale() == "log"


# --- thresholds ------------------------------------------------------------------------------


def test_plot_threshold_confusion_counts(predictions):
    images, maps, masks, scores, labels = predictions
    fig = viz.plot_threshold(images, maps, masks, scores, labels, image_threshold=0.4, pixel_threshold=0.5)
    # scores, table, and two rows of examples: 2 of the 3 normals (a third of 6), then all 3 anomalous
    assert len(fig.axes) == 2 + 2 * 5
    counts = metrics.confusion_counts(labels, scores, 0.4)
    # flagged: 0.45 (normal), 0.9 and 0.5 (anomalous); passed: 0.1, 0.2 (normal), 0.3 (anomalous)
    assert counts == {"TP": 2, "FN": 1, "FP": 1, "TN": 2}
    cells = sorted(t.get_text() for t in fig.axes[1].texts)
    assert cells == sorted(f"{name}\n{value}" for name, value in counts.items())
    pictures, binarised = fig.axes[2::2], fig.axes[3::2]  # each example: the image above its map
    assert all(scale(ax.images[0]) == ("gray", 0, 1) for ax in binarised)
    np.testing.assert_array_equal(array(pictures[0]), images[0])
    np.testing.assert_array_equal(array(binarised[0]), maps[0] >= 0.5)
    assert assert_pictures_in_range(fig) == 5


def test_plot_threshold_indices_pick_the_examples(predictions):
    images, maps, masks, scores, labels = predictions
    fig = viz.plot_threshold(images, maps, masks, scores, labels, 0.4, 0.5, indices=[3, 0])
    assert len(fig.axes) == 2 + 2 * 2
    np.testing.assert_array_equal(array(fig.axes[2]), images[3])
    np.testing.assert_array_equal(array(fig.axes[3]), maps[3] >= 0.5)
    np.testing.assert_array_equal(array(fig.axes[4]), images[0])


# --- deployment ------------------------------------------------------------------------------


def test_show_heatmap_files_draws_the_files_and_errors(tmp_path):
    rows = []
    for i in range(4):
        path = tmp_path / f"h{i}.png"
        cv2.imwrite(str(path), np.full((32, 48, 3), 40 * i, np.uint8))
        rows.append({"image": f"/data/part_{i}.png", "score": 0.1 * i, "heatmap": str(path)})
    fig = viz.show_heatmap_files(rows, count=3, columns=2)
    assert len(fig.axes) == 4  # 2 x 2 grid, the fourth cell empty
    drawn = [ax for ax in fig.axes if ax.get_images()]
    assert len(drawn) == 3 and assert_pictures_in_range(fig) == 3
    assert [int(array(ax)[0, 0, 0]) for ax in drawn] == [0, 40, 80]  # in the order given
    assert all(array(ax).shape == (32, 48, 3) for ax in drawn)
    with pytest.raises(ValueError, match="no predictions"):
        viz.show_heatmap_files([])


def test_show_heatmap_files_with_masks_draws_image_heatmap_and_mask_per_prediction(tmp_path):
    rows = []
    for i in range(2):
        image, heat, mask = (tmp_path / f"{name}{i}.png" for name in ("part_", "h", "m"))
        cv2.imwrite(str(image), np.full((24, 40, 3), 30 * i, np.uint8))
        cv2.imwrite(str(heat), np.full((16, 16, 3), 200, np.uint8))
        written = np.zeros((24, 40), np.uint8)
        written[:, 20:] = 255
        cv2.imwrite(str(mask), written)
        rows.append({"image": str(image), "score": 0.2 + 0.5 * i, "anomalous": bool(i),
                     "heatmap": str(heat), "mask": str(mask)})
    fig = viz.show_heatmap_files(rows, masks=True)
    assert len(fig.axes) == 3 * 2  # rows image / heatmap / mask, one column per prediction
    images, heats, masks = fig.axes[:2], fig.axes[2:4], fig.axes[4:]
    assert [int(array(ax)[0, 0, 0]) for ax in images] == [0, 30]
    assert all(array(ax).shape == (16, 16, 3) for ax in heats)
    np.testing.assert_array_equal(array(masks[0]), (written > 0).astype(np.uint8))
    assert all(scale(ax.images[0]) == ("gray", 0, 1) for ax in masks)
    assert ["passed" in images[0].get_title(), "anomalous" in images[1].get_title()] == [True, True]


# --- calibration -----------------------------------------------------------------------------


def test_plot_calibration_draws_both_splits_with_the_thresholds_on_one_x_axis():
    val_labels, val_scores = np.array([0, 0, 0, 1, 1, 1]), np.array([0.1, 0.15, 0.2, 0.5, 0.6, 0.9])
    test_labels, test_scores = np.array([0, 0, 1, 1]), np.array([0.05, 0.3, 0.4, 0.95])
    thresholds = {"image": 0.35, "image_rule": "val_f1", "image_normal_q995": 0.2, "pixel": 0.5}
    fig = viz.plot_calibration(val_labels, val_scores, test_labels, test_scores, thresholds)
    assert len(fig.axes) == 2
    val_ax, test_ax = fig.axes
    assert val_ax.get_xlim() == test_ax.get_xlim()
    low, high = val_ax.get_xlim()
    assert low <= 0.05 and high >= 0.95  # every score of both splits is in view
    for ax, scores in ((val_ax, val_scores), (test_ax, test_scores)):
        assert sum(p.get_height() for p in ax.patches) == len(scores)  # each image counted once
        lines = [list(line.get_xdata()) for line in ax.get_lines()]
        assert lines == [[0.35, 0.35], [0.2, 0.2]]  # F1-optimal, then the normal quantile
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert any("F1" in t and "0.350" in t for t in legend)
        assert any("99.5%" in t and "0.200" in t for t in legend)
    plt.close(fig)
    assert fig.number not in plt.get_fignums()


def test_plot_calibration_skips_a_missing_threshold():
    thresholds = {"image": 0.5, "image_normal_q995": None}
    fig = viz.plot_calibration([0, 1], [0.2, 0.8], [0, 1], [0.1, 0.9], thresholds)
    assert all(len(ax.get_lines()) == 1 for ax in fig.axes)
    plt.close(fig)
