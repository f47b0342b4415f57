"""Reading the result files that the CLI writes, for the book's tables and figures.

Long runs happen in the CLI (``prn train``, ``prn reproduce``, ``prn ablate``, ``benchmarks/``)
and write JSON; chapters only read it. A chapter must also render before a run has finished,
so :func:`find_result` answers ``None`` for a missing file instead of raising, and the chapter
prints the command that makes it.

Other people's numbers (``TEAM_REFERENCES``, ``UNOFFICIAL_SPEED``: other code, measured by us
on this machine kind) live in :mod:`prn_core.reference`; every number of ours comes from a JSON
file.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .reference import (  # re-exported: the chapters read them from here
    TEAM_REFERENCE_SOURCE,
    TEAM_REFERENCES,
    UNOFFICIAL_AU_PRO_SWINGS,
    UNOFFICIAL_SPEED,
    UNOFFICIAL_SPEED_SOURCE,
)

__all__ = ["METRICS", "METRIC_LABELS", "PROTOCOL_PARTS", "COMMANDS", "TEAM_REFERENCES", "TEAM_REFERENCE_SOURCE", "UNOFFICIAL_AU_PRO_SWINGS",
           "UNOFFICIAL_SPEED", "UNOFFICIAL_SPEED_SOURCE", "find_result", "load_result", "load_results", "provenance",
           "results_table", "format_table", "defect_type_lines", "final_vs_best", "seed_means", "seed_row",
           "stat_means"]

METRICS: tuple[str, ...] = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")
METRIC_LABELS: dict[str, str] = {"image_auroc": "I-AUROC", "pixel_auroc": "P-AUROC", "au_pro": "AU-PRO",
                                 "pixel_ap": "P-AP", "image_f1_max": "I-F1max"}
# the parts of :func:`prn_core.reproduce.protocol_parts`, as tables and figures name them
PROTOCOL_PARTS: dict[str, str] = {"seen_in_test": "seen anomalies left in test",
                                  "picked_on_test": "epoch picked on test", "total": "leaky minus honest"}

# result file (relative to results/) -> the command that produces it, printed while it is missing.
# Runs write to runs/ (checkpoints stay there); results/README.md says what is copied to results/.
COMMANDS: dict[str, str] = {
    "cpu/bottle/result.json": "prn train --profile cpu --data-root ../shared/data/mvtec --category bottle "
                              "--set train.threads=1 --out runs/cpu/bottle/seed0  "
                              "# then copy result.json, report.md and *.png to results/cpu/bottle/",
    "cpu/magnetic_tile/result.json": "prn train --profile cpu --data-root ../shared/data/mtd --category magnetic_tile "
                                     "--set train.monitor_test=false --out runs/cpu/magnetic_tile/seed0  "
                                     "# then copy result.json, report.md and *.png to results/cpu/magnetic_tile/",
    "cpu/magnetic_tile_aspect/result.json": "prn train --profile cpu --data-root ../shared/data/mtd "
                                            "--category magnetic_tile --image-size auto --keep-aspect "
                                            "--set train.monitor_test=false --out runs/cpu/magnetic_tile_aspect/seed0  "
                                            "# then copy to results/cpu/magnetic_tile_aspect/",
    "reproduce/summary.json": "prn reproduce --profile full --data-root /content/mvtec --categories all "
                              "--seeds 0 1 2 --out results/reproduce",
    "ablations/ci/summary.json": "prn ablate --profile ci --variants all --out runs/ablations/ci  "
                                 "# then copy summary.json to results/ablations/ci/",
    "benchmarks/model_speed.json": "python benchmarks/model_speed.py",
    "benchmarks/synthesis_speed.json": "python benchmarks/synthesis_speed.py",
    "benchmarks/metrics_speed.json": "python benchmarks/metrics_speed.py",
}
# the three-seed cpu-profile sets, honest and leaky (chapter 7)
COMMANDS.update({
    f"cpu/{name}{suffix}/summary.json":
        f"prn reproduce --profile cpu{flag} --data-root ../shared/data/{root} --categories {name} "
        f"--seeds 0 1 2 --out runs/cpu/{name}{suffix}  "
        f"# then copy summary.json, table.md and each seed's result.json to results/cpu/{name}{suffix}/"
    for name, root in (("bottle", "mvtec"), ("magnetic_tile", "mtd"))
    for suffix, flag in (("", ""), ("_leaky", " --leaky"))})

def find_result(path: str | Path) -> Any | None:
    """The JSON at ``path`` (or ``path/result.json`` for a folder); ``None`` when it does not exist yet.

    A file that exists but is not valid JSON is an error, not a missing result.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "result.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); rerun the command that writes it") from err


