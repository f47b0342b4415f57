"""MultiSizeAttention: shapes at any size, >= 2 tokens per branch, and global mixing; the
attention weights of a whole PRN read back with hooks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stand_ins import tiny_prn

from prn_core.models.attention import MultiSizeAttention, PatchAttention, attention_weights, fit_patch_sizes


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_fit_patch_sizes_clips_per_scale_and_drops_duplicates():
    assert fit_patch_sizes((2, 4, 8), stride=4) == (2, 4, 8)
    assert fit_patch_sizes((2, 4, 8), stride=8) == (2, 4, 8)
    assert fit_patch_sizes((2, 4, 8), stride=16) == (2, 4)
    assert fit_patch_sizes((16,), stride=16) == (4,)
    assert fit_patch_sizes((2, 4, 8), stride=16, image_size=(64, 256)) == (2,)
    assert fit_patch_sizes((2, 4, 8), stride=16, image_size=(512, 512)) == (2, 4)  # size-agnostic above 128
    with pytest.raises(ValueError, match=">= 1"):
        fit_patch_sizes((0, 2), stride=4)


@pytest.mark.parametrize("size", [(8, 8), (10, 10), (8, 12), (32, 16)])
def test_shape_is_preserved_for_any_map_size(size):
    msa = MultiSizeAttention(6, (2, 4), dim=8, heads=2, layers=2)
    x = torch.randn(2, 6, *size)
    assert msa(x).shape == x.shape


def test_parameters_do_not_depend_on_the_map_size():
    msa = MultiSizeAttention(6, (2, 4), dim=8, heads=2)
    count = sum(p.numel() for p in msa.parameters())
    msa(torch.randn(1, 6, 8, 8))
    msa(torch.randn(1, 6, 24, 40))
    assert sum(p.numel() for p in msa.parameters()) == count
    assert len(msa.layers[0].branches) == 2


def test_branch_with_fewer_than_two_tokens_raises_naming_scale_and_size():
    msa = MultiSizeAttention(6, (2, 4), dim=8, heads=2, stride=16)
    with pytest.raises(ValueError, match="stride 16.*patch size 4 gives 1 token"):
        msa(torch.randn(1, 6, 4, 4))
    with pytest.raises(ValueError, match="stride 16.*patch size 8 gives 1 token"):
        MultiSizeAttention(6, (2, 8), dim=8, heads=2, stride=16, image_size=(128, 128))
    with pytest.raises(ValueError, match="divisible"):
        PatchAttention(6, 2, dim=10, heads=4)


def test_attention_mixes_distant_patches():
    """A change in one corner reaches the opposite corner, which no 3x3 conv could do."""
    branch = PatchAttention(4, 2, dim=8, heads=2).eval()
    x = torch.randn(1, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    y = x.clone()
    y[..., -2:, -2:] += 3.0
    with torch.no_grad():
        delta = (branch(x) - branch(y))[..., :2, :2].abs().max()
    assert delta > 1e-4


# --- attention weights of a whole PRN, read back with hooks ------------------------------------

SIZE = 64


@pytest.fixture(scope="module")
def model():
    return tiny_prn(SIZE)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((SIZE, SIZE, 3)).astype(np.float32)


def test_attention_weights_are_row_stochastic_per_branch(model):
    model.train()
    records = attention_weights(model, [_image(0), _image(1)])
    assert model.training  # the mode is restored
    # at 64 px the stride-4 map is 16x16 -> patch 1: 256 tokens, patch 2: 64; stride 16: 4x4 -> 16 and 4
    grids = [(r["stride"], r["patch_size"], r["grid"]) for r in records]
    assert grids == [(4, 1, (16, 16)), (4, 2, (8, 8)), (8, 1, (8, 8)), (8, 2, (4, 4)), (16, 1, (4, 4)), (16, 2, (2, 2))]
    for record in records:
        n = record["grid"][0] * record["grid"][1]
        assert record["weights"].shape == (2, 2, n, n)
        torch.testing.assert_close(record["weights"].sum(-1), torch.ones(2, 2, n))


def test_attention_weights_are_uniform_when_queries_and_keys_vanish(model):
    branch = model.attention[2].layers[0].branches[0]
    saved = {k: v.clone() for k, v in branch.qkv.state_dict().items()}
    try:
        with torch.no_grad():
            branch.qkv.weight.zero_()
            branch.qkv.bias.zero_()
        weights = attention_weights(model, [_image()])[4]["weights"]
    finally:
        branch.qkv.load_state_dict(saved)
    torch.testing.assert_close(weights, torch.full_like(weights, 1 / 16))
    assert not torch.allclose(attention_weights(model, [_image()])[4]["weights"], weights)
