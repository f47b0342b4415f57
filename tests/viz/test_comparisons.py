"""viz.comparisons: published means, metric bars with the seed spread, stability, the paper table,
ablation deltas and the three benchmark figures."""
from __future__ import annotations

import numpy as np
import pytest

from prn_core import viz
from prn_core.reference import MEANS, PAPER


def _bar_tops(ax):
    return [round(p.get_y() + p.get_height(), 6) for p in ax.patches]


def _whiskers(ax) -> list[tuple[float, float]]:
    """(low, high) of every vertical error bar drawn on ``ax``."""
    return [(float(a[1]), float(b[1])) for c in ax.collections for a, b in c.get_segments()]


# --- published numbers and ours ---------------------------------------------------------------


def test_plot_reference_means_bars_and_missing_values():
    fig = viz.plot_reference_means()
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    reported = [v for row in MEANS.values() for v in row.values() if v is not None]
    assert len(ax.patches) == len(reported)  # one bar per reported number, none for "not reported"
    assert sum(t.get_text() == "n/r" for t in ax.texts) == 4 * len(MEANS) - len(reported)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(MEANS)
    assert max(_bar_tops(ax)) == max(reported)


def test_plot_reference_means_custom_metrics():
    fig = viz.plot_reference_means({"a": {"x": 0.9}, "b": {"x": None}}, metrics=("x",), ymin=0.5)
    assert len(fig.axes[0].patches) == 1 and fig.axes[0].get_ylim()[0] == 0.5


def test_plot_metric_bars_draws_values_hatches_references_and_marks_missing():
    named = {"ours": {"image_auroc": 0.9, "au_pro": 0.8}, "ref": {"image_auroc": 1.0, "au_pro": None}}
    fig = viz.plot_metric_bars(named, metrics=("image_auroc", "au_pro"), ours=["ours"], ymin=0.5)
    ax = fig.axes[0]
    assert _bar_tops(ax) == [0.9, 0.8, 1.0]  # the missing reference value is not a bar
    assert [p.get_hatch() for p in ax.patches] == [None, None, "//"]
    texts = [t.get_text() for t in ax.texts]
    assert "n/r" in texts and "0.800" in texts


def test_plot_metric_bars_draws_the_seed_spread_and_no_whisker_for_one_seed():
    named = {"3 seeds": {"au_pro": 0.80}, "1 seed": {"au_pro": 0.70}}
    errors = {"3 seeds": {"au_pro": 0.02}, "1 seed": {"au_pro": None}}
    ax = viz.plot_metric_bars(named, metrics=("au_pro",), ours=list(named), errors=errors).axes[0]
    assert _whiskers(ax) == [pytest.approx((0.78, 0.82))]


def test_seed_means_of_a_reproduce_summary_are_drawn_with_their_spread():
    from prn_core.reproduce import summarise
    from prn_core.results import seed_means

    runs = [{"category": "bottle", "seed": s, "profile": "cpu", "metrics": {
        "image_auroc": 1.0, "pixel_auroc": v, "au_pro": v, "pixel_ap": v, "image_f1_max": 1.0}}
        for s, v in enumerate((0.9, 0.8))]
    means, stds = seed_means(summarise(runs), "bottle")
    assert means["au_pro"] == pytest.approx(0.85) and stds["au_pro"] == pytest.approx(0.0707, abs=1e-4)
    ax = viz.plot_metric_bars({"ours": means}, metrics=("image_auroc", "au_pro"), ours=["ours"],
                          errors={"ours": stds}).axes[0]
    assert _bar_tops(ax) == pytest.approx([1.0, 0.85])
    assert _whiskers(ax)[-1] == pytest.approx((0.85 - 0.0707, 0.85 + 0.0707), abs=1e-4)


def test_plot_paper_table_has_both_aurocs_per_category_and_adds_ours_with_std():
    fig = viz.plot_paper_table()
    top, bottom = fig.axes[:2]
    assert len(top.patches) == 2 * len(PAPER)
    assert [t.get_text() for t in bottom.get_xticklabels()] == list(PAPER)
    assert all(p.get_hatch() == "//" for p in top.patches)  # others' numbers only
    ours = {"bottle": {"image_auroc": {"mean": 0.95, "std": 0.02}, "pixel_auroc": {"mean": 0.9, "std": 0.01}}}
    top = viz.plot_paper_table(ours).axes[0]
    assert len(top.patches) == 2 * len(PAPER) + 1
    assert round(top.patches[-1].get_y() + top.patches[-1].get_height(), 6) == 0.95
    assert top.patches[-1].get_hatch() is None
    assert _whiskers(top) == [pytest.approx((0.93, 0.97))]  # the error bar of ours