def load_result(name: str, root: str | Path = "results") -> Any | None:
    """The result file ``root/name``, or ``None`` after printing the command that produces it.

    ``name`` is a key of :data:`COMMANDS` (a path relative to ``results/``), so a chapter can
    render before a long run has finished and tell its reader how to make the missing file.
    """
    result = find_result(Path(root) / name)
    if result is None:
        command = COMMANDS.get(name, "(no command registered in prn_core.results.COMMANDS)")
        print(f"results/{name} does not exist yet. It is produced by:\n  {command}")
    return result


def load_results(pattern: str, root: str | Path = ".") -> list[dict[str, Any]]:
    """Every JSON file under ``root`` matching the glob ``pattern``, in sorted path order.

    A file holding a list (an ablation ``summary.json``) contributes each of its entries. Each
    dict gets a ``"file"`` key (its path relative to ``root``) so a table can say where a row
    came from. No match gives an empty list: the caller decides what a missing run means.
    """
    root = Path(root)
    loaded = []
    for path in sorted(p for p in root.glob(pattern) if p.is_file()):
        result = find_result(path)
        entries = result if isinstance(result, list) else [result]
        if not all(isinstance(e, dict) for e in entries):
            raise ValueError(f"{path} holds {type(result).__name__} entries; expected a JSON object or a list of them")
        loaded.extend({**entry, "file": str(path.relative_to(root))} for entry in entries)
    return loaded


def provenance(result: Mapping[str, Any]) -> str:
    """What produced a result, so nobody has to type it next to a number.

    First line: profile, category, seed and protocol (those recorded), machine, training time
    and commit; second line: the command.
    """
    hw = result.get("hardware", {})
    machine = (f"{hw.get('gpu') or str(hw.get('cpu_count', '?')) + ' CPUs'}, torch {hw.get('torch', '?')}, "
               f"{hw.get('torch_threads', '?')} threads")
    minutes = result.get("train_seconds")
    parts = [f"{key} {result[key]}" for key in ("profile", "category", "seed", "protocol") if key in result]
    parts += [machine, f"training {minutes / 60:.0f} min" if minutes is not None else "training time unknown",
              f"commit {str(result.get('git_commit', 'unknown'))[:12]}"]
    return " | ".join(parts) + f"\ncommand: {result.get('command') or 'not recorded'}"


def results_table(named: Mapping[str, Mapping[str, float | None]], metrics: Sequence[str] = METRICS,
                  digits: int = 3,
                  errors: Mapping[str, Mapping[str, float | None]] | None = None) -> list[list[str]]:
    """Rows (header first) of formatted metrics per named method; a missing metric shows as ``-``.

    ``errors`` (method -> metric -> sample std over seeds, as :func:`seed_means` gives) appends
    ``± std`` to a cell; a single seed (None) gets no spread rather than a made-up zero.

    >>> results_table({"ours": {"image_auroc": 0.99512, "pixel_auroc": 0.5}}, ("image_auroc", "au_pro"))
    [['method', 'I-AUROC', 'AU-PRO'], ['ours', '0.995', '-']]
    >>> results_table({"ours": {"au_pro": 0.9}}, ("au_pro",), errors={"ours": {"au_pro": 0.0123}})[1]
    ['ours', '0.900 ± 0.012']
    """
    def cell(name: str, metric: str, value: float | None) -> str:
        if value is None:
            return "-"
        std = (errors or {}).get(name, {}).get(metric)
        return f"{value:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}")

    rows = [["method", *(METRIC_LABELS.get(m, m) for m in metrics)]]
    for name, values in named.items():
        rows.append([name, *(cell(name, m, values.get(m)) for m in metrics)])
    return rows


