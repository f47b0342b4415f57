"""Re-execute chapters in place in the ci profile, so their stored outputs render in the book.

    python scripts/execute_chapters.py chapters/05_training.ipynb [more.ipynb ...]

Stored outputs must render in a static, offline book: no widget state is stored (myst-nb would
load the widget JavaScript from a CDN), and tqdm progress-bar widgets are dropped, since they
mean nothing without a kernel. Each chapter runs from the chapters/ folder, as nbval runs it.
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    start = time.time()
    NotebookClient(nb, timeout=1800, kernel_name="python3", store_widget_state=False,
                   resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
    seconds = time.time() - start
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if not (
                "application/vnd.jupyter.widget-view+json" in o.get("data", {})
                and "it/s" in o["data"].get("text/plain", ""))]
    nbformat.write(nb, path)
    return seconds


if __name__ == "__main__":
    os.environ.setdefault("PRN_PROFILE", "ci")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    for arg in sys.argv[1:]:
        print(f"{arg}: executed in {execute(Path(arg)):.1f} s", flush=True)
