"""Launchers for many runs: reuse by config fingerprint, failures, and Ray against local.

The training runs here are ``ci``-profile runs, shortened (2 epochs of 2 steps at 64 px, one
thread) so that each takes seconds on 2 CPU cores; they check behaviour, not quality. Ray runs
on a local cluster of 2 CPUs, started and shut down by the tests.
"""
from __future__ import annotations

import json
import os
import re
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from prn_core.config import get_profile, override
from prn_core.launch import (
    LAUNCH_LOG,
    Job,
    LaunchOptions,
    RunsFailedError,
    _read_reported,
    run_jobs,
)
from prn_core.reference import MEANS
from prn_core.reproduce import markdown_table, protocol_gap, reproduce, reproduce_jobs, summarise
from prn_core.runinfo import CHECKPOINT_SIGNAL_ENV
from prn_core.checkpoint import CHECKPOINT, RESULT

SHORT = {"train.epochs": 2, "train.epoch_size": 16, "data.image_size": 64, "train.threads": 1}
CATEGORIES, SEEDS = ["demo_washer", "demo_terrazzo"], [0, 1]
QUIET = LaunchOptions(progress=False)


def _cfg():
    return override(get_profile("ci"), **SHORT)


@pytest.fixture(scope="module")
def local_reproduction(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local")
    reproduce(_cfg(), CATEGORIES, SEEDS, out, launcher="local", options=QUIET)
    return out


def test_local_reproduction_writes_results_and_a_summary(local_reproduction):
    summary = json.loads((local_reproduction / "summary.json").read_text())
    assert sorted(summary["categories"]) == sorted(CATEGORIES)
    for category in CATEGORIES:
        entry = summary["categories"][category]
        assert entry["seeds"] == SEEDS
        values = entry["image_auroc"]["values"]
        spread = abs(values[0] - values[1]) / 2**0.5  # the sample std (ddof=1) of two values
        assert entry["image_auroc"]["std"] == pytest.approx(spread)
        result = json.loads((local_reproduction / category / "seed0" / RESULT).read_text())
        assert len(result["config_fingerprint"]) == 16


def test_finished_runs_are_reused_only_for_the_same_config(local_reproduction):
    before = (local_reproduction / "demo_washer" / "seed0" / RESULT).stat().st_mtime_ns
    t0 = time.perf_counter()
    reproduce(_cfg(), CATEGORIES, SEEDS, local_reproduction, options=QUIET)
    assert time.perf_counter() - t0 < 10  # nothing retrained
    assert (local_reproduction / "demo_washer" / "seed0" / RESULT).stat().st_mtime_ns == before
    other = override(_cfg(), **{"train.lr": 3e-4})
    lr = re.escape(str(_cfg().train.lr))
    with pytest.raises(ValueError, match=rf"different config \(train\.lr: {lr} -> 0\.0003\)"):
        reproduce(other, CATEGORIES, SEEDS, local_reproduction, options=QUIET)


def test_failed_runs_are_listed_and_no_summary_is_written(tmp_path):
    message = r"1 of 1 runs did not finish(.|\n)*no_such_category/seed0"
    with pytest.raises(RunsFailedError, match=message):
        reproduce(_cfg(), ["no_such_category"], [0], tmp_path, options=QUIET)
    assert not (tmp_path / "summary.json").exists()


def test_a_result_the_driver_cannot_read_is_an_error(tmp_path):
    job = Job("x/seed0", _cfg(), tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="storage that every node sees"):
        _read_reported(job, str(tmp_path / "elsewhere" / RESULT))


def test_unknown_launcher_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown launcher 'slurm'"):
        run_jobs(reproduce_jobs(_cfg(), ["demo_washer"], [0], tmp_path), "slurm")


def test_table_reads_reference_means_and_single_seed_has_no_std():
    results = [{"category": "bottle", "seed": 0, "profile": "ci",
                "metrics": {"image_auroc": 0.9, "pixel_auroc": 0.8, "au_pro": 0.7, "pixel_ap": 0.6,
                            "image_f1_max": 0.5}}]
    summary = summarise(results)
    assert summary["categories"]["bottle"]["image_auroc"]["std"] is None
    table = markdown_table(summary)
    paper = MEANS["PRN paper"]
    assert f"{paper['image_auroc']:.3f}/{paper['pixel_auroc']:.3f}" in table.splitlines()[-1]
    assert "| bottle | 0.900 | 0.800 | 0.700 | 0.600 |" in table
    other = summarise([{**results[0], "category": "magnetic_tile"}])
    assert markdown_table(other).splitlines()[-1].endswith("| - | - |")  # no MVTec means beside it


@pytest.fixture
def ray_cluster():
    ray = pytest.importorskip("ray")  # the dev environment installs prn-core[cluster]
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_ray_summary_equals_local_summary(local_reproduction, ray_cluster, tmp_path):
    reproduce(_cfg(), CATEGORIES, SEEDS, tmp_path, launcher="ray", options=QUIET)
    want = json.loads((local_reproduction / "summary.json").read_text())
    assert json.loads((tmp_path / "summary.json").read_text()) == want


@pytest.fixture
def signalling_ray_cluster(tmp_path, monkeypatch):
    """A Ray whose workers announce every checkpoint and wait to be released (or killed)."""
    ray = pytest.importorskip("ray")
    signals = tmp_path / "signals"
    signals.mkdir()
    monkeypatch.setenv(CHECKPOINT_SIGNAL_ENV, str(signals))  # inherited by the Ray workers
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield signals
    ray.shutdown()


def test_killed_ray_worker_is_retried_and_resumes_from_its_checkpoint(
        local_reproduction, signalling_ray_cluster, tmp_path):
    signals, out = signalling_ray_cluster, tmp_path / "out"
    errors: list[BaseException] = []

    def driver() -> None:
        try:
            reproduce(_cfg(), ["demo_washer"], [0], out, launcher="ray",
                      options=LaunchOptions(max_retries=2, progress=False))
        except BaseException as err:  # noqa: BLE001 - re-raised in the test thread
            errors.append(err)

    thread = threading.Thread(target=driver)
    thread.start()
    killed: dict = {}
    deadline = time.time() + 600
    while thread.is_alive():
        assert time.time() < deadline, "the Ray run did not finish"
        for marker in signals.glob("[!.]*.json"):  # not the atomic writer's hidden temp file
            info = json.loads(marker.read_text())
            if not killed and info["epoch"] == 1:  # the worker waits after epoch 1's checkpoint
                state = torch.load(out / "demo_washer" / "seed0" / CHECKPOINT, weights_only=True)
                killed = {**info, "history": json.loads(state["history"])}
                os.kill(info["pid"], signal.SIGKILL)
            marker.unlink()  # release any other waiting trainer
        time.sleep(0.02)
    thread.join()
    assert not errors, errors
    assert killed, "no worker was killed"
    run_dir = out / "demo_washer" / "seed0"
    log = (run_dir / LAUNCH_LOG).read_text().splitlines()
    assert len(log) == 2 and "started from scratch" in log[0]
    assert "resumed from the checkpoint of epoch 1" in log[1]
    assert f"pid {killed['pid']} " in log[0] and f"pid {killed['pid']} " not in log[1]
    got = json.loads((run_dir / RESULT).read_text())
    want = json.loads((local_reproduction / "demo_washer" / "seed0" / RESULT).read_text())
    assert got["metrics"] == want["metrics"]
    assert got["history"][0] == killed["history"][0]  # epoch 1 came from the checkpoint
    assert [r["loss"] for r in got["history"]] == [r["loss"] for r in want["history"]]


def test_reproduce_help_explains_shared_storage_and_retries(capsys):
    from prn_core.cli import main

    with pytest.raises(SystemExit):
        main(["reproduce", "--launcher", "ray", "--help"])
    text = capsys.readouterr().out
    for phrase in ("shared storage", "every Ray node", "--max-retries", "--cpus-per-run",
                   "resumes from its last checkpoint", "prn-core[cluster]"):
        assert phrase in text, phrase


def test_cli_rejects_bad_launcher_options(capsys):
    from prn_core.cli import main

    assert main(["reproduce", "--profile", "ci", "--address", "auto"]) == 2
    assert "add --launcher ray" in capsys.readouterr().err
    assert main(["reproduce", "--profile", "ci", "--launcher", "ray", "--cpus-per-run", "0"]) == 2
    assert "--cpus-per-run must be >= 1" in capsys.readouterr().err


def test_summary_has_the_worst_seed_and_the_leaky_gap_is_paired_by_seed():
    def run(seed, value, category="bottle"):
        return {"category": category, "seed": seed, "profile": "cpu",
                "metrics": {m: value for m in ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap",
                                               "image_f1_max")}}

    honest = summarise([run(0, 0.90), run(1, 0.80), run(2, 0.85)])
    leaky = summarise([run(2, 0.95), run(0, 0.92), run(1, 0.86)])
    assert honest["categories"]["bottle"]["au_pro"]["worst"] == 0.80
    gap = protocol_gap(honest, leaky)["bottle"]["au_pro"]
    assert gap["values"] == pytest.approx([0.02, 0.06, 0.10])  # seeds 0, 1, 2
    assert gap["mean"] == pytest.approx(0.06) and gap["std"] == pytest.approx(0.04)
    with pytest.raises(ValueError, match="share no seed"):
        protocol_gap(honest, summarise([run(7, 0.9)]))


