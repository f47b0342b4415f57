"""Where a model fails on real defects: every metric per defect type, for finished runs.

A whole-test-set number hides which defects a model misses. This evaluates each run folder's
``model.pt`` on its own (leak-free) test split, as ``prn evaluate`` does, and breaks the metrics
down by defect type, each type against all the test normals
(:func:`prn_core.metrics.metrics_by_group`). It trains nothing. Runs made since the breakdown
entered the trainer already hold it in ``result.json`` (``metrics_by_defect_type``); this
script gives it for older runs too, on the code of one commit. Writes
results/experiments/defect_types.json.

    python benchmarks/defect_types.py baseline=runs/cpu/magnetic_tile/magnetic_tile/seed0 \
        shading=runs/hard/magnetic_tile_shading/seed0 [--out results/experiments/defect_types.json]

``--append`` adds runs to an existing file (a run of the same name and seed is replaced), so a
run that finishes later does not mean re-scoring every other; each call's command is kept, and
each run records the commit that scored it.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from prn_core.atomic import write_json_atomic
from prn_core.evaluation import evaluate_checkpoint
from prn_core.results import defect_type_lines
from prn_core.runinfo import git_commit, hardware, portable_paths

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "experiments" / "defect_types.json"


def one_run(name: str, run_dir: Path) -> dict:
    ev, cfg = evaluate_checkpoint(run_dir / "model.pt", progress=False)
    return {"name": name, "run": str(run_dir), "category": cfg.data.category, "seed": cfg.seed,
            "profile": cfg.profile, "metrics": ev.metrics, "by_defect_type": ev.by_defect_type(),
            "git_commit": git_commit(), "hardware": hardware()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="name=run_folder, each folder holding model.pt")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--append", action="store_true", help="add to --out instead of replacing it")
    args = parser.parse_args()
    named = [item.partition("=") for item in args.runs]
    if any(not sep or not (Path(path) / "model.pt").is_file() for _, sep, path in named):
        raise SystemExit(f"expected name=run_folder with a model.pt, got {args.runs}")
    rows = []
    for name, _, path in named:
        rows.append(one_run(name, Path(path)))
        row = rows[-1]
        print(f"{name} {row['category']} seed {row['seed']}")
        print("\n".join(defect_type_lines(row["by_defect_type"])))
    command = "python benchmarks/defect_types.py " + " ".join(str(r) for r in args.runs)
    record = {
        "what": "test metrics per defect type (each type against all normals) of finished runs",
        "commands": [],
        "runs": [],
    }
    if args.append and args.out.is_file():
        record = json.loads(args.out.read_text())
    new = {(r["name"], r["seed"]) for r in rows}
    record["runs"] = [r for r in record["runs"] if (r["name"], r["seed"]) not in new] + rows
    record["commands"].append(command)
    write_json_atomic(args.out, portable_paths(record))


if __name__ == "__main__":
    main()
