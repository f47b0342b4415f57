"""Ablations: which of PRN's parts matter, as named config changes (a registry, not if-chains).

Each variant is a set of dotted overrides applied to one base config; :func:`run_ablations`
trains them all with the same seed and data, so the only difference is the variant. Variants
run through a launcher (:mod:`prn_core.launch`, local or Ray); a finished variant is reused
only when its folder holds the same config, so an interrupted sweep resumes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from .config import PRNConfig, override
from .launch import Job, LaunchOptions, run_jobs
from .runinfo import write_json_atomic
from .train import resolve_config

__all__ = ["ABLATIONS", "run_ablations", "ablation_rows"]

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


def run_ablations(cfg: PRNConfig, names: Sequence[str], out_dir: str | Path, progress: bool = True,
                  command: str | None = None, launcher: str = "local",
                  options: LaunchOptions | None = None) -> list[dict[str, Any]]:
    """Train and evaluate each named variant of ``cfg``; writes ``summary.json`` in ``out_dir``.

    The summary is written only when every variant finished; otherwise
    :class:`prn_core.launch.RunsFailedError` says which did not, and why.
    """
    unknown = [n for n in names if n not in ABLATIONS]
    if unknown:
        raise ValueError(f"unknown ablation(s) {unknown}; choose from {sorted(ABLATIONS)}")
    out_dir = Path(out_dir)
    jobs = [Job(name, resolve_config(override(cfg, **ABLATIONS[name][1])), out_dir / name, command)
            for name in names]
    options = options or LaunchOptions(progress=progress)
    results = []
    for name, result in zip(names, run_jobs(jobs, launcher, options)):
        results.append({"variant": name, "description": ABLATIONS[name][0], "overrides": ABLATIONS[name][1],
                        "metrics": result["metrics"], "train_seconds": result["train_seconds"],
                        "profile": result["profile"], "category": result["category"], "seed": result["seed"],
                        "git_commit": result["git_commit"], "hardware": result["hardware"], "command": command})
    write_json_atomic(out_dir / "summary.json", results)
    return results


def ablation_rows(results: Sequence[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """(variant, metric deltas against the baseline) for a table or a figure."""
    base = next((r["metrics"] for r in results if r["variant"] == "baseline"), None)
    if base is None:
        raise ValueError("the ablation results have no 'baseline' variant to compare against")
    return [(r["variant"], {k: r["metrics"][k] - base[k] for k in base}) for r in results]
