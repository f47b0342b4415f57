"""PRN assembly: shapes for every backbone, frozen encoder, gradients, prototypes, scores, size."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from prn_core.config import ModelConfig
from prn_core.losses import prn_loss
from prn_core.models import PRN, PRNOutput, PrototypeBank, PrototypeMismatchError, build_backbone, build_prn, list_backbones

TINY = ModelConfig(
    weights="random",
    fusion_channels=(8, 16, 16),
    attention_patch_sizes=(2, 4),
    attention_dim=8,
    attention_heads=2,
    decoder_channels=(16, 16, 8, 8),
    head_channels=4,
    score_topk=10,
)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _bank(model: PRN, k: int = 2, seed: int = 0, **meta) -> PrototypeBank:
    gen = torch.Generator().manual_seed(seed)
    h, w = model.image_size
    protos = [torch.randn(k, c, h // s, w // s, generator=gen) for c, s in zip(model.backbone.channels[:3], (4, 8, 16))]
    return PrototypeBank(protos, {"backbone": model.backbone.name, "image_size": [h, w], **meta})


def _model(backbone: str = "resnet18", size=(128, 128), **changes) -> PRN:
    model = build_prn(dataclasses.replace(TINY, backbone=backbone, **changes), size)
    model.set_prototypes(_bank(model))
    return model


def _images(size, batch=2, seed=0):
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(
    ("backbone", "size"),
    [(name, size) for name in list_backbones() for size in ((128, 128), (256, 256)) if name != "wide_resnet50_2" or size[0] == 128]
    + [("resnet18", (128, 192)), ("tf_efficientnet_lite0", (192, 128))],
)
def test_output_size_equals_input_size(backbone, size):
    model = _model(backbone, size)
    x = _images(size, batch=1)
    model.train()
    assert model(x).shape == (1, 1, *size)
    model.eval()
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, PRNOutput)
    assert out.anomaly_map.shape == (1, 1, *size) and out.score.shape == (1,)
    assert 0 <= out.anomaly_map.min() and out.anomaly_map.max() <= 1


def test_encoder_stays_frozen_through_train_and_an_optimiser_step():
    model = _model("resnet18")
    x = _images((128, 128), batch=4)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    with torch.no_grad():
        features_before = model.backbone(x)
    model.train()
    assert not model.backbone.training and not any(m.training for m in model.backbone.modules())
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    loss, _ = prn_loss(model(x), (x[:, :1] > 0.5).float())
    loss.backward()
    optimiser.step()
    after = model.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before), "BatchNorm statistics or weights moved"
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(features_before, model.backbone(x)))


def test_gradients_reach_every_trainable_module_and_never_the_encoder():
    model = _model("tf_efficientnet_lite0")
    model.train()
    x = _images((128, 128))
    mask = torch.zeros(2, 1, 128, 128)
    mask[0, :, 32:64, 32:64] = 1
    loss, _ = prn_loss(model(x), mask)
    loss.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    for name, param in model.named_parameters():
        if param.requires_grad:
            assert param.grad is not None and torch.isfinite(param.grad).all(), name
    for name, module in model.named_children():
        params = [p for p in module.parameters() if p.requires_grad]
        if params:
            assert sum(p.grad.abs().sum() for p in params) > 0, name


def test_prototypes_must_match_the_model():
    model = build_prn(TINY, (128, 128))
    with pytest.raises(RuntimeError, match="no prototypes"):
        model.train()(_images((128, 128)))
    other_size = build_prn(TINY, (256, 256))
    with pytest.raises(PrototypeMismatchError, match="image_size"):
        model.set_prototypes(_bank(other_size))
    wrong_name = _bank(model)
    wrong_name.meta["backbone"] = "resnet34"
    with pytest.raises(PrototypeMismatchError, match="backbone"):
        model.set_prototypes(wrong_name)
    resnet_bank = _bank(build_prn(dataclasses.replace(TINY, backbone="resnet18"), (128, 128)))
    resnet_bank.meta["backbone"] = model.backbone.name
    with pytest.raises(PrototypeMismatchError, match="channels"):
        model.set_prototypes(resnet_bank)
    model.set_prototypes(_bank(model))
    assert model.prototypes is not None


def test_scores_top_k_mean_and_smoothed_max():
    model = _model("resnet18").eval()
    with torch.no_grad():
        out = model(_images((128, 128)))
    expected = out.anomaly_map.flatten(1).topk(10, dim=1).values.mean(1)
    assert torch.allclose(out.score, expected)
    smooth = _model("resnet18", score="max_smoothed").eval()
    with torch.no_grad():
        out = smooth(_images((128, 128)))
    assert out.score.shape == (2,)
    assert (out.score <= out.anomaly_map.flatten(1).amax(1) + 1e-6).all()


def test_size_does_not_depend_on_image_size_and_summary_adds_up():
    small, large = build_prn(TINY, 128), build_prn(TINY, (256, 192))
    assert small.trainable_parameters() == large.trainable_parameters() > 0
    rows = small.summary()
    assert {r["module"] for r in rows} >= {"backbone", "fuse_features", "fuse_residuals", "attention", "decoder"}
    assert sum(r["trainable"] for r in rows) == small.trainable_parameters()
    assert next(r for r in rows if r["module"] == "backbone")["trainable"] == 0


def test_shared_fusion_and_patch_residuals_are_options():
    shared = _model("resnet18", share_fusion=True)
    assert shared.fuse_residuals is shared.fuse_features
    assert shared.trainable_parameters() < _model("resnet18").trainable_parameters()
    patch = _model("resnet18", residual="patch").train()
    assert patch(_images((128, 128))).shape == (2, 1, 128, 128)


def test_paper_backbone_at_default_widths_meets_the_size_target():
    backbone = build_backbone("resnet18", weights="random")
    model = build_prn(ModelConfig(backbone="resnet18", weights="random"), 256, backbone=backbone)
    assert model.trainable_parameters() <= 15_000_000
    with pytest.raises(ValueError, match="config names 'tf_efficientnet_lite0'"):
        build_prn(ModelConfig(weights="random"), 256, backbone=backbone)


def test_state_dict_round_trip_restores_the_same_predictions():
    model = _model("resnet18").eval()
    clone = build_prn(dataclasses.replace(TINY, backbone="resnet18"), (128, 128))
    clone.set_prototypes(PrototypeBank.from_state(model.prototypes.to_state()))
    clone.load_state_dict(model.state_dict())
    x = _images((128, 128))
    with torch.no_grad():
        assert torch.equal(model(x).anomaly_map, clone.eval()(x).anomaly_map)


@pytest.mark.parametrize(
    ("changes", "absent"),
    [
        ({"use_residuals": False}, "fuse_residuals"),
        ({"use_msf": False}, "MultiScaleFusion"),
        ({"attention_layers": 0}, "MultiSizeAttention"),
    ],
)
def test_ablation_switches_remove_their_part_and_keep_the_output(changes, absent):
    """Each ablation takes out exactly one part: fewer parameters, same output shapes."""
    def parts(model: PRN) -> set[str]:
        return {type(m).__name__ for m in model.modules()} | dict(model.named_children()).keys()

    full, ablated = _model(), _model(**changes)
    assert absent in parts(full) and absent not in parts(ablated)
    assert ablated.trainable_parameters() < full.trainable_parameters()
    x = _images((128, 128))
    ablated.train()
    logits = ablated(x)
    assert logits.shape == (2, 1, 128, 128)
    prn_loss(logits, torch.zeros_like(logits))[0].backward()
    assert all(p.grad is not None for p in ablated.parameters() if p.requires_grad)
    ablated.eval()
    with torch.no_grad():
        out = ablated(x)
    assert out.anomaly_map.shape == (2, 1, 128, 128) and out.score.shape == (2,)


def test_features_only_ignores_the_prototypes():
    """Without the residual stream, the prototypes cannot change the map (no residual prior)."""
    model = _model(use_residuals=False).eval()
    x = _images((128, 128))
    with torch.no_grad():
        before = model(x).anomaly_map
        model.set_prototypes(_bank(model, k=3, seed=5))
        after = model(x).anomaly_map
    torch.testing.assert_close(before, after)
