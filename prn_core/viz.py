"""One-line figure helpers for the book's chapters.

Every function returns a :class:`matplotlib.figure.Figure` and accepts numpy arrays or torch
tensors in the package's conventions: images ``(H, W, 3)`` or ``(3, H, W)`` in [0, 1], masks
``(H, W)`` or ``(1, H, W)`` in {0, 1}.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from prn_core.data import FewShotSplit, ImageCache, ProceduralTextures, Sample, estimate_foreground
from prn_core.data.textures import PROCEDURAL_KINDS
from prn_core.models import PRN, Backbone, MultiScaleFusion, PrototypeBank
from prn_core.models.prototypes import PROTOTYPE_STRIDES
from prn_core.reference import MEANS
from prn_core.synthesis import ExtendedAnomaly, augment_texture, perlin_mask, perlin_noise
from prn_core.synthesis.mix import KINDS

__all__ = ["show_anomalies", "anomaly_gallery", "overlay_mask", "plot_history", "show_predictions", "plot_curves",
           "plot_pipeline", "plot_reference_means", "show_samples", "plot_split", "show_foregrounds",
           "show_perlin_masks", "show_textures", "show_extended", "plot_epoch_mix",
           "top_classes", "show_top_classes", "show_feature_maps", "show_prototypes", "show_residuals",
           "plot_fusion", "attention_weights",
           "show_attention", "plot_parameters",
           "plot_focal_loss", "show_region_overlap", "plot_score_histograms", "plot_threshold",
           "ThresholdExplorer", "threshold_explorer", "stretch_maps",
           "plot_metric_bars", "plot_stability", "plot_paper_table", "plot_ablation_deltas", "plot_model_speed",
           "plot_synthesis_speed", "plot_metrics_speed",
           "show_resizing", "show_heatmap_files"]

_ROWS = ("image", "mask", "overlay")
SPLIT_STYLES = {"val": "-", "test": "--"}  # one convention in every figure: validation solid
_OVERLAY_COLOUR = np.array([1.0, 0.15, 0.1], np.float32)  # red tint for anomalous pixels


def _to_image(image: Any) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] from a numpy/torch image in HWC or CHW layout."""
    array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def _to_mask(mask: Any) -> np.ndarray:
    """bool (H, W) from a numpy/torch mask of shape (H, W) or (1, H, W)."""
    array = np.asarray(mask.detach().cpu() if hasattr(mask, "detach") else mask)
    return np.squeeze(array) > 0.5 if array.ndim == 3 else array > 0.5


def overlay_mask(image: Any, mask: Any, alpha: float = 0.45) -> np.ndarray:
    """The image with anomalous pixels tinted red: float32 (H, W, 3).

    >>> out = overlay_mask(np.zeros((2, 2, 3)), np.eye(2))
    >>> bool(out[0, 0, 0] > 0.4), bool((out[0, 1] == 0).all())
    (True, True)
    """
    image, mask = _to_image(image), _to_mask(mask)
    out = image.copy()
    out[mask] = (1.0 - alpha) * image[mask] + alpha * _OVERLAY_COLOUR
    return out


def show_anomalies(
    images: Sequence[Any],
    masks: Sequence[Any],
    titles: Sequence[str] | None = None,
    rows: Sequence[str] = _ROWS,
    cell_size: float = 1.8,
) -> Figure:
    """A grid with one column per sample and the rows ``image``, ``mask`` and ``overlay``.

    The overlay also outlines the mask, so small defects stay visible at book size.

    >>> fig = show_anomalies([np.zeros((8, 8, 3))], [np.eye(8)], titles=["demo"])
    >>> len(fig.axes)
    3
    """
    if len(images) != len(masks) or not images:
        raise ValueError(
            f"need as many masks as images (at least one), got {len(images)} images and {len(masks)} masks"
        )
    unknown = set(rows) - set(_ROWS)
    if unknown:
        raise ValueError(f"unknown rows {sorted(unknown)}; choose from {list(_ROWS)}")
    figsize = (cell_size * len(images), cell_size * len(rows))
    fig, axes = plt.subplots(len(rows), len(images), figsize=figsize, squeeze=False)
    for col, (image, mask) in enumerate(zip(images, masks)):
        _draw_column(axes[:, col], _to_image(image), _to_mask(mask), rows)
        if titles is not None:
            axes[0, col].set_title(titles[col], fontsize=8)
    for r, name in enumerate(rows):
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout()
    return fig


def _draw_column(axes: np.ndarray, image: np.ndarray, mask: np.ndarray, rows: Sequence[str]) -> None:
    for ax, name in zip(axes, rows):
        if name == "image":
            ax.imshow(image)
        elif name == "mask":
            ax.imshow(mask, cmap="gray", vmin=0, vmax=1)
        else:
            ax.imshow(overlay_mask(image, mask))
            if mask.any() and not mask.all():
                ax.contour(mask.astype(np.float32), levels=[0.5], colors="yellow", linewidths=0.6)
        ax.set_xticks([])
        ax.set_yticks([])


def anomaly_gallery(
    source: Any,
    per_kind: int = 4,
    kinds: Sequence[str] | None = None,
    seed: int = 0,
    rows: Sequence[str] = ("image", "overlay"),
    cell_size: float = 1.8,
) -> Figure:
    """Gallery of generated samples, one block of ``rows`` per kind and ``per_kind`` columns.

    ``source`` is an :class:`~prn_core.synthesis.AnomalyMix` (the first samples of each kind in
    its current epoch) or a mapping ``{name: make(rng) -> (image, mask)}`` of generators, called
    with ``numpy.random.default_rng([seed, i])`` for column ``i``.

    >>> make = lambda rng: (rng.random((8, 8, 3)), rng.random((8, 8)) > 0.5)
    >>> len(anomaly_gallery({"noise": make}, per_kind=2).axes)
    4
    """
    samples = _collect(source, per_kind, kinds, seed)
    if not samples:
        raise ValueError("nothing to show: the source yielded no samples of the requested kinds")
    figsize = (cell_size * per_kind, cell_size * len(rows) * len(samples))
    fig, axes = plt.subplots(len(rows) * len(samples), per_kind, figsize=figsize, squeeze=False)
    for block, (kind, items) in enumerate(samples.items()):
        block_axes = axes[block * len(rows) : (block + 1) * len(rows)]
        for col in range(per_kind):
            if col < len(items):
                _draw_column(block_axes[:, col], _to_image(items[col][0]), _to_mask(items[col][1]), rows)
            else:
                for ax in block_axes[:, col]:
                    ax.axis("off")
        for r, name in enumerate(rows):
            block_axes[r, 0].set_ylabel(f"{kind}\n{name}" if r == 0 else name, fontsize=8)
    fig.tight_layout()
    return fig


def _collect(source: Any, per_kind: int, kinds: Sequence[str] | None, seed: int) -> dict[str, list[tuple[Any, Any]]]:
    """``{kind: [(image, mask), ...]}`` with at most ``per_kind`` samples each, in kind order."""
    if isinstance(source, Mapping):
        makers: Mapping[str, Callable[[np.random.Generator], tuple[Any, Any]]] = source
        names = list(kinds) if kinds is not None else list(makers)
        return {k: [makers[k](np.random.default_rng([seed, i])) for i in range(per_kind)] for k in names}
    schedule, _ = source.schedule()
    names = list(kinds) if kinds is not None else [k for k in KINDS if k in schedule]
    found: dict[str, list[tuple[Any, Any]]] = {k: [] for k in names}
    for index, kind in enumerate(schedule):
        if kind in found and len(found[kind]) < per_kind:
            image, mask, _ = source.sample(index)
            found[kind].append((image, mask))
    return {k: v for k, v in found.items() if v}


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
    ax_metric.set(xlabel="epoch", ylabel="metric", title="validation (solid) / test monitor (dashed)")
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
        axes[1, i].imshow(masks[i], cmap="gray", vmin=0, vmax=1)
        axes[2, i].imshow(images[i])
        shown = axes[2, i].imshow(maps[i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
    for ax, name in zip(axes[:, 0], ("image", "ground truth", "anomaly map")):
        ax.set_ylabel(name)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    # one fixed scale, [0, 1] probabilities, for every map of the figure
    fig.colorbar(shown, ax=list(axes[2]), fraction=0.02, pad=0.01, label="anomaly probability")
    return fig


def plot_curves(labels: np.ndarray, scores: np.ndarray, masks: np.ndarray, maps: np.ndarray,
                fpr_limit: float = 0.3, valid: np.ndarray | None = None) -> Figure:
    """Image ROC, pixel ROC and the PRO curve up to ``fpr_limit``.

    The pixel panels use one :func:`~prn_core.metrics.pixel_histogram` (bounded memory, padded
    pixels excluded through ``valid``), the same function and inputs as ``compute_metrics``, so
    the numbers in the titles are those of ``result.json``. Pass ``**ev.metric_inputs()``.
    """
    from . import metrics

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


# --- chapters 0-2: the method at a glance, the data and the protocol, anomaly generation -------

_BOX_COLOURS = {"frozen": "#d9d9d9", "fitted": "#fde9a9", "trained": "#bcd7f5", "data": "#ffffff"}


def _box(ax: Any, x: float, y: float, w: float, h: float, text: str, kind: str) -> None:
    """A rounded box centred at (x, y) with a label; ``kind`` picks the colour (see the legend)."""
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.05,rounding_size=0.12",
                                facecolor=_BOX_COLOURS[kind], edgecolor="#333333", linewidth=1.0))
    ax.text(x, y, text, ha="center", va="center", fontsize=8)


