"""Redraw a finished run's report and figures from its folder, without training.

    python scripts/report_from_run.py RUN_DIR

Runs made by ``prn reproduce`` or ``prn ablate`` write ``result.json`` and ``model.pt`` but no
figures. This re-scores the test split with the saved model, checks that every metric equals the
one in ``result.json`` (so the figures show exactly the run the numbers describe), and writes
``report.md``, ``training.png``, ``predictions.png`` and ``curves.png`` beside them through the
same :func:`prn_core.report.write_report` that ``prn train`` uses. Run it from the folder the run
was made in: data roots in ``result.json`` are relative to it.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from types import SimpleNamespace

from prn_core.checkpoint import MODEL, RESULT, load_model
from prn_core.config import from_dict
from prn_core.evaluation import evaluate
from prn_core.prepare import prepare_data
from prn_core.report import write_report


def redraw(run_dir: Path) -> Path:
    result = json.loads((run_dir / RESULT).read_text())
    cfg = from_dict(result["config"])
    model, _ = load_model(run_dir / MODEL)
    data = prepare_data(cfg, progress=False)
    ev = evaluate(model, data.split.test, data.cache, "cpu", cfg.train.batch_size, progress=False)
    for name, value in result["metrics"].items():
        if not math.isclose(ev.metrics[name], value, rel_tol=0, abs_tol=1e-9):
            raise ValueError(f"{run_dir}: {name} re-scores to {ev.metrics[name]!r}, but result.json "
                             f"says {value!r}; the model file and the result do not belong together")
    return write_report(SimpleNamespace(model=model, data=data), ev, result, run_dir)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_dir", type=Path)
    print(redraw(parser.parse_args().run_dir))
