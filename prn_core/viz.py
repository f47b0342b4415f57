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
from matplotlib.figure import Figure

from prn_core.synthesis.mix import KINDS

__all__ = ["show_anomalies", "anomaly_gallery", "overlay_mask", "plot_history", "show_predictions", "plot_curves"]

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