def _arrow(ax: Any, start: tuple[float, float], end: tuple[float, float], text: str = "", **style: Any) -> None:
    ax.annotate("", xy=end, xytext=start,
                arrowprops=dict(arrowstyle="-|>", color="#333333", linewidth=1.0, shrinkA=0, shrinkB=0, **style))
    if text:
        ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 + 0.12, text, ha="center", va="bottom",
                fontsize=7, color="#555555")


def plot_pipeline() -> Figure:
    """PRN as a diagram: frozen encoder, prototypes and residuals, MSF, MSA, MSF, decoder.

    Drawn from code rather than copied from the paper, so it shows *our* reading of the method
    (DESIGN section 2): grey parts are frozen, yellow ones are fitted once by K-means on normal
    images, blue ones are trained on normal, seen, extended and simulated samples.
    """
    fig, ax = plt.subplots(figsize=(12, 3.4))
    top, bottom, mid = 3.0, 1.0, 2.0
    _box(ax, 0.6, mid, 0.9, 0.8, "input\nimage", "data")
    _box(ax, 2.1, mid, 1.3, 2.8, "encoder\n(frozen CNN,\nImageNet)\n\nstrides\n4, 8, 16, 32", "frozen")
    _box(ax, 4.2, top, 1.6, 0.8, "features $F_s$\n(strides 4, 8, 16)", "frozen")
    _box(ax, 4.2, bottom, 1.6, 0.8, "prototypes $P_s$\nK-means of normals", "fitted")
    _box(ax, 6.2, bottom, 1.5, 0.8, "residuals\n$R_s = (F_s - P^*_s)^2$", "frozen")
    _box(ax, 6.2, top, 1.5, 0.8, "MSF\n(features)", "trained")
    _box(ax, 8.0, bottom, 1.3, 0.8, "MSF\n(residuals)", "trained")
    _box(ax, 9.5, mid, 1.0, 1.2, "concat\nper scale", "data")
    _box(ax, 11.0, mid, 1.3, 1.2, "MSA\nmulti-size\nself-attention", "trained")
    _box(ax, 12.5, mid, 0.9, 1.2, "MSF", "trained")
    _box(ax, 14.0, mid, 1.3, 1.2, "decoder\n(U-Net-like)", "trained")
    _box(ax, 15.6, mid, 1.2, 1.2, "anomaly map\n+ score\n(top-k mean)", "data")
    _arrow(ax, (1.05, mid), (1.45, mid))
    _arrow(ax, (2.75, top), (3.4, top))
    _arrow(ax, (3.9, top - 0.4), (3.9, bottom + 0.4), linestyle="--")
    ax.text(3.45, mid, "fit on\nnormals", fontsize=7, color="#555555", va="center", ha="center")
    _arrow(ax, (4.6, top - 0.4), (5.6, bottom + 0.4))
    ax.text(5.3, mid + 0.1, "nearest\nprototype", fontsize=7, color="#555555", va="center")
    _arrow(ax, (5.0, bottom), (5.45, bottom))
    _arrow(ax, (5.0, top), (5.45, top))
    _arrow(ax, (6.95, bottom), (7.35, bottom))
    _arrow(ax, (6.95, top), (9.0, mid + 0.4))
    _arrow(ax, (8.65, bottom), (9.0, mid - 0.4))
    _arrow(ax, (10.0, mid), (10.35, mid))
    _arrow(ax, (11.65, mid), (12.05, mid))
    _arrow(ax, (12.95, mid), (13.35, mid))
    _arrow(ax, (14.65, mid), (15.0, mid))
    ax.plot([2.75, 14.0], [3.75, 3.75], color="#333333", linewidth=1.0)
    _arrow(ax, (14.0, 3.75), (14.0, mid + 0.6))
    ax.text(8.4, 3.8, "stride-32 map: the bottom of the decoder", fontsize=7, color="#555555", ha="center")
    handles = [FancyBboxPatch((0, 0), 1, 1, facecolor=_BOX_COLOURS[k], edgecolor="#333333")
               for k in ("frozen", "fitted", "trained")]
    ax.legend(handles, ["frozen / no parameters", "fitted once (K-means)", "trained"], loc="lower right",
              fontsize=7, frameon=False, ncol=3, bbox_to_anchor=(1.0, -0.05))
    ax.set(xlim=(0, 16.3), ylim=(0.1, 4.1), aspect="equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


def plot_reference_means(
    means: Mapping[str, Mapping[str, float | None]] | None = None,
    metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap"),
    ymin: float = 0.6,
) -> Figure:
    """Grouped bars of published MVTec AD means (default :data:`prn_core.reference.MEANS`).

    These are other people's numbers; the title says so. A missing value (not reported) is
    marked "n/r" rather than drawn as zero. The y axis starts at ``ymin`` so the differences
    that matter are visible, and every bar carries its value.
    """
    means = MEANS if means is None else means
    methods = list(means)
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(10, 3.8))
    colours = plt.get_cmap("tab10").colors
    for m, method in enumerate(methods):
        for j, metric in enumerate(metrics):
            x = j - 0.4 + (m + 0.5) * width
            value = means[method].get(metric)
            if value is None:
                ax.text(x, ymin + 0.005, "n/r", ha="center", va="bottom", fontsize=6, rotation=90, color="#777777")
                continue
            first = all(means[method].get(k) is None for k in metrics[:j])  # label each method once
            ax.bar(x, value - ymin, width, bottom=ymin, color=colours[m % 10], label=method if first else None)
            ax.text(x, value + 0.003, f"{value:.3f}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(range(len(metrics)), [k.replace("_", " ") for k in metrics])
    ax.set(ylim=(ymin, 1.06), ylabel=f"MVTec AD mean (axis from {ymin})",
           title="Published MVTec AD means (others' numbers, not ours)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    return fig


def _first_per_type(samples: Sequence[Sample], per_type: int | None) -> list[Sample]:
    """The first ``per_type`` samples of each defect type, ``good`` first; all if None."""
    if per_type is None:
        return list(samples)
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.defect_type, []).append(s)
    order = sorted(groups, key=lambda t: (t != "good", t))
    return [s for t in order for s in groups[t][:per_type]]


def show_samples(
    samples: Sequence[Sample],
    image_size: tuple[int, int] = (256, 256),
    per_type: int | None = 1,
    rows: Sequence[str] = ("image", "overlay"),
    cell_size: float = 1.8,
) -> Figure:
    """Dataset samples with their ground-truth masks, titled ``defect type / file name``.

    ``per_type`` keeps the first samples of each defect type (``good`` first), so one call shows
    what a category's defects look like; ``None`` shows every sample given (e.g. the seen ones).
    """
    chosen = _first_per_type(samples, per_type)
    if not chosen:
        raise ValueError("show_samples got no samples; pass a non-empty list (e.g. from list_samples)")
    cache = ImageCache(image_size)
    titles = [f"{s.defect_type}\n{s.path.name}" for s in chosen]
    return show_anomalies([cache.image(s) for s in chosen], [cache.mask(s) for s in chosen], titles, rows, cell_size)


def plot_split(split: FewShotSplit) -> Figure:
    """Stacked bars of a few-shot split: how many files of each defect type each part holds.

    The ``seen`` bar and the gap it leaves in ``test`` are the protocol in one picture; with
    ``leaky=True`` the test bar keeps its full length.
    """
    parts = {"train (normal)": split.train, "val (normal)": split.val, "seen (training)": split.seen,
             "test": split.test}
    types = sorted({s.defect_type for p in parts.values() for s in p}, key=lambda t: (t != "good", t))
    colours = dict(zip(types, plt.get_cmap("tab10").colors))
    fig, ax = plt.subplots(figsize=(9, 2.8))
    for row, (name, samples) in enumerate(parts.items()):
        left = 0
        for t in types:
            n = sum(s.defect_type == t for s in samples)
            if n:
                ax.barh(row, n, left=left, color=colours[t], edgecolor="white",
                        label=t if t not in ax.get_legend_handles_labels()[1] else None)
                ax.text(left + n / 2, row, str(n), ha="center", va="center", fontsize=7)
                left += n
    ax.set_yticks(range(len(parts)), list(parts))
    ax.invert_yaxis()
    title = f"{split.category}: few-shot split (seed {split.seed}, {len(split.seen)} seen"
    ax.set(xlabel="images", title=title + (", leaky)" if split.leaky else ")"))
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def show_foregrounds(
    images: Sequence[Any],
    foregrounds: Sequence[Any] | None = None,
    titles: Sequence[str] | None = None,
    cell_size: float = 1.8,
) -> Figure:
    """Images above their foreground masks: the background is dimmed and the outline drawn.

    ``foregrounds`` default to :func:`prn_core.data.estimate_foreground` of each image, the
    masks that keep extended and simulated anomalies on the object.
    """
    if not images:
        raise ValueError("show_foregrounds got no images")
    pictures = [_to_image(im) for im in images]
    masks = [estimate_foreground(p) for p in pictures] if foregrounds is None else [_to_mask(f) for f in foregrounds]
    fig, axes = plt.subplots(2, len(pictures), figsize=(cell_size * len(pictures), cell_size * 2), squeeze=False)
    for col, (picture, mask) in enumerate(zip(pictures, masks)):
        axes[0, col].imshow(picture)
        axes[1, col].imshow(np.where(mask[..., None], picture, 0.25 * picture))
        if mask.any() and not mask.all():
            axes[1, col].contour(mask.astype(np.float32), levels=[0.5], colors="cyan", linewidths=0.8)
        axes[1, col].set_xlabel(f"{mask.mean():.0%} foreground", fontsize=7)
        if titles is not None:
            axes[0, col].set_title(titles[col], fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("image", fontsize=8)
    axes[1, 0].set_ylabel("foreground", fontsize=8)
    fig.tight_layout()
    return fig


def show_perlin_masks(
    shape: tuple[int, int] = (128, 128),
    scales: Sequence[int] = (0, 1, 2, 3, 4, 5),
    per_scale: int = 4,
    seed: int = 0,
    threshold: float = 0.5,
    cell_size: float = 1.5,
) -> Figure:
    """One row per Perlin scale ``s`` (``2**s`` cells per axis): the raw noise, then masks.

    Each mask is :func:`~prn_core.synthesis.perlin_mask` with ``min_scale = max_scale = s``:
    rotated, thresholded noise, drawn from ``numpy.random.default_rng([seed, s, i])``.
    """
    cols = per_scale + 1
    fig, axes = plt.subplots(len(scales), cols, figsize=(cell_size * cols, cell_size * len(scales)), squeeze=False)
    for row, s in enumerate(scales):
        noise = perlin_noise(shape, (2**s, 2**s), np.random.default_rng([seed, s, per_scale]))
        axes[row, 0].imshow(noise, cmap="RdBu_r", vmin=-1, vmax=1)
        axes[row, 0].set_ylabel(f"s = {s}\n{2**s}x{2**s} cells", fontsize=8)
        for i in range(per_scale):
            mask = perlin_mask(shape, np.random.default_rng([seed, s, i]), s, s, threshold)
            axes[row, i + 1].imshow(mask, cmap="gray", vmin=0, vmax=1)
            axes[row, i + 1].set_xlabel(f"{mask.mean():.0%} of pixels", fontsize=7)
    axes[0, 0].set_title("noise", fontsize=8)
    for i in range(per_scale):
        axes[0, i + 1].set_title(f"mask {i + 1}", fontsize=8)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def show_textures(
    source: Any,
    image_size: tuple[int, int] = (128, 128),
    count: int = 6,
    seed: int = 0,
    texture_ops: int = 3,
    cell_size: float = 1.6,
) -> Figure:
    """The first ``count`` textures of a :class:`~prn_core.data.TextureSource` and one
    augmented copy of each (``texture_ops`` ops, ``numpy.random.default_rng([seed, i])``), as
    :class:`~prn_core.synthesis.SimulatedAnomaly` would paste them."""
    count = min(count, len(source))
    if count < 1:
        raise ValueError("show_textures needs a texture source with at least one texture")
    names = list(PROCEDURAL_KINDS) if isinstance(source, ProceduralTextures) else None
    fig, axes = plt.subplots(2, count, figsize=(cell_size * count, cell_size * 2), squeeze=False)
    for i in range(count):
        texture = np.clip(np.rint(source.load(i, image_size) * 255), 0, 255).astype(np.uint8)
        axes[0, i].imshow(texture)
        axes[0, i].set_title(names[i % len(names)] if names else f"texture {i}", fontsize=8)
        axes[1, i].imshow(augment_texture(texture, np.random.default_rng([seed, i]), texture_ops))
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("texture", fontsize=8)
    axes[1, 0].set_ylabel(f"augmented\n({texture_ops} ops)", fontsize=8)
    fig.tight_layout()
    return fig


def show_extended(
    seen_images: Sequence[Any],
    seen_masks: Sequence[Any],
    normal_images: Sequence[Any],
    foregrounds: Sequence[Any] | None = None,
    count: int = 4,
    seed: int = 0,
    labels: Sequence[str] | None = None,
    cell_size: float = 1.6,
) -> Figure:
    """One row per seen anomaly: the real defect, then ``count`` extended anomalies made from it.

    Each row uses an :class:`~prn_core.synthesis.ExtendedAnomaly` holding only that defect, so
    the row shows what augmentation and pasting do to *one* real defect; column ``j`` pastes
    onto normal image ``j`` (cycling) with ``numpy.random.default_rng([seed, row, j])``.
    """
    if not len(seen_images) or len(seen_images) != len(seen_masks):
        raise ValueError(
            f"need one mask per seen image (at least one), got {len(seen_images)} images and {len(seen_masks)} masks"
        )
    cols = count + 1
    fig, axes = plt.subplots(len(seen_images), cols, figsize=(cell_size * cols, cell_size * len(seen_images)),
                             squeeze=False)
    for row, (image, mask) in enumerate(zip(seen_images, seen_masks)):
        maker = ExtendedAnomaly([_to_image(image)], [_to_mask(mask)])
        _draw_column(axes[row, :1], _to_image(image), _to_mask(mask), ("overlay",))
        if labels is not None:
            axes[row, 0].set_ylabel(labels[row], fontsize=8)
        for j in range(count):
            base = j % len(normal_images)
            fg = None if foregrounds is None else _to_mask(foregrounds[base])
            out, out_mask = maker(_to_image(normal_images[base]), fg, np.random.default_rng([seed, row, j]))
            _draw_column(axes[row, j + 1 : j + 2], out, _to_mask(out_mask), ("overlay",))
    axes[0, 0].set_title("seen (real)", fontsize=8)
    for j in range(count):
        axes[0, j + 1].set_title(f"extended {j + 1}", fontsize=8)
    fig.tight_layout()
    return fig


def plot_epoch_mix(mix: Any, epoch: int | None = None) -> Figure:
    """The kind of every sample of an :class:`~prn_core.synthesis.AnomalyMix` epoch, one row per
    batch, so the balance of every batch (not only of the epoch) can be seen."""
    kinds, _ = mix.schedule(epoch)
    size = mix.batch_size
    rows = -(-len(kinds) // size)
    codes = np.full(rows * size, -1.0)
    codes[: len(kinds)] = [KINDS.index(k) for k in kinds]
    colours = plt.get_cmap("tab10").colors[: len(KINDS)]
    grid = np.ma.masked_less(codes.reshape(rows, size), 0)
    fig, ax = plt.subplots(figsize=(2.5 + 0.45 * size, 1.0 + 0.35 * rows))
    ax.imshow(grid, cmap=ListedColormap(colours), vmin=-0.5, vmax=len(KINDS) - 0.5, aspect="auto")
    ax.set_xticks(np.arange(size + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(rows + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    ax.set(xlabel="position in batch", ylabel="batch", xticks=range(size), yticks=range(rows),
           title=f"epoch {mix.epoch if epoch is None else epoch}: {len(kinds)} samples, batches of {size}")
    handles = [Patch(color=c, label=f"{k} ({kinds.count(k)})") for k, c in zip(KINDS, colours)]
    ax.legend(handles=handles, fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    return fig


# --- chapter 3: the frozen encoder, prototypes and residuals -------------------------------------


@torch.no_grad()
def _encode(backbone: Backbone, images: Sequence[Any], batch_size: int = 16) -> list[torch.Tensor]:
    """Encoder maps of ``images`` (arrays or tensors in [0, 1]), in batches: [(N, C_s, h_s, w_s)] on CPU."""
    if not len(images):
        raise ValueError("no images given; pass at least one (H, W, 3) image in [0, 1]")
    pictures = torch.from_numpy(np.stack([_to_image(im) for im in images])).permute(0, 3, 1, 2)
    device = next(iter(backbone.buffers())).device
    chunks = [backbone(pictures[i : i + batch_size].to(device)) for i in range(0, len(pictures), batch_size)]
    return [torch.cat([chunk[s] for chunk in chunks]).float().cpu().contiguous() for s in range(len(chunks[0]))]


def _no_ticks(axes: Any) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def show_feature_maps(backbone: Backbone, image: Any, num_channels: int = 4, scales: int = 3,
                      cell_size: float = 1.5) -> Figure:
    """An image beside its encoder maps, one row per scale (finest first).

    Each row shows the channel norm ``||F||`` (where the encoder responds at all) and the
    ``num_channels`` channels that vary most over this image, each at its own resolution, so the
    loss of spatial detail from stride to stride is visible.
    """
    feats = _encode(backbone, [image])[:scales]
    cols = num_channels + 1
    fig = plt.figure(figsize=(cell_size * (cols + 2), cell_size * len(feats)))
    grid = fig.add_gridspec(len(feats), cols + 1, width_ratios=[2] + [1] * cols)
    picture = fig.add_subplot(grid[:, 0])
    picture.imshow(_to_image(image))
    picture.set_title(f"input {_to_image(image).shape[0]}x{_to_image(image).shape[1]}", fontsize=8)
    _no_ticks(picture)
    for row, (feat, stride) in enumerate(zip(feats, backbone.strides)):
        f = feat[0]  # (C, h, w)
        busiest = f.flatten(1).var(dim=1).argsort(descending=True)[:num_channels].tolist()
        maps = [("||F||", f.norm(dim=0))] + [(f"channel {c}", f[c]) for c in busiest]
        for col, (name, value) in enumerate(maps):
            ax = fig.add_subplot(grid[row, col + 1])
            ax.imshow(value.numpy(), cmap="viridis" if col == 0 else "RdBu_r", interpolation="nearest")
            ax.set_title(name, fontsize=7)
            _no_ticks(ax)
            if col == 0:
                ax.set_ylabel(f"stride {stride}\n{f.shape[0]} x {f.shape[1]} x {f.shape[2]}", fontsize=8)
    fig.tight_layout()
    return fig


def show_prototypes(bank: PrototypeBank, backbone: Backbone, images: Sequence[Any], max_prototypes: int = 8,
                    cell_size: float = 1.4) -> Figure:
    """The prototypes of every scale, two rows each, one column per prototype.

    A prototype is a K-means centre, a mean of feature maps rather than a picture, so the first
    row shows the closest thing to a picture of it: the training image whose map is nearest, with
    the size of its cluster (images whose nearest prototype it is). The second row is the
    prototype's channel norm ``||P||``. ``images`` must be the images the bank was fitted on.
    """
    feats = _encode(backbone, images)
    k = min(bank.num_prototypes, max_prototypes)
    scales = len(bank.prototypes)
    fig, axes = plt.subplots(2 * scales, k, figsize=(cell_size * max(k, 2), cell_size * 2 * scales), squeeze=False)
    for s, (feat, proto, stride) in enumerate(zip(feats, bank.prototypes, backbone.strides)):
        if feat.shape[1:] != proto.shape[1:]:
            raise ValueError(
                f"images give maps {tuple(feat.shape[1:])} at stride {stride} but the prototypes are "
                f"{tuple(proto.shape[1:])}; pass images of the size and backbone the bank was fitted with"
            )
        dist = torch.cdist(feat.flatten(1), proto.flatten(1))  # (N, K)
        members = torch.bincount(dist.argmin(dim=1), minlength=proto.shape[0])
        for j in range(k):
            axes[2 * s, j].imshow(_to_image(images[int(dist[:, j].argmin())]))
            axes[2 * s, j].set_xlabel(f"{int(members[j])} images", fontsize=7)
            axes[2 * s + 1, j].imshow(proto[j].norm(dim=0).numpy(), cmap="viridis", interpolation="nearest")
        axes[2 * s, 0].set_ylabel(f"stride {stride}\nnearest image", fontsize=8)
        axes[2 * s + 1, 0].set_ylabel("||P||", fontsize=8)
    for j in range(k):
        axes[0, j].set_title(f"prototype {j}", fontsize=8)
    _no_ticks(axes)
    fig.tight_layout()
    return fig


def show_residuals(bank: PrototypeBank, backbone: Backbone, images: Sequence[Any], masks: Sequence[Any] | None = None,
                   titles: Sequence[str] | None = None, modes: Sequence[str] = ("image",),
                   cell_size: float = 1.6) -> Figure:
    """Prototypical residuals ``sum_c (F - P)^2`` per scale, one row per image and residual mode.

    Each scale's column shares one colour scale over all rows, so a normal image next to a
    defective one shows how much brighter the defect is, not two maps stretched to their own
    maximum. The first column outlines the ground-truth mask when ``masks`` are given.
    """
    feats = _encode(backbone, images)[: len(bank.prototypes)]
    energy = {mode: [r.sum(dim=1).numpy() for r in bank.residuals(feats, mode)] for mode in modes}  # (N, h, w)
    vmax = [max(float(energy[m][s].max()) for m in modes) for s in range(len(feats))]
    rows = [(i, mode) for i in range(len(images)) for mode in modes]
    cols = len(feats) + 1
    fig, axes = plt.subplots(len(rows), cols, figsize=(cell_size * cols, cell_size * len(rows)), squeeze=False)
    for r, (i, mode) in enumerate(rows):
        if masks is None:
            axes[r, 0].imshow(_to_image(images[i]))
        else:
            _draw_column(axes[r, :1], _to_image(images[i]), _to_mask(masks[i]), ("overlay",))
        label = f"image {i}" if titles is None else titles[i]
        axes[r, 0].set_ylabel(label if len(modes) == 1 else f"{label}\n{mode}-level", fontsize=8)
        for s, stride in enumerate(backbone.strides[: len(feats)]):
            value = energy[mode][s][i]
            axes[r, s + 1].imshow(value, cmap="inferno", vmin=0, vmax=vmax[s], interpolation="nearest")
            axes[r, s + 1].set_xlabel(f"mean {value.mean():.1f}, max {value.max():.1f}", fontsize=7)
            if r == 0:
                axes[r, s + 1].set_title(f"residual, stride {stride}", fontsize=8)
    axes[0, 0].set_title("image" if masks is None else "image + mask", fontsize=8)
    _no_ticks(axes)
    fig.tight_layout()
    return fig


@torch.no_grad()
def top_classes(classifier: torch.nn.Module, image: Any, k: int = 5, size: int = 224) -> list[tuple[int, str, float]]:
    """The ``k`` most probable ImageNet classes of ``image`` as (index, name, probability).

    ``classifier`` takes [0, 1] images (e.g. :func:`prn_core.models.build_classifier`); the image
    is resized to ``size`` x ``size`` with antialiasing first.
    """
    from timm.data import ImageNetInfo

    picture = torch.from_numpy(_to_image(image)).permute(2, 0, 1)[None]
    picture = torch.nn.functional.interpolate(picture, size=(size, size), mode="bilinear", antialias=True)
    device = next(classifier.parameters()).device
    probs, index = classifier(picture.to(device)).softmax(dim=-1)[0].cpu().topk(k)
    info = ImageNetInfo()
    return [(int(i), info.index_to_description(int(i)), float(p)) for p, i in zip(probs, index)]


def show_top_classes(classifier: torch.nn.Module, image: Any, k: int = 5) -> Figure:
    """An image beside the classifier's ``k`` most probable ImageNet classes (see :func:`top_classes`)."""
    top = top_classes(classifier, image, k)
    fig, (ax_image, ax_bars) = plt.subplots(1, 2, figsize=(8, 2.6), gridspec_kw={"width_ratios": [1.2, 1]})
    ax_image.imshow(_to_image(image))
    ax_image.axis("off")
    ax_bars.barh([f"{name} ({index})" for index, name, _ in top], [p for *_, p in top], color="#2b6cb0")
    for y, (*_, p) in enumerate(top):
        ax_bars.text(p, y, f" {p:.2f}", va="center", fontsize=7)
    ax_bars.invert_yaxis()
    ax_bars.set(xlim=(0, 1.15), xlabel="probability", title=f"top {k} ImageNet classes")
    fig.tight_layout()
    return fig


# --- chapter 4: multi-scale fusion, multi-size attention, the whole network ----------------------

_PATH_STYLES = {  # MSF path kind -> (colour, label)
    "same": ("#777777", "same scale: identity / 1x1 conv"),
    "down": ("#2b6cb0", "finer -> coarser: 3x3 stride-2 conv per halving"),
    "up": ("#dd6b20", "coarser -> finer: 1x1 conv, bilinear upsampling"),
}


def plot_fusion(msf: MultiScaleFusion, strides: Sequence[int] = (4, 8, 16)) -> Figure:
    """A :class:`~prn_core.models.MultiScaleFusion` as an HRNet-style exchange diagram.

    Inputs on the left, outputs on the right, box heights proportional to map side; every input
    reaches every output through one path, coloured by kind and labelled with its convolutions,
    all read from the module itself (its ``paths`` and channel widths).
    """
    n = len(msf.in_channels)
    if len(strides) != n:
        raise ValueError(f"the MSF has {n} scales but {len(strides)} strides were given")
    fig, ax = plt.subplots(figsize=(9, 4.8))
    ys = [3.0 - 1.6 * i for i in range(n)]
    heights = [1.0 / 2**i for i in range(n)]
    for i, (y, h) in enumerate(zip(ys, heights)):
        ax.add_patch(FancyBboxPatch((0.2, y - h / 2), 1.4, h, boxstyle="round,pad=0.02", facecolor="#d9d9d9",
                                    edgecolor="#333333"))
        ax.text(0.9, y, f"stride {strides[i]}\n{msf.in_channels[i]} ch", ha="center", va="center", fontsize=8)
        ax.add_patch(FancyBboxPatch((6.4, y - h / 2), 1.4, h, boxstyle="round,pad=0.02", facecolor="#bcd7f5",
                                    edgecolor="#333333"))
        ax.text(7.1, y, f"stride {strides[i]}\n{msf.out_channels[i]} ch", ha="center", va="center", fontsize=8)
        ax.text(5.55, y, "sum\nBN, ReLU", ha="center", va="center", fontsize=7,
                bbox=dict(boxstyle="circle,pad=0.25", facecolor="white", edgecolor="#333333"))
        _arrow(ax, (5.95, y), (6.35, y))
    for j in range(n):
        for i in range(n):
            kind = "same" if i == j else ("down" if j > i else "up")
            colour = _PATH_STYLES[kind][0]
            path = msf.paths[j][i]
            convs = sum(isinstance(m, torch.nn.Conv2d) for m in path.modules())
            start, end = (1.65, ys[i] + 0.08 * (j - i)), (5.15, ys[j] + 0.08 * (i - j))
            ax.annotate("", xy=end, xytext=start,
                        arrowprops=dict(arrowstyle="-|>", color=colour, linewidth=1.2, shrinkA=0, shrinkB=0))
            label = {"same": "identity" if convs == 0 else "1x1 conv", "down": f"{convs}x 3x3/2 conv",
                     "up": f"1x1 conv, up x{2 ** (i - j)}"}[kind]
            t = 0.15 if kind == "same" else 0.22 + 0.4 * (abs(j - i) - 1)
            angle = math.degrees(math.atan2(end[1] - start[1], end[0] - start[0]))
            ax.text(start[0] + t * (end[0] - start[0]), start[1] + t * (end[1] - start[1]), label, fontsize=6.5,
                    color=colour, ha="center", va="bottom", rotation=angle, rotation_mode="anchor",
                    transform_rotates_text=True)
    ax.text(0.9, ys[0] + 0.75, "inputs", ha="center", fontsize=9)
    ax.text(7.1, ys[0] + 0.75, "outputs", ha="center", fontsize=9)
    handles = [Patch(color=c, label=label) for c, label in _PATH_STYLES.values()]
    ax.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=7, frameon=False)
    ax.set(xlim=(0, 8.0), ylim=(ys[-1] - 0.7, ys[0] + 1.0))
    ax.axis("off")
    fig.tight_layout()
    return fig


def _keep_output(record: dict[str, Any], key: str) -> Callable[..., None]:
    """A forward hook that stores a module's output in ``record[key]``."""

    def hook(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        record[key] = output.detach().float().cpu()

    return hook


@torch.no_grad()
def attention_weights(model: PRN, images: Sequence[Any]) -> list[dict[str, Any]]:
    """The attention weights of every MSA branch of ``model`` for ``images``.

    ``F.scaled_dot_product_attention`` never materialises its weights, so they are recomputed,
    without touching the model, from what each branch really computed: forward hooks capture the
    token grid (output of ``embed``) and the queries and keys (output of ``qkv``), and the weights
    are ``softmax(q k^T / sqrt(d_head))``, the scale SDPA uses. The model runs once in eval mode.

    Returns one record per layer and branch, finest scale first: ``stride``, ``layer``,
    ``patch_size``, ``grid`` (h, w) of tokens and ``weights`` (B, heads, N, N), N = h * w, whose
    rows sum to 1 (row n: how token n spreads its attention).
    """
    records: list[dict[str, Any]] = []
    handles = []
    for stride, msa in zip(PROTOTYPE_STRIDES, model.attention):
        for layer, block in enumerate(msa.layers):
            for branch in block.branches:
                record: dict[str, Any] = {"stride": stride, "layer": layer, "patch_size": branch.patch_size,
                                          "heads": branch.heads}
                handles.append(branch.embed.register_forward_hook(_keep_output(record, "grid")))
                handles.append(branch.qkv.register_forward_hook(_keep_output(record, "qkv")))
                records.append(record)
    pictures = torch.from_numpy(np.stack([_to_image(im) for im in images])).permute(0, 3, 1, 2)
    was_training = model.training
    try:
        model.eval()
        model(pictures.to(next(iter(model.backbone.buffers())).device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    for record in records:
        b, d, h, w = record.pop("grid").shape
        heads = record.pop("heads")
        qkv = record.pop("qkv").reshape(b, h * w, 3, heads, d // heads)
        q, k = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2)  # (B, heads, N, d_head)
        record["grid"] = (h, w)
        record["weights"] = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // heads), dim=-1)
    return records


def show_attention(model: PRN, image: Any, mask: Any | None = None, query: tuple[float, float] | None = None,
                   layer: int = 0, cell_size: float = 1.9) -> Figure:
    """Where one query patch looks, in every MSA branch: one row per scale, two panels per patch size.

    Left panel: the image with the branch's patch grid and the query patch outlined in cyan. Right
    panel: the query's attention weights over all patches (mean over heads), coloured from 0 to
    their maximum so that near-uniform attention looks uniform. ``query`` is a position (y, x)
    in [0, 1]; by default the centre of ``mask`` when given, else the image centre.
    """
    picture = _to_image(image)
    height, width = picture.shape[:2]
    if query is None:
        spot = np.argwhere(_to_mask(mask)) if mask is not None else np.empty((0, 2))
        query = tuple((spot.mean(0) + 0.5) / (height, width)) if len(spot) else (0.5, 0.5)
    records = [r for r in attention_weights(model, [picture]) if r["layer"] == layer]
    if not records:
        raise ValueError(f"the model has no MSA layer {layer}; it has {model.cfg.attention_layers}")
    strides = list(dict.fromkeys(r["stride"] for r in records))
    branches = max(sum(r["stride"] == s for r in records) for s in strides)
    fig, axes = plt.subplots(len(strides), 2 * branches, figsize=(cell_size * 2 * branches, cell_size * len(strides)),
                             squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for row, stride in enumerate(strides):
        for b, record in enumerate(r for r in records if r["stride"] == stride):
            (h, w), cell = record["grid"], stride * record["patch_size"]  # token side in pixels
            qy, qx = min(int(query[0] * height) // cell, h - 1), min(int(query[1] * width) // cell, w - 1)
            weights = record["weights"][0].mean(0)[qy * w + qx].reshape(h, w).numpy()
            grid, attention = axes[row, 2 * b], axes[row, 2 * b + 1]
            grid.imshow(picture)
            for k in range(1, max(h, w)):
                grid.axhline(k * cell - 0.5, color="white", linewidth=0.4, alpha=0.7)
                grid.axvline(k * cell - 0.5, color="white", linewidth=0.4, alpha=0.7)
            grid.set_title(f"patch {record['patch_size']}: {h}x{w} = {h * w} tokens", fontsize=7)
            attention.imshow(picture * 0.35)
            attention.imshow(weights, cmap="magma", alpha=0.85, extent=(-0.5, w * cell - 0.5, h * cell - 0.5, -0.5),
                             interpolation="nearest", vmin=0, vmax=float(weights.max()))  # from 0: flat looks flat
            attention.set_title(f"attention: max {weights.max():.3f}, uniform 1/{h * w}", fontsize=7)
            for ax in (grid, attention):
                ax.axis("on")
                ax.add_patch(plt.Rectangle((qx * cell - 0.5, qy * cell - 0.5), cell, cell, fill=False,
                                           edgecolor="cyan", linewidth=1.2))
                ax.set(xlim=(-0.5, width - 0.5), ylim=(height - 0.5, -0.5))
        axes[row, 0].set_ylabel(f"stride {stride}", fontsize=8)
    _no_ticks(axes)
    fig.tight_layout()
    return fig


def plot_parameters(model: PRN) -> Figure:
    """Parameters per top-level module of a PRN (from :meth:`PRN.summary`), trainable vs frozen."""
    rows = model.summary()
    names = [f"{r['module']}\n({r['class']})" for r in rows]
    trainable = np.array([r["trainable"] for r in rows], dtype=float)
    frozen = np.array([r["parameters"] - r["trainable"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(8, 0.5 + 0.5 * len(rows)))
    ax.barh(names, trainable / 1e6, color=_BOX_COLOURS["trained"], edgecolor="#333333", label="trainable")
    ax.barh(names, frozen / 1e6, left=trainable / 1e6, color=_BOX_COLOURS["frozen"], edgecolor="#333333",
            label="frozen")
    for y, total in enumerate(trainable + frozen):
        ax.text(total / 1e6, y, f" {total / 1e6:.2f} M" if total else " 0 (buffers only)", va="center", fontsize=7)
    ax.invert_yaxis()
    ax.tick_params(axis="y", labelsize=7)
    total = trainable.sum() + frozen.sum()
    ax.set(xlabel="parameters (millions)", xlim=(0, 1.2 * (trainable + frozen).max() / 1e6),
           title=f"PRN at {model.image_size[0]}x{model.image_size[1]}: {total / 1e6:.2f} M parameters, "
                 f"{trainable.sum() / 1e6:.2f} M trainable")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


# --- chapters 5-6: the loss, evaluation metrics, score distributions and thresholds ------------


def plot_focal_loss(gammas: Sequence[float] = (2.0, 4.0), focal_weight: float = 5.0,
                    toy_probabilities: tuple[float, float] = (0.05, 0.4)) -> Figure:
    """Why PRN's loss is mostly focal: two panels computed with :mod:`prn_core.losses`.

    Left, the loss of one pixel against ``p_t``, the probability given to its true class:
    cross-entropy, focal losses with ``gammas`` (alpha 0.5), SmoothL1 on the probability and
    PRN's total. Right, a toy 64x64 map with an 8x8 anomaly (1.6 % of the pixels) where normal
    pixels are easy (``p = toy_probabilities[0]``) and anomalous ones hard (``p =
    toy_probabilities[1]``): the share of each loss that the few anomalous pixels carry.
    """
    from .losses import FOCAL_ALPHA, focal_loss

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
    from scipy import ndimage

    from .metrics import pixel_histogram

    gt = np.asarray(mask) > 0
    score = np.asarray(anomaly_map, dtype=np.float32)
    regions, count = ndimage.label(gt, structure=np.ones((3, 3), bool))
    predicted = score >= threshold
    fpr = float(predicted[~gt].mean())
    fig, axes = plt.subplots(1, 4, figsize=(13, 3.4), gridspec_kw={"width_ratios": [1, 1, 1, 1.4]})
    axes[0].imshow(np.ma.masked_equal(regions, 0), cmap="tab10", vmin=1, vmax=10, interpolation="nearest")
    axes[0].set_title(f"ground truth: {count} regions", fontsize=9)
    shown = axes[1].imshow(score, cmap="jet", vmin=0, vmax=1, interpolation="nearest")
    fig.colorbar(shown, ax=axes[1], fraction=0.046)
    axes[1].set_title("anomaly map", fontsize=9)
    axes[2].imshow(predicted, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
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
    hist = pixel_histogram(gt[None].astype(np.uint8), score[None])
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
    for value, name, colour in ((0, "normal", "#2b6cb0"), (1, "anomalous", "#c0392b")):
        ax_image.hist(scores[labels == value], bins=edges, alpha=0.6, color=colour,
                      label=f"{name} images ({int((labels == value).sum())})")
    ax_image.set(xlabel="image score", ylabel="images", title="image scores")
    ax_image.legend(fontsize=8)
    low, high = float(maps.min()), float(maps.max())
    edges = np.linspace(low, high if high > low else low + 1e-6, bins + 1)
    every, _ = np.histogram(maps, bins=edges)
    bad, _ = np.histogram(anomalous, bins=edges)
    centres, width = 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)
    for counts, name, colour in ((every - bad, "normal", "#2b6cb0"), (bad, "anomalous", "#c0392b")):
        share = counts / max(1, counts.sum())
        ax_pixel.bar(centres, np.where(share > 0, share, np.nan), width=width, alpha=0.6, color=colour,
                     label=f"{name} pixels ({int(counts.sum()):,})")
    ax_pixel.set(yscale="log", xlabel="pixel probability", ylabel="share of pixels of the class",
                 title="pixel scores (each class sums to 1)")
    ax_pixel.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _confusion(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, int]:
    """Image-level confusion counts when ``score >= threshold`` means anomalous."""
    positive, predicted = np.asarray(labels) == 1, np.asarray(scores) >= threshold
    return {"TP": int((positive & predicted).sum()), "FN": int((positive & ~predicted).sum()),
            "FP": int((~positive & predicted).sum()), "TN": int((~positive & ~predicted).sum())}


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
    for value, name, colour in ((0, "normal", "#2b6cb0"), (1, "anomalous", "#c0392b")):
        keep = labels == value
        ax_scores.scatter(scores[keep], value + jitter[keep], s=14, color=colour, label=name)
    ax_scores.axvline(image_threshold, color="black", linestyle="--")
    ax_scores.set(yticks=[0, 1], yticklabels=["normal", "anomalous"], xlabel="image score",
                  title=f"image threshold {image_threshold:.4g}: right of the line = flagged")
    ax_scores.title.set_fontsize(9)
    counts = _confusion(labels, scores, image_threshold)
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
        bottom.imshow(np.asarray(maps[index]) >= pixel_threshold, cmap="gray", vmin=0, vmax=1)
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


class ThresholdExplorer:
    """Two sliders (image and pixel threshold) above a :func:`plot_threshold` figure.

    Displaying it shows the sliders (an ipywidgets ``HBox``, also at ``.controls``) and the figure
    as a plain PNG with a display id, which every slider move replaces. So a static page of the
    executed notebook still shows the figure at the initial thresholds, while a live kernel
    (Jupyter, Colab) redraws it.
    """

    def __init__(self, images: np.ndarray, maps: np.ndarray, masks: np.ndarray, scores: np.ndarray,
                 labels: np.ndarray, count: int = 6) -> None:
        import ipywidgets as widgets

        from .metrics import f1_max

        self.images, self.maps, self.masks = images, np.asarray(maps), masks
        self.scores, self.labels = np.asarray(scores, dtype=np.float64), np.asarray(labels)
        self.indices = _pick_examples(self.labels, count)
        start = f1_max(self.labels, self.scores).threshold
        low, high = float(self.scores.min()), float(self.scores.max())
        self.image_slider = widgets.FloatSlider(value=start, min=low, max=high, step=(high - low) / 200 or 1e-6,
                                                readout_format=".4f", description="image t",
                                                continuous_update=False)
        bottom, top = float(self.maps.min()), float(self.maps.max())
        self.pixel_slider = widgets.FloatSlider(value=float(np.clip(start, bottom, top)), min=bottom, max=top,
                                                step=(top - bottom) / 200 or 1e-6,
                                                readout_format=".4f", description="pixel t",
                                                continuous_update=False)
        self.controls = widgets.HBox([self.image_slider, self.pixel_slider])
        self._handle: Any = None
        for slider in (self.image_slider, self.pixel_slider):
            slider.observe(self._redraw, names="value")

    def figure(self) -> Figure:
        """The figure at the sliders' current thresholds."""
        return plot_threshold(self.images, self.maps, self.masks, self.scores, self.labels,
                              self.image_slider.value, self.pixel_slider.value, indices=self.indices)

    def _png(self) -> Any:
        import io

        from IPython.display import Image

        fig = self.figure()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
        plt.close(fig)
        return Image(data=buffer.getvalue(), format="png")

    def _redraw(self, _change: Any = None) -> None:
        if self._handle is not None:
            self._handle.update(self._png())

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.controls)
        self._handle = display(self._png(), display_id=True)


def threshold_explorer(images: np.ndarray, maps: np.ndarray, masks: np.ndarray, scores: np.ndarray,
                       labels: np.ndarray, count: int = 6) -> ThresholdExplorer | Figure:
    """An interactive :class:`ThresholdExplorer`, or without ipywidgets the static figure.

    Both thresholds start at the image F1-max threshold (see :func:`prn_core.metrics.f1_max`).
    """
    try:
        return ThresholdExplorer(images, maps, masks, scores, labels, count)
    except ImportError:
        from .metrics import f1_max

        start = f1_max(labels, scores).threshold
        return plot_threshold(images, maps, masks, scores, labels, start, start, count=count)


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


# --- chapters 7-8: our results against references, stability, ablations, benchmarks ------------


def _label(metric: str) -> str:
    from .results import METRIC_LABELS

    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def plot_metric_bars(named: Mapping[str, Mapping[str, float | None]],
                     metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap"),
                     ours: Sequence[str] = (), title: str = "", ymin: float = 0.5,
                     errors: Mapping[str, Mapping[str, float | None]] | None = None) -> Figure:
    """Grouped bars, one group per metric and one bar per named method, each bar labelled.

    Methods named in ``ours`` are drawn solid; all others (references: other people's code and
    numbers) are hatched, so a reader never mistakes one for the other. A metric a method did not
    report is marked "n/r" instead of drawn as zero. The axis starts at ``ymin``. ``errors``
    (method -> metric -> sample std over seeds) draws whiskers of +-1 std; a single seed has
    none (None), and then no whisker is drawn rather than a zero one.
    """
    methods = list(named)
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * len(metrics) + 1.2 * len(methods)), 3.8))
    colours = plt.get_cmap("tab10").colors
    for m, method in enumerate(methods):
        style = {} if method in ours else {"hatch": "//", "edgecolor": "white", "alpha": 0.75}
        labelled = False
        for j, metric in enumerate(metrics):
            x = j - 0.4 + (m + 0.5) * width
            value = named[method].get(metric)
            if value is None:
                ax.text(x, ymin + 0.005, "n/r", ha="center", va="bottom", fontsize=6, rotation=90, color="#777777")
                continue
            std = (errors or {}).get(method, {}).get(metric)
            ax.bar(x, max(value - ymin, 0.0), width, bottom=ymin, color=colours[m % 10],
                   label=None if labelled else method + ("" if method in ours else " (reference)"),
                   yerr=std, error_kw={"elinewidth": 0.8, "capsize": 2}, **style)
            labelled = True
            text = f"{value:.3f}" + ("" if std is None else f"±{std:.3f}")
            ax.text(x, max(value, ymin) + (std or 0.0) + 0.004, text, ha="center", va="bottom",
                    fontsize=6, rotation=90)
    ax.set_xticks(range(len(metrics)), [_label(k) for k in metrics])
    ax.set(ylim=(ymin, 1.08), ylabel=f"metric (axis from {ymin})", title=title)
    ax.legend(fontsize=7, ncol=min(len(methods), 3), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    return fig


def plot_stability(history: Sequence[Mapping[str, Any]],
                   metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap"),
                   split: str = "test") -> Figure:
    """One panel per metric: the per-epoch ``split`` monitor and the validation curve of a run.

    The best epoch of the monitor is circled and the final epoch marked with a square; the gap
    between them is in each panel's title. The test monitor only *shows* how stable training
    is: the reported model is the final one (or the best on validation), never the best on test.
    """
    from .results import final_vs_best

    summary = final_vs_best(history, split, metrics)
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        shown = [row.get(split, {}).get(metric, np.nan) for row in history]
        style = SPLIT_STYLES.get(split, "--")
        ax.plot(epochs, shown, style, marker=".", color="C0", label=f"{split} monitor")
        val = [row.get("val", {}).get(metric, np.nan) for row in history]
        if split != "val" and not np.all(np.isnan(val)):
            ax.plot(epochs, val, SPLIT_STYLES["val"], color="C7", label="validation")
        s = summary[metric]
        ax.plot(s["best_epoch"], s["best"], "o", mfc="none", mec="C3", ms=10, label="best epoch")
        ax.plot(epochs[-1], s["final"], "s", color="C2", ms=6, label="final epoch")
        ax.set(title=f"{_label(metric)}: final {s['final']:.3f}, best {s['best']:.3f}", xlabel="epoch")
        ax.title.set_fontsize(8)
    axes[0, 0].set_ylabel("metric")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(f"per-epoch {split} monitor: plotted only, never used to pick the model", fontsize=9)
    fig.tight_layout()
    return fig


def plot_paper_table(ours: Mapping[str, Mapping[str, Any]] | None = None, ymin: float = 0.75) -> Figure:
    """Per-category image and pixel AUROC of the PRN paper and the unofficial code, and ours if given.

    ``ours`` is the ``"categories"`` part of a ``prn reproduce`` ``summary.json`` (category ->
    metric -> ``{"mean", "std"}``); it is drawn with its standard deviation over seeds. The
    paper's and the unofficial code's numbers are others' (:mod:`prn_core.reference`) and hatched.
    """
    from .reference import PAPER, UNOFFICIAL

    categories = list(PAPER)
    sources: list[tuple[str, Callable[[str, int], tuple[float, float] | None], dict[str, Any]]] = [
        ("PRN paper", lambda c, i: (PAPER[c][i], 0.0), {"color": "C0", "hatch": "//", "edgecolor": "white"}),
        ("unofficial code (leaky)", lambda c, i: (UNOFFICIAL[c][i], 0.0) if c in UNOFFICIAL else None,
         {"color": "C1", "hatch": "//", "edgecolor": "white"}),
    ]
    if ours:
        key = ("image_auroc", "pixel_auroc")

        def _ours(c: str, i: int) -> tuple[float, float] | None:
            entry = ours.get(c, {}).get(key[i])
            return None if entry is None else (entry["mean"], entry["std"] or 0.0)  # None: one seed

        sources.append(("ours (mean ± std over seeds)", _ours, {"color": "C2"}))
    width = 0.8 / len(sources)
    fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    for i, ax in enumerate(axes):
        for s, (name, get, style) in enumerate(sources):
            x = np.arange(len(categories)) - 0.4 + (s + 0.5) * width
            values = [get(c, i) for c in categories]
            keep = [k for k, v in enumerate(values) if v is not None]
            heights = [values[k][0] - ymin for k in keep]
            errors = [values[k][1] for k in keep]
            ax.bar(x[keep], heights, width, bottom=ymin, yerr=errors if ours and s == len(sources) - 1 else None,
                   label=name, alpha=0.85, **style)
        ax.set(ylim=(ymin, 1.01), ylabel=("image" if i == 0 else "pixel") + f" AUROC (from {ymin})")
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(categories)), categories, rotation=45, ha="right")
    axes[0].set_title("MVTec AD per category" + ("" if ours else ": others' published numbers, not ours"))
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_ablation_deltas(results: Sequence[Mapping[str, Any]],
                         metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")) -> Figure:
    """Per ablation variant, how much each metric moved against the baseline (one panel per metric).

    ``results`` is the list in an ablation ``summary.json`` (one row per variant and seed). Bars
    are changes of the mean over seeds: right of zero, the variant did better than the baseline;
    left, worse. With several seeds, the whisker is the seed spread of the difference (baseline
    std + variant std, :func:`~prn_core.ablations.ablation_effects`): a bar that ends inside its
    whisker is not a measured effect. The baseline's mean is in each panel's title.
    """
    from .ablations import ablation_effects, ablation_rows, ablation_stats

    rows = [(name, deltas) for name, deltas in ablation_rows(results) if name != "baseline"]
    base = {m: v["mean"] for m, v in ablation_stats(results)["baseline"].items()}
    spread = {(e["variant"], e["metric"]): e["spread"] for e in ablation_effects(results)}
    names = [name for name, _ in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 0.45 * len(names) + 1.6),
                             sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        deltas = np.array([d[metric] for _, d in rows])
        whiskers = [spread[(name, metric)] for name in names]
        xerr = None if None in whiskers else np.array(whiskers)
        ax.barh(range(len(names)), deltas, color=np.where(deltas >= 0, "C2", "C3"), xerr=xerr,
                error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.axvline(0, color="#333333", linewidth=0.8)
        reach = np.abs(deltas) + (0 if xerr is None else xerr)
        limit = max(float(reach.max(initial=0.0)) * 1.35, 0.01)
        for y, d in enumerate(deltas):
            ax.text(d, y, f"{d:+.3f}", va="center", ha="left" if d >= 0 else "right", fontsize=7)
        ax.set(xlim=(-limit, limit), title=f"{_label(metric)} (baseline {base[metric]:.3f})", xlabel="change")
        ax.title.set_fontsize(8)
    axes[0, 0].set_yticks(range(len(names)), names)
    axes[0, 0].invert_yaxis()
    fig.tight_layout()
    return fig


def plot_model_speed(benchmark: Mapping[str, Any], unofficial: Mapping[str, Any] | None = None) -> Figure:
    """Train and eval seconds per image and trainable parameters from ``model_speed.json``.

    Every configuration the benchmark measured is a bar; the unofficial implementation's numbers
    (others', see :data:`prn_core.results.UNOFFICIAL_SPEED`) are hatched, with its measured range
    of training speed as an error bar.
    """
    from .results import UNOFFICIAL_SPEED

    unofficial = UNOFFICIAL_SPEED if unofficial is None else unofficial
    runs = benchmark["results"]
    names = [f"{r['backbone']}\n{r.get('variant', '')}".strip() for r in runs] + ["unofficial code\nresnet18"]
    train_low, train_high = unofficial["train_s_per_image"]
    panels = [
        ("train s / image", [r["train_s_per_image"] for r in runs], (train_low + train_high) / 2,
         (train_high - train_low) / 2),
        ("eval s / image", [r["eval_s_per_image"] for r in runs], unofficial["eval_s_per_image"], 0.0),
        ("trainable parameters (M)", [r["trainable_parameters"] / 1e6 for r in runs],
         unofficial["trainable_parameters"] / 1e6, 0.0),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    x = np.arange(len(names))
    for ax, (title, values, theirs, spread) in zip(axes, panels):
        ax.bar(x[:-1], values, color="C0")
        ax.bar(x[-1], theirs, yerr=spread or None, color="C1", hatch="//", edgecolor="white", capsize=3)
        for xi, v in zip(x, [*values, theirs]):
            ax.text(xi, v, f"{v:.2f}" if v < 10 else f"{v:.1f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, names, fontsize=7, rotation=30, ha="right")
        ax.set_title(title, fontsize=9)
    setting = benchmark.get("setting", {})
    size = setting.get("image_size", ["?", "?"])
    fig.suptitle(f"ours (blue, measured by benchmarks/model_speed.py) vs the unofficial code (orange, others' "
                 f"numbers); {size[0]}x{size[1]}, batch {setting.get('batch', '?')}, "
                 f"{setting.get('threads', '?')} CPU threads", fontsize=9)
    fig.tight_layout()
    return fig


def plot_synthesis_speed(benchmark: Mapping[str, Any]) -> Figure:
    """Samples per second for each synthesis step from ``synthesis_speed.json`` (log axis).

    The dashed line is the benchmark's target for the expensive kinds: below it, the data
    loader rather than the model would limit training speed.
    """
    speeds = benchmark["samples_per_s"]
    names = list(speeds)
    best = np.array([speeds[n]["best"] for n in names])
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.4))
    ax.barh(range(len(names)), best, color=["C0" if n.startswith("mix_") else "C4" for n in names])
    for y, v in enumerate(best):
        ax.text(v, y, f" {v:,.0f}/s  ({1000 / v:.2f} ms)", va="center", fontsize=7)
    targets = benchmark.get("targets_samples_per_s", {})
    if targets:
        ax.axvline(min(targets.values()), color="#333333", linestyle="--", linewidth=1,
                   label=f"target {min(targets.values()):.0f}/s")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(xlim=(None, best.max() * 20), xlabel="samples per second (best of repeats, log scale)",
           title=f"synthesis throughput, {benchmark.get('data', '')}, one thread")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def plot_metrics_speed(benchmark: Mapping[str, Any]) -> Figure:
    """Seconds and peak memory of the binned metrics against the exact ones, from ``metrics_speed.json``.

    Binned metrics sort nothing: they count scores into a fixed number of bins, so memory stays
    bounded however many pixels there are. The right panel shows what that costs in accuracy.
    """
    exact = benchmark["exact_reference"]
    errors = benchmark["abs_error_vs_exact"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    names = ["binned\n(prn_core.metrics)", "exact\n(sklearn + sorting)"]
    seconds = [benchmark["seconds_all_metrics"]["best"], benchmark["exact_reference_seconds_sklearn_plus_sorted_au_pro"]]
    memory = [benchmark["peak_memory_mib_beyond_inputs"], benchmark["exact_reference_peak_memory_mib"]]
    for ax, values, title in ((axes[0], seconds, "seconds"), (axes[1], memory, "peak memory beyond inputs (MiB)")):
        ax.bar([0, 1], values, color=["C0", "C7"])
        for xi, v in enumerate(values):
            ax.text(xi, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks([0, 1], names, fontsize=8)
        ax.set_title(title, fontsize=9)
    keys = list(errors)
    axes[2].barh(range(len(keys)), [max(errors[k], 1e-16) for k in keys], color="C0")
    axes[2].set_xscale("log")
    axes[2].set_yticks(range(len(keys)), [f"{_label(k)}\n(exact {exact[k]:.4f})" for k in keys], fontsize=7)
    axes[2].set_title("|binned - exact|", fontsize=9)
    size = benchmark.get("image_size", ["?", "?"])
    fig.suptitle(f"all metrics on {benchmark.get('maps', '?')} maps of {size[0]}x{size[1]} "
                 f"({benchmark.get('pixels', 0) / 1e6:.1f} M pixels), one CPU thread", fontsize=9)
    fig.tight_layout()
    return fig


# --- chapter 9: your own data, non-square inputs, deployment ----------------------------------


def show_resizing(path: Any, image_size: tuple[int, int], mask_path: Any | None = None) -> Figure:
    """One image file as stored, squashed to ``image_size``, padded to it, and the valid region.

    Squashing (the MVTec convention) stretches a long part and its defects into the model's
    shape; ``keep_aspect`` scales it to fit and replicates the border into the rest. The last
    panel is the valid region the metrics score (white): padding never counts as a false alarm
    or a miss. With ``mask_path`` the defect is tinted red in every panel. Panels keep their
    true proportions.
    """
    from pathlib import Path

    from prn_core.data.images import (
        read_image,
        read_mask,
        resize_image,
        resize_mask,
        valid_region,
    )

    raw = read_image(Path(path))
    raw_mask = read_mask(Path(mask_path)) if mask_path is not None else np.zeros(raw.shape[:2], np.uint8)
    size = tuple(image_size)
    panels = [(overlay_mask(raw, raw_mask), f"as stored {raw.shape[0]}x{raw.shape[1]}")]
    for keep, name in ((False, "squashed"), (True, "padded (keep_aspect)")):
        image = resize_image(raw, size, keep_aspect=keep)
        panels.append((overlay_mask(image, resize_mask(raw_mask, size, keep_aspect=keep)), f"{name} {size[0]}x{size[1]}"))
    valid = valid_region(raw.shape[:2], size, keep_aspect=True)
    panels.append((valid.astype(np.float32), f"valid region ({valid.mean():.0%} of pixels)"))
    ratios = [p.shape[1] / p.shape[0] for p, _ in panels]
    fig, axes = plt.subplots(1, len(panels), figsize=(1.9 * sum(ratios) + 0.6, 2.4), squeeze=False,
                             gridspec_kw={"width_ratios": ratios})
    for ax, (image, title) in zip(axes[0], panels):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def show_heatmap_files(predictions: Sequence[Mapping[str, Any]], count: int = 6, columns: int = 3) -> Figure:
    """The heatmap PNGs ``prn predict`` wrote, titled with file name and score.

    ``predictions`` is the ``"predictions"`` list of its ``scores.json`` (keys ``image``,
    ``score``, ``heatmap``), so the figure shows exactly what a deployment hands over.
    """
    from pathlib import Path

    from prn_core.data.images import read_image

    rows = list(predictions)[:count]
    if not rows:
        raise ValueError("show_heatmap_files got no predictions; pass scores.json's 'predictions' list")
    n_rows = math.ceil(len(rows) / columns)
    fig, axes = plt.subplots(n_rows, columns, figsize=(2.3 * columns, 2.4 * n_rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, row in zip(axes.ravel(), rows):
        ax.imshow(read_image(Path(row["heatmap"])))
        ax.set_title(f"{Path(row['image']).name}\nscore {row['score']:.3f}", fontsize=8)
    fig.tight_layout()
    return fig
