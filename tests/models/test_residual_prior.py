"""The optional residual prior: training starts from the training-free detector, exactly."""
from __future__ import annotations

import dataclasses

import numpy as np
import torch

from prn_core.baseline import residual_baseline_maps
from prn_core.config import ModelConfig
from prn_core.models import build_prn, fit_prototypes

TINY = ModelConfig(weights="random", backbone="resnet18", fusion_channels=(8, 8, 8), attention_patch_sizes=(2,),
                   attention_dim=8, attention_heads=2, decoder_channels=(8, 8, 8, 8), head_channels=4)


def _images(n: int, seed: int) -> torch.Tensor:
    return torch.rand(n, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def _model(prior: bool):
    torch.manual_seed(0)
    model = build_prn(dataclasses.replace(TINY, residual_prior=prior), 64)
    model.set_prototypes(fit_prototypes(model.backbone, [_images(4, 0)], ratio=0.5, progress=False))
    return model


def test_calibration_standardises_the_log_residual_on_the_normals():
    model = _model(True)
    normals = _images(4, 0)
    mean, std = model.calibrate_residual_prior([normals[:2], normals[2:]])
    assert std > 0 and np.isfinite(mean)
    with torch.no_grad():
        z = model._prior(model.prototypes.residuals(model.backbone(normals)[:3]), (64, 64))
    assert abs(float(z.mean())) < 1e-4 and abs(float(z.std()) - 1) < 1e-3


def test_with_a_silent_decoder_the_map_ranks_pixels_like_the_baseline():
    model = _model(True).eval()
    model.calibrate_residual_prior([_images(4, 0)])
    torch.nn.init.zeros_(model.decoder.head[-1].weight)  # logits = bias + 1 * z
    test = _images(2, 1)
    with torch.no_grad():
        probs = model(test).anomaly_map[:, 0].numpy()
    baseline, _ = residual_baseline_maps(model.backbone, model.prototypes, test.permute(0, 2, 3, 1).numpy())
    for p, b in zip(probs, baseline):  # a strictly increasing function of the baseline map
        order = np.argsort(b.ravel(), kind="stable")
        assert (np.diff(p.ravel()[order]) >= -1e-7).all()


def test_parameters_exist_only_when_asked_for():
    assert "prior_weight" in dict(_model(True).named_parameters())
    plain = _model(False)
    assert not any(k.startswith("prior") for k in plain.state_dict())
    assert plain.calibrate_residual_prior([_images(2, 0)]) == (0.0, 1.0)


def test_the_prior_weight_learns():
    model = _model(True).train()
    model.calibrate_residual_prior([_images(4, 0)])
    logits = model(_images(2, 1))
    logits.mean().backward()
    assert model.prior_weight.grad is not None and float(model.prior_weight.grad) != 0.0
