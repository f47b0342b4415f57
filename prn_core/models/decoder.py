"""The PRN decoder: U-Net-like from stride 32 up to a 1-channel logit map (DESIGN section 2.8).

The bottom is the encoder's stride-32 map. Each stage upsamples by 2 (bilinear), concatenates the
fused map of that stride (16, 8, 4) when there is one, and applies a 3x3 conv block. After the
last skip (stride 4), ``len(channels) - 3`` further stages upsample without skips (the default 4
channels give one stage at stride 2); a light full-resolution head then maps to one logit.

Design choice: the head is a ``head_channels``-wide 3x3 conv (16 by default) at the input
resolution, then a 1x1 conv to the logit. The unofficial code uses 64 channels there, its most
expensive op at 256x256 on a CPU.

The logit's bias starts at log(p / (1 - p)) with p = ``ANOMALY_PRIOR`` (RetinaNet's prior
initialisation): anomalous pixels are rare, so a map that starts near 0 instead of 0.5 spends
the first epochs learning defects rather than unlearning a uniform grey.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from prn_core.models.fusion import conv_bn_relu

__all__ = ["Decoder", "ANOMALY_PRIOR"]

ANOMALY_PRIOR = 0.01  # initial anomaly probability of every pixel


class Decoder(nn.Module):
    """Upsample from stride 32, fusing skips at strides 16, 8, 4, to a (B, 1, H, W) logit map.

    Args:
        bottom_channels: width of the stride-32 encoder map.
        skip_channels: widths of the skips at strides 4, 8, 16 (finest first).
        channels: output widths of the stages, coarsest first; the first ``len(skip_channels)``
            stages take the skips (16, 8, 4), the rest upsample without a skip.
        head_channels: width of the full-resolution 3x3 conv before the logit.
    """

    def __init__(
        self,
        bottom_channels: int,
        skip_channels: Sequence[int],
        channels: Sequence[int] = (256, 128, 64, 32),
        head_channels: int = 16,
    ) -> None:
        super().__init__()
        if len(channels) < len(skip_channels):
            raise ValueError(f"decoder needs >= {len(skip_channels)} stages (one per skip), got {len(channels)}")
        skips = list(reversed(skip_channels)) + [0] * (len(channels) - len(skip_channels))  # coarsest first
        widths = [bottom_channels, *channels]
        self.num_skips = len(skip_channels)
        self.stages = nn.ModuleList(
            conv_bn_relu(widths[i] + skips[i], widths[i + 1], 3) for i in range(len(channels))
        )
        self.head = nn.Sequential(conv_bn_relu(channels[-1], head_channels, 3), nn.Conv2d(head_channels, 1, 1))
        nn.init.constant_(self.head[-1].bias, math.log(ANOMALY_PRIOR / (1 - ANOMALY_PRIOR)))

    def forward(self, bottom: torch.Tensor, skips: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
        """bottom (B, C32, H/32, W/32), skips [(B, c_s, H/s, W/s) for s in 4, 8, 16] -> (B, 1, H, W)."""
        x = bottom
        coarse_first = list(reversed(skips))
        for index, stage in enumerate(self.stages):
            x = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
            if index < self.num_skips:
                x = torch.cat([x, coarse_first[index]], dim=1)
            x = stage(x)
        x = F.interpolate(x, size=tuple(image_size), mode="bilinear", align_corners=False)
        return self.head(x)
