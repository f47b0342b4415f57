"""Launchers: run many independent training runs, one after another or on a Ray cluster.

``prn reproduce`` and ``prn ablate`` describe their work as :class:`Job` s (one config, one run
folder) and hand them to a launcher from :data:`LAUNCHERS`:

* ``local`` -- one after another in this process; no extra dependency (the default);
* ``ray`` -- one Ray task per job asking for one GPU, or ``cpus_per_run`` CPUs on a cluster
  without GPUs. Ray retries a task whose worker died (``max_retries``), and the retried task
  resumes from the run's last checkpoint because :func:`execute` always trains with
  ``resume=True``. Python errors (a bad config, missing data) are not retried: they would only
  fail again.

Scheduling, placement and retries are Ray's; this module only decides what is already done,
shows progress and collects outcomes. A run folder is "done" when its ``result.json`` holds the
fingerprint of the job's config (:func:`prn_core.runinfo.config_fingerprint`); a folder made
with another config is an error, never silently reused or overwritten.

Run folders must be on storage that the driver and every worker see (NFS, a shared disk): a
job is finished only when the driver can read the ``result.json`` the worker reports.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from .atomic import write_text_atomic
from .config import PRNConfig, to_dict
from .runinfo import config_fingerprint, portable_paths
from .checkpoint import CHECKPOINT, RESULT
from .train import run

__all__ = [
    "Job",
    "Outcome",
    "LaunchOptions",
    "LAUNCHERS",
    "RunsFailedError",
    "execute",
    "finished_result",
    "run_jobs",
]

LAUNCH_LOG = "launcher.log"  # one line per attempt in each run folder: started, or resumed


@dataclass(frozen=True)
class Job:
    """One training run: its name in messages, its (resolved) config and its run folder."""

    name: str
    config: PRNConfig
    run_dir: Path
    command: str | None = None


@dataclass(frozen=True)
class Outcome:
    """What became of a job: its ``result.json`` content, or why it failed."""

    job: Job
    result: dict[str, Any] | None
    error: str | None = None


@dataclass(frozen=True)
class LaunchOptions:
    """Launcher settings; ``address``, ``cpus_per_run`` and ``max_retries`` concern Ray only."""

    address: str | None = None  # a Ray cluster; None = RAY_ADDRESS, else a local Ray
    cpus_per_run: int = 1
    max_retries: int = 2
    progress: bool = True


class RunsFailedError(RuntimeError):
    """Some runs did not finish; the message lists each one and why."""


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _config_difference(have: dict[str, Any], want: dict[str, Any]) -> str:
    """``key: stored -> requested`` for the first fields that differ, for error messages."""
    a, b = _flatten(json.loads(json.dumps(have))), _flatten(json.loads(json.dumps(want)))
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    shown = ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in keys[:5])
    return shown + (f" and {len(keys) - 5} more" if len(keys) > 5 else "")


def finished_result(job: Job) -> dict[str, Any] | None:
    """The job's result when its folder already holds one for the same config, else None.

    Raises ``ValueError`` when the folder holds a result or a checkpoint of another config:
    reusing it would report the wrong run, and training over it would destroy it.
    """
    want = portable_paths(to_dict(job.config))  # result.json stores paths this way
    path = job.run_dir / RESULT
    if path.exists():
        result = json.loads(path.read_text())
        stored = result.get("config", {})
        if result.get("config_fingerprint", config_fingerprint(stored)) == config_fingerprint(want):
            return result
        raise ValueError(
            f"run folder {job.run_dir} already holds a result made with a different config "
            f"({_config_difference(stored, want)}); pass another --out, or delete that folder to "
            "retrain it"
        )
    ckpt = job.run_dir / CHECKPOINT
    if ckpt.exists():
        stored = portable_paths(
            json.loads(torch.load(ckpt, map_location="cpu", weights_only=True)["config"]))
        if config_fingerprint(stored) != config_fingerprint(want):
            raise ValueError(
                f"run folder {job.run_dir} holds an unfinished run of a different config "
                f"({_config_difference(stored, want)}); pass another --out, or delete that folder"
            )
    return None


def _log_attempt(job: Job) -> None:
    """Append 'started' or 'resumed from epoch N' to the run's launcher log (worker side)."""
    ckpt = job.run_dir / CHECKPOINT
    if ckpt.exists():
        epoch = int(torch.load(ckpt, map_location="cpu", weights_only=True)["epoch"])
        line = f"resumed from the checkpoint of epoch {epoch}"
    else:
        line = "started from scratch"
    job.run_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    log = job.run_dir / LAUNCH_LOG
    previous = log.read_text() if log.exists() else ""
    # rewritten whole, atomically: a worker killed mid-write leaves the old log, never half a line
    write_text_atomic(log, previous + f"{stamp} pid {os.getpid()} on {os.uname().nodename}: "
                      f"{job.name} {line}\n")


