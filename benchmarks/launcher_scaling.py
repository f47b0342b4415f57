"""Wall time of the same batch of ``ci`` runs on a local Ray with 1 worker and with 2 workers.

Eight runs (the two demo categories x four seeds) go through ``prn reproduce``'s Ray launcher,
first on a Ray of 1 CPU, then on a Ray of 2 CPUs, each run with one torch thread. The ratio of
the two wall times is the launcher's measured speed-up on this machine; both reproductions must
give the same summary, run for run. The runs are shortened with ``--set`` overrides (the default
is one epoch) because the CPUs are shared; the overrides and the command are recorded.

Per-GPU scaling is an estimate until a GPU run exists: runs are independent, so N GPUs take
about ``ceil(runs / N)`` run times, less whatever overhead this benchmark measures.

    python benchmarks/launcher_scaling.py [--runs 8] [--set train.epochs=1 ...]
Writes results/benchmarks/launcher_scaling.json.
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from pathlib import Path

import ray

from prn_core.config import get_profile, override
from prn_core.data import DEMO_CATEGORIES
from prn_core.launch import LaunchOptions
from prn_core.reproduce import reproduce
from prn_core.runinfo import git_commit, hardware, write_json_atomic

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "results" / "benchmarks" / "launcher_scaling.json"
DEFAULT_SETS = ["train.epochs=1", "train.threads=1"]


def _time_reproduction(workers: int, cfg, seeds: list[int], out: Path) -> tuple[float, dict]:
    """Wall seconds of one reproduction on a fresh local Ray of ``workers`` CPUs; its summary."""
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        t0 = time.perf_counter()
        reproduce(cfg, list(DEMO_CATEGORIES), seeds, out, launcher="ray",
                  options=LaunchOptions(cpus_per_run=1, progress=False))
        seconds = time.perf_counter() - t0
    finally:
        ray.shutdown()
    return seconds, json.loads((out / "summary.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=8, help="a multiple of the 2 demo categories")
    parser.add_argument("--set", action="append", default=None, metavar="KEY=VALUE",
                        help=f"ci-profile overrides (default: {' '.join(DEFAULT_SETS)})")
    args = parser.parse_args()
    if args.runs % len(DEMO_CATEGORIES):
        raise SystemExit(f"--runs must be a multiple of {len(DEMO_CATEGORIES)}, got {args.runs}")
    sets = args.set or DEFAULT_SETS
    overrides = dict(item.split("=", 1) for item in sets)
    cfg = override(get_profile("ci"), **overrides)
    seeds = list(range(args.runs // len(DEMO_CATEGORIES)))
    timings, summaries = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            out = Path(tmp) / f"w{workers}"
            timings[workers], summaries[workers] = _time_reproduction(workers, cfg, seeds, out)
            print(f"{workers} worker(s): {timings[workers]:.1f} s for {args.runs} runs")
    speedup = timings[1] / timings[2]
    write_json_atomic(OUT, {
        "benchmark": "launcher_scaling",
        "command": " ".join(["python benchmarks/launcher_scaling.py", *map(shlex.quote, sys.argv[1:])]),
        "profile": "ci",
        "overrides": overrides,
        "runs": args.runs,
        "categories": list(DEMO_CATEGORIES),
        "seeds": seeds,
        "launcher": "ray (local cluster, num_cpus = workers, one CPU and one torch thread per run)",
        "wall_seconds": {f"{w}_worker{'s' if w > 1 else ''}": timings[w] for w in (1, 2)},
        "seconds_per_run_1_worker": timings[1] / args.runs,
        "speedup_2_vs_1": speedup,
        "parallel_efficiency": speedup / 2,
        "summaries_equal": summaries[1] == summaries[2],
        "note": (
            "Measured on this machine's CPUs, shared with other jobs, so the speed-up is a lower "
            "bound on an idle machine. Per-GPU scaling is an estimate until a GPU run exists: "
            "runs are independent, so N GPUs need about ceil(runs / N) run times."
        ),
        "git_commit": git_commit(),
        "hardware": hardware(),
    })
    print(f"speed-up {speedup:.2f}x with 2 workers; wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()
