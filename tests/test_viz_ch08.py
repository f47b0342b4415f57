"""Figure helpers of chapter 8: ablation deltas and the three benchmark figures."""
from __future__ import annotations

import numpy as np
import pytest

from prn_core import viz



def _variant(name, image_auroc, au_pro):
    return {"variant": name, "metrics": {"image_auroc": image_auroc, "au_pro": au_pro}}


def test_plot_ablation_deltas_draws_signed_changes_against_the_baseline():
    results = [_variant("baseline", 0.8, 0.5), _variant("a", 0.9, 0.4), _variant("b", 0.8, 0.55)]
    fig = viz.plot_ablation_deltas(results, metrics=("image_auroc", "au_pro"))
    ax_i, ax_p = fig.axes
    np.testing.assert_allclose([p.get_width() for p in ax_i.patches], [0.1, 0.0], atol=1e-12)
    np.testing.assert_allclose([p.get_width() for p in ax_p.patches], [-0.1, 0.05], atol=1e-12)
    assert ax_p.get_title() == "AU-PRO (baseline 0.500)"
    assert [t.get_text() for t in ax_i.get_yticklabels()] == ["a", "b"]
    assert [t.get_text() for t in ax_p.texts] == ["-0.100", "+0.050"]


def test_plot_ablation_deltas_needs_a_baseline():
    with pytest.raises(ValueError, match="no 'baseline' variant"):
        viz.plot_ablation_deltas([_variant("a", 0.9, 0.4)], metrics=("au_pro",))


def test_plot_model_speed_puts_the_unofficial_code_last_with_its_range():
    bench = {"setting": {"image_size": [256, 256], "batch": 8, "threads": 2},
             "results": [{"backbone": "resnet18", "variant": "defaults", "train_s_per_image": 0.25,
                          "eval_s_per_image": 0.1, "trainable_parameters": 13_000_000}]}
    fig = viz.plot_model_speed(bench, unofficial={"train_s_per_image": (3.0, 4.0), "eval_s_per_image": 0.7,
                                                  "trainable_parameters": 77.5e6})
    train, evaluation, params = fig.axes
    assert [p.get_height() for p in train.patches] == [0.25, 3.5]
    assert [p.get_height() for p in params.patches] == pytest.approx([13.0, 77.5])
    assert train.patches[-1].get_hatch() == "//"
    assert "256x256, batch 8, 2 CPU threads" in fig._suptitle.get_text()


def test_plot_synthesis_speed_uses_the_best_rate_and_the_target_line():
    bench = {"samples_per_s": {"mix_normal": {"best": 9000.0}, "mix_simulated": {"best": 500.0}},
             "targets_samples_per_s": {"simulated": 100.0}, "data": "toy"}
    ax = viz.plot_synthesis_speed(bench).axes[0]
    assert [p.get_width() for p in ax.patches] == [9000.0, 500.0]
    assert ax.get_legend().get_texts()[0].get_text() == "target 100/s"
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


def test_plot_ablation_deltas_over_seeds_draws_the_spread_as_whiskers():
    rows = [{"variant": v, "seed": s, "metrics": {"au_pro": m}}
            for v, values in (("baseline", (0.50, 0.52, 0.54)), ("a", (0.40, 0.41, 0.42)))
            for s, m in enumerate(values)]
    fig = viz.plot_ablation_deltas(rows, metrics=("au_pro",))
    (ax,) = fig.axes
    assert [p.get_width() for p in ax.patches] == pytest.approx([-0.11])  # change of the means
    whisker = ax.collections[0].get_segments()[0]  # from delta - spread to delta + spread
    assert whisker[:, 0] == pytest.approx([-0.11 - 0.03, -0.11 + 0.03])
    assert ax.get_title() == "AU-PRO (baseline 0.520)"
