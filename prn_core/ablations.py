"""Ablations: which of PRN's parts matter, as named config changes (a registry, not if-chains).

Each variant is a set of dotted overrides applied to one base config; :func:`run_ablations`
trains them all with the same seeds and data, so the only difference is the variant, and with
several seeds a difference can be read against the spread between seeds. Variants
run through a launcher (:mod:`prn_core.launch`, local or Ray); a finished variant is reused
only when its folder holds the same config, so an interrupted sweep resumes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .config import PRNConfig, override
from .launch import Job, LaunchOptions, run_jobs
from .reproduce import seed_stats
from .runinfo import write_json_atomic
from .prepare import resolve_config

__all__ = ["ABLATIONS", "ablation_jobs", "run_ablations", "ablation_stats", "ablation_rows",
           "ablation_effects", "ablation_table"]

# name: (what it tests, overrides)
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = {
    "baseline": ("the profile as it is", {}),
    "patch_residual": ("nearest prototype per location instead of per image", {"model.residual": "patch"}),
    "shared_fusion": ("one MSF block for features and residuals", {"model.share_fusion": True}),
    "single_patch_size": ("MSA with one patch size instead of several", {"model.attention_patch_sizes": (2,)}),
    "no_residuals": ("features only: no prototypes, no residual stream", {"model.use_residuals": False}),
    "no_msf": ("per-scale 1x1 convs instead of multi-scale fusion", {"model.use_msf": False}),
    "no_msa": ("no multi-size self-attention", {"model.attention_layers": 0}),
    # The seen anomalies stay out of test (num_seen unchanged) but never enter training, and their
    # share goes to simulated ones, so the variant is scored on the baseline's test files.
    "no_seen": ("no real anomalies in training: simulated ones only",
                {"synthesis.seen_weight": 0.0, "synthesis.simulated_weight": 1.0}),
    "no_extended": ("seen anomalies as they are, never pasted", {"synthesis.extended_prob": 0.0}),
    "no_simulated": ("no Perlin-texture anomalies", {"synthesis.simulated_weight": 0.0}),
    "max_score": ("image score = max of the smoothed map, not top-k mean", {"model.score": "max_smoothed"}),
}


def ablation_jobs(cfg: PRNConfig, names: Sequence[str], seeds: Sequence[int], out_dir: str | Path,
                  command: str | None = None) -> list[Job]:
    """One job per variant x seed, in ``<out_dir>/<variant>/seed<seed>``."""
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; choose from {sorted(ABLATIONS)}")
    if not seeds:
        raise ValueError("no seeds given; pass at least one, e.g. --seeds 0 1 2")
    return [Job(f"{name}/seed{seed}",
                resolve_config(override(cfg, seed=seed, **ABLATIONS[name][1])),
                Path(out_dir) / name / f"seed{seed}", command)
            for name in names for seed in seeds]


def run_ablations(cfg: PRNConfig, names: Sequence[str], out_dir: str | Path, progress: bool = True,
                  command: str | None = None, launcher: str = "local",
                  options: LaunchOptions | None = None,
                  seeds: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Train and evaluate each named variant of ``cfg`` for every seed (default: ``cfg.seed``).

    Writes ``summary.json`` in ``out_dir``: one row per variant and seed. It is written only
    when every run finished; otherwise :class:`prn_core.launch.RunsFailedError` says which did
    not, and why.
    """
    seeds = [cfg.seed] if seeds is None else list(seeds)
    jobs = ablation_jobs(cfg, names, seeds, out_dir, command)
    options = options or LaunchOptions(progress=progress)
    results = []
    for job, result in zip(jobs, run_jobs(jobs, launcher, options)):
        name = job.name.split("/")[0]
        results.append({"variant": name, "description": ABLATIONS[name][0], "overrides": ABLATIONS[name][1],
                        "metrics": result["metrics"], "train_seconds": result["train_seconds"],
                        "profile": result["profile"], "category": result["category"], "seed": result["seed"],
                        "git_commit": result["git_commit"], "hardware": result["hardware"], "command": command,
                        "test_files": len(result["split"]["files"]["test"])})
    write_json_atomic(Path(out_dir) / "summary.json", results)
    return results


def ablation_stats(results: Sequence[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """variant -> metric -> :func:`~prn_core.reproduce.seed_stats` over that variant's seeds."""
    by_variant: dict[str, list[dict[str, float]]] = {}
    for r in results:
        by_variant.setdefault(r["variant"], []).append(r["metrics"])
    return {name: {m: seed_stats([row[m] for row in rows]) for m in rows[0]}
            for name, rows in by_variant.items()}


def ablation_rows(results: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """(variant, change of each metric's mean over seeds against the baseline's mean)."""
    stats = ablation_stats(results)
    if "baseline" not in stats:
        raise ValueError("the ablation results have no 'baseline' variant to compare against")
    base = stats["baseline"]
    return [(name, {m: v["mean"] - base[m]["mean"] for m, v in s.items() if m in base})
            for name, s in stats.items()]


def ablation_effects(results: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each variant's change per metric, and whether it is larger than the seed spread.

    The spread of a difference is the baseline's sample std plus the variant's. A change counts
    as real (``beyond_spread``) only when it exceeds that sum, a deliberately strict rule for
    three seeds; with one seed there is no spread and ``beyond_spread`` is None.
    """
    stats = ablation_stats(results)
    base = stats["baseline"]
    effects = []
    for name, deltas in ablation_rows(results):
        for metric, delta in deltas.items():
            stds = (base[metric]["std"], stats[name][metric]["std"])
            spread = None if None in stds else stds[0] + stds[1]
            effects.append({"variant": name, "metric": metric, "delta": delta, "spread": spread,
                            "beyond_spread": None if spread is None else abs(delta) > spread})
    return effects


def ablation_table(results: Sequence[dict[str, Any]], metrics: Sequence[str],
                   digits: int = 3) -> list[list[str]]:
    """Rows (header first) of each variant's mean +- sample std over seeds, for a checked cell.

    With one seed there is no spread, and only the mean is shown.

    >>> rows = [{"variant": "baseline", "seed": s, "metrics": {"au_pro": v}}
    ...         for s, v in enumerate([0.90, 0.92, 0.94])]
    >>> ablation_table(rows, ["au_pro"])
    [['variant', 'au_pro'], ['baseline', '0.920 ± 0.020']]
    """
    stats = ablation_stats(results)
    table = [["variant", *metrics]]
    for name, per_metric in stats.items():
        cells = []
        for metric in metrics:
            mean, std = per_metric[metric]["mean"], per_metric[metric]["std"]
            cells.append(f"{mean:.{digits}f}" + ("" if std is None else f" ± {std:.{digits}f}"))
        table.append([name, *cells])
    return table
