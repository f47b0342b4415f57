"""Provenance for every result file: git commit, hardware and software versions.

Results in ``results/`` must say which code and which machine made them, so the book can label
them (profile, hardware) instead of anyone typing numbers in by hand.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
import time
from pathlib import Path
from typing import Any

from .atomic import write_json_atomic  # re-exported: result files use it

__all__ = [
    "git_commit", "hardware", "write_json_atomic", "config_fingerprint", "signal_checkpoint",
    "portable_paths",
]

# Set by tests (and anyone watching a run) to a folder: the trainer drops a file there after
# every checkpoint, so a watcher can act at a known point instead of guessing with sleep().
CHECKPOINT_SIGNAL_ENV = "PRN_CHECKPOINT_SIGNAL_DIR"


def git_commit(cwd: str | Path | None = None) -> str:
    """Commit hash of the checkout, with ``-dirty`` when files differ; ``unknown`` outside git."""
    cwd = Path(cwd or Path(__file__).resolve().parent)
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def hardware(**extra: Any) -> dict[str, Any]:
    """A short description of the machine and libraries that produced a number, plus ``extra``."""
    import cv2
    import numpy as np
    import torch

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info | extra


# An absolute path inside a string: a "/" that does not continue a word ("s/img" is no path).
_ABSOLUTE = re.compile(r"(?<![\w.~-])/[^\s'\"=:,;]+")


def portable_paths(obj: Any, base: str | Path | None = None) -> Any:
    """``obj`` with every absolute path written relative to ``base`` (default: the current folder).

    Result files are committed and read on other machines, so they must not name a folder of
    the machine that made them: ``/home/me/data/mvtec`` run from ``/home/me/prn`` is recorded as
    ``../data/mvtec``, which is also what a reader types from the repository root.

    >>> portable_paths({"root": "/a/data", "cmd": "prn train --data-root /a/data"}, base="/a/b")
    {'root': '../data', 'cmd': 'prn train --data-root ../data'}
    """
    base = os.fspath(base if base is not None else os.getcwd())
    if isinstance(obj, str):
        return _ABSOLUTE.sub(lambda m: os.path.relpath(m.group(0), base), obj)
    if isinstance(obj, dict):
        return {k: portable_paths(v, base) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(portable_paths(v, base) for v in obj)
    return obj


def config_fingerprint(config: Any) -> str:
    """A short hash of a config (a :func:`prn_core.config.to_dict` dict, or its JSON round trip).

    Key order and tuple-vs-list do not matter, so the fingerprint of a config equals that of the
    ``config`` stored in its ``result.json``; launchers reuse a run folder only on a match.
    """
    blob = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def signal_checkpoint(run_dir: str | Path, epoch: int, timeout: float = 600.0) -> None:
    """Tell a watcher that ``run_dir`` holds epoch ``epoch``'s checkpoint (no-op unless asked).

    When ``PRN_CHECKPOINT_SIGNAL_DIR`` is set, writes ``<pid>-epoch<epoch>.json`` there (the
    process id, run folder and epoch) and waits until the watcher deletes it, or ``timeout``
    seconds. The fault-tolerance tests kill the process while it waits: the kill lands right
    after a known checkpoint and cannot race the way a timed sleep does.
    """
    folder = os.environ.get(CHECKPOINT_SIGNAL_ENV)
    if not folder:
        return
    info = {"pid": os.getpid(), "run_dir": str(Path(run_dir).resolve()), "epoch": int(epoch)}
    path = write_json_atomic(Path(folder) / f"{os.getpid()}-epoch{epoch}.json", info)
    deadline = time.monotonic() + timeout
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