def _result(seed, protocol, metrics, val_history, final_test=None):
    history = [{"epoch": e + 1, "val": {"pixel_auroc": v}} for e, v in enumerate(val_history)]
    if final_test is not None:
        history[-1]["test"] = final_test
    return {"category": "bottle", "seed": seed, "protocol": protocol, "history": history,
            "metrics": metrics}


def test_protocol_parts_splits_the_leak_into_seen_in_test_and_picked_on_test():
    from prn_core.reproduce import protocol_parts

    m = lambda v: {k: v for k in ("image_auroc", "pixel_auroc", "au_pro", "pixel_ap", "image_f1_max")}
    honest = [_result(0, "honest", m(0.80), [0.9, 0.95]), _result(1, "honest", m(0.70), [0.8, 0.85])]
    leaky = [_result(1, "leaky", m(0.90), [0.8, 0.85], final_test=m(0.75)),
             _result(0, "leaky", m(0.86), [0.9, 0.95], final_test=m(0.84))]
    parts = protocol_parts(honest, leaky)["bottle"]
    assert parts["seeds"] == [0, 1] and parts["same_training"]
    assert parts["seen_in_test"]["au_pro"]["values"] == pytest.approx([0.04, 0.05])
    assert parts["picked_on_test"]["au_pro"]["values"] == pytest.approx([0.02, 0.15])
    assert parts["total"]["au_pro"]["values"] == pytest.approx([0.06, 0.20])  # = protocol_gap

    drifted = [_result(0, "leaky", m(0.86), [0.9, 0.96], final_test=m(0.84))]
    assert not protocol_parts(honest, drifted)["bottle"]["same_training"]
    with pytest.raises(ValueError, match="needs an honest and a leaky run"):
        protocol_parts(leaky, leaky)
    val_selected = [{**honest[0], "selection": "val", "selected_epoch": 1}]
    with pytest.raises(ValueError, match="not the leaky run's final epoch"):
        protocol_parts(val_selected, leaky)
    with pytest.raises(ValueError, match="no per-epoch test metrics"):
        protocol_parts(honest, [_result(0, "leaky", m(0.86), [0.9, 0.95])])
    with pytest.raises(ValueError, match="share no"):
        protocol_parts(honest, [_result(5, "leaky", m(0.86), [0.9], final_test=m(0.8))])