def execute(job: Job) -> str:
    """Train (or resume) one job and return the path of its ``result.json``; runs on a worker."""
    _log_attempt(job)
    run(job.config, job.run_dir, resume=True, progress=False, command=job.command)
    return str(job.run_dir / RESULT)


def _read_reported(job: Job, reported: str) -> dict[str, Any]:
    """The result a worker reports, read by the driver: unreadable means storage is not shared."""
    path = Path(reported)
    if not path.is_file():
        raise FileNotFoundError(
            f"the worker wrote {path}, but the driver cannot read it: run folders (--out) must be "
            "on storage that every node sees"
        )
    return json.loads(path.read_text())


# A launcher takes the pending jobs and yields an Outcome as each one ends.
Launcher = Callable[[Sequence[Job], LaunchOptions], Iterator[Outcome]]


def _launch_local(jobs: Sequence[Job], options: LaunchOptions) -> Iterator[Outcome]:
    """One job after another in this process: today's sequential behaviour."""
    for job in jobs:
        try:
            yield Outcome(job, _read_reported(job, execute(job)))
        except Exception as err:  # noqa: BLE001 - a failed run is reported, the others go on
            yield Outcome(job, None, f"{type(err).__name__}: {err}")


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ImportError(
            "the 'ray' launcher needs Ray: pip install 'prn-core[cluster]'"
        ) from err
    return ray


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[-1] if text else ''}"


def _launch_ray(jobs: Sequence[Job], options: LaunchOptions) -> Iterator[Outcome]:
    """One Ray task per job; joins ``options.address`` (or RAY_ADDRESS) or starts a local Ray."""
    ray = _import_ray()
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=options.address, include_dashboard=False, log_to_driver=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        resources = {"num_gpus": 1, "num_cpus": 1} if gpus else {"num_cpus": options.cpus_per_run}
        remote = ray.remote(max_retries=options.max_retries, retry_exceptions=False, **resources)
        task = remote(execute)
        pending = {task.remote(job): job for job in jobs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(done[0])
            try:
                yield Outcome(job, _read_reported(job, ray.get(done[0])))
            except Exception as err:  # noqa: BLE001 - worker errors arrive wrapped by Ray
                yield Outcome(job, None, _first_line(err))
    finally:
        if started_here:
            ray.shutdown()


LAUNCHERS: dict[str, Launcher] = {"local": _launch_local, "ray": _launch_ray}


def _metrics_line(result: dict[str, Any]) -> str:
    m = result.get("metrics", {})
    return "  ".join(f"{k}={v:.4f}" for k, v in m.items() if isinstance(v, float))


def run_jobs(jobs: Sequence[Job], launcher: str = "local",
             options: LaunchOptions = LaunchOptions()) -> list[dict[str, Any]]:
    """Run every job not already finished and return all results, in the order of ``jobs``.

    Every folder is checked before anything trains. Progress is one bar over all jobs plus one
    line per finished run. Raises :class:`RunsFailedError` naming each failed job and its
    error when any job did not finish; results of the others stay in their folders.
    """
    if launcher not in LAUNCHERS:
        raise ValueError(f"unknown launcher {launcher!r}; choose one of {sorted(LAUNCHERS)}")
    names = [job.name for job in jobs]
    if len(set(names)) != len(names):
        raise ValueError(f"job names must be unique; got {names}")
    results: dict[str, dict[str, Any]] = {}
    for job in jobs:
        done = finished_result(job)
        if done is not None:
            results[job.name] = done
    pending = [job for job in jobs if job.name not in results]
    failures: list[Outcome] = []
    with tqdm(total=len(jobs), initial=len(results), desc=f"runs ({launcher})", unit="run",
              disable=not options.progress) as bar:
        if results and options.progress:
            bar.write(f"[prn] {len(results)} run(s) already finished with this config; reused")
        for outcome in LAUNCHERS[launcher](pending, options):
            bar.update(1)
            if outcome.result is None:
                failures.append(outcome)
                bar.write(f"[prn] {outcome.job.name} FAILED: {outcome.error}")
                continue
            results[outcome.job.name] = outcome.result
            bar.write(f"[prn] {outcome.job.name} done: {_metrics_line(outcome.result)}")
    if failures:
        lines = "\n".join(f"  {o.job.name} ({o.job.run_dir}): {o.error}" for o in failures)
        raise RunsFailedError(
            f"{len(failures)} of {len(jobs)} runs did not finish, so no summary was written:\n"
            f"{lines}\nfix the cause and run the same command again; finished runs are reused"
        )
    return [results[name] for name in names]
