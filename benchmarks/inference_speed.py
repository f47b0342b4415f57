"""Inference speed of every deployment engine on this CPU, side by side.

Setting: the ``cpu`` profile's model (tf_efficientnet_lite0, 256x256) with **random weights and
random prototypes** (K = 21): speed does not depend on the values, and no trained checkpoint is
needed. Batch 1 and batch 8; 2 threads for every runtime; inputs already resized as
:func:`prn_core.predict` takes them, so the figures are model time, not image decoding.

* engines: eager PyTorch (the checkpoint), ``torch.export`` pt2, ONNX Runtime
  (CPUExecutionProvider), OpenVINO FP32, FP16 (weights) and INT8 (NNCF, calibrated on 16 random
  images: a speed figure only, say nothing of INT8 accuracy, see ``tests/deploy``);
* each engine lives in its own child process for the whole run, so its peak resident memory
  (``ru_maxrss``) is its own; the parent drives the children in rounds, engine after engine, so
  a change in the machine's load hits every engine alike;
* per round and batch size: one warm-up call in the first round, then ``--reps`` timed calls;
  images per second is the batch size over the median call time of all rounds;
* an OpenVINO per-layer profile (``PERF_COUNT``) says where the fastest FP32 graph spends time.

Run: ``python benchmarks/inference_speed.py`` -> ``results/benchmarks/inference_speed.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from prn_core.atomic import write_json_atomic
from prn_core.runinfo import git_commit, hardware

REPO = Path(__file__).resolve().parents[1]
OUTPUT = REPO / "results" / "benchmarks" / "inference_speed.json"
THREADS = 2
BATCHES = (1, 8)
NUM_PROTOTYPES = 21
CALIBRATION_IMAGES = 16
TARGET_SPEEDUP = 2.0  # fastest CPU engine vs eager PyTorch at batch 1
# engine name -> (load_engine engine, export format, precision); None: the checkpoint itself
ENGINES = {
    "eager": ("torch", None, None),
    "pt2": ("pt2", "pt2", "fp32"),
    "onnxruntime": ("onnx", "onnx", "fp32"),
    "openvino-fp32": ("openvino", "openvino", "fp32"),
    "openvino-fp16": ("openvino", "openvino", "fp16"),
    "openvino-int8": ("openvino", "openvino", "int8"),
}


def _status_mib(field: str) -> float:
    """A memory field of this process (``VmRSS`` now, ``VmHWM`` peak) in MiB, Linux /proc.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` across ``exec``, so a child
    would report its parent's peak; ``VmHWM`` belongs to the process's own address space.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


# --- child: one engine, driven over stdin/stdout -------------------------------------------


def child(engine: str, path: str) -> None:
    """Load one engine, then answer ``{"batch": b, "reps": n}`` lines with call times."""
    from prn_core.deploy import load_engine

    torch.set_num_threads(THREADS)
    rss_before = _status_mib("VmRSS")
    runner = load_engine(path, engine, threads=THREADS)
    rss_loaded = _status_mib("VmRSS")
    gen = np.random.default_rng(0)
    inputs = {b: gen.random((b, *runner.image_size, 3), dtype=np.float32) for b in BATCHES}
    warm: set[int] = set()
    for line in sys.stdin:
        request = json.loads(line)
        if request.get("quit"):
            peak = _status_mib("VmHWM")
            print(json.dumps({"rss_before_load_mib": rss_before, "rss_loaded_mib": rss_loaded,
                              "peak_rss_mib": peak, "peak_over_start_mib": peak - rss_before}),
                  flush=True)
            return
        batch = request["batch"]
        if batch not in warm:  # first call: kernels are chosen and compiled
            runner(inputs[batch], batch_size=batch)
            warm.add(batch)
        times, cpu = [], []
        for _ in range(request["reps"]):
            start, start_cpu = time.perf_counter(), time.process_time()
            runner(inputs[batch], batch_size=batch)
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        print(json.dumps({"times": times, "cpu": cpu}), flush=True)


class Child:
    """A child process holding one engine."""

    def __init__(self, engine: str, path: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--child", engine, str(path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
            env={**os.environ, "OMP_NUM_THREADS": str(THREADS)},
        )

    def ask(self, request: dict) -> dict:
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise RuntimeError(f"benchmark child {self.proc.args[3]} died (exit {code})")
        return json.loads(line)

    def close(self) -> dict:
        result = self.ask({"quit": True})
        self.proc.wait(timeout=60)
        return result


# --- parent --------------------------------------------------------------------------------


def build_exports(folder: Path) -> tuple[dict[str, Path], dict[str, float]]:
    """A random cpu-profile model file and every export of it; paths and export seconds."""
    from prn_core.checkpoint import save_model
    from prn_core.config import get_profile, override
    from prn_core.deploy import export
    from prn_core.models import PrototypeBank, build_prn

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    cfg = override(get_profile("cpu"), **{"model.weights": "random"})
    model = build_prn(cfg.model, cfg.data.image_size)
    gen = torch.Generator().manual_seed(0)
    shapes = [f.shape[1:] for f in model.backbone(torch.zeros(1, 3, *cfg.data.image_size))[:3]]
    meta = {**model.expected_prototype_meta(), "category": cfg.data.category}
    model.set_prototypes(PrototypeBank([torch.rand(NUM_PROTOTYPES, *s, generator=gen)
                                        for s in shapes], meta))
    paths = {"eager": save_model(model.eval(), cfg, folder / "model.pt")}
    calibration = np.random.default_rng(1).random(
        (CALIBRATION_IMAGES, *cfg.data.image_size, 3), dtype=np.float32)
    seconds = {}
    for name, (_, fmt, precision) in ENGINES.items():
        if fmt is None:
            continue
        source = paths["onnxruntime"].parent if fmt == "openvino" else paths["eager"]
        start = time.perf_counter()
        paths[name] = export(source, fmt, folder / name, precision=precision,
                             calibration_images=calibration if precision == "int8" else None)
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"exported {name} in {seconds[name]} s", flush=True)
    return paths, seconds


def openvino_profile(xml: Path, image_size: tuple[int, int], calls: int = 5) -> dict:
    """Share of OpenVINO FP32 time per layer type, from its per-layer counters, at batch 1."""
    import openvino as ov

    compiled = ov.Core().compile_model(str(xml), "CPU", {
        "PERF_COUNT": True, "INFERENCE_PRECISION_HINT": "f32", "INFERENCE_NUM_THREADS": THREADS})
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).random((1, 3, *image_size), dtype=np.float32)
    request.infer({0: x})  # warm-up
    per_type: dict[str, float] = defaultdict(float)
    for _ in range(calls):
        request.infer({0: x})
        for info in request.get_profiling_info():
            per_type[info.node_type] += info.real_time.total_seconds()
    total = sum(per_type.values())
    ranked = sorted(per_type.items(), key=lambda kv: -kv[1])
    return {"calls": calls, "ms_per_call": 1000 * total / calls,
            "share_by_layer_type": {k: round(v / total, 3) for k, v in ranked[:12]}}


def _limit(profile: dict) -> str:
    """What the FP32 profile says bounds the speed, in words."""
    share = profile["share_by_layer_type"]
    top, part = next(iter(share.items()))
    attention = share.get("FullyConnected", 0) + share.get("Subgraph", 0)
    return (f"{top} layers take {part:.0%} of OpenVINO FP32 time at batch 1 (the encoder's and "
            f"decoder's convolutions); attention (FullyConnected + fused Subgraph) about "
            f"{attention:.0%}, upsampling (Interpolate) {share.get('Interpolate', 0):.0%}. A "
            f"graph compiler gains little on FP32 convolutions; INT8 arithmetic reaches the "
            f"target.")


def summarise(times: dict[int, list[float]], cpu: dict[int, list[float]]) -> dict:
    """Images per second (median and best call) and CPU seconds per image per batch size.

    CPU seconds per image divided by the threads approximate the wall time of an idle machine;
    they move much less than wall time when other jobs share the cores (see model_speed.py).
    """
    out = {}
    for batch, calls in times.items():
        median = statistics.median(calls)
        out[f"batch_{batch}"] = {
            "images_per_second": round(batch / median, 2),
            "images_per_second_best_call": round(batch / min(calls), 2),
            "cpu_s_per_image_per_thread": round(statistics.median(cpu[batch]) / batch / THREADS, 5),
            "median_s_per_call": round(median, 5),
            "min_s_per_call": round(min(calls), 5),
            "max_s_per_call": round(max(calls), 5),
            "calls": len(calls),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds over all engines")
    parser.add_argument("--reps", type=int, default=3, help="timed calls per round and batch")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    import nncf
    import onnxruntime
    import openvino

    started = time.time()
    with tempfile.TemporaryDirectory() as scratch:
        paths, export_seconds = build_exports(Path(scratch))
        children = {name: Child(ENGINES[name][0], paths[name]) for name in ENGINES}
        times: dict[str, dict[int, list[float]]] = {n: defaultdict(list) for n in ENGINES}
        cpu: dict[str, dict[int, list[float]]] = {n: defaultdict(list) for n in ENGINES}
        loads = [os.getloadavg()[0]]
        for round_index in range(args.rounds):
            for batch in BATCHES:
                order = list(ENGINES) if round_index % 2 == 0 else list(reversed(ENGINES))
                for name in order:
                    answer = children[name].ask({"batch": batch, "reps": args.reps})
                    times[name][batch] += answer["times"]
                    cpu[name][batch] += answer["cpu"]
            loads.append(os.getloadavg()[0])
            print(f"round {round_index + 1}/{args.rounds} done", flush=True)
        memory = {name: c.close() for name, c in children.items()}
        profile = openvino_profile(paths["openvino-fp32"], (256, 256))
    results = {name: {**summarise(times[name], cpu[name]), "memory": memory[name],
                      "export_seconds": export_seconds.get(name)} for name in ENGINES}
    eager = {b: results["eager"][f"batch_{b}"]["images_per_second"] for b in BATCHES}
    for name, row in results.items():
        for b in BATCHES:
            cell = row[f"batch_{b}"]
            cell["speedup_vs_eager"] = round(cell["images_per_second"] / eager[b], 2)
            cell["speedup_vs_eager_cpu_time"] = round(
                results["eager"][f"batch_{b}"]["cpu_s_per_image_per_thread"]
                / cell["cpu_s_per_image_per_thread"], 2)
    fastest = max(results, key=lambda n: results[n]["batch_1"]["images_per_second"])
    report = {
        "benchmark": "inference_speed",
        "command": "python benchmarks/inference_speed.py " + " ".join(sys.argv[1:]),
        "git_commit": git_commit(REPO),
        "setting": {"profile": "cpu", "backbone": "tf_efficientnet_lite0",
                    "image_size": [256, 256], "batches": list(BATCHES), "threads": THREADS,
                    "weights": "random (backbone, decoder and prototypes): speed only",
                    "num_prototypes": NUM_PROTOTYPES, "rounds": args.rounds,
                    "timed_calls_per_round": args.reps,
                    "int8_calibration": f"{CALIBRATION_IMAGES} random images (speed only)",
                    "openvino_inference_precision_hint": "f32"},
        "method": "one child process per engine for the whole run; engines interleaved in "
                  "rounds (order reversed every other round); one warm-up call per batch size; "
                  "images/s = batch / median call time; peak memory = the child's VmHWM; the "
                  "machine is shared (see loadavg), so the CPU-time figures are the steadier",
        "target": {"fastest_speedup_vs_eager_at_batch_1": TARGET_SPEEDUP},
        "fastest_at_batch_1": {"engine": fastest,
                               "speedup_vs_eager": results[fastest]["batch_1"]["speedup_vs_eager"],
                               "speedup_vs_eager_cpu_time":
                                   results[fastest]["batch_1"]["speedup_vs_eager_cpu_time"],
                               "meets_target": results[fastest]["batch_1"]["speedup_vs_eager"]
                               >= TARGET_SPEEDUP},
        "openvino_fp32_profile_batch_1": profile,
        "limited_by": _limit(profile),
        "loadavg_1min_per_round": loads,
        "wall_seconds": round(time.time() - started, 1),
        "hardware": hardware(threads=THREADS, onnxruntime=onnxruntime.__version__,
                             openvino=openvino.get_version(), nncf=nncf.__version__),
        "results": results,
    }
    write_json_atomic(OUTPUT, report)
    for name, row in results.items():
        print(f"{name:14s} b1 {row['batch_1']['images_per_second']:7.2f} img/s "
              f"(x{row['batch_1']['speedup_vs_eager']:.2f})  b8 "
              f"{row['batch_8']['images_per_second']:7.2f} img/s "
              f"(x{row['batch_8']['speedup_vs_eager']:.2f})  cpu-time x"
              f"{row['batch_1']['speedup_vs_eager_cpu_time']:.2f}/"
              f"{row['batch_8']['speedup_vs_eager_cpu_time']:.2f}  "
              f"peak {row['memory']['peak_rss_mib']:.0f} MiB")
    print(f"wrote {OUTPUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
