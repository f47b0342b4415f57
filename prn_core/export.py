"""Export a trained PRN for deployment: one ``.pt2`` file that runs with plain torch.

``prn_core`` is a training and research package; a production line wants a frozen graph it can
load without it (no timm, no scikit-learn, no config classes). :func:`export_model` traces the
eval-mode network with ``torch.export`` into an ``ExportedProgram`` (ATen operations, weights and
prototypes included) and stores the run's config beside it, because the consumer must know the
input size and whether to pad (``keep_aspect``). :func:`load_exported` needs only torch::

    program = torch.export.load("model.pt2").module()
    anomaly_map, score = program(images)  # (B, 3, H, W) in [0, 1] -> (B, 1, H, W), (B,)

The batch size is fixed at export time (``batch_size``, default 1): some layers' shape checks
make a dynamic batch dimension fragile, and a deployment scores one image at a time anyway.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch import nn

from .atomic import atomic_path
from .config import PRNConfig, from_dict, to_dict
from .models import PRN

__all__ = ["MapsAndScores", "export_model", "load_exported"]

CONFIG_FILE = "prn_config.json"  # stored with the program via torch.export's extra_files
# torch warns when saving or loading weights stored as views (channels_last); harmless on CPU
_VIEW_WARNING = "No complete tensor found"


class MapsAndScores(nn.Module):
    """Eval-mode PRN returning a plain tuple ``(anomaly_map (B, 1, H, W), score (B,))``.

    An exported graph's outputs should be plain tensors, so that a consumer without
    ``prn_core`` never needs the :class:`~prn_core.models.PRNOutput` class.
    """

    def __init__(self, model: PRN) -> None:
        super().__init__()
        self.model = model.eval()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(x)
        return out.anomaly_map, out.score


def export_model(model: PRN, cfg: PRNConfig, path: str | Path, batch_size: int = 1) -> Path:
    """Export ``model`` for ``(batch_size, 3, H, W)`` inputs at its image size to ``path`` (.pt2).

    The config goes into the same file, so :func:`load_exported` returns both, like
    :func:`prn_core.train.load_model` does for checkpoints.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if tuple(cfg.data.image_size) != tuple(model.image_size):
        raise ValueError(
            f"the config's image_size {cfg.data.image_size} differs from the model's {model.image_size}; "
            f"pass the config the model was trained with (load_model returns both)"
        )
    path = Path(path)
    device = next(model.parameters()).device
    example = torch.zeros(batch_size, 3, *model.image_size, device=device)
    with torch.no_grad():
        program = torch.export.export(MapsAndScores(model), (example,))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_VIEW_WARNING)
        with atomic_path(path) as tmp:
            torch.export.save(program, tmp, extra_files={CONFIG_FILE: json.dumps(to_dict(cfg))})
    return path


def load_exported(path: str | Path) -> tuple[nn.Module, PRNConfig]:
    """The exported program as a callable module, and the config it was trained with."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model {path} does not exist; write it with export_model(model, cfg, path)")
    extra = {CONFIG_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_VIEW_WARNING)
            program = torch.export.load(path, extra_files=extra)
    except Exception as err:  # torch raises several types for foreign or corrupt files
        raise ValueError(f"{path} is not a torch.export program (.pt2 from export_model): {err}") from err
    if not extra[CONFIG_FILE]:
        raise ValueError(f"{path} holds no PRN config; it was not written by prn_core.export.export_model")
    return program.module(), from_dict(json.loads(extra[CONFIG_FILE]))
