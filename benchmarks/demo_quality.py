"""Does `prn demo` train a model that detects, within minutes, on every seed?

Runs the demo (``ci`` profile on the embedded demo data, honest protocol) exactly as
``prn demo --seed S`` does, for seeds 0, 1 and 2 one after another, and records per seed the
training and wall-clock minutes, the test metrics, and the training-free residual detector's
metrics on the same test split. The targets come from the product's promise: a reader who runs
the demo on a laptop CPU sees a detector that is clearly better than doing nothing clever.
Writes results/benchmarks/demo_quality.json.

    python benchmarks/demo_quality.py [--seeds 0 1 2] [--out-runs runs/demo_quality]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from prn_core.cli import main as prn
from prn_core.runinfo import git_commit, hardware, write_json_atomic

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "demo_quality.json"
TARGETS = {"image_auroc": 0.97, "pixel_auroc": 0.97, "au_pro": 0.90}
MAX_TRAIN_MINUTES = 3.0
COMPARED = ("image_auroc", "pixel_auroc", "pixel_ap", "au_pro")


def one_seed(seed: int, runs: Path) -> dict:
    out = runs / f"seed{seed}"
    start = time.perf_counter()
    if prn(["demo", "--seed", str(seed), "--out", str(out)]) != 0:
        raise SystemExit(f"prn demo --seed {seed} failed")
    wall = time.perf_counter() - start
    result = json.loads((out / "result.json").read_text())
    metrics, baseline = result["metrics"], result["baseline_metrics"]
    return {
        "seed": seed,
        "train_minutes": result["train_seconds"] / 60,
        "wall_minutes": wall / 60,
        "metrics": metrics,
        "baseline_metrics": baseline,
        "beats_baseline": {k: metrics[k] > baseline[k] for k in COMPARED},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out-runs", type=Path, default=REPO / "runs" / "demo_quality")
    args = parser.parse_args()
    rows = [one_seed(seed, args.out_runs) for seed in args.seeds]
    summary = {
        key: {"mean": sum(r["metrics"][key] for r in rows) / len(rows),
              "worst": min(r["metrics"][key] for r in rows)}
        for key in COMPARED
    }
    worst_minutes = max(r["train_minutes"] for r in rows)
    passed = {
        **{f"{k} >= {v}": summary[k]["worst"] >= v for k, v in TARGETS.items()},
        f"train minutes <= {MAX_TRAIN_MINUTES}": worst_minutes <= MAX_TRAIN_MINUTES,
        "beats the training-free baseline on every metric, every seed":
            all(all(r["beats_baseline"].values()) for r in rows),
    }
    report = {
        "what": "prn demo (ci profile, demo_washer, honest protocol) per seed, with the "
                "training-free residual baseline on the same test split",
        "command": "python benchmarks/demo_quality.py --seeds " + " ".join(map(str, args.seeds)),
        "profile": "ci",
        "git_commit": git_commit(),
        "hardware": hardware(),
        "targets": {**TARGETS, "train_minutes": MAX_TRAIN_MINUTES},
        "seeds": rows,
        "summary": summary,
        "worst_train_minutes": worst_minutes,
        "passed": passed,
    }
    write_json_atomic(OUT, report)
    print(json.dumps({"summary": summary, "passed": passed}, indent=2))


if __name__ == "__main__":
    main()
