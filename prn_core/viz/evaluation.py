"""Figures of training and evaluation: the loss history, predictions, ROC and PRO curves, the
focal loss, region overlap, score histograms, thresholds, the calibrated thresholds on the
score histograms, and the heatmap and mask files of a deployment.

Every number drawn is computed by :mod:`prn_core.metrics` or :mod:`prn_core.losses`, with the
inputs ``compute_metrics`` gets, so a figure's numbers are those of ``result.json``.
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from scipy import ndimage

import prn_core.metrics as metrics
from prn_core.data.images import read_image, read_mask
from prn_core.losses import FOCAL_ALPHA, focal_loss
from prn_core.viz.common import BINARY_SCALE, CLASS_COLOURS, PROBABILITY_SCALE, SPLIT_STYLES, _no_ticks, _to_image

__all__ = ["plot_calibration", "plot_curves", "plot_focal_loss", "plot_history",
           "plot_score_histograms", "plot_threshold", "show_heatmap_files", "show_predictions",
           "show_region_overlap", "stretch_maps"]


def plot_history(history: Sequence[dict], keys: Sequence[str] = ("image_auroc", "pixel_ap", "au_pro")) -> Figure:
    """Training loss and the per-epoch validation (and, if logged, test) metrics of a run."""
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.4))
    for key in ("loss", "smooth_l1", "focal"):
        ax_loss.plot(epochs, [row[key] for row in history], marker="o", label=key)
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="loss")
    ax_loss.legend()
    for split, style in SPLIT_STYLES.items():
        for key in keys:
            values = [row.get(split, {}).get(key) for row in history]
            if any(v is not None for v in values):
                ax_metric.plot(epochs, [np.nan if v is None else v for v in values], style, marker="o",
                               label=f"{split} {key}")
    monitored = any(row.get("test") for row in history)  # the test monitor is opt-in
    title = "validation (solid) / test monitor (dashed)" if monitored else "validation"
    ax_metric.set(xlabel="epoch", ylabel="metric", title=title)
    ax_metric.legend(fontsize=7)
    fig.tight_layout()
    return fig


def show_predictions(images: np.ndarray, masks: np.ndarray, maps: np.ndarray, scores: np.ndarray,
                     labels: np.ndarray | None = None) -> Figure:
    """Rows of image / ground truth / anomaly map for (N, H, W, 3) images and (N, H, W) maps."""
    n = len(images)
    fig, axes = plt.subplots(3, n, figsize=(1.8 * n, 5.6), squeeze=False)
    for i in range(n):
        title = f"score {scores[i]:.3f}" + ("" if labels is None else f"\n{'defect' if labels[i] else 'good'}")
        axes[0, i].imshow(images[i])
        axes[0, i].set_title(title, fontsize=8)
        axes[1, i].imshow(masks[i], **BINARY_SCALE)
        axes[2, i].imshow(images[i])
        shown = axes[2, i].imshow(maps[i], alpha=0.5, **PROBABILITY_SCALE)
    for ax, name in zip(axes[:, 0], ("image", "ground truth", "anomaly map")):
        ax.set_ylabel(name)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    # one fixed scale, [0, 1] probabilities, for every map of the figure
    fig.colorbar(shown, ax=list(axes[2]), fraction=0.02, pad=0.01, label="anomaly probability")
    return fig


def stretch_maps(maps: np.ndarray) -> np.ndarray:
    """Anomaly maps rescaled together to [0, 1] (min to 0, max to 1), for display only.

    A briefly trained model's probabilities can all lie in a narrow band (say 0.009 to 0.011);
    on the fixed [0, 1] colour scale of :func:`show_predictions` they would look uniform. One
    shared scale keeps the maps comparable with each other; scores and metrics use raw maps.

    >>> stretch_maps(np.array([[0.25, 0.5], [0.75, 0.25]])).tolist()
    [[0.0, 0.5], [1.0, 0.0]]
    """
    maps = np.asarray(maps, dtype=np.float32)
    low, span = float(maps.min()), float(np.ptp(maps))
    return (maps - low) / span if span > 0 else np.zeros_like(maps)


def plot_curves(labels: np.ndarray, scores: np.ndarray, masks: np.ndarray, maps: np.ndarray,
                fpr_limit: float = 0.3, valid: np.ndarray | None = None) -> Figure:
    """Image ROC, pixel ROC and the PRO curve up to ``fpr_limit``.

    The pixel panels use one :func:`~prn_core.metrics.pixel_histogram` (bounded memory, padded
    pixels excluded through ``valid``), the same function and inputs as ``compute_metrics``, so
    the numbers in the titles are those of ``result.json``. Pass ``**ev.metric_inputs()``.
    """
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    fpr, tpr = metrics.roc_curve(labels, scores)[:2]
    axes[0].plot(fpr, tpr)
    axes[0].set(title=f"image ROC (AUROC {metrics.image_auroc(labels, scores):.3f})", xlabel="FPR", ylabel="TPR")
    hist = metrics.pixel_histogram(masks, maps, valid)
    fpr, tpr = hist.roc_curve()[:2]
    axes[1].plot(fpr, tpr)
    axes[1].set(title=f"pixel ROC (AUROC {hist.auroc():.3f})", xlabel="FPR", ylabel="TPR")
    fpr, pro = hist.pro_curve()[:2]
    keep = fpr <= fpr_limit
    axes[2].plot(fpr[keep], pro[keep])
    axes[2].set(title=f"PRO (AU-PRO {hist.au_pro(fpr_limit):.3f})", xlabel="FPR", ylabel="PRO",
                xlim=(0, fpr_limit))
    fig.tight_layout()
    return fig


def plot_focal_loss(gammas: Sequence[float] = (2.0, 4.0), focal_weight: float = 5.0,
                    toy_probabilities: tuple[float, float] = (0.05, 0.4)) -> Figure:
    """Why PRN's loss is mostly focal: two panels computed with :mod:`prn_core.losses`.

    Left, the loss of one pixel against ``p_t``, the probability given to its true class:
    cross-entropy, focal losses with ``gammas`` (alpha 0.5), SmoothL1 on the probability and
    PRN's total. Right, a toy 64x64 map with an 8x8 anomaly (1.6 % of the pixels) where normal
    pixels are easy (``p = toy_probabilities[0]``) and anomalous ones hard (``p =
    toy_probabilities[1]``): the share of each loss that the few anomalous pixels carry.
    """
    def per_pixel(name: str, p: torch.Tensor, y: torch.Tensor, gamma: float = 0.0) -> torch.Tensor:
        """Summed loss of pixels with probabilities ``p`` (n,) and labels ``y`` (n,)."""
        logits, target = torch.logit(p.double()).view(1, 1, 1, -1), y.double().view(1, 1, 1, -1)
        if name == "cross-entropy":
            return torch.nn.functional.binary_cross_entropy_with_logits(logits, target, reduction="sum")
        if name == "smooth L1":
            return torch.nn.functional.smooth_l1_loss(torch.sigmoid(logits), target, reduction="sum")
        if name == "PRN total":
            return per_pixel("smooth L1", p, y) + focal_weight * per_pixel("focal", p, y, 4.0)
        return focal_loss(logits, target, gamma=gamma, alpha=FOCAL_ALPHA) * p.numel()

    curves = [("cross-entropy", 0.0), *[("focal", g) for g in gammas], ("smooth L1", 0.0), ("PRN total", 0.0)]
    names = [f"focal, gamma {g:g}" if n == "focal" else n for n, g in curves]
    p_t = torch.linspace(0.01, 0.99, 99)
    fig, (ax_curve, ax_share) = plt.subplots(1, 2, figsize=(11, 3.6))
    for (name, gamma), label in zip(curves, names):
        values = [float(per_pixel(name, p.view(1), torch.ones(1), gamma)) for p in p_t]
        ax_curve.plot(p_t.numpy(), values, label=label, linewidth=2.2 if name == "PRN total" else 1.4,
                      linestyle="--" if name == "PRN total" else "-")
    ax_curve.set(yscale="log", ylim=(1e-9, 10), xlabel="p_t, probability of the true class",
                 ylabel="loss of one pixel", title="easy pixels (p_t near 1) cost almost nothing")
    ax_curve.legend(fontsize=7)

    mask = torch.zeros(64, 64)
    mask[28:36, 28:36] = 1
    probs = torch.where(mask > 0, toy_probabilities[1], toy_probabilities[0])
    shares = []
    for name, gamma in curves:
        anomalous = float(per_pixel(name, probs[mask > 0], mask[mask > 0], gamma))
        normal = float(per_pixel(name, probs[mask == 0], mask[mask == 0], gamma))
        shares.append(anomalous / (anomalous + normal))
    bars = ax_share.barh(names, shares, color="#c0392b")
    ax_share.barh(names, [1 - s for s in shares], left=shares, color="#bbbbbb")
    for bar, share in zip(bars, shares):
        ax_share.text(min(share, 0.8) + 0.01, bar.get_y() + bar.get_height() / 2, f"{share:.1%}", va="center",
                      fontsize=8)
    ax_share.invert_yaxis()
    ax_share.set(xlim=(0, 1), xlabel="share of the loss from the anomalous pixels (red) vs normal (grey)",
                 title=f"toy map: 1.6 % anomalous pixels at p={toy_probabilities[1]:g}, "
                       f"normal at p={toy_probabilities[0]:g}")
    ax_share.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def show_region_overlap(mask: np.ndarray, anomaly_map: np.ndarray, threshold: float = 0.5,
                        fpr_limit: float = 0.3) -> Figure:
    """AU-PRO on one hand-made example: regions, their overlaps at ``threshold``, and the curves.

    ``mask`` (H, W) in {0, 1} and ``anomaly_map`` (H, W). Panels: the ground-truth regions
    (8-connected, numbered), the map, the binarised map with each region's overlap (share of its
    pixels above ``threshold``), and the pixel ROC beside the PRO curve, with ``fpr_limit``.
    """
    gt = np.asarray(mask) > 0
    score = np.asarray(anomaly_map, dtype=np.float32)
    regions, count = ndimage.label(gt, structure=np.ones((3, 3), bool))
    predicted = score >= threshold
    fpr = float(predicted[~gt].mean())
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1, 1, 1, 1.4]})
    axes[0].imshow(np.ma.masked_equal(regions, 0), cmap="tab10", vmin=1, vmax=10, interpolation="nearest")
    axes[0].set_title(f"ground truth: {count} regions", fontsize=9)
    shown = axes[1].imshow(score, interpolation="nearest", **PROBABILITY_SCALE)
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[1].set_title("anomaly map", fontsize=9)
    axes[2].imshow(predicted, interpolation="nearest", **BINARY_SCALE)
    axes[2].contour(gt, levels=[0.5], colors="red", linewidths=1)
    overlaps = []
    for region in range(1, count + 1):
        inside = regions == region
        overlaps.append(float(predicted[inside].mean()))
        y, x = np.argwhere(inside).mean(axis=0)
        axes[2].text(x, y, f"{region}: {overlaps[-1]:.2f}", color="red", ha="center", va="center", fontsize=8,
                     bbox={"facecolor": "white", "alpha": 0.8, "pad": 1, "linewidth": 0})
    axes[2].set_title(f"map >= {threshold:g}: PRO {np.mean(overlaps):.2f}, FPR {fpr:.2f}", fontsize=9)
    _no_ticks(axes[:3])
    hist = metrics.pixel_histogram(gt[None].astype(np.uint8), score[None])
    roc, pro = hist.roc_curve(), hist.pro_curve()
    axes[3].plot(roc.x, roc.y, label=f"pixel ROC (AUROC {hist.auroc():.3f})")
    axes[3].plot(pro.x, pro.y, label=f"PRO (AU-PRO {hist.au_pro(fpr_limit):.3f})")
    axes[3].axvspan(0, fpr_limit, color="#dddddd", alpha=0.5, label=f"FPR <= {fpr_limit:g}, integrated")
    axes[3].set(xlabel="false-positive rate (normal pixels)", ylabel="TPR / per-region overlap", xlim=(0, 1),
                ylim=(0, 1.02))
    axes[3].legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def plot_score_histograms(labels: np.ndarray, scores: np.ndarray, masks: np.ndarray, maps: np.ndarray,
                          bins: int = 40) -> Figure:
    """Where normal and anomalous scores fall: image scores by label, pixel scores by mask.

    ``labels``/``scores`` are (N,), ``masks``/``maps`` (N, H, W). A good detector separates the
    two colours; any threshold between them gives a perfect decision. The pixel panel uses a log
    scale because normal pixels outnumber anomalous ones by orders of magnitude. Pixel counts are
    histogrammed without copying the normal pixels (all pixels minus the anomalous ones).
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    maps = np.asarray(maps)
    anomalous = maps[np.asarray(masks) > 0]
    fig, (ax_image, ax_pixel) = plt.subplots(1, 2, figsize=(11, 3.4))
    image_bins = min(bins, max(10, len(scores) // 2))  # a few images per bin, not one bar per image
    edges = np.linspace(scores.min(), scores.max(), image_bins + 1) if np.ptp(scores) > 0 else image_bins
    for value, name, colour in CLASS_COLOURS:
        ax_image.hist(scores[labels == value], bins=edges, alpha=0.6, color=colour,
                      label=f"{name} images ({int((labels == value).sum())})")
    ax_image.set(xlabel="image score", ylabel="images", title="image scores")
    ax_image.legend(fontsize=8)
    low, high = float(maps.min()), float(maps.max())
    edges = np.linspace(low, high if high > low else low + 1e-6, bins + 1)
    every, _ = np.histogram(maps, bins=edges)
    bad, _ = np.histogram(anomalous, bins=edges)
    centres, width = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
    for counts, (_, name, colour) in zip((every - bad, bad), CLASS_COLOURS):
        share = counts / max(1, counts.sum())
        ax_pixel.bar(centres, np.where(share > 0, share, np.nan), width=width, alpha=0.6, color=colour,
                     label=f"{name} pixels ({int(counts.sum()):,})")
    ax_pixel.set(yscale="log", xlabel="pixel probability", ylabel="share of pixels of the class",
                 title="pixel scores (each class sums to 1)")
    ax_pixel.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _pick_examples(labels: np.ndarray, count: int) -> np.ndarray:
    """About a third normal and the rest anomalous test images, in test order."""
    normal, anomalous = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    take = min(len(normal), max(1, count // 3))
    return np.concatenate([normal[:take], anomalous[: count - take]])


def plot_threshold(images: np.ndarray, maps: np.ndarray, masks: np.ndarray, scores: np.ndarray,
                   labels: np.ndarray, image_threshold: float, pixel_threshold: float,
                   indices: Sequence[int] | None = None, count: int = 6) -> Figure:
    """What two thresholds do: image decisions (``score >= image_threshold``) and binarised maps.

    Top: every test image's score by label with the threshold, and the confusion counts. Below,
    ``count`` examples (or ``indices``): the image with its ground-truth outline (red), then the
    map binarised at ``pixel_threshold`` (white) with the same outline. Images (N, H, W, 3), maps
    and masks (N, H, W), scores and labels (N,).
    """
    labels, scores = np.asarray(labels), np.asarray(scores, dtype=np.float64)
    chosen = np.asarray(indices) if indices is not None else _pick_examples(labels, count)
    n = max(len(chosen), 2)
    width = max(9.0, 1.7 * n)
    side = 0.62 * width / n  # square image axes (narrower than a column): no gap between the rows
    fig = plt.figure(figsize=(width, 2.4 + 2 * side))
    grid = fig.add_gridspec(3, n, height_ratios=[2.4, side, side])
    ax_scores = fig.add_subplot(grid[0, : n - max(1, n // 3)])
    ax_table = fig.add_subplot(grid[0, n - max(1, n // 3):])
    jitter = np.random.default_rng(0).uniform(-0.15, 0.15, len(scores))  # fixed: a figure, not a sample
    for value, name, colour in CLASS_COLOURS:
        keep = labels == value
        ax_scores.scatter(scores[keep], value + jitter[keep], s=14, color=colour, label=name)
    ax_scores.axvline(image_threshold, color="black", linestyle="--")
    ax_scores.set(yticks=[0, 1], yticklabels=["normal", "anomalous"], xlabel="image score",
                  title=f"image threshold {image_threshold:.4g}: right of the line = flagged")
    ax_scores.title.set_fontsize(9)
    counts = metrics.confusion_counts(labels, scores, image_threshold)
    table = np.array([[counts["TP"], counts["FN"]], [counts["FP"], counts["TN"]]])
    ax_table.imshow(np.array([[1, 0], [0, 1]]), cmap=ListedColormap(["#f5c6c0", "#c8e6c9"]), vmin=0, vmax=1)
    for (row, col), value in np.ndenumerate(table):
        name = [["TP", "FN"], ["FP", "TN"]][row][col]
        ax_table.text(col, row, f"{name}\n{value}", ha="center", va="center", fontsize=10)
    ax_table.set(xticks=[0, 1], xticklabels=["flagged", "passed"], yticks=[0, 1],
                 yticklabels=["anomalous", "normal"])
    ax_table.tick_params(labelsize=8)
    tpr = counts["TP"] / max(1, counts["TP"] + counts["FN"])
    fpr = counts["FP"] / max(1, counts["FP"] + counts["TN"])
    ax_table.set_title(f"TPR {tpr:.2f}, FPR {fpr:.2f}", fontsize=9)
    for column, index in enumerate(chosen):
        top, bottom = fig.add_subplot(grid[1, column]), fig.add_subplot(grid[2, column])
        outline = np.asarray(masks[index]) > 0
        top.imshow(_to_image(images[index]))
        bottom.imshow(np.asarray(maps[index]) >= pixel_threshold, **BINARY_SCALE)
        for ax in (top, bottom):
            if outline.any():
                ax.contour(outline, levels=[0.5], colors="red", linewidths=0.8)
            ax.set_xticks([])
            ax.set_yticks([])
        flagged = "flagged" if scores[index] >= image_threshold else "passed"
        top.set_title(f"{'defect' if labels[index] else 'good'}, {flagged}\nscore {scores[index]:.4g}", fontsize=7)
    fig.axes[2].set_ylabel("image, truth", fontsize=8)
    fig.axes[3].set_ylabel(f"map >= {pixel_threshold:.3g}", fontsize=8)
    fig.tight_layout()
    return fig


_CALIBRATED_LINES = (  # (key in the thresholds mapping, label, line style)
    ("image", "F1-optimal on validation", "--"),
    ("image_normal_q995", "99.5% of validation normals", ":"),
)


def plot_calibration(val_labels: np.ndarray, val_scores: np.ndarray, test_labels: np.ndarray,
                     test_scores: np.ndarray, thresholds: Mapping[str, Any],
                     bins: int = 20) -> Figure:
    """The calibrated image thresholds over the validation and the test score histograms.

    Left, the validation split the thresholds were chosen on (held-out normals and the same
    images with a simulated anomaly); right, the test split they are applied to. Both panels
    share one x-axis and one set of bins, with a vertical line at each threshold of
    ``thresholds`` (``result.json``'s ``"thresholds"`` or ``Thresholds.to_dict()``): the
    F1-optimal one (``"image"``) and the 99.5% normal quantile (``"image_normal_q995"``); a
    ``None`` threshold is not drawn. Labels and scores are (N,) arrays; nothing is computed
    beyond the bins.
    """
    panels = (("validation: held-out normals + simulated anomalies", val_labels, val_scores),
              ("test: real defects, never used to choose", test_labels, test_scores))
    drawn = [(key, label, style, float(thresholds[key]))
             for key, label, style in _CALIBRATED_LINES if thresholds.get(key) is not None]
    values = np.concatenate([np.asarray(scores, np.float64).reshape(-1)
                             for _, _, scores in panels] + [np.array([t for *_, t in drawn])])
    low, high = float(values.min()), float(values.max())
    edges = np.linspace(low, high if high > low else low + 1e-6, bins + 1)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.4), sharex=True)
    for ax, (title, labels, scores) in zip(axes, panels):
        labels = np.asarray(labels).reshape(-1)
        scores = np.asarray(scores, np.float64).reshape(-1)
        for value, name, colour in CLASS_COLOURS:
            ax.hist(scores[labels == value], bins=edges, alpha=0.6, color=colour,
                    label=f"{name} ({int((labels == value).sum())})")
        for _, label, style, at in drawn:
            ax.axvline(at, color="black", linestyle=style, linewidth=1.2,
                       label=f"{label}: {at:.3f}")
        ax.set(xlabel="image score", ylabel="images", title=title)
        ax.title.set_fontsize(9)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def show_heatmap_files(predictions: Sequence[Mapping[str, Any]], count: int = 6, columns: int = 3,
                       masks: bool = False) -> Figure:
    """The heatmap PNGs ``prn predict`` wrote, titled with file name and score.

    ``predictions`` is the ``"predictions"`` list of its ``scores.json`` (keys ``image``,
    ``score``, ``heatmap``), so the figure shows exactly what a deployment hands over. With
    ``masks=True`` each prediction is a column of three files: the input image, the heatmap and
    the binary defect mask (key ``mask``), titled with the decision (key ``anomalous``).
    """
    rows = list(predictions)[:count]
    if not rows:
        raise ValueError("show_heatmap_files got no predictions; pass scores.json's 'predictions' list")
    if masks:
        return _show_decisions(rows)
    n_rows = math.ceil(len(rows) / columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(2.3 * columns, 2.4 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), rows):
        ax.imshow(read_image(Path(row["heatmap"])))
        ax.set_title(f"{Path(row['image']).name}\nscore {row['score']:.3f}", fontsize=8)
    fig.tight_layout()
    return fig


def _show_decisions(rows: Sequence[Mapping[str, Any]]) -> Figure:
    """One column per prediction: image file, heatmap PNG, mask PNG (white = defect)."""
    fig, axes = plt.subplots(3, len(rows), figsize=(1.9 * len(rows), 6.0), squeeze=False)
    for column, row in zip(axes.T, rows):
        column[0].imshow(read_image(Path(row["image"])))
        column[1].imshow(read_image(Path(row["heatmap"])))
        column[2].imshow(read_mask(Path(row["mask"])), **BINARY_SCALE)
        decision = "anomalous" if row.get("anomalous") else "passed"
        column[0].set_title(f"{Path(row['image']).name}\nscore {row['score']:.3f}, {decision}",
                            fontsize=7)
    _no_ticks(axes)
    for ax, name in zip(axes[:, 0], ("image", "heatmap", "defect mask")):
        ax.set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig
