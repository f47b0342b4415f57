"""prn_core.notebook: the repository URL the chapters install from is the book's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from prn_core.notebook import REPOSITORY_URL

REPO = Path(__file__).resolve().parents[1]


def test_repository_url_matches_the_book_config_and_every_install_cell():
    config = yaml.safe_load((REPO / "_config.yml").read_text())
    assert config["repository"]["url"] == REPOSITORY_URL
    chapters = sorted((REPO / "chapters").glob("*.ipynb"))
    assert chapters
    for chapter in chapters:
        cells = json.loads(chapter.read_text())["cells"]
        sources = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
        pinned = {m for s in sources for m in re.findall(r"git\+(https://[^\s@\"']+)", s)}
        assert pinned == {REPOSITORY_URL}, (chapter.name, pinned)


def test_without_gpu_or_profile_a_chapter_runs_ci_on_the_demo_data(monkeypatch):
    import torch

    from prn_core import notebook

    monkeypatch.delenv("PRN_PROFILE", raising=False)
    monkeypatch.delenv("PRN_DATA_ROOT", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(notebook, "_mvtec_root", lambda category: pytest.fail("no download"))
    chapter = notebook.setup_chapter()
    assert chapter.profile == "ci" and chapter.data_source == "demo"


def test_the_profile_variable_and_a_gpu_still_choose(monkeypatch):
    import torch

    from prn_core import notebook

    monkeypatch.setenv("PRN_PROFILE", "cpu")
    assert notebook.chapter_profile_name() == "cpu"
    monkeypatch.delenv("PRN_PROFILE")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert notebook.chapter_profile_name() == "full"


def test_figures_are_stored_at_100_dpi_or_more(monkeypatch):
    import matplotlib

    from prn_core.notebook import setup_chapter

    monkeypatch.setenv("PRN_PROFILE", "ci")
    setup_chapter()
    assert matplotlib.rcParams["figure.dpi"] >= 100
