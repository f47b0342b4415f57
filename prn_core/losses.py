"""The PRN training loss: SmoothL1 on probabilities + lambda x focal loss (DESIGN section 2.9).

``total = SmoothL1(sigmoid(logits), mask) + focal_weight * Focal(gamma=4, alpha=0.5)``, where the
focal loss sees the two-class probabilities [1 - p, p] as in DRAEM and the unofficial PRNet.

Design choices: both terms are computed in float32 even under autocast (small probabilities and
``(1 - p_t)^4`` underflow in half precision); ``log p_t`` comes from ``logsigmoid`` of the logits
instead of ``log(p + eps)``, so no smoothing constant is needed; alpha weights the anomalous class
(RetinaNet convention; with alpha = 0.5 both classes weigh the same).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["FOCAL_ALPHA", "FOCAL_GAMMA", "focal_loss", "prn_loss"]

FOCAL_GAMMA = 4.0
FOCAL_ALPHA = 0.5


def focal_loss(logits: torch.Tensor, mask: torch.Tensor, gamma: float = FOCAL_GAMMA, alpha: float = FOCAL_ALPHA) -> torch.Tensor:
    """Mean over pixels of ``-alpha_t (1 - p_t)^gamma log p_t`` on the classes [1 - p, p].

    ``logits`` and ``mask`` are (B, 1, H, W); ``mask`` is 1 on anomalous pixels.

    >>> round(float(focal_loss(torch.zeros(1, 1, 1, 1), torch.ones(1, 1, 1, 1))), 6)  # p = 0.5
    0.021661
    """
    logits, mask = logits.float(), mask.float()
    log_p, log_not_p = F.logsigmoid(logits), F.logsigmoid(-logits)  # log p, log (1 - p)
    log_pt = mask * log_p + (1 - mask) * log_not_p
    alpha_t = mask * alpha + (1 - mask) * (1 - alpha)
    return (-alpha_t * (1 - log_pt.exp()).pow(gamma) * log_pt).mean()


def prn_loss(logits: torch.Tensor, mask: torch.Tensor, focal_weight: float = 5.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """PRN's loss on logits (B, 1, H, W) and a {0, 1} mask (B, 1, H, W), always in float32.

    Returns the total (with gradient) and the detached parts ``{"smooth_l1", "focal"}``.
    """
    if logits.shape != mask.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and mask {tuple(mask.shape)} must have the same shape")
    with torch.autocast(device_type=logits.device.type, enabled=False):
        logits, mask = logits.float(), mask.float()
        smooth_l1 = F.smooth_l1_loss(torch.sigmoid(logits), mask)
        focal = focal_loss(logits, mask)
        total = smooth_l1 + focal_weight * focal
    return total, {"smooth_l1": smooth_l1.detach(), "focal": focal.detach()}
