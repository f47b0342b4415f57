"""A small human-readable report for a finished run: figures plus a markdown summary.

``prn demo`` and ``prn train`` call it so a run leaves something to look at, not only JSON.
The report opens with the test metrics beside the training-free residual detector's on the same
test images (:mod:`prn_core.baseline`), so a model that has not learnt cannot pass unnoticed;
the baseline's numbers are also added to ``result.json`` as ``baseline_metrics``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from . import viz  # noqa: E402
from .atomic import save_figure_atomic, write_json_atomic, write_text_atomic  # noqa: E402
from .baseline import evaluate_residual_baseline  # noqa: E402

__all__ = ["write_report"]


def write_report(trained: Any, ev: Any, result: dict[str, Any], out_dir: str | Path, max_images: int = 8) -> Path:
    """Write ``training.png``, ``predictions.png``, ``curves.png`` and ``report.md`` to ``out_dir``."""
    out_dir = Path(out_dir)
    figures = {}
    fig = viz.plot_history(result["history"])
    figures["training"] = _save(fig, out_dir / "training.png")
    # Mostly defects, plus two good images, so the reader sees what "nothing found" looks like.
    good, bad = np.flatnonzero(ev.labels == 0), np.flatnonzero(ev.labels == 1)
    order = np.concatenate([bad[: max_images - min(2, len(good))], good[:2]])
    images = np.stack([trained.data.cache.image(trained.data.split.test[i]) for i in order])
    fig = viz.show_predictions(images, ev.masks[order], ev.maps[order], ev.scores[order], ev.labels[order])
    figures["predictions"] = _save(fig, out_dir / "predictions.png")
    fig = viz.plot_curves(ev.labels, ev.scores, **ev.metric_inputs())
    figures["curves"] = _save(fig, out_dir / "curves.png")
    model = trained.model
    baseline = evaluate_residual_baseline(model.backbone, model.prototypes, trained.data.split.test,
                                          trained.data.cache).metrics
    result["baseline_metrics"] = baseline
    write_json_atomic(out_dir / "result.json", result)
    m = result["metrics"]
    lines = [
        f"# PRN run: {result['category']} ({result['profile']} profile, seed {result['seed']})",
        "",
        "| test metric | PRN | training-free residuals |",
        "|---|---|---|",
        *[f"| {k} | {v:.3f} | {baseline.get(k, float('nan')):.3f} |" for k, v in m.items()
          if isinstance(v, float)],
        "",
        f"- command: `{result.get('command')}`",
        f"- protocol: {result['protocol']}, selection: {result['selection']} "
        f"(epoch {result['selected_epoch']})"
        + ("; per-epoch test monitor: diagnostic only" if result.get("test_monitor") else ""),
        f"- test set: {result['test_counts']['normal']} normal, {result['test_counts']['anomalous']} anomalous "
        f"(seen anomalies removed: {result['protocol'] != 'leaky'})",
        f"- training: {result['train_seconds']:.0f} s on {result['hardware'].get('gpu') or result['hardware']['processor']}",
        f"- commit: {result['git_commit']}",
        *_decision_lines(result),
        "",
        *[f"![{name}]({path.name})" for name, path in figures.items()],
        "",
    ]
    report = out_dir / "report.md"
    write_text_atomic(report, "\n".join(lines))
    return report


def _decision_lines(result: dict[str, Any]) -> list[str]:
    """The calibrated decision rule and how it does on test; F1-max above is test-optimal."""
    at = result.get("metrics_at_threshold")
    if not at:
        return []
    return [
        f"- decision threshold (calibrated on validation, {at['image_rule']}): {at['threshold']:.3f}; "
        f"on test: precision {at['precision']:.3f}, recall {at['recall']:.3f}, F1 {at['f1']:.3f} "
        f"(image_f1_max is test-optimal, a ceiling, not a deployable rule)",
    ]


def _save(fig: plt.Figure, path: Path) -> Path:
    try:
        return save_figure_atomic(fig, path, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
