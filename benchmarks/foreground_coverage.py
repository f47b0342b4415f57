"""How well do the package's foreground masks contain real defects?

Extended anomalies are pasted inside :func:`prn_core.data.estimate_foreground`, and simulated
ones are kept on it; a mask that cuts defects off would teach the model that object edges are
never anomalous. For every defective test image of the real bottle and hazelnut sets this
measures the fraction of ground-truth defect pixels inside the estimated foreground (pooled
over all pixels, and the worst single image), and on the normal training images the area
fraction of the foreground (an all-True mask would cover everything trivially), plus the time
per image. Writes results/benchmarks/foreground_coverage.json.

    python benchmarks/foreground_coverage.py [--data ../shared/data] [--size 256]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2
import numpy as np

from prn_core.config import parse_image_size
from prn_core.data import ImageCache, estimate_foreground, list_samples
from prn_core.data.foreground import FOREGROUND_SETTINGS
from prn_core.runinfo import hardware

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "foreground_coverage.json"
SETS = {"bottle": ("mvtec", "bottle"), "hazelnut_toy": ("hazelnut_toy", "hazelnut")}
TARGET = 0.95


def measure(root: Path, category: str, image_size: tuple[int, int]) -> dict:
    cache = ImageCache(image_size)
    inside = total = 0
    per_image, seconds = [], []
    for s in list_samples(root, category, "test"):
        if not s.label:
            continue
        image, mask = cache.image(s), cache.mask(s).astype(bool)
        start = time.perf_counter()
        fg = estimate_foreground(image)
        seconds.append(time.perf_counter() - start)
        inside += int((fg & mask).sum())
        total += int(mask.sum())
        per_image.append((float((fg & mask).sum() / max(1, mask.sum())), f"{s.defect_type}/{s.path.name}"))
    areas = []
    for s in list_samples(root, category, "train"):
        start = time.perf_counter()
        areas.append(float(estimate_foreground(cache.image(s)).mean()))
        seconds.append(time.perf_counter() - start)
    worst = sorted(per_image)[:3]
    return {
        "defective_images": len(per_image),
        "defect_pixels": total,
        "coverage": inside / total,
        "worst_images": [{"image": name, "coverage": cov} for cov, name in worst],
        "images_fully_covered": sum(cov == 1.0 for cov, _ in per_image),
        "normal_images": len(areas),
        "foreground_area": {"mean": float(np.mean(areas)), "min": min(areas), "max": max(areas)},
        "all_true_normals": sum(a == 1.0 for a in areas),
        "ms_per_image": 1000 * float(np.mean(seconds)),
        "meets_target": inside / total >= TARGET and max(areas) < 0.8,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--size", default="256")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    image_size = parse_image_size(args.size)
    results = {name: measure(args.data / folder, category, image_size) for name, (folder, category) in SETS.items()}
    record = {
        "benchmark": "foreground_coverage",
        "image_size": list(image_size),
        "target_coverage": TARGET,
        "settings": FOREGROUND_SETTINGS,
        "results": results,
        "hardware": hardware(threads="cv2.setNumThreads(1)"),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(record, indent=2) + "\n")
    for name, r in results.items():
        print(
            f"{name}: coverage {r['coverage']:.4f} over {r['defect_pixels']} defect pixels in {r['defective_images']} "
            f"images; foreground area on normals {r['foreground_area']['mean']:.3f} "
            f"[{r['foreground_area']['min']:.3f}, {r['foreground_area']['max']:.3f}]; {r['ms_per_image']:.1f} ms/image"
        )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
