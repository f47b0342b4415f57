"""Figure helpers of chapter 9: squash vs pad for a long image, and prn predict's heatmap files."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib.figure import Figure

from prn_core import viz



@pytest.fixture()
def long_image(tmp_path):
    """A 64x160 image (aspect 0.4) with a 10x10 defect and its mask."""
    image = np.random.default_rng(0).integers(0, 256, (64, 160, 3), dtype=np.uint8)
    mask = np.zeros((64, 160), np.uint8)
    mask[20:30, 100:110] = 255
    assert cv2.imwrite(str(tmp_path / "long.png"), image) and cv2.imwrite(str(tmp_path / "long_mask.png"), mask)
    return tmp_path / "long.png", tmp_path / "long_mask.png"


def test_show_resizing_panels_keep_their_shapes_and_report_the_valid_share(long_image):
    path, mask = long_image
    fig = viz.show_resizing(path, (64, 96), mask)
    assert isinstance(fig, Figure) and len(fig.axes) == 4
    shapes = [ax.get_images()[0].get_array().shape[:2] for ax in fig.axes]
    assert shapes == [(64, 160), (64, 96), (64, 96), (64, 96)]
    # 64x160 fitted into 64x96: scale 0.6 -> 38x96 content, 38/64 = 59% of the canvas is real
    assert fig.axes[3].get_title() == "valid region (59% of pixels)"
    valid = np.asarray(fig.axes[3].get_images()[0].get_array())
    assert valid[:13].max() == 0 and valid[13:51].min() == 1 and valid[51:].max() == 0
    padded = np.asarray(fig.axes[2].get_images()[0].get_array())
    assert (padded[..., 0] > padded[..., 1] + 0.2).any(), "the defect is not tinted in the padded panel"


def test_show_resizing_without_mask(long_image):
    fig = viz.show_resizing(long_image[0], (64, 64))
    assert fig.axes[0].get_title() == "as stored 64x160" and fig.axes[1].get_title() == "squashed 64x64"


def test_show_heatmap_files_titles_and_errors(tmp_path):
    rows = []
    for i in range(4):
        path = tmp_path / f"h{i}.png"
        cv2.imwrite(str(path), np.full((32, 48, 3), 40 * i, np.uint8))
        rows.append({"image": f"/data/part_{i}.png", "score": 0.1 * i, "heatmap": str(path)})
    fig = viz.show_heatmap_files(rows, count=3, columns=2)
    titled = [ax.get_title() for ax in fig.axes if ax.get_images()]
    assert titled == ["part_0.png\nscore 0.000", "part_1.png\nscore 0.100", "part_2.png\nscore 0.200"]
    assert len(fig.axes) == 4 and fig.axes[0].get_images()[0].get_array().shape == (32, 48, 3)
    with pytest.raises(ValueError, match="no predictions"):
        viz.show_heatmap_files([])
