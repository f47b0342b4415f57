"""PRN loss: hand-computed values, float32 under autocast, stability at extreme logits."""
from __future__ import annotations

import math

import pytest
import torch

from prn_core.losses import focal_loss, prn_loss

# Two pixels: p = 0.5 on an anomalous pixel, p = 0.75 on a normal one.
LOGITS = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
MASK = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
SMOOTH_L1 = (0.5 * 0.5**2 + 0.5 * 0.75**2) / 2  # |p - m| < 1, so 0.5 (p - m)^2
FOCAL = (0.5 * 0.5**4 * math.log(2.0) + 0.5 * 0.75**4 * math.log(4.0)) / 2  # alpha_t (1 - p_t)^4 (-log p_t)


def test_parts_match_hand_computed_values():
    total, parts = prn_loss(LOGITS, MASK)
    assert parts["smooth_l1"].item() == pytest.approx(SMOOTH_L1, rel=1e-6)
    assert parts["focal"].item() == pytest.approx(FOCAL, rel=1e-6)
    assert total.item() == pytest.approx(SMOOTH_L1 + 5.0 * FOCAL, rel=1e-6)
    total_2, _ = prn_loss(LOGITS, MASK, focal_weight=2.0)
    assert total_2.item() == pytest.approx(SMOOTH_L1 + 2.0 * FOCAL, rel=1e-6)


def test_focal_alpha_and_gamma():
    assert focal_loss(LOGITS, MASK, gamma=0.0, alpha=0.5).item() == pytest.approx(
        (0.5 * math.log(2.0) + 0.5 * math.log(4.0)) / 2, rel=1e-6
    )
    weighted = focal_loss(LOGITS, MASK, gamma=4.0, alpha=0.75).item()  # 0.75 on anomalous, 0.25 on normal
    assert weighted == pytest.approx((0.75 * 0.5**4 * math.log(2.0) + 0.25 * 0.75**4 * math.log(4.0)) / 2, rel=1e-6)


def test_float32_under_autocast():
    logits = LOGITS.repeat(2, 1, 4, 4).to(torch.bfloat16).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        total, parts = prn_loss(logits, MASK.repeat(2, 1, 4, 4))
    assert total.dtype == torch.float32 and parts["focal"].dtype == torch.float32
    reference, _ = prn_loss(logits.detach().float(), MASK.repeat(2, 1, 4, 4))  # same inputs, no autocast
    assert total.item() == pytest.approx(reference.item(), rel=1e-6)
    total.backward()
    assert logits.grad is not None


def test_extreme_logits_stay_finite():
    logits = torch.tensor([-100.0, 100.0, 100.0, -100.0]).view(1, 1, 2, 2).requires_grad_()
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0]).view(1, 1, 2, 2)
    total, parts = prn_loss(logits, mask)
    total.backward()
    assert torch.isfinite(total) and torch.isfinite(logits.grad).all()
    assert parts["focal"].item() == pytest.approx(0.5 * 100.0 / 2, rel=1e-4)  # two confidently wrong pixels


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="same shape"):
        prn_loss(torch.zeros(1, 1, 4, 4), torch.zeros(1, 4, 4))
