"""Multi-scale Fusion (MSF), the HRNet-style exchange of PRN (DESIGN sections 2.4 and 2.7).

Every output scale j receives every input scale i, brought to j's resolution and width:

* i == j: identity, or a 1x1 conv when the widths differ;
* i coarser than j: 1x1 conv at i's resolution (cheaper there), then bilinear upsampling;
* i finer than j: one strided 3x3 conv (stride 2, BN, ReLU) per halving.

The sum is then normalised (BN) and passed through ReLU. PRN uses separate MSF instances for the
encoder features and the prototypical residuals ("separately fused"), and a third one after the
attention.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MultiScaleFusion", "PerScaleProjection", "conv_bn_relu"]


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, relu: bool = True) -> nn.Sequential:
    """Conv (no bias, 'same' padding for odd kernels) + BatchNorm (+ ReLU)."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _exchange(in_channels: int, out_channels: int, steps: int) -> nn.Module:
    """Path from an input scale to an output scale ``steps`` halvings finer (<0) or coarser (>0)."""
    if steps == 0:
        return nn.Identity() if in_channels == out_channels else conv_bn_relu(in_channels, out_channels, 1, relu=False)
    if steps < 0:  # input is coarser: 1x1 at low resolution, upsampled in forward
        return conv_bn_relu(in_channels, out_channels, 1, relu=False)
    layers = [conv_bn_relu(in_channels, out_channels, 3, stride=2, relu=steps > 1)]
    layers += [conv_bn_relu(out_channels, out_channels, 3, stride=2, relu=step < steps - 1) for step in range(1, steps)]
    return nn.Sequential(*layers)


class MultiScaleFusion(nn.Module):
    """Exchange information between scales whose resolutions halve from one to the next.

    Args:
        in_channels: widths of the inputs, finest first, e.g. (64, 128, 256).
        out_channels: widths of the outputs, finest first.

    Forward: [(B, in_i, h/2^i, w/2^i)] -> [(B, out_j, h/2^j, w/2^j)].
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int]) -> None:
        super().__init__()
        if len(in_channels) != len(out_channels):
            raise ValueError(f"MSF needs as many input as output scales, got {len(in_channels)} and {len(out_channels)}")
        self.in_channels = tuple(in_channels)
        self.out_channels = tuple(out_channels)
        n = len(in_channels)
        self.paths = nn.ModuleList(
            nn.ModuleList(_exchange(in_channels[i], out_channels[j], j - i) for i in range(n)) for j in range(n)
        )
        self.post = nn.ModuleList(nn.Sequential(nn.BatchNorm2d(c), nn.ReLU()) for c in out_channels)

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"MSF expects {len(self.in_channels)} maps, got {len(inputs)}")
        outputs = []
        for j, (paths, post) in enumerate(zip(self.paths, self.post)):
            size = inputs[j].shape[-2:]
            total = None
            for i, (path, x) in enumerate(zip(paths, inputs)):
                y = path(x)
                if i > j:
                    y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
                total = y if total is None else total + y
            outputs.append(post(total))
        return outputs


class PerScaleProjection(nn.Module):
    """MSF with the exchange taken out: each scale only changes width (1x1 conv, BN, ReLU).

    The "no MSF" ablation: the same inputs and outputs as :class:`MultiScaleFusion`, so the rest
    of the network is untouched, but no scale ever sees another.
    """

    def __init__(self, in_channels: Sequence[int], out_channels: Sequence[int]) -> None:
        super().__init__()
        if len(in_channels) != len(out_channels):
            raise ValueError(f"needs as many input as output scales, got {len(in_channels)} and {len(out_channels)}")
        self.in_channels = tuple(in_channels)
        self.out_channels = tuple(out_channels)
        self.paths = nn.ModuleList(conv_bn_relu(i, o, 1) for i, o in zip(in_channels, out_channels))

    def forward(self, inputs: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        if len(inputs) != len(self.paths):
            raise ValueError(f"expects {len(self.paths)} maps, got {len(inputs)}")
        return [path(x) for path, x in zip(self.paths, inputs)]
