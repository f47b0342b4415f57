"""Figures that put numbers side by side: ours against others' published numbers, the final
against the best epoch, ablation variants against the baseline, benchmarks against the
unofficial code and their targets.

Others' numbers come from :mod:`prn_core.reference` and are always hatched or labelled as such.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from prn_core.reference import MEANS, PAPER, UNOFFICIAL
from prn_core.results import METRIC_LABELS, PROTOCOL_PARTS, UNOFFICIAL_SPEED, final_vs_best
from prn_core.viz.common import SPLIT_STYLES

__all__ = ["plot_ablation_deltas", "plot_metric_bars", "plot_val_vs_test", "plot_metrics_speed", "plot_model_speed", "plot_paper_table",
           "plot_protocol_parts", "plot_reference_means", "plot_stability", "plot_synthesis_speed"]


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric.replace("_", " "))


def _reported(ax: Any, named: Mapping[str, Mapping[str, float | None]], metrics: Sequence[str],
              ymin: float) -> Iterator[tuple[int, str, str, float, float, float, bool]]:
    """The bars of a grouped chart, one group per metric and one bar per method, in drawing
    order: ``(method index, method, metric, x, width, value, first bar of the method)``. A value
    a method did not report is marked "n/r" on ``ax`` instead, never drawn as zero."""
    width = 0.8 / max(len(named), 1)
    for m, method in enumerate(named):
        first = True
        for j, metric in enumerate(metrics):
            x = j - 0.4 + (m + 0.5) * width
            value = named[method].get(metric)
            if value is None:
                ax.text(x, ymin + 0.005, "n/r", ha="center", va="bottom", fontsize=6, rotation=90, color="#777777")
                continue
            yield m, method, metric, x, width, value, first
            first = False


def plot_reference_means(
    means: Mapping[str, Mapping[str, float | None]] | None = None,
    metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap"),
    ymin: float = 0.6,
) -> Figure:
    """Grouped bars of published MVTec AD means (default :data:`prn_core.reference.MEANS`).

    These are other people's numbers; the title says so. A missing value (not reported) is
    marked "n/r" rather than drawn as zero. The y axis starts at ``ymin`` so the differences
    that matter are visible, and every bar carries its value.
    """
    means = MEANS if means is None else means
    fig, ax = plt.subplots(figsize=(10, 3.8))
    colours = plt.get_cmap("tab10").colors
    for m, method, _, x, width, value, first in _reported(ax, means, metrics, ymin):
        ax.bar(x, value - ymin, width, bottom=ymin, color=colours[m % 10], label=method if first else None)
        ax.text(x, value + 0.003, f"{value:.3f}", ha="center", va="bottom", fontsize=6, rotation=90)
    ax.set_xticks(range(len(metrics)), [k.replace("_", " ") for k in metrics])
    ax.set(ylim=(ymin, 1.06), ylabel=f"MVTec AD mean (axis from {ymin})",
           title="Published MVTec AD means (others' numbers, not ours)")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    return fig


def plot_metric_bars(named: Mapping[str, Mapping[str, float | None]],
                     metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap"),
                     ours: Sequence[str] = (), title: str = "", ymin: float = 0.5,
                     errors: Mapping[str, Mapping[str, float | None]] | None = None) -> Figure:
    """Grouped bars, one group per metric and one bar per named method, each bar labelled.

    Methods named in ``ours`` are drawn solid; all others (references: other people's code and
    numbers) are hatched, so a reader never mistakes one for the other. A metric a method did not
    report is marked "n/r" instead of drawn as zero. The axis starts at ``ymin``. ``errors``
    (method -> metric -> sample std over seeds) draws whiskers of +-1 std; a single seed has
    none (None), and then no whisker is drawn rather than a zero one.
    """
    methods = list(named)
    fig, ax = plt.subplots(figsize=(max(7.0, 1.9 * len(metrics) + 1.2 * len(methods)), 3.8))
    colours = plt.get_cmap("tab10").colors
    for m, method, metric, x, width, value, first in _reported(ax, named, metrics, ymin):
        style = {} if method in ours else {"hatch": "//", "edgecolor": "white", "alpha": 0.75}
        std = (errors or {}).get(method, {}).get(metric)
        ax.bar(x, max(value - ymin, 0.0), width, bottom=ymin, color=colours[m % 10],
               label=method + ("" if method in ours else " (reference)") if first else None,
               yerr=std, error_kw={"elinewidth": 0.8, "capsize": 2}, **style)
        text = f"{value:.3f}" + ("" if std is None else f"±{std:.3f}")
        ax.text(x, max(value, ymin) + (std or 0.0) + 0.004, text, ha="center", va="bottom",
                fontsize=6, rotation=90)
    ax.set_xticks(range(len(metrics)), [_label(k) for k in metrics])
    ax.set(ylim=(ymin, 1.08), ylabel=f"metric (axis from {ymin})", title=title)
    ax.legend(fontsize=7, ncol=min(len(methods), 3), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    return fig


def plot_stability(history: Sequence[Mapping[str, Any]],
                   metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap"),
                   split: str = "test") -> Figure:
    """One panel per metric: the per-epoch ``split`` monitor and the validation curve of a run.

    ``split="val"`` draws the validation curve alone, for runs made without the (opt-in) test
    monitor: how far the final epoch is from the best one on the split selection may use.

    The best epoch of the monitor is circled and the final epoch marked with a square; the gap
    between them is in each panel's title. The test monitor only *shows* how stable training
    is: the reported model is the final one (or the best on validation), never the best on test.
    """
    summary = final_vs_best(history, split, metrics)
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 3.0), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        shown = [row.get(split, {}).get(metric, np.nan) for row in history]
        style = SPLIT_STYLES.get(split, "--")
        ax.plot(epochs, shown, style, marker=".", color="C0", label=f"{split} monitor")
        val = [row.get("val", {}).get(metric, np.nan) for row in history]
        if split != "val" and not np.all(np.isnan(val)):
            ax.plot(epochs, val, SPLIT_STYLES["val"], color="C7", label="validation")
        s = summary[metric]
        ax.plot(s["best_epoch"], s["best"], "o", mfc="none", mec="C3", ms=10, label="best epoch")
        ax.plot(epochs[-1], s["final"], "s", color="C2", ms=6, label="final epoch")
        ax.set(title=f"{_label(metric)}: final {s['final']:.3f}, best {s['best']:.3f}", xlabel="epoch")
        ax.title.set_fontsize(8)
    axes[0, 0].set_ylabel("metric")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle("per-epoch validation: the only split a run may select on" if split == "val" else
                 f"per-epoch {split} monitor: plotted only, never used to pick the model", fontsize=9)
    fig.tight_layout()
    return fig


def plot_paper_table(ours: Mapping[str, Mapping[str, Any]] | None = None, ymin: float = 0.75) -> Figure:
    """Per-category image and pixel AUROC of the PRN paper and the unofficial code, and ours if given.

    ``ours`` is the ``"categories"`` part of a ``prn reproduce`` ``summary.json`` (category ->
    metric -> ``{"mean", "std"}``); it is drawn with its standard deviation over seeds. The
    paper's and the unofficial code's numbers are others' (:mod:`prn_core.reference`) and hatched.
    """
    categories = list(PAPER)
    sources: list[tuple[str, Callable[[str, int], tuple[float, float] | None], dict[str, Any]]] = [
        ("PRN paper", lambda c, i: (PAPER[c][i], 0.0), {"color": "C0", "hatch": "//", "edgecolor": "white"}),
        ("unofficial code (leaky)", lambda c, i: (UNOFFICIAL[c][i], 0.0) if c in UNOFFICIAL else None,
         {"color": "C1", "hatch": "//", "edgecolor": "white"}),
    ]
    if ours:
        key = ("image_auroc", "pixel_auroc")

        def _ours(c: str, i: int) -> tuple[float, float] | None:
            entry = ours.get(c, {}).get(key[i])
            return None if entry is None else (entry["mean"], entry["std"] or 0.0)  # None: one seed

        sources.append(("ours (mean ± std over seeds)", _ours, {"color": "C2"}))
    width = 0.8 / len(sources)
    fig, axes = plt.subplots(2, 1, figsize=(12, 6), sharex=True)
    for i, ax in enumerate(axes):
        for s, (name, get, style) in enumerate(sources):
            x = np.arange(len(categories)) - 0.4 + (s + 0.5) * width
            values = [get(c, i) for c in categories]
            keep = [k for k, v in enumerate(values) if v is not None]
            heights = [values[k][0] - ymin for k in keep]
            errors = [values[k][1] for k in keep]
            ax.bar(x[keep], heights, width, bottom=ymin, yerr=errors if ours and s == len(sources) - 1 else None,
                   label=name, alpha=0.85, **style)
        ax.set(ylim=(ymin, 1.01), ylabel=("image" if i == 0 else "pixel") + f" AUROC (from {ymin})")
        ax.grid(axis="y", alpha=0.3)
    axes[1].set_xticks(range(len(categories)), categories, rotation=45, ha="right")
    axes[0].set_title("MVTec AD per category" + ("" if ours else ": others' published numbers, not ours"))
    axes[0].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_ablation_deltas(results: Sequence[Mapping[str, Any]],
                         metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")) -> Figure:
    """Per ablation variant, how much each metric moved against the baseline (one panel per metric).

    ``results`` is the list in an ablation ``summary.json`` (one row per variant and seed). Bars
    are changes of the mean over seeds: right of zero, the variant did better than the baseline;
    left, worse. With several seeds, the whisker is the seed spread of the difference (baseline
    std + variant std, :func:`~prn_core.ablations.ablation_effects`): a bar that ends inside its
    whisker is not a measured effect. The baseline's mean is in each panel's title.
    """
    from prn_core.ablations import ablation_effects, ablation_rows, ablation_stats  # deferred: it imports the trainer

    rows = [(name, deltas) for name, deltas in ablation_rows(results) if name != "baseline"]
    base = {m: v["mean"] for m, v in ablation_stats(results)["baseline"].items()}
    spread = {(e["variant"], e["metric"]): e["spread"] for e in ablation_effects(results)}
    names = [name for name, _ in rows]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.0 * len(metrics), 0.45 * len(names) + 1.6),
                             sharey=True, squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        deltas = np.array([d[metric] for _, d in rows])
        whiskers = [spread[(name, metric)] for name in names]
        xerr = None if None in whiskers else np.array(whiskers)
        ax.barh(range(len(names)), deltas, color=np.where(deltas >= 0, "C2", "C3"), xerr=xerr,
                error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.axvline(0, color="#333333", linewidth=0.8)
        reach = np.abs(deltas) + (0 if xerr is None else xerr)
        limit = max(float(reach.max(initial=0.0)) * 1.35, 0.01)
        for y, d in enumerate(deltas):
            ax.text(d, y, f"{d:+.3f}", va="center", ha="left" if d >= 0 else "right", fontsize=7)
        ax.set(xlim=(-limit, limit), title=f"{_label(metric)} (baseline {base[metric]:.3f})", xlabel="change")
        ax.title.set_fontsize(8)
    axes[0, 0].set_yticks(range(len(names)), names)
    axes[0, 0].invert_yaxis()
    fig.tight_layout()
    return fig


def plot_protocol_parts(parts: Mapping[str, Mapping[str, Any]],
                        metrics: Sequence[str] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")) -> Figure:
    """What the leaky protocol adds to each metric, split into its two leaks (one panel per set).

    ``parts`` is :func:`prn_core.reproduce.protocol_parts`. Per metric three bars: the seen
    anomalies left in test, the epoch picked on test, and their sum; whiskers are the sample std
    over seeds, so a bar inside its whisker is no measured inflation.
    """
    fig, axes = plt.subplots(1, len(parts), figsize=(4.6 * len(parts), 3.6), squeeze=False, sharey=True)
    width = 0.8 / len(PROTOCOL_PARTS)
    for ax, (category, entry) in zip(axes[0], parts.items()):
        for k, (key, label) in enumerate(PROTOCOL_PARTS.items()):
            x = np.arange(len(metrics)) - 0.4 + (k + 0.5) * width
            means = [entry[key][m]["mean"] for m in metrics]
            stds = [entry[key][m]["std"] for m in metrics]
            ax.bar(x, means, width, color=f"C{k}", label=label,
                   yerr=None if None in stds else stds, error_kw={"elinewidth": 0.8, "capsize": 2})
            for xi, v, std in zip(x, means, stds):
                reach = (std or 0.0) if v >= 0 else -(std or 0.0)  # label beyond the whisker
                ax.text(xi, v + reach, f"{v:+.3f}", ha="center", va="bottom" if v >= 0 else "top",
                        fontsize=6, rotation=90)
        ax.axhline(0, color="#333333", linewidth=0.8)
        ax.margins(y=0.25)
        ax.set_xticks(range(len(metrics)), [_label(m) for m in metrics])
        seeds = len(entry["seeds"])
        ax.set_title(f"{category} ({seeds} seed{'s' if seeds != 1 else ''})", fontsize=9)
    axes[0, 0].set_ylabel("leaky minus honest")
    axes[0, 0].legend(fontsize=7, loc="upper left", frameon=False)
    fig.tight_layout()
    return fig


def plot_val_vs_test(record: Mapping[str, Any], metrics: Sequence[str] = ("pixel_auroc", "au_pro", "pixel_ap"),
                     ) -> Figure:
    """Each run's validation score against its real-test score, one panel per metric.

    ``record`` is ``results/experiments/hard_defects.json`` (``benchmarks/hard_defects.py``).
    Validation (held-out normals plus simulated anomalies) is the only split a run may select on;
    a point below the diagonal is a run whose validation over-promised what real defects gave.
    Colour is the hypothesis, marker the dataset, so a change that only makes validation harder
    (moves left) is told apart from one that helps on real defects (moves up).
    """
    runs = record["runs"]
    names = list(dict.fromkeys(r["name"] for r in runs))
    categories = list(dict.fromkeys(r["category"] for r in runs))
    markers = "osD^v<>"
    colours = plt.get_cmap("tab10").colors
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.3 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        points = [(r["val"].get(metric), r["test"][metric]) for r in runs]
        values = [v for pair in points for v in pair if v is not None]
        low = min(values, default=0.0) - 0.02
        ax.plot([low, 1.0], [low, 1.0], color="#999999", linewidth=0.8, linestyle="--")
        for r, (val, test) in zip(runs, points):
            if val is None:
                continue
            ax.scatter(val, test, s=28, color=colours[names.index(r["name"]) % 10],
                       marker=markers[categories.index(r["category"]) % len(markers)],
                       edgecolor="black", linewidth=0.4)
        ax.set(xlim=(low, 1.0), ylim=(low, 1.0), xlabel="validation (simulated anomalies)",
               ylabel="test (real defects)", title=_label(metric))
        ax.set_aspect("equal")
    handles = [plt.Line2D([], [], linestyle="", marker="o", color=colours[i % 10], label=name)
               for i, name in enumerate(names)]
    handles += [plt.Line2D([], [], linestyle="", marker=markers[i % len(markers)], color="#555555",
                           label=category) for i, category in enumerate(categories)]
    fig.legend(handles=handles, fontsize=7, ncol=min(len(handles), 6), loc="lower center", frameon=False)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    return fig


def plot_model_speed(benchmark: Mapping[str, Any], unofficial: Mapping[str, Any] | None = None) -> Figure:
    """Train and eval seconds per image and trainable parameters from ``model_speed.json``.

    Every configuration the benchmark measured is a bar; the unofficial implementation's numbers
    (others', see :data:`prn_core.results.UNOFFICIAL_SPEED`) are hatched, with its measured range
    of training speed as an error bar.
    """
    unofficial = UNOFFICIAL_SPEED if unofficial is None else unofficial
    runs = benchmark["results"]
    names = [f"{r['backbone']}\n{r.get('variant', '')}".strip() for r in runs] + ["unofficial code\nresnet18"]
    train_low, train_high = unofficial["train_s_per_image"]
    panels = [
        ("train s / image", [r["train_s_per_image"] for r in runs], (train_low + train_high) / 2,
         (train_high - train_low) / 2),
        ("eval s / image", [r["eval_s_per_image"] for r in runs], unofficial["eval_s_per_image"], 0.0),
        ("trainable parameters (M)", [r["trainable_parameters"] / 1e6 for r in runs],
         unofficial["trainable_parameters"] / 1e6, 0.0),
    ]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    x = np.arange(len(names))
    for ax, (title, values, theirs, spread) in zip(axes, panels):
        ax.bar(x[:-1], values, color="C0")
        ax.bar(x[-1], theirs, yerr=spread or None, color="C1", hatch="//", edgecolor="white", capsize=3)
        for xi, v in zip(x, [*values, theirs]):
            ax.text(xi, v, f"{v:.2f}" if v < 10 else f"{v:.1f}", ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, names, fontsize=7, rotation=30, ha="right")
        ax.set_title(title, fontsize=9)
    setting = benchmark.get("setting", {})
    size = setting.get("image_size", ["?", "?"])
    fig.suptitle(f"ours (blue, measured by benchmarks/model_speed.py) vs the unofficial code (orange, others' "
                 f"numbers); {size[0]}x{size[1]}, batch {setting.get('batch', '?')}, "
                 f"{setting.get('threads', '?')} CPU threads", fontsize=9)
    fig.tight_layout()
    return fig


def plot_synthesis_speed(benchmark: Mapping[str, Any]) -> Figure:
    """Samples per second for each synthesis step from ``synthesis_speed.json`` (log axis).

    The dashed line is the benchmark's target for the expensive kinds: below it, the data
    loader rather than the model would limit training speed.
    """
    speeds = benchmark["samples_per_s"]
    names = list(speeds)
    best = np.array([speeds[n]["best"] for n in names])
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.4))
    ax.barh(range(len(names)), best, color=["C0" if n.startswith("mix_") else "C4" for n in names])
    for y, v in enumerate(best):
        ax.text(v, y, f" {v:,.0f}/s  ({1000 / v:.2f} ms)", va="center", fontsize=7)
    targets = benchmark.get("targets_samples_per_s", {})
    if targets:
        ax.axvline(min(targets.values()), color="#333333", linestyle="--", linewidth=1,
                   label=f"target {min(targets.values()):.0f}/s")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_yticks(range(len(names)), names)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set(xlim=(None, best.max() * 20), xlabel="samples per second (best of repeats, log scale)",
           title=f"synthesis throughput, {benchmark.get('data', '')}, one thread")
    ax.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def plot_metrics_speed(benchmark: Mapping[str, Any]) -> Figure:
    """Seconds and peak memory of the binned metrics against the exact ones, from ``metrics_speed.json``.

    Binned metrics sort nothing: they count scores into a fixed number of bins, so memory stays
    bounded however many pixels there are. The right panel shows what that costs in accuracy.
    """
    exact = benchmark["exact_reference"]
    errors = benchmark["abs_error_vs_exact"]
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    names = ["binned\n(prn_core.metrics)", "exact\n(sklearn + sorting)"]
    seconds = [benchmark["seconds_all_metrics"]["best"], benchmark["exact_reference_seconds_sklearn_plus_sorted_au_pro"]]
    memory = [benchmark["peak_memory_mib_beyond_inputs"], benchmark["exact_reference_peak_memory_mib"]]
    for ax, values, title in ((axes[0], seconds, "seconds"), (axes[1], memory, "peak memory beyond inputs (MiB)")):
        ax.bar([0, 1], values, color=["C0", "C7"])
        for xi, v in enumerate(values):
            ax.text(xi, v, f"{v:.1f}", ha="center", va="bottom", fontsize=8)
        ax.set_xticks([0, 1], names, fontsize=8)
        ax.set_title(title, fontsize=9)
    keys = list(errors)
    axes[2].barh(range(len(keys)), [max(errors[k], 1e-16) for k in keys], color="C0")
    axes[2].set_xscale("log")
    axes[2].set_yticks(range(len(keys)), [f"{_label(k)}\n(exact {exact[k]:.4f})" for k in keys], fontsize=7)
    axes[2].set_title("|binned - exact|", fontsize=9)
    size = benchmark.get("image_size", ["?", "?"])
    fig.suptitle(f"all metrics on {benchmark.get('maps', '?')} maps of {size[0]}x{size[1]} "
                 f"({benchmark.get('pixels', 0) / 1e6:.1f} M pixels), one CPU thread", fontsize=9)
    fig.tight_layout()
    return fig
