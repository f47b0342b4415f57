"""Figures of the data and of anomaly synthesis: samples, the few-shot split, foregrounds,
resizing to the model's size, Perlin masks, textures, extended anomalies, the epoch mix and
galleries of generated anomalies.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from prn_core.data import FewShotSplit, ImageCache, ProceduralTextures, Sample, estimate_foreground
from prn_core.data.images import read_image, read_mask, resize_image, resize_mask, valid_region
from prn_core.data.textures import PROCEDURAL_KINDS
from prn_core.synthesis import ExtendedAnomaly, augment_texture, perlin_mask, perlin_noise
from prn_core.synthesis.mix import KINDS
from prn_core.viz.common import BINARY_SCALE, _draw_column, _ROWS, _to_image, _to_mask, overlay_mask

__all__ = ["anomaly_gallery", "plot_epoch_mix", "plot_split", "show_anomalies", "show_extended",
           "show_foregrounds", "show_perlin_masks", "show_resizing", "show_samples", "show_textures"]


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


def show_resizing(path: Any, image_size: tuple[int, int], mask_path: Any | None = None) -> Figure:
    """One image file as stored, squashed to ``image_size``, padded to it, and the valid region.

    Squashing (the MVTec convention) stretches a long part and its defects into the model's
    shape; ``keep_aspect`` scales it to fit and replicates the border into the rest. The last
    panel is the valid region the metrics score (white): padding never counts as a false alarm
    or a miss. With ``mask_path`` the defect is tinted red in every panel. Panels keep their
    true proportions.
    """
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
        ax.imshow(image, **BINARY_SCALE)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
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
            axes[row, i + 1].imshow(mask, **BINARY_SCALE)
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
