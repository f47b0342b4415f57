"""Figure helpers of chapter 7: our metrics against references, stability, the per-category table."""
from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from prn_core import viz
from prn_core.reference import PAPER



def _bar_tops(ax):
    return [round(p.get_y() + p.get_height(), 6) for p in ax.patches]


def test_plot_metric_bars_draws_values_hatches_references_and_marks_missing():
    named = {"ours": {"image_auroc": 0.9, "au_pro": 0.8}, "ref": {"image_auroc": 1.0, "au_pro": None}}
    fig = viz.plot_metric_bars(named, metrics=("image_auroc", "au_pro"), ours=["ours"], ymin=0.5)
    ax = fig.axes[0]
    assert _bar_tops(ax) == [0.9, 0.8, 1.0]  # the missing reference value is not a bar
    assert [p.get_hatch() for p in ax.patches] == [None, None, "//"]
    texts = [t.get_text() for t in ax.texts]
    assert "n/r" in texts and "0.800" in texts
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["ours", "ref (reference)"]


def test_plot_stability_marks_best_and_final_epochs():
    history = [{"epoch": e, "val": {"au_pro": v - 0.1}, "test": {"au_pro": v}} for e, v in [(1, 0.5), (2, 0.9), (3, 0.8)]]
    fig = viz.plot_stability(history, metrics=("au_pro",))
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_title() == "AU-PRO: final 0.800, best 0.900"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert list(lines["best epoch"].get_xdata()) == [2] and list(lines["final epoch"].get_xdata()) == [3]
    np.testing.assert_allclose(lines["validation"].get_ydata(), [0.4, 0.8, 0.7])
    assert "never used to pick the model" in fig._suptitle.get_text()


def test_plot_paper_table_has_both_aurocs_per_category_and_adds_ours_with_std():
    fig = viz.plot_paper_table()
    top, bottom = fig.axes[:2]
    assert len(top.patches) == 2 * len(PAPER)
    assert [t.get_text() for t in bottom.get_xticklabels()] == list(PAPER)
    assert "others' published numbers" in top.get_title()
    ours = {"bottle": {"image_auroc": {"mean": 0.95, "std": 0.02}, "pixel_auroc": {"mean": 0.9, "std": 0.01}}}
    fig = viz.plot_paper_table(ours)
    top = fig.axes[0]
    assert len(top.patches) == 2 * len(PAPER) + 1
    assert round(top.patches[-1].get_y() + top.patches[-1].get_height(), 6) == 0.95
    assert len(top.collections) == 1  # the error bar of ours


def test_plot_metric_bars_draws_the_seed_spread_and_no_whisker_for_one_seed():
    named = {"3 seeds": {"au_pro": 0.80}, "1 seed": {"au_pro": 0.70}}
    errors = {"3 seeds": {"au_pro": 0.02}, "1 seed": {"au_pro": None}}
    fig = viz.plot_metric_bars(named, metrics=("au_pro",), ours=list(named), errors=errors)
    ax = fig.axes[0]
    (whiskers,) = [c for c in ax.collections if c.get_segments()]
    ((_, low), (_, high)), = whiskers.get_segments()
    assert (low, high) == pytest.approx((0.78, 0.82))
    assert {t.get_text() for t in ax.texts} >= {"0.800±0.020", "0.700"}


def test_seed_means_reads_a_reproduce_summary():
    from prn_core.reproduce import summarise
    from prn_core.results import seed_means

    runs = [{"category": "bottle", "seed": s, "profile": "cpu", "metrics": {
        "image_auroc": 1.0, "pixel_auroc": v, "au_pro": v, "pixel_ap": v, "image_f1_max": 1.0}}
        for s, v in enumerate((0.9, 0.8))]
    means, stds = seed_means(summarise(runs), "bottle")
    assert means["au_pro"] == pytest.approx(0.85) and stds["au_pro"] == pytest.approx(0.0707, abs=1e-4)
    assert stds["image_auroc"] == 0.0
