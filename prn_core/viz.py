"""One-line figure helpers for the book's chapters.

Every function returns a :class:`matplotlib.figure.Figure` and accepts numpy arrays or torch
tensors in the package's conventions: images ``(H, W, 3)`` or ``(3, H, W)`` in [0, 1], masks
``(H, W)`` or ``(1, H, W)`` in {0, 1}.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from prn_core.data import FewShotSplit, ImageCache, ProceduralTextures, Sample, estimate_foreground
from prn_core.data.textures import PROCEDURAL_KINDS
from prn_core.reference import MEANS
from prn_core.synthesis import ExtendedAnomaly, augment_texture, perlin_mask, perlin_noise
from prn_core.synthesis.mix import KINDS

__all__ = ["show_anomalies", "anomaly_gallery", "overlay_mask", "plot_history", "show_predictions", "plot_curves",
           "plot_pipeline", "plot_reference_means", "show_samples", "plot_split", "show_foregrounds",
           "show_perlin_masks", "show_textures", "show_extended", "plot_epoch_mix"]

_ROWS = ("image", "mask", "overlay")
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
    for split, style in (("val", "-"), ("test", "--")):
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
        title = f"score {scores[i]:.2f}" + ("" if labels is None else f"\n{'defect' if labels[i] else 'good'}")
        axes[0, i].imshow(images[i])
        axes[0, i].set_title(title, fontsize=8)
        axes[1, i].imshow(masks[i], cmap="gray", vmin=0, vmax=1)
        axes[2, i].imshow(images[i])
        axes[2, i].imshow(maps[i], cmap="jet", alpha=0.5, vmin=0, vmax=1)
    for ax, name in zip(axes[:, 0], ("image", "ground truth", "anomaly map")):
        ax.set_ylabel(name)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def plot_curves(labels: np.ndarray, scores: np.ndarray, masks: np.ndarray, maps: np.ndarray,
                fpr_limit: float = 0.3) -> Figure:
    """Image ROC, pixel ROC and the PRO curve up to ``fpr_limit``."""
    from . import metrics

    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    fpr, tpr = metrics.roc_curve(labels, scores)[:2]
    axes[0].plot(fpr, tpr)
    axes[0].set(title=f"image ROC (AUROC {metrics.image_auroc(labels, scores):.3f})", xlabel="FPR", ylabel="TPR")
    fpr, tpr = metrics.roc_curve(masks.ravel(), maps.ravel())[:2]
    axes[1].plot(fpr, tpr)
    axes[1].set(title=f"pixel ROC (AUROC {metrics.pixel_auroc(masks, maps):.3f})", xlabel="FPR", ylabel="TPR")
    fpr, pro = metrics.pro_curve(masks, maps)[:2]
    keep = fpr <= fpr_limit
    axes[2].plot(fpr[keep], pro[keep])
    axes[2].set(title=f"PRO (AU-PRO {metrics.au_pro(masks, maps, fpr_limit):.3f})", xlabel="FPR", ylabel="PRO",
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