def format_table(rows: Sequence[Sequence[str]], markdown: bool = False) -> str:
    """Rows as aligned plain text (for a checked cell) or as a Markdown table (for display).

    >>> print(format_table([["method", "I-AUROC"], ["ours", "0.995"]]))
    method  I-AUROC
    ours    0.995
    """
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows[1:]])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def defect_type_lines(by_type: Mapping[str, Mapping[str, float]], metrics: Sequence[str] = METRICS) -> list[str]:
    """One printed line per defect type (``EvalResult.by_defect_type()``): name, count, metrics.

    >>> defect_type_lines({"crack": {"count": 3, "au_pro": 0.5}}, metrics=("au_pro",))
    ['           crack (  3): au_pro 0.500']
    """
    return [f"{defect:>16} ({m['count']:>3}): " + "  ".join(f"{k} {m[k]:.3f}" for k in metrics)
            for defect, m in by_type.items()]


def final_vs_best(history: Sequence[Mapping[str, Any]], split: str = "test",
                  metrics: Sequence[str] = METRICS) -> dict[str, dict[str, float]]:
    """Per metric: the final epoch's value, the best over epochs, the best epoch, and the gap.

    This measures stability *after the fact*; it must never pick the reported model (that would
    be selection on the test set). Epochs that did not log ``split`` are skipped.

    >>> h = [{"epoch": 1, "test": {"au_pro": 0.8}}, {"epoch": 2, "test": {"au_pro": 0.9}},
    ...      {"epoch": 3, "test": {"au_pro": 0.85}}]
    >>> final_vs_best(h, metrics=("au_pro",))["au_pro"]
    {'final': 0.85, 'best': 0.9, 'best_epoch': 2, 'gap': 0.05}
    """
    logged = [row for row in history if split in row]
    if not logged:
        raise ValueError(f"no epoch in the history logged {split!r} metrics; "
                         f"train with --set train.monitor_test=true to record the test monitor")
    out = {}
    for m in metrics:
        values = [(row[split][m], row["epoch"]) for row in logged]
        best, best_epoch = max(values, key=lambda v: v[0])
        final = values[-1][0]
        out[m] = {"final": final, "best": best, "best_epoch": best_epoch, "gap": round(best - final, 12)}
    return out


def seed_means(summary: Mapping[str, Any], category: str,
               metrics: Sequence[str] = METRICS) -> tuple[dict[str, float], dict[str, float | None]]:
    """(means, sample stds) of one category of a ``prn reproduce`` ``summary.json``, for
    :func:`prn_core.viz.plot_metric_bars` and :func:`results_table`."""
    return stat_means(summary["categories"][category], metrics)


def stat_means(stats: Mapping[str, Mapping[str, Any]],
               metrics: Sequence[str] = METRICS) -> tuple[dict[str, float], dict[str, float | None]]:
    """(means, sample stds) of a metric -> :func:`~prn_core.reproduce.seed_stats` mapping, such as
    one part of :func:`~prn_core.reproduce.protocol_parts`."""
    return ({m: stats[m]["mean"] for m in metrics}, {m: stats[m]["std"] for m in metrics})


def seed_row(summary: Mapping[str, Any] | None, category: str, label: str,
             metrics: Sequence[str] = METRICS) -> tuple[dict, dict, dict[str, float]]:
    """One category of a ``prn reproduce`` ``summary.json`` as a table row and its spread.

    Returns ``({name: means}, {name: sample stds}, {metric: worst seed})`` with ``name`` saying
    how many seeds the mean is over, ready for :func:`results_table` (``errors=``) and
    :func:`prn_core.viz.plot_metric_bars`; three empty dicts when there is no summary yet.
    """
    if not summary:
        return {}, {}, {}
    means, stds = seed_means(summary, category, metrics)
    entry = summary["categories"][category]
    name = f"{label}, mean of {len(entry['seeds'])} seeds"
    return {name: means}, {name: stds}, {m: entry[m]["worst"] for m in metrics}
