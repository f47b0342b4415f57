"""The one setup call at the top of every chapter.

Chapters must run unchanged in three places: CI (nbval, ``PRN_PROFILE=ci``, no downloads),
a laptop without a GPU, and Colab with a GPU and internet. :func:`setup_chapter` decides the
profile and the data once, the same way for every chapter, and says what it decided:

* profile: ``PRN_PROFILE`` if set, else ``full`` with a GPU and ``ci`` without (a chapter opened
  on a laptop runs in minutes on the demo data; ``PRN_PROFILE=cpu`` asks for real data);
* data: ``PRN_DATA_ROOT`` if set; else, outside the ``ci`` profile, MVTec AD from the cache or a
  download when online; else the embedded demo dataset. The ``ci`` profile always uses the
  demo data unless ``PRN_DATA_ROOT`` is given, so stored outputs are reproducible anywhere.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .config import PRNConfig, default_profile_name, get_profile, override

__all__ = ["Chapter", "setup_chapter", "chapter_profile_name", "REPOSITORY_URL", "runs_dir"]

# The install cell of every chapter pins this URL; tests/test_notebook.py checks it equals
# _config.yml's repository URL.
REPOSITORY_URL = "https://github.com/prn-book/prn-book"
FIGURE_DPI = 100  # stored notebook figures: sharp in the book; galleries are kept small instead


@dataclass(frozen=True)
class Chapter:
    """What a chapter runs on: the config (profile, data root, category) and a label for figures."""

    cfg: PRNConfig
    data_source: str  # "demo", "mvtec" or "custom"

    @property
    def profile(self) -> str:
        return self.cfg.profile

    @property
    def root(self) -> Path:
        from .prepare import resolve_data_root

        return resolve_data_root(self.cfg)

    @property
    def category(self) -> str:
        return self.cfg.data.category

    def __str__(self) -> str:
        return (f"profile={self.profile}  data={self.data_source}  category={self.category}  "
                f"image_size={self.cfg.data.image_size[0]}x{self.cfg.data.image_size[1]}  "
                f"backbone={self.cfg.model.backbone}")


def runs_dir() -> Path:
    """Where chapters keep their trained runs (``PRN_RUNS`` overrides); reused between chapters."""
    return Path(os.environ.get("PRN_RUNS", "runs")).expanduser()


def _mvtec_root(category: str) -> Path | None:
    from .data import DownloadError, default_cache_dir, download_mvtec

    cached = default_cache_dir() / "mvtec"
    if (cached / category / "train").is_dir():
        return cached
    try:
        return download_mvtec(cached, (category,))
    except (DownloadError, OSError):
        return None


def chapter_profile_name() -> str:
    """``PRN_PROFILE`` if set, else ``full`` with a GPU and ``ci`` without.

    Unlike the command line's default (``cpu`` without a GPU), a chapter opened without a GPU
    and without ``PRN_PROFILE`` runs the tiny ``ci`` profile on the demo data, in minutes.
    """
    name = default_profile_name()
    if os.environ.get("PRN_PROFILE") or name == "full":
        return name
    return "ci"


def setup_chapter(
    profile: str | None = None, category: str | None = None, **overrides: object
) -> Chapter:
    """Pick profile and data for a chapter; ``overrides`` use dotted config names."""
    from .data import DEMO_CATEGORIES

    cfg = get_profile(profile or chapter_profile_name())
    env_root = os.environ.get("PRN_DATA_ROOT")
    if env_root:
        source, root = "custom", env_root
        category = category or os.environ.get("PRN_CATEGORY") or cfg.data.category
    elif cfg.profile != "ci" and (found := _mvtec_root(category or "bottle")) is not None:
        source, root, category = "mvtec", str(found), category or "bottle"
    else:
        source, root = "demo", None
        category = category if category in DEMO_CATEGORIES else DEMO_CATEGORIES[0]
    cfg = override(cfg, **{"data.root": root, "data.category": category, **overrides})
    import matplotlib

    matplotlib.rcParams["figure.dpi"] = FIGURE_DPI
    chapter = Chapter(cfg, source)
    print(chapter)
    return chapter
