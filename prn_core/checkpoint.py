"""What a run folder holds on disk: the model file, the training state and their names.

Two kinds of file, kept apart on purpose:

* the **model file** (``model.pt``, :func:`save_model`) is what a user or a production line
  loads: config, prototypes, weights and metadata, all plain tensors and strings, so it loads
  with ``torch.load(weights_only=True)`` and no pickled code runs;
* the **training state** (``last.pt``, ``best.pt``) is what ``--resume`` and epoch selection
  need: optimiser, schedule, scaler, random state and history as well.

Every write is atomic (:mod:`prn_core.atomic`): a kill or a full disk during a write leaves the
previous file, never half of one. Loading a model needs no trainer, so ``prn predict`` and
``prn evaluate`` import only this module.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

import torch

from .atomic import torch_save_atomic
from .calibrate import Thresholds
from .config import PRNConfig, from_dict, to_dict
from .models import PRN, PrototypeBank, build_backbone, build_prn

__all__ = [
    "CHECKPOINT",
    "BEST",
    "MODEL",
    "PROTOTYPES",
    "LOG",
    "RESULT",
    "MODEL_FORMAT",
    "LoadedModel",
    "save_model",
    "load_model",
    "load_checkpoint",
    "read_model_file",
    "save_best",
    "load_best",
    "save_training_state",
    "restore_training_state",
]

CHECKPOINT = "last.pt"  # training state after the last finished epoch
BEST = "best.pt"  # weights of the selected epoch so far
MODEL = "model.pt"  # the self-contained model file
PROTOTYPES = "prototypes.pt"
LOG = "log.jsonl"
RESULT = "result.json"
MODEL_FORMAT = "prn-model/1"


def save_model(model: PRN, cfg: PRNConfig, path: Path, extra: dict[str, Any] | None = None) -> Path:
    """A self-contained model file: config, prototypes and weights; loads with weights_only.

    ``extra`` holds metadata (selected epoch, calibrated thresholds); its values must be plain
    Python numbers, strings, lists, dicts or ``None`` so that ``weights_only`` loading accepts
    them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_save_atomic(
        {
            "format": MODEL_FORMAT,
            "config": json.dumps(to_dict(cfg)),
            "prototypes": model.prototypes.to_state(),
            "state_dict": model.state_dict(),
            **(extra or {}),
        },
        path,
    )
    return path


def read_model_file(path: str | Path) -> dict[str, Any]:
    """The raw payload of a model file, checked to be one; no model is built.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not a
    PRN model file (corrupt, foreign, or a training state such as ``last.pt``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; train first with `prn train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"checkpoint {path} could not be read as a PRN model file: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise ValueError(f"{path} is not a PRN model file (expected format {MODEL_FORMAT!r})")
    return payload


def _build(payload: dict[str, Any], path: Path) -> tuple[PRN, PRNConfig]:
    """The model and config a checked payload describes, with its weights loaded."""
    cfg = from_dict(json.loads(payload["config"]))
    bank = PrototypeBank.from_state(payload["prototypes"])
    model = build_prn(cfg.model, cfg.data.image_size, prototypes=bank,
                      backbone=build_backbone(cfg.model.backbone, "random"))
    try:
        missing, unexpected = model.load_state_dict(payload["state_dict"], strict=False)
    except RuntimeError as err:  # tensor shapes differ: weights from another architecture
        first = str(err).strip().splitlines()[-1].strip()
        raise ValueError(
            f"checkpoint {path} holds weights of another shape than its config describes "
            f"(edited or from another version?): {first}"
        ) from err
    if missing or unexpected:
        raise ValueError(
            f"checkpoint {path} does not match the model its config describes: "
            f"missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}"
        )
    return model, cfg


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[PRN, PRNConfig]:
    """Rebuild a model from :func:`save_model` output, with clear errors for wrong files."""
    loaded = load_checkpoint(path, device)
    return loaded.model, loaded.config


class LoadedModel(NamedTuple):
    """A model file's model (eval mode), config and calibrated thresholds."""

    model: PRN
    config: PRNConfig
    thresholds: Thresholds  # every field None for files saved before calibration existed


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """:func:`load_model` plus the thresholds a deployment decides with."""
    payload = read_model_file(path)
    model, cfg = _build(payload, Path(path))
    thresholds = Thresholds.from_dict(payload.get("thresholds"), where=f"{path}: thresholds")
    return LoadedModel(model.to(device).eval(), cfg, thresholds)


def save_best(model: PRN, epoch: int, path: Path) -> Path:
    """The weights of the epoch selection prefers so far (``best.pt``)."""
    return torch_save_atomic({"model": model.state_dict(), "epoch": epoch}, path)


def load_best(model: PRN, path: Path) -> int:
    """Load ``best.pt``'s weights into ``model``; returns the epoch they come from."""
    best = torch.load(path, map_location="cpu", weights_only=True)
    model.load_state_dict(best["model"])
    return int(best["epoch"])


def save_training_state(path: Path, cfg: PRNConfig, epoch: int, model: PRN,
                        optimizer: torch.optim.Optimizer, scheduler: Any, scaler: Any,
                        history: list[dict[str, Any]]) -> Path:
    """Everything ``--resume`` needs to continue exactly after ``epoch`` (``last.pt``)."""
    return torch_save_atomic({
        "config": json.dumps(to_dict(cfg)), "epoch": epoch, "model": model.state_dict(),
        "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(), "torch_rng": torch.get_rng_state(),
        "history": json.dumps(history),
    }, path)


def restore_training_state(path: Path, cfg: PRNConfig, model: PRN,
                           optimizer: torch.optim.Optimizer, scheduler: Any,
                           scaler: Any) -> tuple[list[dict[str, Any]], int]:
    """Load :func:`save_training_state` output in place; returns (history, finished epochs).

    A state written with another config is refused: resuming it would silently mix two runs.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if state["config"] != json.dumps(to_dict(cfg)):
        raise ValueError(f"cannot resume from {path}: it was written with a different config; "
                         "use a new --out folder or the same flags")
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    return json.loads(state["history"]), int(state["epoch"])
