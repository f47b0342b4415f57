"""How well do the package's foreground masks contain real defects?

Extended anomalies are pasted inside :func:`prn_core.data.estimate_foreground`, and simulated
ones are kept on it; a mask that cuts defects off would teach the model that object edges are
never anomalous. On the real bottle and hazelnut sets this measures the fraction of
ground-truth defect pixels inside the estimated foreground (pooled over all pixels, and the
worst single image) on the *seen* anomalies of the cpu profile's split, the only defect masks
training may look at, and on the normal training images the area fraction of the foreground
(an all-True mask would cover everything trivially), plus the time per image. The same
coverage on the test split's defects is recorded as a held-out check only: no setting is tuned
on it. Writes results/benchmarks/foreground_coverage.json.

    python benchmarks/foreground_coverage.py [--data ../shared/data] [--size 256]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from prn_core.atomic import write_json_atomic
from prn_core.config import get_profile, parse_image_size
from prn_core.data import ImageCache, Sample, estimate_foreground, few_shot_split
from prn_core.data.foreground import FOREGROUND_SETTINGS
from prn_core.runinfo import hardware

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "foreground_coverage.json"
SETS = {"bottle": ("mvtec", "bottle"), "hazelnut_toy": ("hazelnut_toy", "hazelnut")}
TARGET = 0.95


def coverage(cache: ImageCache, samples: list[Sample], seconds: list[float]) -> dict:
    """Pooled and worst-image share of defect pixels inside the foreground."""
    inside = total = 0
    per_image = []
    for s in samples:
        image, mask = cache.image(s), cache.mask(s).astype(bool)
        start = time.perf_counter()
        fg = estimate_foreground(image)
        seconds.append(time.perf_counter() - start)
        inside += int((fg & mask).sum())
        total += int(mask.sum())
        per_image.append((float((fg & mask).sum() / max(1, mask.sum())), f"{s.defect_type}/{s.path.name}"))
    return {
        "defective_images": len(per_image),
        "defect_pixels": total,
        "coverage": inside / total,
        "worst_images": [{"image": name, "coverage": cov} for cov, name in sorted(per_image)[:3]],
        "images_fully_covered": sum(cov == 1.0 for cov, _ in per_image),
    }


def measure(root: Path, category: str, image_size: tuple[int, int]) -> dict:
    cfg = get_profile("cpu")
    split = few_shot_split(root, category, num_seen=cfg.data.num_seen, seed=cfg.seed)
    cache = ImageCache(image_size)
    seconds: list[float] = []
    seen = coverage(cache, split.seen, seconds)
    held_out = coverage(cache, [s for s in split.test if s.label], seconds)
    areas = []
    for s in split.train:
        start = time.perf_counter()
        areas.append(float(estimate_foreground(cache.image(s)).mean()))
        seconds.append(time.perf_counter() - start)
    return {
        "split": {"num_seen": cfg.data.num_seen, "seed": cfg.seed},
        "seen": seen,
        "test_held_out": held_out,
        "normal_images": len(areas),
        "foreground_area": {"mean": float(np.mean(areas)), "min": min(areas), "max": max(areas)},
        "all_true_normals": sum(a == 1.0 for a in areas),
        "ms_per_image": 1000 * float(np.mean(seconds)),
        "meets_target": seen["coverage"] >= TARGET and max(areas) < 0.8,
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
    write_json_atomic(OUT, record)
    for name, r in results.items():
        seen, test = r["seen"], r["test_held_out"]
        area = r["foreground_area"]
        print(
            f"{name}: seen-anomaly coverage {seen['coverage']:.4f} over {seen['defect_pixels']} "
            f"defect pixels in {seen['defective_images']} images (held-out test: "
            f"{test['coverage']:.4f}); foreground area on normals {area['mean']:.3f} "
            f"[{area['min']:.3f}, {area['max']:.3f}]; {r['ms_per_image']:.1f} ms/image"
        )
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
