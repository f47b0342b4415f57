"""Many categories and seeds in one go, summarised against the paper.

Each (category, seed) run writes its own ``result.json`` (see :func:`prn_core.train.run`) and
is reused when it holds the same config, so an interrupted reproduction picks up where it
stopped. The runs go through a launcher (:mod:`prn_core.launch`): one after another here, or as
Ray tasks across GPUs and machines. The summary is written only when every run has finished.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import PRNConfig
from .launch import Job, LaunchOptions, run_jobs
from .reference import MEANS, PAPER, UNOFFICIAL
from .atomic import write_json_atomic, write_text_atomic
from .prepare import resolve_config

__all__ = ["reproduce", "reproduce_jobs", "summarise", "seed_stats", "protocol_gap", "protocol_parts",
           "markdown_table"]

METRICS = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap", "image_f1_max")


def reproduce_jobs(cfg: PRNConfig, categories: Sequence[str], seeds: Sequence[int], out_dir: Path,
                   command: str | None = None) -> list[Job]:
    """One job per category x seed, in ``<out_dir>/<category>/seed<seed>``."""
    return [
        Job(f"{category}/seed{seed}",
            resolve_config(replace(cfg, seed=seed, data=replace(cfg.data, category=category))),
            Path(out_dir) / category / f"seed{seed}", command)
        for category in categories for seed in seeds
    ]


def reproduce(cfg: PRNConfig, categories: Sequence[str], seeds: Sequence[int], out_dir: Path,
              command: str | None = None, launcher: str = "local",
              options: LaunchOptions = LaunchOptions()) -> str:
    """Train and evaluate every category x seed; write ``summary.json`` and ``table.md``.

    Raises :class:`prn_core.launch.RunsFailedError` (and writes no summary) when a run fails.
    """
    out_dir = Path(out_dir)
    results = run_jobs(reproduce_jobs(cfg, categories, seeds, out_dir, command), launcher, options)
    summary = summarise(results)
    write_json_atomic(out_dir / "summary.json", summary)
    table = markdown_table(summary)
    write_text_atomic(out_dir / "table.md", table)
    return table


def summarise(results: Sequence[dict]) -> dict:
    """Mean and sample std (ddof=1; None for one seed) over seeds per category, and the mean
    over categories."""
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
            "seeds": entry["seeds"], **{m: seed_stats(entry[m]) for m in METRICS}}
    if per_category:
        summary["mean"] = {m: float(np.mean([c[m]["mean"] for c in summary["categories"].values()])) for m in METRICS}
    return summary


def seed_stats(values: Sequence[float]) -> dict:
    """Mean, sample std (ddof=1: an estimate of the spread; None for one seed), worst seed, values.

    >>> seed_stats([0.9, 0.8, 1.0])["worst"], round(seed_stats([0.9, 0.8, 1.0])["std"], 3)
    (0.8, 0.1)
    """
    values = [float(v) for v in values]
    return {"mean": float(np.mean(values)),
            "std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
            "worst": min(values), "values": values}


def protocol_gap(honest: dict, leaky: dict) -> dict:
    """What the leaky protocol adds, per category and metric: leaky minus honest, paired by seed.

    Both arguments are ``summary.json`` dicts of :func:`summarise` over the same seeds; the
    result holds :func:`seed_stats` of the per-seed differences, so a gap is read against the
    spread of the gap itself.
    """
    gap: dict = {}
    for category, h in honest["categories"].items():
        if category not in leaky["categories"]:
            continue
        lk = leaky["categories"][category]
        seeds = [s for s in h["seeds"] if s in lk["seeds"]]
        if not seeds:
            raise ValueError(f"{category}: the honest and leaky summaries share no seed")
        gap[category] = {"seeds": seeds, **{
            m: seed_stats([lk[m]["values"][lk["seeds"].index(s)] - h[m]["values"][h["seeds"].index(s)]
                           for s in seeds])
            for m in METRICS}}
    return gap


def protocol_parts(honest: Sequence[dict], leaky: Sequence[dict]) -> dict:
    """The leaky gain split into its two leaks, per category and metric, paired by seed.

    ``honest`` (``honest-final`` runs) and ``leaky`` are ``result.json`` dicts. The same seed
    trains the same model under both protocols (only what is scored differs), so the leaky run's
    final epoch is the honest model scored on a test set that holds the seen anomalies: ``seen_in_test`` is that minus the
    honest result, ``picked_on_test`` is the epoch chosen on test minus the final epoch, and
    ``total`` is their sum (what :func:`protocol_gap` measures). ``same_training`` says whether
    the validation history of every pair agrees to 1e-6, the premise of the split; when it does
    not, the parts also hold training noise.
    """
    by_key = {(r["category"], r["seed"]): r for r in honest}
    parts: dict = {}
    for lk in sorted(leaky, key=lambda r: (r["category"], r["seed"])):
        h = by_key.get((lk["category"], lk["seed"]))
        if h is None:
            continue
        if lk.get("protocol") != "leaky" or h.get("protocol") == "leaky":
            raise ValueError(f"{lk['category']} seed {lk['seed']}: protocol_parts needs an honest and a "
                             "leaky run; check which result.json went where")
        if h.get("selection", "final") != "final":
            raise ValueError(f"{lk['category']} seed {lk['seed']}: the honest run selected epoch "
                             f"{h.get('selected_epoch')} on {h['selection']}, so it is not the leaky run's "
                             "final epoch; compare with an honest-final run")
        final = lk["history"][-1].get("test")
        if final is None:
            raise ValueError(f"{lk['category']} seed {lk['seed']}: the leaky run has no per-epoch test "
                             "metrics in its history")
        entry = parts.setdefault(lk["category"], {"seeds": [], "same_training": True, "rows": []})
        entry["seeds"].append(lk["seed"])
        entry["same_training"] &= _same_validation(h["history"], lk["history"])
        entry["rows"].append({m: (final[m] - h["metrics"][m], lk["metrics"][m] - final[m]) for m in METRICS})
    if not parts:
        raise ValueError("the honest and leaky runs share no (category, seed)")
    for entry in parts.values():
        rows = entry.pop("rows")
        entry["seen_in_test"] = {m: seed_stats([r[m][0] for r in rows]) for m in METRICS}
        entry["picked_on_test"] = {m: seed_stats([r[m][1] for r in rows]) for m in METRICS}
        entry["total"] = {m: seed_stats([sum(r[m]) for r in rows]) for m in METRICS}
    return parts


def _same_validation(a: Sequence[dict], b: Sequence[dict], tol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(
        abs(x["val"][m] - y["val"][m]) <= tol for x, y in zip(a, b) for m in x["val"])


def _mean_std(stat: dict) -> str:
    return f"{stat['mean']:.3f}" + ("" if stat["std"] is None else f" ± {stat['std']:.3f}")


def _pair(means: dict[str, float | None]) -> str:
    keys = ("image_auroc", "pixel_auroc")
    return "/".join("-" if means[k] is None else f"{means[k]:.3f}" for k in keys)


def markdown_table(summary: dict) -> str:
    """Ours (mean +- std over seeds) beside the paper and the unofficial code.

    The published MVTec AD means stand beside our mean only when every category is an MVTec AD
    one; a magnetic-tile mean next to them would compare different datasets.
    """
    lines = [
        "| category | I-AUROC | P-AUROC | AU-PRO | P-AP | paper I/P | unofficial I/P |",
        "|---|---|---|---|---|---|---|",
    ]
    for category, c in summary["categories"].items():
        cells = [_mean_std(c[m]) for m in ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")]
        paper = "/".join(f"{v:.3f}" for v in PAPER[category]) if category in PAPER else "-"
        unoff = "/".join(f"{v:.3f}" for v in UNOFFICIAL[category]) if category in UNOFFICIAL else "-"
        lines.append(f"| {category} | {' | '.join(cells)} | {paper} | {unoff} |")
    if "mean" in summary:
        m = summary["mean"]
        mvtec = all(category in PAPER for category in summary["categories"])  # else not comparable
        paper, unoff = ((_pair(MEANS["PRN paper"]), _pair(MEANS["unofficial PRNet (leaky)"])) if mvtec
                        else ("-", "-"))
        keys = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")
        ours = " | ".join(f"{m[k]:.3f}" for k in keys)
        lines.append(f"| **mean** | {ours} | {paper} | {unoff} |")
    return "\n".join(lines) + "\n"
