"""Figure helpers of chapter 1: sample galleries, the few-shot split, foreground masks."""
from __future__ import annotations


import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from prn_core.data import DEMO_DEFECTS, few_shot_split, list_samples, make_demo_dataset  # noqa: E402
from prn_core.viz import plot_split, show_foregrounds, show_samples  # noqa: E402


@pytest.fixture(scope="module")
def demo_root(tmp_path_factory):
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), num_train=6, num_test_good=2, num_per_defect=2, size=64)


def test_show_samples_one_per_type_good_first(demo_root):
    fig = show_samples(list_samples(demo_root, "demo_washer", "test"), (64, 64))
    titles = [ax.get_title().split("\n")[0] for ax in fig.axes if ax.get_title()]
    assert titles == ["good", *sorted(DEMO_DEFECTS)]
    assert len(fig.axes) == 2 * (1 + len(DEMO_DEFECTS))  # image and overlay rows
    plt.close(fig)


def test_show_samples_all_and_errors(demo_root):
    samples = list_samples(demo_root, "demo_washer", "test")[:3]
    fig = show_samples(samples, (64, 64), per_type=None, rows=("overlay",))
    assert len(fig.axes) == 3
    plt.close(fig)
    with pytest.raises(ValueError, match="no samples"):
        show_samples([], (64, 64))


def test_plot_split_counts_match_the_split(demo_root):
    split = few_shot_split(demo_root, "demo_washer", num_seen=3, seed=1)
    ax = plot_split(split).axes[0]
    widths = [int(p.get_width()) for p in ax.patches]
    assert sum(widths) == len(split.train) + len(split.val) + len(split.seen) + len(split.test)
    assert "seed 1" in ax.get_title() and "leaky" not in ax.get_title()
    leaky = plot_split(few_shot_split(demo_root, "demo_washer", num_seen=3, seed=1, leaky=True)).axes[0]
    assert "leaky" in leaky.get_title()
    assert sum(int(p.get_width()) for p in leaky.patches) == sum(widths) + 3  # seen files stay in test
    plt.close("all")


def test_show_foregrounds_dims_the_background():
    image = np.full((64, 64, 3), 0.9, np.float32)
    image[16:48, 16:48] = 0.2
    fig = show_foregrounds([image])
    dimmed = fig.axes[1].images[0].get_array()
    assert np.isclose(dimmed[2, 2, 0], 0.25 * 0.9) and np.isclose(dimmed[32, 32, 0], 0.2)
    assert fig.axes[1].get_xlabel().endswith("foreground")
    plt.close(fig)
    fig = show_foregrounds([image], [np.ones((64, 64), bool)], titles=["all"])
    assert fig.axes[0].get_title() == "all" and fig.axes[1].get_xlabel() == "100% foreground"
    plt.close(fig)
    with pytest.raises(ValueError, match="no images"):
        show_foregrounds([])
