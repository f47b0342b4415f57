"""Speed and size of PRN on the CPU: train step and eval per image, parameters, peak memory.

Setting (issue 4): 256x256 images, batch 8, ``torch.set_num_threads(2)``, random weights, random
prototypes with a realistic K = 21 (about 10% of an MVTec category's normal images).

* train step = forward + loss + backward + Adam step, median (and min, and every step) of
  ``--steps`` after one warm-up;
* eval = forward in eval mode under ``torch.no_grad``, the same statistics;
* both also as CPU seconds per thread (``time.process_time`` / threads), a figure that moves less
  than wall-clock time when other jobs share the cores;
* peak memory = the child process's peak resident set size (``ru_maxrss``) minus its resident
  size just before the model is built, so each configuration runs in its own process;
* forward GFLOP per image from ``torch.utils.flop_counter``: a load-independent figure, because
  the dev machines share their cores and wall-clock times move with the load (recorded too).

Run: ``python benchmarks/model_speed.py`` -> ``results/benchmarks/model_speed.json``.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from prn_core.runinfo import hardware

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "results" / "benchmarks" / "model_speed.json"
BACKBONES = ("resnet18", "tf_efficientnet_lite0")
IMAGE_SIZE = (256, 256)
BATCH = 8
THREADS = 2
NUM_PROTOTYPES = 21
TARGETS = {  # seconds per image and trainable parameters (issue 4)
    "resnet18": {"train_s_per_image": 0.6, "eval_s_per_image": 0.12, "trainable_parameters": 15_000_000},
    "tf_efficientnet_lite0": {"train_s_per_image": 0.25, "eval_s_per_image": 0.06},
}
# Configurations measured: the ModelConfig defaults, and the narrower widths recommended as new
# defaults because the defaults miss the lite0 targets (issue 4).
# "defaults" is ModelConfig as shipped; "wide" is the earlier, wider default it replaced for speed.
VARIANTS: dict[str, dict] = {
    "defaults": {},
    "wide": {"fusion_channels": (64, 128, 256), "decoder_channels": (256, 128, 64, 32)},
}


def _rss_kib() -> int:
    """Current resident set size of this process in KiB (Linux /proc)."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def _time_steps(fn, steps: int) -> tuple[list[float], float]:
    """Wall-clock seconds of each call and median CPU seconds per call, after one warm-up call.

    CPU seconds divided by the thread count approximate the wall time on an idle machine; when
    other jobs share the cores the wall time grows but the CPU time much less.
    """
    fn()  # warm-up: oneDNN picks and JIT-compiles kernels on the first call
    wall, cpu = [], []
    for _ in range(steps):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return wall, statistics.median(cpu)


def measure(backbone: str, overrides: dict, steps: int) -> dict:
    """Time one backbone/config in this process and return the figures."""
    from torch.utils.flop_counter import FlopCounterMode

    from prn_core.config import ModelConfig
    from prn_core.losses import prn_loss
    from prn_core.models import PrototypeBank, build_prn

    torch.set_num_threads(THREADS)
    gen = torch.Generator().manual_seed(0)
    rss_before = _rss_kib()
    cfg = dataclasses.replace(ModelConfig(backbone=backbone, weights="random"), **overrides)
    model = build_prn(cfg, IMAGE_SIZE)
    h, w = IMAGE_SIZE
    protos = [
        torch.randn(NUM_PROTOTYPES, c, h // s, w // s, generator=gen)
        for c, s in zip(model.backbone.channels[:3], (4, 8, 16))
    ]
    model.set_prototypes(PrototypeBank(protos, {"backbone": backbone, "image_size": list(IMAGE_SIZE)}))
    images = torch.rand(BATCH, 3, h, w, generator=gen)
    masks = torch.zeros(BATCH, 1, h, w)
    masks[: BATCH // 2, :, h // 4 : h // 2, w // 4 : w // 2] = 1.0  # half the batch anomalous
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def train_step() -> None:
        loss, _ = prn_loss(model(images), masks)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()

    @torch.no_grad()
    def eval_step() -> None:
        model(images)

    load_before = os.getloadavg()
    model.train()
    train_s, train_cpu = _time_steps(train_step, steps)
    model.eval()
    eval_s, eval_cpu = _time_steps(eval_step, steps)
    load_after = os.getloadavg()
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(images[:1])
    return {
        "backbone": backbone,
        "overrides": overrides,
        "model_config": dataclasses.asdict(cfg),
        "train_s_per_image": statistics.median(train_s) / BATCH,
        "eval_s_per_image": statistics.median(eval_s) / BATCH,
        "train_s_per_image_min": min(train_s) / BATCH,
        "eval_s_per_image_min": min(eval_s) / BATCH,
        "train_s_per_image_steps": [t / BATCH for t in train_s],
        "eval_s_per_image_steps": [t / BATCH for t in eval_s],
        "train_cpu_s_per_image_per_thread": train_cpu / BATCH / THREADS,
        "eval_cpu_s_per_image_per_thread": eval_cpu / BATCH / THREADS,
        "trainable_parameters": model.trainable_parameters(),
        "summary": model.summary(),
        "forward_gflop_per_image": counter.get_total_flops() / 1e9,
        "peak_rss_delta_mib": (peak_kib - rss_before) / 1024,
        "loadavg_before": load_before,
        "loadavg_after": load_after,
    }


def _run_child(backbone: str, overrides: dict, steps: int) -> dict:
    """Measure in a fresh interpreter so peak RSS belongs to one configuration."""
    cmd = [sys.executable, __file__, "--child", backbone, "--overrides", json.dumps(overrides), "--steps", str(steps)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _verdict(result: dict) -> dict:
    target = TARGETS.get(result["backbone"], {})
    return {key: result[key] <= limit for key, limit in target.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps after one warm-up")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--overrides", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in json.loads(args.overrides).items()}
        print(json.dumps(measure(args.child, overrides, args.steps)))
        return
    results = []
    for variant, overrides in VARIANTS.items():
        for backbone in BACKBONES:
            result = _run_child(backbone, overrides, args.steps)
            result["variant"] = variant
            result["meets_targets"] = _verdict(result)
            results.append(result)
            print(
                f"{variant:12s} {backbone:22s} train {result['train_s_per_image']:.3f} s/img  "
                f"eval {result['eval_s_per_image']:.3f} s/img  params {result['trainable_parameters'] / 1e6:.2f} M  "
                f"{result['forward_gflop_per_image']:.1f} GFLOP  peak +{result['peak_rss_delta_mib']:.0f} MiB  "
                f"load {result['loadavg_after'][0]:.1f}  {result['meets_targets']}"
            )
    report = {
        "benchmark": "model_speed",
        "setting": {"image_size": IMAGE_SIZE, "batch": BATCH, "threads": THREADS, "weights": "random",
                    "num_prototypes": NUM_PROTOTYPES, "steps": args.steps},
        "targets": TARGETS,
        "peak_memory_method": "ru_maxrss of a fresh child process minus its RSS before building the model",
        "hardware": hardware(threads=THREADS),
        "results": results,
    }
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUTPUT}")


if __name__ == "__main__":
    main()
