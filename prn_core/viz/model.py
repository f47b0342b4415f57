"""Figures of the model's inside: the pipeline diagram, encoder maps, prototypes and residuals,
the classifier's top classes, MSF paths, MSA attention and parameter counts.

Every number drawn comes from the models layer (:mod:`prn_core.models`): the nearest prototypes
from :meth:`~prn_core.models.PrototypeBank.distances`, attention from
:func:`~prn_core.models.attention_weights`, classes from :func:`~prn_core.models.top_classes`.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch, Patch

from prn_core.models import PRN, Backbone, MultiScaleFusion, PrototypeBank, attention_weights, image_batch, top_classes
from prn_core.viz.common import _draw_column, _no_ticks, _to_image, _to_mask

__all__ = ["plot_fusion", "plot_parameters", "plot_pipeline", "show_attention", "show_feature_maps",
           "show_prototypes", "show_residuals", "show_top_classes"]

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


@torch.no_grad()
def _encode(backbone: Backbone, images: Sequence[Any], batch_size: int = 16) -> list[torch.Tensor]:
    """Encoder maps of ``images`` (arrays or tensors in [0, 1]), in batches: [(N, C_s, h_s, w_s)] on CPU."""
    if not len(images):
        raise ValueError("no images given; pass at least one (H, W, 3) image in [0, 1]")
    pictures = image_batch(images)
    device = next(iter(backbone.buffers())).device
    chunks = [backbone(pictures[i : i + batch_size].to(device)) for i in range(0, len(pictures), batch_size)]
    return [torch.cat([chunk[s] for chunk in chunks]).float().cpu().contiguous() for s in range(len(chunks[0]))]


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
    for feat, proto, stride in zip(feats, bank.prototypes, backbone.strides):
        if feat.shape[1:] != proto.shape[1:]:
            raise ValueError(
                f"images give maps {tuple(feat.shape[1:])} at stride {stride} but the prototypes are "
                f"{tuple(proto.shape[1:])}; pass images of the size and backbone the bank was fitted with"
            )
    k = min(bank.num_prototypes, max_prototypes)
    scales = len(bank.prototypes)
    fig, axes = plt.subplots(2 * scales, k, figsize=(cell_size * max(k, 2), cell_size * 2 * scales), squeeze=False)
    for s, (dist, proto, stride) in enumerate(zip(bank.distances(feats), bank.prototypes, backbone.strides)):
        members = torch.bincount(dist.argmin(dim=1), minlength=proto.shape[0])  # dist: (N, K)
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


def show_attention(model: PRN, image: Any, mask: Any | None = None, query: tuple[float, float] | None = None,
                   layer: int = 0, cell_size: float = 1.9) -> Figure:
    """Where one query patch looks, in every MSA branch: one row per scale, two panels per patch size.

    Left panel: the image with the branch's patch grid and the query patch outlined in cyan. Right
    panel: the query's attention weights over all patches (mean over heads), coloured from 0 to
    their maximum so that near-uniform attention looks uniform, with a colorbar marking 0, the
    uniform weight 1/N and the maximum. ``query`` is a position (y, x)
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
            shown = attention.imshow(weights, cmap="magma", alpha=0.85,
                                     extent=(-0.5, w * cell - 0.5, h * cell - 0.5, -0.5),
                                     interpolation="nearest", vmin=0, vmax=float(weights.max()))
            # from 0, so flat attention looks flat; the bar marks the uniform weight 1/N
            bar = fig.colorbar(shown, ax=attention, fraction=0.046, pad=0.02)
            bar.set_ticks([0.0, 1.0 / (h * w), float(weights.max())])
            bar.ax.tick_params(labelsize=5)
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
