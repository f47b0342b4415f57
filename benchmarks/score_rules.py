"""Which image score would hold on hard defects? Every rule, on trained models, val and test.

The image score turns a map into one number: the mean of the top-k pixel probabilities
(``model.score_topk``, k = 100 in the ``cpu`` profile) or the max of a smoothed map. A fixed k
is large next to a tiny defect (a magnetic-tile blowhole covers a few dozen pixels at 256x256)
and small next to a large one. This re-scores finished runs without training: for each run
folder (holding ``model.pt``) it computes the maps of the validation split (held-out normals
plus simulated anomalies) and of the test split once, then the image AUROC of every rule on
both. A rule may only be chosen on the validation column; the test column is reported so a
reader can see whether validation would have picked well. Writes
results/experiments/score_rules.json.

    python benchmarks/score_rules.py baseline=runs/cpu/magnetic_tile/magnetic_tile/seed0 \
        shading=runs/hard/magnetic_tile_shading/seed0 [--out results/experiments/score_rules.json]
"""
from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from prn_core.atomic import write_json_atomic
from prn_core.metrics import image_auroc
from prn_core.models import PRN
from prn_core.runinfo import git_commit, hardware, portable_paths
from prn_core.checkpoint import load_model
from prn_core.evaluation import predict
from prn_core.prepare import prepare_data, validation_set

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "experiments" / "score_rules.json"
RULES: dict[str, dict] = {
    **{f"top{k}": {"score": "topk", "score_topk": k} for k in (10, 30, 100, 300, 1000, 3000)},
    "max_smoothed": {"score": "max_smoothed"},
}


def rule_scores(model: PRN, maps: np.ndarray, valid: np.ndarray | None) -> dict[str, np.ndarray]:
    """Image scores of every rule for (N, H, W) probability maps, through ``PRN.score`` itself."""
    probs = torch.as_tensor(maps)[:, None]
    region = None if valid is None else torch.as_tensor(valid)[:, None]
    out = {}
    for name, change in RULES.items():
        model.cfg = dataclasses.replace(model.cfg, **change)
        out[name] = model.score(probs, region).numpy()
    return out


def one_run(name: str, run_dir: Path) -> dict:
    model, cfg = load_model(run_dir / "model.pt")
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    data = prepare_data(cfg, progress=False)
    val = validation_set(cfg, data)
    test = data.split.test
    test_images = np.stack([data.cache.image(s) for s in test])
    test_valid = np.stack([data.cache.valid(s) for s in test])
    test_labels = np.asarray([s.label for s in test])
    padded = not test_valid.all()
    val_maps, _ = predict(model, val.images, valid=val.valid)
    test_maps, _ = predict(model, test_images, valid=test_valid if padded else None)
    val_scores = rule_scores(model, val_maps, val.valid if not val.valid.all() else None)
    test_scores = rule_scores(model, test_maps, test_valid if padded else None)
    return {
        "name": name,
        "run": str(run_dir),
        "category": cfg.data.category,
        "seed": cfg.seed,
        "profile": cfg.profile,
        "model_rule": {"score": cfg.model.score, "score_topk": cfg.model.score_topk},
        "val_image_auroc": {r: image_auroc(val.labels, s) for r, s in val_scores.items()},
        "test_image_auroc": {r: image_auroc(test_labels, s) for r, s in test_scores.items()},
        "defect_pixels_per_test_image": {
            "median": float(np.median([data.cache.mask(s).sum() for s in test if s.label])),
            "min": int(min(data.cache.mask(s).sum() for s in test if s.label)),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="name=run_folder, each folder holding model.pt")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    named = [item.partition("=") for item in args.runs]
    if any(not sep or not (Path(path) / "model.pt").is_file() for _, sep, path in named):
        raise SystemExit(f"expected name=run_folder with a model.pt, got {args.runs}")
    rows = [one_run(name, Path(path)) for name, _, path in named]
    record = {
        "what": "image AUROC of every image-score rule on finished runs, validation and test",
        "rules": RULES,
        "command": "python benchmarks/score_rules.py " + " ".join(str(r) for r in args.runs),
        "git_commit": git_commit(),
        "hardware": hardware(),
        "runs": rows,
    }
    write_json_atomic(args.out, portable_paths(record))
    for row in rows:
        print(row["name"], row["category"], "seed", row["seed"])
        for rule in RULES:
            print(f"  {rule:>13}  val {row['val_image_auroc'][rule]:.3f}  "
                  f"test {row['test_image_auroc'][rule]:.3f}")


if __name__ == "__main__":
    main()
