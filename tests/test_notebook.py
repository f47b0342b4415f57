"""prn_core.notebook: the repository URL the chapters install from is the book's own."""

from __future__ import annotations

import json
import re
from pathlib import Path

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
