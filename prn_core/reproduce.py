"""Many categories and seeds in one go, summarised against the paper.

Each (category, seed) run writes its own ``result.json`` (see :func:`prn_core.train.run`) and
is skipped when already finished, so an interrupted reproduction picks up where it stopped.
"""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import PRNConfig
from .reference import PAPER, UNOFFICIAL
from .runinfo import write_json_atomic
from .train import RESULT, run

__all__ = ["reproduce", "summarise", "markdown_table"]

METRICS = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap", "image_f1_max")


def reproduce(cfg: PRNConfig, categories: Sequence[str], seeds: Sequence[int], out_dir: Path,
              command: str | None = None) -> str:
    """Train and evaluate every category x seed; write ``summary.json`` and ``table.md``."""
    out_dir = Path(out_dir)
    results = []
    for category in categories:
        for seed in seeds:
            run_cfg = replace(cfg, seed=seed, data=replace(cfg.data, category=category))
            run_dir = out_dir / category / f"seed{seed}"
            done = run_dir / RESULT
            if done.exists():
                results.append(json.loads(done.read_text()))
                continue
            _, _, result = run(run_cfg, run_dir, resume=True, command=command)
            results.append(result)
    summary = summarise(results)
    write_json_atomic(out_dir / "summary.json", summary)
    table = markdown_table(summary)
    (out_dir / "table.md").write_text(table)
    return table


def summarise(results: Sequence[dict]) -> dict:
    """Mean and std over seeds per category, and the mean over categories."""
    per_category: dict[str, dict] = {}
    for r in results:
        per_category.setdefault(r["category"], {"seeds": [], **{m: [] for m in METRICS}})
        entry = per_category[r["category"]]
        entry["seeds"].append(r["seed"])
        for m in METRICS:
            entry[m].append(r["metrics"].get(m, float("nan")))
    summary = {"categories": {}, "profile": results[0]["profile"] if results else None}
    for category, entry in per_category.items():
        summary["categories"][category] = {
            "seeds": entry["seeds"],
            **{m: {"mean": float(np.mean(entry[m])), "std": float(np.std(entry[m])), "values": entry[m]} for m in METRICS},
        }
    if per_category:
        summary["mean"] = {m: float(np.mean([c[m]["mean"] for c in summary["categories"].values()])) for m in METRICS}
    return summary


def markdown_table(summary: dict) -> str:
    """Ours (mean +- std over seeds) beside the paper and the unofficial code."""
    lines = [
        "| category | I-AUROC | P-AUROC | AU-PRO | P-AP | paper I/P | unofficial I/P |",
        "|---|---|---|---|---|---|---|",
    ]
    for category, c in summary["categories"].items():
        cells = [f"{c[m]['mean']:.3f} ± {c[m]['std']:.3f}" for m in ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")]
        paper = "/".join(f"{v:.3f}" for v in PAPER[category]) if category in PAPER else "-"
        unoff = "/".join(f"{v:.3f}" for v in UNOFFICIAL[category]) if category in UNOFFICIAL else "-"
        lines.append(f"| {category} | {' | '.join(cells)} | {paper} | {unoff} |")
    if "mean" in summary:
        m = summary["mean"]
        lines.append(f"| **mean** | {m['image_auroc']:.3f} | {m['pixel_auroc']:.3f} | {m['au_pro']:.3f} | {m['pixel_ap']:.3f} | 0.994/0.990 | 0.949/0.962 |")
    return "\n".join(lines) + "\n"
