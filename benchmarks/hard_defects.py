"""Collect the hard-defects experiments: each hypothesis against the cpu profile, val beside test.

Every hypothesis is a config change trained with ``prn train`` (one seed to screen, three to
confirm) into its own run folder. This reads their ``result.json`` files and records, per run,
the test metrics, the final epoch's validation metrics (held-out normals plus simulated
anomalies, the only split selection may use), the validation-minus-test gap of AU-PRO and
pixel AUROC (how far validation over-promises), and the config fields that differ from the
baseline run. It trains nothing. Writes results/experiments/hard_defects.json; the prose that
reads these numbers is results/experiments/hard_defects.md.

A name may be given once per seed (and per dataset): runs that share a name and a category are
summarised as mean, sample std and worst seed, so a change is read against the seed spread. Across
all runs of one category, the Spearman rank correlation between validation and test says whether
validation, the only split selection may use, ranks models the way real defects do.

    python benchmarks/hard_defects.py baseline=runs/cpu/magnetic_tile/magnetic_tile/seed0 \
        baseline=runs/cpu/magnetic_tile/magnetic_tile/seed1 prior=runs/hard/magnetic_tile_prior/seed0
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from scipy.stats import spearmanr

from prn_core.atomic import write_json_atomic
from prn_core.reproduce import seed_stats
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


def collect(named: list[tuple[str, Path]]) -> dict[str, Any]:
    """One row per named run; ``changes`` are the config fields that differ from the first run
    of the same category, the baseline given first."""
    results = [(name, path, json.loads((path / "result.json").read_text())) for name, path in named]
    bases: dict[str, dict[str, Any]] = {}
    for _, _, result in results:
        bases.setdefault(result["category"], _flatten(result["config"]))
    rows = []
    for name, path, result in results:
        base = bases[result["category"]]
        config = _flatten(result["config"])
        val = result["history"][-1].get("val", {})
        test = result["metrics"]
        rows.append({
            "name": name,
            "run": str(path),
            "category": result["category"],
            "seed": result["seed"],
            "changes": {k: v for k, v in config.items()
                        if k in base and base[k] != v and k not in ("seed", "data.root", "data.category")},
            "test": {m: test[m] for m in METRICS},
            "val": {m: val.get(m) for m in METRICS},
            "val_minus_test": {m: val[m] - test[m] for m in ("pixel_auroc", "au_pro") if m in val},
            "train_seconds": result["train_seconds"],
            "git_commit": result["git_commit"],
            "command": result["command"],
        })
    return {"what": "hard-defects hypotheses against the cpu profile (test and validation)",
            "runs": rows, "groups": groups(rows), "val_test_spearman": val_test_spearman(rows)}


def groups(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seed statistics per (name, category): test metrics and validation-minus-test gaps."""
    keyed: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        keyed.setdefault((row["name"], row["category"]), []).append(row)
    out = []
    for (name, category), members in keyed.items():
        out.append({
            "name": name, "category": category, "seeds": [r["seed"] for r in members],
            "test": {m: seed_stats([r["test"][m] for r in members]) for m in METRICS},
            "val_minus_test": {m: seed_stats([r["val_minus_test"][m] for r in members])
                               for m in ("pixel_auroc", "au_pro")
                               if all(m in r["val_minus_test"] for r in members)},
            "train_seconds": seed_stats([r["train_seconds"] for r in members]),
        })
    return out


def val_test_spearman(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per category and metric, the rank correlation of validation with test over all its runs
    (None below four runs, where a rank correlation says nothing)."""
    out: dict[str, dict[str, Any]] = {}
    for category in dict.fromkeys(r["category"] for r in rows):
        members = [r for r in rows if r["category"] == category]
        out[category] = {"runs": len(members)}
        for m in METRICS:
            pairs = [(r["val"][m], r["test"][m]) for r in members if r["val"].get(m) is not None]
            out[category][m] = (float(spearmanr(*zip(*pairs)).statistic)
                                if len(pairs) >= 4 else None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="name=run_folder; the first is the baseline")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    named = []
    for item in args.runs:
        name, sep, path = item.partition("=")
        if not sep or not (Path(path) / "result.json").is_file():
            raise SystemExit(f"expected name=run_folder with a result.json, got {item!r}")
        named.append((name, Path(path)))
    record = collect(named)
    record["command"] = "python benchmarks/hard_defects.py " + " ".join(args.runs)
    write_json_atomic(args.out, portable_paths(record))
    for row in record["runs"]:
        cells = "  ".join(f"{m}={row['test'][m]:.3f}" for m in METRICS)
        gap = row["val_minus_test"].get("au_pro")
        print(f"{row['name']:>12} {row['category']:>13} seed {row['seed']}  {cells}  val-test "
              f"AU-PRO {'n/a' if gap is None else f'{gap:+.3f}'}  {row['changes']}")
    for group in record["groups"]:
        cells = "  ".join(f"{m}={group['test'][m]['mean']:.3f}±{group['test'][m]['std'] or 0:.3f}"
                          for m in METRICS)
        print(f"{group['name']:>12} {group['category']:>13} seeds {group['seeds']}  {cells}")
    print("val-test Spearman:", record["val_test_spearman"])


if __name__ == "__main__":
    main()
