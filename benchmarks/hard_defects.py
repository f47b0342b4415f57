"""Collect the hard-defects experiments: each hypothesis against the cpu profile, val beside test.

Every hypothesis is a config change trained with ``prn train`` (one seed to screen, three to
confirm) into its own run folder. This reads their ``result.json`` files and records, per run,
the test metrics, the final epoch's validation metrics (held-out normals plus simulated
anomalies, the only split selection may use), the validation-minus-test gap of AU-PRO and
pixel AUROC (how far validation over-promises), and the config fields that differ from the
baseline run. It trains nothing. Writes results/experiments/hard_defects.json; the prose that
reads these numbers is results/experiments/hard_defects.md.

    python benchmarks/hard_defects.py baseline=runs/cpu/magnetic_tile/magnetic_tile/seed0 \
        prior=runs/hard/magnetic_tile_prior/seed0 ...
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from prn_core.atomic import write_json_atomic
from prn_core.runinfo import portable_paths

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "experiments" / "hard_defects.json"
METRICS = ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap")


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def collect(named: dict[str, Path]) -> dict[str, Any]:
    """One row per named run; ``changes`` are the config fields that differ from the first run."""
    results = {name: json.loads((path / "result.json").read_text()) for name, path in named.items()}
    base = _flatten(next(iter(results.values()))["config"])
    rows = []
    for name, result in results.items():
        config = _flatten(result["config"])
        val = result["history"][-1].get("val", {})
        test = result["metrics"]
        rows.append({
            "name": name,
            "run": str(named[name]),
            "category": result["category"],
            "seed": result["seed"],
            "changes": {k: v for k, v in config.items() if k in base and base[k] != v and k != "seed"},
            "test": {m: test[m] for m in METRICS},
            "val": {m: val.get(m) for m in METRICS},
            "val_minus_test": {m: val[m] - test[m] for m in ("pixel_auroc", "au_pro") if m in val},
            "train_seconds": result["train_seconds"],
            "git_commit": result["git_commit"],
            "command": result["command"],
        })
    return {"what": "hard-defects hypotheses against the cpu profile (test and validation)",
            "runs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="name=run_folder; the first is the baseline")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    named = {}
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep or not (Path(path) / "result.json").is_file():
            raise SystemExit(f"expected name=run_folder with a result.json, got {item!r}")
        named[name] = Path(path)
    record = collect(named)
    record["command"] = "python benchmarks/hard_defects.py " + " ".join(args.runs)
    write_json_atomic(args.out, portable_paths(record))
    for row in record["runs"]:
        cells = "  ".join(f"{m}={row['test'][m]:.3f}" for m in METRICS)
        gap = row["val_minus_test"].get("au_pro")
        print(f"{row['name']:>12} seed {row['seed']}  {cells}  val-test AU-PRO "
              f"{'n/a' if gap is None else f'{gap:+.3f}'}  {row['changes']}")


if __name__ == "__main__":
    main()
