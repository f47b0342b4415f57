"""Multi-size Self-Attention (MSA) of PRN (DESIGN section 2.6).

At one scale, self-attention runs over non-overlapping patches of several sizes, one branch per
size: patch embedding (kernel = stride = p) to width d, a depthwise 3x3 positional encoding on
the token grid (size-agnostic, unlike a learned table), multi-head attention with
``F.scaled_dot_product_attention`` (scale 1/sqrt(head width)), then a transposed conv back to
C x H x W. Branch outputs are concatenated, merged by a 1x1 conv, added to the input, and refined
by a residual conv block. ``layers`` such layers are stacked.

Design choices (where the unofficial code is broken, DESIGN 2.6):

* Every branch must see at least 2 tokens; one token makes attention the identity. A branch
  that would get fewer raises ValueError naming the scale and the patch size.
  :func:`fit_patch_sizes` clips configured sizes per scale so the rule holds for every image of
  at least :data:`MIN_IMAGE_SIDE` pixels a side.
* No parameter depends on the image size, so a model works at any multiple of 32.
* Maps that a patch size does not divide are padded by edge replication and cropped back.

:func:`attention_weights` reads the weights back out of a whole PRN (SDPA never materialises
them), for figures and inspection.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from prn_core.models.backbone import image_batch
from prn_core.models.fusion import conv_bn_relu
from prn_core.models.prototypes import PROTOTYPE_STRIDES

if TYPE_CHECKING:  # prn imports this module
    from prn_core.models.prn import PRN

__all__ = [
    "MIN_IMAGE_SIDE",
    "MultiSizeAttention",
    "PatchAttention",
    "attention_weights",
    "fit_patch_sizes",
]

MIN_IMAGE_SIDE = 128  # smallest image side the per-scale patch sizes are chosen for


def fit_patch_sizes(patch_sizes: Sequence[int], stride: int, image_size: tuple[int, int] | None = None) -> tuple[int, ...]:
    """Clip ``patch_sizes`` so each branch gets >= 2 tokens per side at this ``stride``.

    The reference map side is ``min(MIN_IMAGE_SIDE, H, W) // stride``; each size becomes at most
    half of it, and duplicates after clipping are dropped (order kept). The result depends on the
    image size only below :data:`MIN_IMAGE_SIDE`, so models for 128..512 px share one layout.

    >>> fit_patch_sizes((2, 4, 8), stride=16), fit_patch_sizes((2, 4, 8), stride=4)
    ((2, 4), (2, 4, 8))
    """
    side = MIN_IMAGE_SIDE if image_size is None else min(MIN_IMAGE_SIDE, *image_size)
    limit = max(1, side // stride // 2)
    if any(p < 1 for p in patch_sizes):
        raise ValueError(f"patch sizes must be >= 1, got {tuple(patch_sizes)}")
    return tuple(dict.fromkeys(min(p, limit) for p in patch_sizes))


class PatchAttention(nn.Module):
    """One MSA branch: attention among the (H/p) x (W/p) patches of size ``patch_size``.

    Forward: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, patch_size: int, dim: int, heads: int, stride: int | None = None) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"attention dim {dim} must be divisible by heads {heads}")
        self.patch_size = patch_size
        self.heads = heads
        self.stride = stride
        self.embed = nn.Conv2d(channels, dim, patch_size, stride=patch_size)
        self.position = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)  # conditional positional encoding
        self.norm = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.unembed = nn.ConvTranspose2d(dim, channels, patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        p = self.patch_size
        pad_h, pad_w = -height % p, -width % p
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        grid = self.embed(x)  # (B, d, h, w)
        b, d, h, w = grid.shape
        if h * w < 2:
            where = f"stride {self.stride}" if self.stride else "this scale"
            raise ValueError(
                f"MSA at {where}: a {height}x{width} map with patch size {p} gives {h * w} token; "
                "attention needs >= 2. Use a larger image or smaller attention_patch_sizes."
            )
        grid = grid + self.position(grid)
        tokens = grid.flatten(2).transpose(1, 2)  # (B, N, d)
        qkv = self.qkv(self.norm(tokens)).reshape(b, h * w, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, heads, N, d/heads)
        attended = F.scaled_dot_product_attention(q, k, v)  # scale 1/sqrt(d/heads)
        tokens = tokens + self.proj(attended.transpose(1, 2).reshape(b, h * w, d))
        grid = tokens.transpose(1, 2).reshape(b, d, h, w)
        return self.unembed(grid)[..., :height, :width]  # (B, C, H, W)


class _MSALayer(nn.Module):
    """Branches -> concat -> 1x1 merge (+ input) -> residual conv block."""

    def __init__(self, channels: int, patch_sizes: Sequence[int], dim: int, heads: int, stride: int | None) -> None:
        super().__init__()
        self.branches = nn.ModuleList(PatchAttention(channels, p, dim, heads, stride) for p in patch_sizes)
        self.merge = conv_bn_relu(channels * len(patch_sizes), channels, 1, relu=False)
        self.block = nn.Sequential(  # depthwise-separable: spatial mixing at the cost of a 1x1 conv
            nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            conv_bn_relu(channels, channels, 1, relu=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.merge(torch.cat([branch(x) for branch in self.branches], dim=1))
        return x + self.block(x)


class MultiSizeAttention(nn.Module):
    """``layers`` stacked multi-size attention layers at one scale.

    Args:
        channels: width C of the map.
        patch_sizes: one branch per size (already fitted to the scale, see :func:`fit_patch_sizes`).
        dim: token width d.
        heads: attention heads (d must be divisible by it).
        layers: number of stacked layers.
        stride: the scale's stride, used in error messages.
        image_size: when given, check at construction that every branch gets >= 2 tokens.

    Forward: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        patch_sizes: Sequence[int],
        dim: int = 64,
        heads: int = 4,
        layers: int = 1,
        stride: int | None = None,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        if not patch_sizes:
            raise ValueError("MultiSizeAttention needs at least one patch size")
        if layers < 1:
            raise ValueError(f"MultiSizeAttention needs layers >= 1, got {layers}")
        if image_size is not None and stride is not None:
            h, w = image_size[0] // stride, image_size[1] // stride
            for p in patch_sizes:
                tokens = math.ceil(h / p) * math.ceil(w / p)
                if tokens < 2:
                    raise ValueError(
                        f"MSA at stride {stride}: images of {image_size[0]}x{image_size[1]} give a "
                        f"{h}x{w} map and patch size {p} gives {tokens} token; attention needs >= 2. "
                        f"Use fit_patch_sizes or smaller attention_patch_sizes."
                    )
        self.patch_sizes = tuple(patch_sizes)
        self.layers = nn.Sequential(*(_MSALayer(channels, patch_sizes, dim, heads, stride) for _ in range(layers)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# --- inspection ----------------------------------------------------------------------------


def _keep_output(record: dict[str, Any], key: str) -> Callable[..., None]:
    """A forward hook that stores a module's output in ``record[key]``."""

    def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
        record[key] = output.detach().float().cpu()

    return hook


@torch.no_grad()
def attention_weights(model: PRN, images: Sequence[Any]) -> list[dict[str, Any]]:
    """The attention weights of every MSA branch of ``model`` for ``images``.

    ``F.scaled_dot_product_attention`` never materialises its weights, so they are recomputed,
    without touching the model, from what each branch really computed: forward hooks capture the
    token grid (output of ``embed``) and the queries and keys (output of ``qkv``), and the weights
    are ``softmax(q k^T / sqrt(d_head))``, the scale SDPA uses. The model runs once in eval mode.
    ``images`` are [0, 1] images of the model's size in any form
    :func:`~prn_core.models.backbone.image_array` accepts.

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
    pictures = image_batch(images)
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
