"""Figure helpers of chapter 3: encoder maps, the prototype gallery and residual maps."""
from __future__ import annotations


import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from prn_core.models import build_backbone, fit_prototypes  # noqa: E402
from prn_core.viz import show_feature_maps, show_prototypes, show_residuals, show_top_classes, top_classes  # noqa: E402

SIZE = 64


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def backbone():
    return build_backbone("resnet18", weights="random")


@pytest.fixture(scope="module")
def normals() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.random((SIZE, SIZE, 3)).astype(np.float32) for _ in range(4)]


def _bank(backbone, images, ratio):
    batch = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    return fit_prototypes(backbone, [batch], ratio=ratio, seed=0, progress=False)


def test_show_feature_maps_shows_the_norm_of_each_scale(backbone, normals):
    fig = show_feature_maps(backbone, normals[0], num_channels=2, scales=3)
    assert len(fig.axes) == 1 + 3 * 3
    first_map = fig.axes[1]
    assert first_map.get_ylabel() == "stride 4\n64 x 16 x 16"
    with torch.no_grad():
        feature = backbone(torch.from_numpy(normals[0]).permute(2, 0, 1)[None])[0][0]
    np.testing.assert_allclose(first_map.images[0].get_array(), feature.norm(dim=0).numpy(), rtol=1e-4)
    plt.close(fig)


def test_show_prototypes_counts_cluster_members_and_shows_training_images(backbone, normals):
    bank = _bank(backbone, normals, ratio=0.5)  # K = 2
    fig = show_prototypes(bank, backbone, normals)
    axes = np.array(fig.axes).reshape(6, 2)
    for scale in range(3):
        assert sum(int(ax.get_xlabel().split()[0]) for ax in axes[2 * scale]) == len(normals)
        for ax in axes[2 * scale]:
            shown = ax.images[0].get_array()
            assert any(np.allclose(shown, image) for image in normals)
    assert axes[0, 1].get_title() == "prototype 1"
    plt.close(fig)
    with pytest.raises(ValueError, match="size and backbone the bank was fitted with"):
        show_prototypes(bank, backbone, [np.zeros((96, 96, 3), np.float32)])


def test_show_residuals_is_zero_on_a_prototype_and_lights_up_a_defect(backbone, normals):
    bank = _bank(backbone, normals, ratio=1.0)  # one prototype per image: its own maps
    defect = normals[0].copy()
    defect[20:36, 20:36] = 1.0
    mask = np.zeros((SIZE, SIZE), np.uint8)
    mask[20:36, 20:36] = 1
    fig = show_residuals(bank, backbone, [normals[0], defect], [np.zeros_like(mask), mask], ["good", "bad"],
                         modes=("image", "patch"))
    axes = np.array(fig.axes).reshape(4, 4)  # rows: (good, image), (good, patch), (bad, image), (bad, patch)
    assert axes[1, 0].get_ylabel() == "good\npatch-level"
    for col in range(1, 4):
        good, bad = axes[0, col].images[0], axes[2, col].images[0]
        assert good.get_array().max() < 1e-3 * bad.get_array().max()
        assert good.get_clim() == bad.get_clim()  # one colour scale per column
    plt.close(fig)


class _Peaked(torch.nn.Module):
    """A stand-in classifier whose logits ignore the image: class 967 first, then 968, 0, 1, ..."""

    def __init__(self) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(1000))
        with torch.no_grad():
            self.logits[967], self.logits[968] = 5.0, 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == (224, 224) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        return self.logits.expand(len(x), -1)


def test_top_classes_names_imagenet_classes_in_order():
    image = np.full((40, 60, 3), 255, np.uint8)
    top = top_classes(_Peaked(), image, k=3)
    assert [(i, name) for i, name, _ in top[:2]] == [(967, "espresso"), (968, "cup")]
    expected = torch.softmax(_Peaked().logits.detach(), 0)
    assert top[0][2] == pytest.approx(float(expected[967]))
    assert top[0][2] > top[1][2] > top[2][2]
    fig = show_top_classes(_Peaked(), image, k=4)
    assert [t.get_text() for t in fig.axes[1].get_yticklabels()][:2] == ["espresso (967)", "cup (968)"]
    plt.close(fig)
