"""Figure and analysis helpers of chapter 4: the MSF diagram, attention weights, parameter bars."""
from __future__ import annotations


import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from prn_core.config import ModelConfig  # noqa: E402
from prn_core.models import MultiScaleFusion, PrototypeBank, build_prn  # noqa: E402
from prn_core.viz import attention_weights, plot_fusion, plot_parameters, show_attention  # noqa: E402

SIZE = 64
TINY = ModelConfig(backbone="resnet18", weights="random", fusion_channels=(8, 16, 16), attention_patch_sizes=(1, 2),
                   attention_dim=8, attention_heads=2, decoder_channels=(16, 16, 8, 8), head_channels=4)


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model():
    model = build_prn(TINY, SIZE)
    gen = torch.Generator().manual_seed(0)
    protos = [torch.randn(2, c, SIZE // s, SIZE // s, generator=gen) for c, s in zip(model.backbone.channels, (4, 8, 16))]
    model.set_prototypes(PrototypeBank(protos, {"backbone": "resnet18", "image_size": [SIZE, SIZE]}))
    return model


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((SIZE, SIZE, 3)).astype(np.float32)


def test_plot_fusion_draws_every_path_with_its_convolutions():
    fig = plot_fusion(MultiScaleFusion((4, 8, 16), (8, 8, 8)))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(fig.axes[0].patches) == 6  # 3 inputs + 3 outputs
    assert "2x 3x3/2 conv" in texts and "1x1 conv, up x4" in texts
    assert texts.count("1x1 conv") == 2 and texts.count("identity") == 1  # stride 8 keeps its 8 channels
    plt.close(fig)
    with pytest.raises(ValueError, match="3 scales but 2 strides"):
        plot_fusion(MultiScaleFusion((4, 8, 16), (8, 8, 8)), (4, 8))


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


def test_show_attention_marks_the_query_at_the_mask_centre(model):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[40:48, 8:16] = 1  # centre (44, 12): stride 4, patch 1 -> token row 11, column 3
    fig = show_attention(model, _image(), mask)
    axes = np.array(fig.axes).reshape(3, 4)  # one row per stride; (grid, attention) per patch size
    query = axes[0, 0].patches[0]
    assert (query.get_x(), query.get_y(), query.get_width()) == (3 * 4 - 0.5, 11 * 4 - 0.5, 4)
    assert axes[0, 0].get_title() == "patch 1: 16x16 = 256 tokens" and axes[2, 0].get_ylabel() == "stride 16"
    np.testing.assert_allclose(axes[0, 1].images[1].get_array().sum(), 1.0, rtol=1e-5)
    plt.close(fig)
    with pytest.raises(ValueError, match="no MSA layer 3"):
        show_attention(model, _image(), layer=3)


def test_plot_parameters_bars_add_up_to_the_model(model):
    fig = plot_parameters(model)
    ax = fig.axes[0]
    total = sum(bar.get_width() for bar in ax.patches[: 2 * len(model.summary())]) * 1e6
    assert total == pytest.approx(sum(p.numel() for p in model.parameters()), rel=1e-6)
    assert f"{model.trainable_parameters() / 1e6:.2f} M trainable" in ax.get_title()
    plt.close(fig)
