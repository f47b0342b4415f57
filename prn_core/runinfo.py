"""Provenance for every result file: git commit, hardware and software versions.

Results in ``results/`` must say which code and which machine made them, so the book can label
them (profile, hardware) instead of anyone typing numbers in by hand.
"""
from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from .atomic import write_json_atomic  # re-exported: result files use it

__all__ = ["git_commit", "hardware", "write_json_atomic"]


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
