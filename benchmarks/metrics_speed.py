"""Seconds and peak memory to compute all five metrics for 100 maps at 256x256.

Random maps with random blob masks (60 defective, 40 normal images); the pixel metrics are
also computed exactly with scikit-learn (and a sort-based AU-PRO) to report how far the binned,
bounded-memory results are from exact ones. Writes results/benchmarks/metrics_speed.json.

    python benchmarks/metrics_speed.py [--maps 100] [--size 256] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy
import sklearn
from scipy import ndimage
from sklearn.metrics import average_precision_score, roc_auc_score

from prn_core.metrics import MAX_SAMPLE, NUM_BINS, compute_metrics
from prn_core.runinfo import hardware

OUT = Path(__file__).resolve().parents[1] / "results" / "benchmarks" / "metrics_speed.json"


def make_data(rng: np.random.Generator, n: int, size: int) -> tuple[np.ndarray, ...]:
    """Blob masks on 60% of the images and smooth noisy float32 maps that favour them a little
    (pixel AUROC ~0.88, AP ~0.26), so that binning errors would show if there were any."""
    masks = np.zeros((n, size, size), np.uint8)
    yy, xx = np.mgrid[:size, :size]
    for m in masks[: int(0.6 * n)]:
        for _ in range(rng.integers(1, 4)):
            cy, cx = rng.integers(0, size, 2)
            r = rng.uniform(2, size / 8)
            m[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1
    maps = np.empty(masks.shape, np.float32)
    for i, m in enumerate(masks):
        noisy = rng.normal(size=m.shape).astype(np.float32) + 0.25 * m  # hard: metrics far from 1
        maps[i] = ndimage.gaussian_filter(noisy, sigma=2)
    labels = masks.reshape(n, -1).max(axis=1)
    scores = maps.reshape(n, -1).max(axis=1)
    return labels, scores, masks, maps


def exact_au_pro(masks: np.ndarray, maps: np.ndarray, fpr_limit: float = 0.3) -> float:
    """MVTec AD's sort-based AU-PRO on all pixels at once (the unbounded-memory way)."""
    flat = maps.reshape(-1).astype(np.float64)
    fp_step = np.zeros(flat.size)
    pro_step = np.zeros(flat.size)
    regions = 0
    offset = 0
    for m in masks:
        labels, n = ndimage.label(m, structure=np.ones((3, 3)))
        sizes = np.bincount(labels.reshape(-1))
        fp_step[offset: offset + m.size] = labels.reshape(-1) == 0
        inv = np.where(labels.reshape(-1) > 0, 1.0 / sizes[labels.reshape(-1)], 0.0)
        pro_step[offset: offset + m.size] = inv
        regions += n
        offset += m.size
    order = np.argsort(flat)[::-1]
    fpr = np.cumsum(fp_step[order]) / fp_step.sum()
    pro = np.cumsum(pro_step[order]) / regions
    keep = np.append(np.diff(flat[order]) != 0, True)
    fpr, pro = np.concatenate([[0], fpr[keep]]), np.concatenate([[0], pro[keep]])
    end = np.searchsorted(fpr, fpr_limit, side="right")
    area = np.trapezoid(pro[:end], fpr[:end])
    y_cut = np.interp(fpr_limit, fpr[end - 1: end + 1], pro[end - 1: end + 1])
    area += (fpr_limit - fpr[end - 1]) * (pro[end - 1] + y_cut) / 2
    return float(area / fpr_limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=100)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    labels, scores, masks, maps = make_data(np.random.default_rng(0), args.maps, args.size)

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        result = compute_metrics(labels, scores, masks, maps)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    compute_metrics(labels, scores, masks, maps)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    tracemalloc.start()
    start = time.perf_counter()
    y, s = masks.reshape(-1), maps.reshape(-1)
    exact = {
        "pixel_auroc": float(roc_auc_score(y, s)),
        "pixel_ap": float(average_precision_score(y, s)),
        "au_pro": exact_au_pro(masks, maps),
    }
    exact_seconds = time.perf_counter() - start
    _, exact_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    report = {
        "benchmark": "metrics_speed",
        "maps": args.maps,
        "image_size": [args.size, args.size],
        "pixels": int(maps.size),
        "num_bins": NUM_BINS,
        "max_sample": MAX_SAMPLE,
        "seconds_all_metrics": {"best": min(times), "all": times},
        "peak_memory_mib_beyond_inputs": peak / 2**20,
        "input_maps_mib": maps.nbytes / 2**20,
        "metrics": result,
        "exact_reference": exact,
        "exact_reference_seconds_sklearn_plus_sorted_au_pro": exact_seconds,
        "exact_reference_peak_memory_mib": exact_peak / 2**20,
        "abs_error_vs_exact": {k: abs(result[k] - v) for k, v in exact.items()},
        "hardware": hardware(scipy=scipy.__version__, sklearn=sklearn.__version__,
                             threads="numpy single-threaded (bincount/searchsorted do not use BLAS)"),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in (
        "seconds_all_metrics", "peak_memory_mib_beyond_inputs", "abs_error_vs_exact",
        "exact_reference_seconds_sklearn_plus_sorted_au_pro", "exact_reference_peak_memory_mib")}, indent=2))


if __name__ == "__main__":
    main()
