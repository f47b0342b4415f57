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
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from prn_core.atomic import write_json_atomic
from prn_core.checkpoint import load_model
from prn_core.data import ImageCache
from prn_core.evaluation import evaluate
from prn_core.prepare import check_run
from prn_core.runinfo import git_commit, hardware, portable_paths

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "experiments" / "defect_types.json"
METRICS = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")


def one_run(name: str, run_dir: Path) -> dict:
    model, cfg = load_model(run_dir / "model.pt")
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    split = check_run(cfg)
    ev = evaluate(model, split.test, ImageCache(cfg.data.image_size, keep_aspect=cfg.data.keep_aspect),
                  progress=False)
    return {"name": name, "run": str(run_dir), "category": cfg.data.category, "seed": cfg.seed,
            "profile": cfg.profile, "metrics": ev.metrics, "by_defect_type": ev.by_defect_type()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="name=run_folder, each folder holding model.pt")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    named = [item.partition("=") for item in args.runs]
    if any(not sep or not (Path(path) / "model.pt").is_file() for _, sep, path in named):
        raise SystemExit(f"expected name=run_folder with a model.pt, got {args.runs}")
    rows = []
    for name, _, path in named:
        rows.append(one_run(name, Path(path)))
        row = rows[-1]
        print(f"{name} {row['category']} seed {row['seed']}")
        for defect, m in row["by_defect_type"].items():
            print(f"  {defect:>12} ({m['count']:>3})  " + "  ".join(f"{k} {m[k]:.3f}" for k in METRICS))
    record = {
        "what": "test metrics per defect type (each type against all normals) of finished runs",
        "command": "python benchmarks/defect_types.py " + " ".join(str(r) for r in args.runs),
        "git_commit": git_commit(),
        "hardware": hardware(),
        "runs": rows,
    }
    write_json_atomic(args.out, portable_paths(record))


if __name__ == "__main__":
    main()
