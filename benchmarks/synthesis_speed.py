"""Samples per second of each training kind at 256 px on ONE core (torch and OpenCV threads = 1).

Real bottle images and the GIMP textures from ``../shared/data`` when present; otherwise the
package's demo dataset and procedural textures. Images, masks, foregrounds and textures are
decoded once up front (as training does), so the numbers are the per-sample cost of synthesis
plus the tensor conversion of ``AnomalyMix.__getitem__``; the one-off decode costs are reported
separately. Each measurement is repeated and the best run is kept, because the machine is
shared. Writes results/benchmarks/synthesis_speed.json.

    python benchmarks/synthesis_speed.py [--size 256] [--samples 300] [--repeats 3]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from prn_core.config import SynthesisConfig
from prn_core.data import (
    DEMO_CATEGORIES,
    FolderTextures,
    ProceduralTextures,
    TextureSource,
    estimate_foreground,
    few_shot_split,
    load_image,
    load_mask,
    make_demo_dataset,
)
from prn_core.runinfo import hardware
from prn_core.synthesis import (
    KINDS,
    AnomalyMix,
    ExtendedAnomaly,
    SimulatedAnomaly,
    perlin_mask,
)

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "synthesis_speed.json"
SHARED = Path(os.environ.get("PRN_SHARED_DATA", REPO.parent / "shared" / "data"))
TARGETS = {"simulated": 100.0, "extended": 100.0}  # samples / s / core (issue 3)


@dataclass
class Setup:
    """Everything a bottle epoch needs, decoded once; ``source`` says where it came from."""

    mix: AnomalyMix
    source: dict[str, str]
    decode_s: dict[str, float]


def build_mix(image_size: tuple[int, int], seed: int = 0, max_normals: int | None = None) -> Setup:
    """The bottle epoch of the ``cpu`` profile, with 10 seen anomalies removed from test."""
    config = SynthesisConfig()
    if (SHARED / "mvtec" / "bottle").is_dir():
        root, category, data = SHARED / "mvtec", "bottle", "real MVTec AD bottle"
    else:
        root = make_demo_dataset(Path(tempfile.mkdtemp()) / "demo", seed=seed)
        category, data = DEMO_CATEGORIES[0], "demo dataset"
    gimp = SHARED / "textures" / "gimp"
    textures: TextureSource = FolderTextures(gimp) if gimp.is_dir() else ProceduralTextures(seed=seed)

    split = few_shot_split(root, category, num_seen=10, seed=seed)
    train = split.train[:max_normals]
    start = time.perf_counter()
    normals = [load_image(s.path, image_size) for s in train]
    seen = [load_image(s.path, image_size) for s in split.seen]
    masks = [load_mask(s.mask_path, image_size) for s in split.seen]
    decode = time.perf_counter() - start
    start = time.perf_counter()
    foregrounds = [estimate_foreground(im) for im in normals]
    foreground = time.perf_counter() - start

    simulated = SimulatedAnomaly.from_config(textures, image_size, config)
    start = time.perf_counter()
    for i in range(len(textures)):
        simulated.texture(i)
    texture_s = time.perf_counter() - start
    mix = AnomalyMix(
        normals, simulated, foregrounds=foregrounds, seen_images=seen, seen_masks=masks,
        extended=ExtendedAnomaly(seen, masks), config=config, batch_size=8, seed=seed,
        train_paths=[s.path for s in train + split.seen], forbidden_paths=[s.path for s in split.test],
    )
    source = {"data": f"{data} ({category})", "textures": f"{type(textures).__name__} ({len(textures)})"}
    per_image = {
        "decode_resize_ms_per_image": 1e3 * decode / (len(normals) + 2 * len(seen)),
        "foreground_ms_per_image": 1e3 * foreground / len(normals),
        "texture_cache_ms_per_texture": 1e3 * texture_s / len(textures),
    }
    return Setup(mix, source, per_image)


def rate(make: Callable[[int], object], samples: int, repeats: int) -> dict[str, float]:
    """Best and median samples/s over ``repeats`` runs of ``samples`` calls ``make(i)``."""
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(samples):
            make(i)
        runs.append(samples / (time.perf_counter() - start))
    return {"best": max(runs), "median": float(np.median(runs)), "ms_per_sample_best": 1e3 / max(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    size = (args.size, args.size)
    setup = build_mix(size)
    mix = setup.mix

    # Indices of each kind over a few epochs, so the mix is measured exactly as training calls it.
    by_kind: dict[str, list[tuple[int, int]]] = {}
    epoch = 0
    while min(len(by_kind.get(k, [])) for k in KINDS) < args.samples:
        for index, kind in enumerate(mix.schedule(epoch)[0]):
            by_kind.setdefault(kind, []).append((epoch, index))
        epoch += 1

    def item(kind: str) -> Callable[[int], object]:
        def call(i: int) -> object:
            e, index = by_kind[kind][i]
            mix.set_epoch(e)
            return mix[index]

        return call

    rng = np.random.default_rng(0)
    normal, fg = mix.normal_images[0], mix.foregrounds[0]
    results = {f"mix_{kind}": rate(item(kind), args.samples, args.repeats) for kind in KINDS}
    results["perlin_mask"] = rate(lambda i: perlin_mask(size, rng), args.samples, args.repeats)
    results["simulated_call"] = rate(lambda i: mix.simulated(normal, rng, fg), args.samples, args.repeats)
    results["extended_call"] = rate(lambda i: mix.extended(normal, fg, rng), args.samples, args.repeats)

    report = {
        "benchmark": "synthesis_speed",
        "image_size": list(size),
        "samples_per_measurement": args.samples,
        "repeats": args.repeats,
        **setup.source,
        "epoch_size": len(mix),
        "proportions": mix.proportions,
        "samples_per_s": results,
        "targets_samples_per_s": TARGETS,
        "meets_targets": all(results[f"mix_{k}"]["best"] >= v for k, v in TARGETS.items()),
        "one_off_costs": setup.decode_s,
        "hardware": hardware(opencv_threads=cv2.getNumThreads()),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    for name, r in results.items():
        print(f"{name:16s} {r['best']:8.1f} samples/s (median {r['median']:.1f}, {r['ms_per_sample_best']:.2f} ms)")
    print(f"meets targets: {report['meets_targets']}; wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
