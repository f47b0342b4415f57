"""viz.common: image and mask conversion, the red overlay, one column of image/mask/overlay panels."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from figure_checks import assert_pictures_in_range, scale

from prn_core import viz
from prn_core.models import image_array


def test_overlay_tints_only_the_mask():
    image = np.full((4, 4, 3), 0.5, np.float32)
    mask = np.zeros((4, 4))
    mask[1, 2] = 1
    out = viz.overlay_mask(image, mask)
    changed = (out != image).any(axis=2)
    np.testing.assert_array_equal(changed, mask > 0)
    assert out[1, 2, 0] > out[1, 2, 1]  # red


def test_overlay_accepts_uint8_chw_tensors_and_stays_in_range():
    image = torch.full((3, 5, 5), 255, dtype=torch.uint8)
    mask = torch.zeros(1, 5, 5)
    mask[0, 0, 0] = 1
    out = viz.overlay_mask(image, mask)
    assert out.shape == (5, 5, 3) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert out[0, 0, 1] < 1.0 and (out[1:, 1:] == 1.0).all()


def test_masks_are_thresholded_at_one_half_in_every_layout():
    mask = np.array([[0.2, 0.6], [1.0, 0.0]])
    expected = [[False, True], [True, False]]
    for form in (mask, mask[None], torch.from_numpy(mask), torch.from_numpy(mask)[None]):
        assert viz.common._to_mask(form).tolist() == expected


def test_figures_read_images_with_the_models_convention():
    assert viz.common._to_image is image_array  # one conversion for encoders and figures, not two


def test_a_column_draws_the_mask_on_a_fixed_scale_and_outlines_partial_masks():
    image = np.full((8, 8, 3), 0.5, np.float32)
    partial = np.zeros((8, 8), bool)
    partial[2:5, 2:5] = True
    fig, axes = plt.subplots(3, 2)
    viz.common._draw_column(axes[:, 0], image, partial, ("image", "mask", "overlay"))
    viz.common._draw_column(axes[:, 1], image, np.ones((8, 8), bool), ("image", "mask", "overlay"))
    assert assert_pictures_in_range(fig) == 4  # image and overlay of each column
    assert scale(axes[1, 0].images[0]) == ("gray", 0, 1)  # an empty or full mask is not stretched
    assert len(axes[2, 0].collections) == 1 and not axes[2, 1].collections  # no outline of the whole image
