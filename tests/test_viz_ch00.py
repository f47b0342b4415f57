"""Figure helpers of chapter 0: the pipeline diagram and the published-means bar chart."""
from __future__ import annotations

import io


import matplotlib.pyplot as plt  # noqa: E402

from prn_core.reference import MEANS  # noqa: E402
from prn_core.viz import plot_pipeline, plot_reference_means  # noqa: E402


def _render(fig) -> int:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return len(buffer.getvalue())


def test_plot_pipeline_names_every_stage():
    fig = plot_pipeline()
    texts = " ".join(t.get_text() for t in fig.axes[0].texts)
    for stage in ("encoder", "prototypes", "residuals", "MSF", "concat", "MSA", "decoder", "anomaly map"):
        assert stage in texts
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()][2] == "trained"
    assert _render(fig) > 5000


def test_plot_reference_means_bars_and_missing_values():
    fig = plot_reference_means()
    ax = fig.axes[0]
    reported = sum(v is not None for row in MEANS.values() for v in row.values())
    assert len(ax.patches) == reported  # one bar per reported number, none for "not reported"
    assert sum(t.get_text() == "n/r" for t in ax.texts) == 4 * len(MEANS) - reported
    assert "not ours" in ax.get_title()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(MEANS)
    heights = sorted(round(p.get_y() + p.get_height(), 3) for p in ax.patches)
    assert heights[-1] == max(v for row in MEANS.values() for v in row.values() if v is not None)
    _render(fig)


def test_plot_reference_means_custom_metrics():
    fig = plot_reference_means({"a": {"x": 0.9}, "b": {"x": None}}, metrics=("x",), ymin=0.5)
    assert len(fig.axes[0].patches) == 1 and fig.axes[0].get_ylim()[0] == 0.5
    plt.close(fig)
