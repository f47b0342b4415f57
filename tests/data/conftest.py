"""The data tests' fixture: a small MVTec-layout category in ``tmp_path`` (see fake_mvtec.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from fake_mvtec import make_tree


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    return make_tree(tmp_path / "data")