# --- stability over epochs --------------------------------------------------------------------


def test_plot_stability_marks_best_and_final_epochs():
    history = [{"epoch": e, "val": {"au_pro": v - 0.1}, "test": {"au_pro": v}} for e, v in [(1, 0.5), (2, 0.9), (3, 0.8)]]
    fig = viz.plot_stability(history, metrics=("au_pro",))
    assert len(fig.axes) == 1
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert list(lines["best epoch"].get_xdata()) == [2] and list(lines["best epoch"].get_ydata()) == [0.9]
    assert list(lines["final epoch"].get_xdata()) == [3] and list(lines["final epoch"].get_ydata()) == [0.8]
    np.testing.assert_allclose(lines["validation"].get_ydata(), [0.4, 0.8, 0.7])


def test_plot_stability_draws_validation_solid_and_test_dashed():
    history = [{"epoch": e, "val": {m: 0.5 for m in ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")},
                "test": {m: 0.4 + e / 10 for m in ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")}}
               for e in (1, 2, 3)]
    fig = viz.plot_stability(history)
    assert len(fig.axes) == 4
    styles = {(line.get_label(), line.get_linestyle()) for ax in fig.axes for line in ax.get_lines()[:2]}
    assert styles == {("test monitor", "--"), ("validation", "-")}


def test_plot_stability_on_validation_alone_for_runs_without_a_test_monitor():
    history = [{"epoch": e, "val": {"au_pro": v}} for e, v in [(1, 0.5), (2, 0.9), (3, 0.8)]]
    with pytest.raises(ValueError, match="monitor_test"):
        viz.plot_stability(history, metrics=("au_pro",))  # the default asks for the test monitor
    fig = viz.plot_stability(history, metrics=("au_pro",), split="val")
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    assert "validation" not in lines  # the curve is drawn once, as the val monitor
    np.testing.assert_allclose(lines["val monitor"].get_ydata(), [0.5, 0.9, 0.8])
    assert list(lines["best epoch"].get_xdata()) == [2]
    assert "select" in fig._suptitle.get_text()


# --- ablations --------------------------------------------------------------------------------


def _variant(name, image_auroc, au_pro):
    return {"variant": name, "metrics": {"image_auroc": image_auroc, "au_pro": au_pro}}


def test_plot_ablation_deltas_draws_signed_changes_against_the_baseline():
    results = [_variant("baseline", 0.8, 0.5), _variant("a", 0.9, 0.4), _variant("b", 0.8, 0.55)]
    fig = viz.plot_ablation_deltas(results, metrics=("image_auroc", "au_pro"))
    ax_i, ax_p = fig.axes
    np.testing.assert_allclose([p.get_width() for p in ax_i.patches], [0.1, 0.0], atol=1e-12)
    np.testing.assert_allclose([p.get_width() for p in ax_p.patches], [-0.1, 0.05], atol=1e-12)
    assert [t.get_text() for t in ax_i.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax_p.texts] == ["-0.100", "+0.050"]
    assert not ax_p.collections  # one seed: no whiskers


def test_plot_ablation_deltas_needs_a_baseline():
    with pytest.raises(ValueError, match="no 'baseline' variant"):
        viz.plot_ablation_deltas([_variant("a", 0.9, 0.4)], metrics=("au_pro",))


def test_plot_ablation_deltas_over_seeds_draws_the_spread_as_whiskers():
    rows = [{"variant": v, "seed": s, "metrics": {"au_pro": m}}
            for v, values in (("baseline", (0.50, 0.52, 0.54)), ("a", (0.40, 0.41, 0.42)))
            for s, m in enumerate(values)]
    fig = viz.plot_ablation_deltas(rows, metrics=("au_pro",))
    (ax,) = fig.axes
    assert [p.get_width() for p in ax.patches] == pytest.approx([-0.11])  # change of the means
    whisker = ax.collections[0].get_segments()[0]  # from delta - spread to delta + spread
    assert whisker[:, 0] == pytest.approx([-0.11 - 0.03, -0.11 + 0.03])


# --- benchmarks -------------------------------------------------------------------------------


def test_plot_model_speed_puts_the_unofficial_code_last_with_its_range():
    bench = {"setting": {"image_size": [256, 256], "batch": 8, "threads": 2},
             "results": [{"backbone": "resnet18", "variant": "defaults", "train_s_per_image": 0.25,
                          "eval_s_per_image": 0.1, "trainable_parameters": 13_000_000}]}
    fig = viz.plot_model_speed(bench, unofficial={"train_s_per_image": (3.0, 4.0), "eval_s_per_image": 0.7,
                                              "trainable_parameters": 77.5e6})
    train, evaluation, params = fig.axes
    assert [p.get_height() for p in train.patches] == [0.25, 3.5]
    assert [p.get_height() for p in evaluation.patches] == [0.1, 0.7]
    assert [p.get_height() for p in params.patches] == pytest.approx([13.0, 77.5])
    assert train.patches[-1].get_hatch() == "//"
    assert _whiskers(train) == [pytest.approx((3.0, 4.0))]


def test_plot_synthesis_speed_uses_the_best_rate_and_the_target_line():
    bench = {"samples_per_s": {"mix_normal": {"best": 9000.0}, "mix_simulated": {"best": 500.0}},
             "targets_samples_per_s": {"simulated": 100.0}, "data": "toy"}
    ax = viz.plot_synthesis_speed(bench).axes[0]
    assert [p.get_width() for p in ax.patches] == [9000.0, 500.0]
    (target,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert list(target.get_xdata()) == [100.0, 100.0]
    assert ax.get_xscale() == "log"


def test_plot_metrics_speed_compares_binned_with_exact():
    bench = {"maps": 10, "image_size": [64, 64], "pixels": 40960,
             "seconds_all_metrics": {"best": 1.0}, "exact_reference_seconds_sklearn_plus_sorted_au_pro": 8.0,
             "peak_memory_mib_beyond_inputs": 40.0, "exact_reference_peak_memory_mib": 400.0,
             "exact_reference": {"pixel_auroc": 0.9, "au_pro": 0.6},
             "abs_error_vs_exact": {"pixel_auroc": 1e-8, "au_pro": 0.0}}
    seconds, memory, error = viz.plot_metrics_speed(bench).axes
    assert [p.get_height() for p in seconds.patches] == [1.0, 8.0]
    assert [p.get_height() for p in memory.patches] == [40.0, 400.0]
    assert [p.get_width() for p in error.patches] == [1e-8, 1e-16]  # an exact zero is drawn at the floor
    assert error.get_xscale() == "log"


def test_plot_val_vs_test_puts_each_run_at_its_validation_and_test_score():
    runs = [{"name": name, "category": cat, "val": {"au_pro": v}, "test": {"au_pro": t}}
            for name, cat, v, t in (("baseline", "tile", 0.93, 0.83), ("shading", "tile", 0.86, 0.84),
                                    ("baseline", "bottle", 0.92, 0.98))]
    fig = viz.plot_val_vs_test({"runs": runs}, metrics=("au_pro",))
    ax = fig.axes[0]
    offsets = np.concatenate([c.get_offsets() for c in ax.collections])
    assert np.allclose(offsets, [[0.93, 0.83], [0.86, 0.84], [0.92, 0.98]])
    diagonal = ax.lines[0].get_xydata()
    assert np.allclose(diagonal[:, 0], diagonal[:, 1])  # the line where validation predicts test
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == ["baseline", "shading", "tile", "bottle"]


def test_plot_protocol_parts_one_panel_per_set_three_bars_per_metric():
    from prn_core.reproduce import seed_stats

    entry = {"seeds": [0, 1], "seen_in_test": {"au_pro": seed_stats([0.01, 0.03])},
             "picked_on_test": {"au_pro": seed_stats([-0.01, 0.01])},
             "total": {"au_pro": seed_stats([0.0, 0.04])}}
    fig = viz.plot_protocol_parts({"bottle": entry, "magnetic_tile": entry}, metrics=("au_pro",))
    assert [ax.get_title() for ax in fig.axes] == ["bottle (2 seeds)", "magnetic_tile (2 seeds)"]
    ax = fig.axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches] == [0.02, 0.0, 0.02]  # means
    assert [t.get_text() for t in ax.texts] == ["+0.020", "+0.000", "+0.020"]
    assert len(_whiskers(ax)) == 3
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "seen anomalies left in test", "epoch picked on test", "leaky minus honest"]
