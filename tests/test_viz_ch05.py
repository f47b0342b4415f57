"""Figure helpers of chapter 5: the loss figure is computed with the package's loss."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from prn_core import viz



def test_plot_focal_loss_shares_show_focal_favours_the_rare_hard_pixels():
    fig = viz.plot_focal_loss(gammas=(4.0,))
    assert isinstance(fig, Figure)
    curve_ax, share_ax = fig.axes
    assert [line.get_label() for line in curve_ax.get_lines()] == [
        "cross-entropy", "focal, gamma 4", "smooth L1", "PRN total"]
    # bars: first the anomalous shares (one per loss), then the normal remainders
    shares = [patch.get_width() for patch in share_ax.patches[:4]]
    cross_entropy, focal = shares[0], shares[1]
    assert 0.15 < cross_entropy < 0.3  # 64 hard pixels vs 4032 easy ones under plain cross-entropy
    assert focal > 0.99  # gamma 4 all but silences the easy pixels


def test_plot_focal_loss_curves_decrease_with_p_t():
    fig = viz.plot_focal_loss()
    for line in fig.axes[0].get_lines():
        y = line.get_ydata()
        assert np.all(np.diff(y) <= 1e-12), line.get_label()


def test_stretch_maps_uses_one_shared_scale():
    maps = np.array([[[0.01, 0.02]], [[0.03, 0.01]]], np.float32)
    out = viz.stretch_maps(maps)
    assert out.shape == maps.shape and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert out[0, 0, 1] == pytest.approx(0.5)
    assert not viz.stretch_maps(np.full((2, 3, 3), 0.4)).any()  # constant maps: all zero, no NaN
