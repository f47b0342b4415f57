"""viz.model: the pipeline diagram, encoder maps, prototypes, residuals, top classes, MSF, attention
and parameter counts; every number drawn comes from prn_core.models."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from figure_checks import array, assert_pictures_in_range, scale
from stand_ins import PeakedClassifier, tiny_prn

from prn_core import viz
from prn_core.models import (
    MultiScaleFusion,
    attention_weights,
    build_backbone,
    fit_prototypes,
    image_batch,
    top_classes,
)

SIZE = 64


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("resnet18", weights="random")


@pytest.fixture(scope="module")
def normals() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((SIZE, SIZE, 3)).astype(np.float32) for _ in range(4)]


@pytest.fixture(scope="module")
def model():
    return tiny_prn(SIZE)


def _bank(backbone, images, ratio):
    return fit_prototypes(backbone, [image_batch(images)], ratio=ratio, seed=0, progress=False)


def _image(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((SIZE, SIZE, 3)).astype(np.float32)


def test_plot_pipeline_names_every_stage_and_its_kind():
    fig = viz.plot_pipeline()
    assert len(fig.axes) == 1
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for stage in ("encoder", "prototypes", "residuals", "MSF", "concat", "MSA", "decoder", "anomaly map"):
        assert stage in texts
    assert len(fig.axes[0].get_legend().get_texts()) == 3  # frozen, fitted, trained


def test_show_feature_maps_shows_the_norm_of_each_scale(backbone, normals):
    fig = viz.show_feature_maps(backbone, normals[0], num_channels=2, scales=3)
    assert len(fig.axes) == 1 + 3 * 3  # the image, then per scale the norm and 2 channels
    with torch.no_grad():
        feature = backbone(image_batch([normals[0]]))[0][0]
    np.testing.assert_allclose(array(fig.axes[1]), feature.norm(dim=0).numpy(), rtol=1e-4)
    assert fig.axes[1].images[0].get_cmap().name == "viridis"  # the norm; channels are signed
    assert {fig.axes[i].images[0].get_cmap().name for i in (2, 3)} == {"RdBu_r"}
    assert assert_pictures_in_range(fig) == 1


def test_show_prototypes_draws_the_banks_assignment(backbone, normals):
    bank = _bank(backbone, normals, ratio=0.5)  # K = 2
    fig = viz.show_prototypes(bank, backbone, normals)
    axes = np.array(fig.axes).reshape(6, 2)  # per scale: nearest images, then ||P||
    with torch.no_grad():
        distances = bank.distances(backbone(image_batch(normals)))
    for scale_index, dist in enumerate(distances):
        members = [int(ax.get_xlabel().split()[0]) for ax in axes[2 * scale_index]]
        assert members == torch.bincount(dist.argmin(dim=1), minlength=2).tolist()
        for k, ax in enumerate(axes[2 * scale_index]):
            np.testing.assert_allclose(array(ax), normals[int(dist[:, k].argmin())])
    assert assert_pictures_in_range(fig) == 6
    with pytest.raises(ValueError, match="size and backbone the bank was fitted with"):
        viz.show_prototypes(bank, backbone, [np.zeros((96, 96, 3), np.float32)])


def test_show_residuals_is_zero_on_a_prototype_and_lights_up_a_defect(backbone, normals):
    bank = _bank(backbone, normals, ratio=1.0)  # one prototype per image: its own maps
    defect = normals[0].copy()
    defect[20:36, 20:36] = 1.0
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[20:36, 20:36] = 1
    fig = viz.show_residuals(bank, backbone, [normals[0], defect], [np.zeros_like(mask), mask], ["good", "bad"],
                         modes=("image", "patch"))
    axes = np.array(fig.axes).reshape(4, 4)  # rows: (good, image), (good, patch), (bad, image), (bad, patch)
    for col in range(1, 4):
        good, bad = axes[0, col].images[0], axes[2, col].images[0]
        assert good.get_array().max() < 1e-3 * bad.get_array().max()
        assert good.get_clim() == bad.get_clim()  # one colour scale per column
        cmap, vmin, vmax = scale(bad)
        assert cmap == "inferno" and vmin == 0 and vmax == pytest.approx(max(axes[r, col].images[0].get_array().max()
                                                                             for r in range(4)))
    assert assert_pictures_in_range(fig) == 4


def test_show_top_classes_draws_the_models_top_classes_in_order():
    image = np.full((40, 60, 3), 255, np.uint8)
    fig = viz.show_top_classes(PeakedClassifier(), image, k=4)
    assert len(fig.axes) == 2 and assert_pictures_in_range(fig) == 1
    top = top_classes(PeakedClassifier(), image, k=4)
    bars = fig.axes[1]
    assert [p.get_width() for p in bars.patches] == pytest.approx([p for *_, p in top])
    assert [t.get_text() for t in bars.get_yticklabels()][:2] == ["espresso (967)", "cup (968)"]


def test_plot_fusion_draws_every_path_with_its_convolutions():
    fig = viz.plot_fusion(MultiScaleFusion((4, 8, 16), (8, 8, 8)))
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(fig.axes[0].patches) == 6  # 3 inputs + 3 outputs
    assert "2x 3x3/2 conv" in texts and "1x1 conv, up x4" in texts
    assert texts.count("1x1 conv") == 2 and texts.count("identity") == 1  # stride 8 keeps its 8 channels
    with pytest.raises(ValueError, match="3 scales but 2 strides"):
        viz.plot_fusion(MultiScaleFusion((4, 8, 16), (8, 8, 8)), (4, 8))


def test_show_attention_marks_the_query_at_the_mask_centre(model):
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[40:48, 8:16] = 1  # centre (44, 12): stride 4, patch 1 -> token row 11, column 3
    fig = viz.show_attention(model, _image(), mask)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    axes = np.array(panels).reshape(3, 4)  # one row per stride; (grid, attention) per patch size
    assert len(bars) == 6  # one colorbar per attention panel, ticked at 0, 1/N and the maximum
    assert bars[0].get_yticks()[1] == pytest.approx(1 / 256)
    query = axes[0, 0].patches[0]
    assert (query.get_x(), query.get_y(), query.get_width()) == (3 * 4 - 0.5, 11 * 4 - 0.5, 4)
    record = attention_weights(model, [_image()])[0]
    expected = record["weights"][0].mean(0)[11 * 16 + 3].reshape(16, 16).numpy()
    drawn = axes[0, 1].images[1]
    np.testing.assert_allclose(drawn.get_array(), expected, rtol=1e-5)
    assert scale(drawn) == ("magma", 0, pytest.approx(float(expected.max())))  # from 0: flat looks flat
    assert assert_pictures_in_range(fig) == 12
    with pytest.raises(ValueError, match="no MSA layer 3"):
        viz.show_attention(model, _image(), layer=3)


def test_plot_parameters_bars_add_up_to_the_model(model):
    ax = viz.plot_parameters(model).axes[0]
    rows = len(model.summary())
    trainable, frozen = ax.patches[:rows], ax.patches[rows : 2 * rows]
    assert sum(bar.get_width() for bar in trainable) * 1e6 == pytest.approx(model.trainable_parameters(), rel=1e-6)
    total = sum(bar.get_width() for bar in [*trainable, *frozen]) * 1e6
    assert total == pytest.approx(sum(p.numel() for p in model.parameters()), rel=1e-6)
