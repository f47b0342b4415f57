"""PrototypeBank: K-means fitting, persistence with metadata, nearest prototypes and residuals."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from prn_core.models.backbone import build_backbone
from prn_core.models.prototypes import PrototypeBank, PrototypeMismatchError, fit_prototypes, num_prototypes


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("resnet18", weights="random")


def _images(n: int, seed: int = 0, size: int = 64) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _bank(k: int = 3, channels=(2, 3, 4), size=(32, 32), seed=0, **meta) -> PrototypeBank:
    gen = torch.Generator().manual_seed(seed)
    protos = [torch.randn(k, c, size[0] // s, size[1] // s, generator=gen) for c, s in zip(channels, (4, 8, 16))]
    return PrototypeBank(protos, {"backbone": "resnet18", "image_size": list(size), **meta})


def test_num_prototypes_rounds_and_keeps_at_least_one():
    assert [num_prototypes(n, 0.1) for n in (1, 4, 5, 209, 391)] == [1, 1, 1, 21, 39]
    with pytest.raises(ValueError, match="at least one"):
        num_prototypes(0, 0.1)


def test_fit_is_deterministic_by_seed_and_records_metadata(backbone):
    batches = list(_images(12).split(4))
    first = fit_prototypes(backbone, batches, ratio=0.25, seed=0, meta={"category": "bottle"}, progress=False)
    again = fit_prototypes(backbone, batches, ratio=0.25, seed=0, meta={"category": "bottle"}, progress=False)
    other = fit_prototypes(backbone, batches, ratio=0.25, seed=1, progress=False)
    assert first.num_prototypes == 3
    assert [tuple(p.shape) for p in first.prototypes] == [(3, 64, 16, 16), (3, 128, 8, 8), (3, 256, 4, 4)]
    assert all(torch.equal(a, b) for a, b in zip(first.prototypes, again.prototypes))
    assert not all(torch.equal(a, b) for a, b in zip(first.prototypes, other.prototypes))
    meta = first.meta
    assert meta["backbone"] == "resnet18" and meta["image_size"] == [64, 64] and meta["category"] == "bottle"
    assert meta["num_prototypes"] == 3 and meta["num_images"] == 12 and meta["seed"] == 0
    assert meta["fingerprint"] == again.meta["fingerprint"] != fit_prototypes(
        backbone, [_images(12, seed=5)], ratio=0.25, progress=False
    ).meta["fingerprint"]
    assert isinstance(meta["version"], str)


def test_fit_accepts_dataloader_dicts_and_one_image_gives_one_prototype(backbone):
    data = [{"image": img, "mask": torch.zeros(1, 64, 64)} for img in _images(3)]
    bank = fit_prototypes(backbone, DataLoader(data, batch_size=2), ratio=0.1, progress=False)
    assert bank.num_prototypes == 1
    # With K = 1 every centre is the mean feature map of the images.
    with torch.no_grad():
        mean = backbone(_images(3))[0].mean(0)
    assert torch.allclose(bank.prototypes[0][0], mean, atol=1e-5)


def test_fit_rejects_mixed_sizes_and_empty_input(backbone):
    with pytest.raises(ValueError, match="share one size"):
        fit_prototypes(backbone, [_images(2), _images(2, size=96)], progress=False)
    with pytest.raises(ValueError, match="no images"):
        fit_prototypes(backbone, [], progress=False)


def test_save_load_round_trip(tmp_path):
    bank = _bank(category="bottle", seed=3)
    path = bank.save(tmp_path / "sub" / "protos.pt")
    assert sorted(p.name for p in path.parent.iterdir()) == ["protos.pt"]  # no temporary file left
    loaded = PrototypeBank.load(path, expect={"backbone": "resnet18", "image_size": (32, 32), "channels": [2, 3, 4]})
    assert loaded.meta == bank.meta
    assert all(torch.equal(a, b) for a, b in zip(loaded.prototypes, bank.prototypes))
    restored = PrototypeBank.from_state(bank.to_state(), expect={"category": "bottle"})
    assert all(torch.equal(a, b) for a, b in zip(restored.prototypes, bank.prototypes))
    torch.save({"something": "else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a prototype state"):
        PrototypeBank.load(tmp_path / "other.pt")


@pytest.mark.parametrize(
    ("expect", "field"),
    [
        ({"backbone": "tf_efficientnet_lite0"}, "backbone"),
        ({"image_size": [64, 64]}, "image_size"),
        ({"channels": [24, 40, 112]}, "channels"),
    ],
)
def test_load_mismatch_raises_and_names_the_field(tmp_path, expect, field):
    path = _bank().save(tmp_path / "p.pt")
    with pytest.raises(PrototypeMismatchError, match=field) as err:
        PrototypeBank.load(path, expect=expect)
    assert isinstance(err.value, ValueError)


def test_state_dict_carries_prototypes_and_metadata():
    bank = _bank(category="screw")
    clone = _bank(seed=9)
    clone.load_state_dict(bank.state_dict())
    assert clone.meta["category"] == "screw"
    assert torch.equal(clone.prototypes[2], bank.prototypes[2])


def test_image_level_nearest_picks_the_closest_whole_map():
    bank = _bank(k=4)
    picks = torch.tensor([2, 0])
    features = [p[picks] + 0.01 for p in bank.prototypes]  # (2, C, h, w), near prototypes 2 and 0
    nearest = bank.nearest(features, mode="image")
    assert all(torch.equal(n, p[picks]) for n, p in zip(nearest, bank.prototypes))
    residuals = bank.residuals(features, mode="image")
    assert all(torch.allclose(r, torch.full_like(r, 1e-4)) for r in residuals)


def test_patch_level_nearest_picks_per_location():
    bank = _bank(k=2)
    features = []
    for proto in bank.prototypes:  # left half from prototype 0, right half from prototype 1
        width = proto.shape[-1]
        features.append(torch.cat([proto[0:1, ..., : width // 2], proto[1:2, ..., width // 2 :]], dim=-1))
    residuals = bank.residuals(features, mode="patch")
    assert all(torch.allclose(r, torch.zeros_like(r), atol=1e-5) for r in residuals)
    image_level = bank.residuals(features, mode="image")
    assert all(r.sum() > 0 for r in image_level)  # one whole map cannot match both halves


def test_nearest_rejects_unknown_mode_and_wrong_shapes():
    bank = _bank()
    features = [p[:1] for p in bank.prototypes]
    with pytest.raises(ValueError, match="residual mode"):
        bank.nearest(features, mode="pixel")
    with pytest.raises(PrototypeMismatchError, match="do not match"):
        bank.nearest([f[:, :1] for f in features])


def test_distances_are_whole_map_l2_and_their_argmin_is_the_nearest_prototype():
    bank = _bank(k=3)
    picks = torch.tensor([1, 1, 2])
    features = [p[picks] + 0.05 * torch.randn_like(p[picks]) for p in bank.prototypes]
    distances = bank.distances(features)
    assert [tuple(d.shape) for d in distances] == [(3, 3)] * 3
    for dist, feat, proto, near in zip(distances, features, bank.prototypes, bank.nearest(features)):
        expected = (feat[:, None] - proto[None]).flatten(2).norm(dim=-1)  # (B, K)
        torch.testing.assert_close(dist, expected, rtol=1e-4, atol=1e-4)
        assert dist.argmin(dim=1).tolist() == picks.tolist()
        assert torch.equal(near, proto[dist.argmin(dim=1)])
    with pytest.raises(PrototypeMismatchError, match="do not match"):
        bank.distances([f[:, :1] for f in features])
