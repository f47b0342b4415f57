"""Shared fixtures: where the real development data lives, and a small demo dataset.

Real-data tests use ``shared_data`` and skip when ``../shared/data`` is absent, except under
``CI=true``, where a missing folder is a failure: CI must prove the real-data paths.
"""
from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")  # tests draw figures without a display
import matplotlib.pyplot as plt  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _shared_data_dir() -> Path:
    return Path(os.environ.get("PRN_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = _shared_data_dir()
    if not root.is_dir():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but the real data folder {root} is missing")
        pytest.skip(f"real data not found at {root}")
    return root


@pytest.fixture(autouse=True)
def _close_figures():
    """Every test that draws leaves no open figure behind (matplotlib warns past 20)."""
    yield
    plt.close("all")
