"""prn_core: Prototypical Residual Networks (Zhang et al., CVPR 2023) as a tested package.

The book and the CLI import from here. Data flows one way:
data -> synthesis -> models -> prepare -> train -> evaluation / checkpoint -> metrics / viz ->
cli / book; loading and running a model (checkpoint, evaluation, predict) needs no trainer.
"""
from __future__ import annotations

import os

# OpenMP threads that spin while they wait make torch 10-100x slower whenever another process
# shares the cores (a notebook next to a training run, CI on 2 cores). Passive waiting costs
# nothing measurable when the machine is idle. It must be set before torch starts OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from ._version import __version__

from .config import (
    DataConfig,
    ModelConfig,
    PRNConfig,
    SynthesisConfig,
    TrainConfig,
    get_profile,
    override,
)
from .data import (
    CATEGORIES,
    DEMO_CATEGORIES,
    ImageCache,
    few_shot_split,
    list_samples,
    load_image,
    load_mask,
    make_demo_dataset,
    make_texture_source,
)
from .losses import prn_loss
from .metrics import compute_metrics
from .models import PRN, PrototypeBank, build_backbone, build_prn, fit_prototypes
from .notebook import Chapter, setup_chapter
from .synthesis import AnomalyMix, ExtendedAnomaly, SimulatedAnomaly, perlin_mask
from .checkpoint import load_model
from .evaluation import evaluate, predict
from .prepare import prepare_data
from .train import fit, load_or_train, run

__all__ = [
    "__version__",
    "DataConfig", "ModelConfig", "PRNConfig", "SynthesisConfig", "TrainConfig", "get_profile", "override",
    "CATEGORIES", "DEMO_CATEGORIES", "ImageCache", "few_shot_split", "list_samples", "load_image", "load_mask",
    "make_demo_dataset", "make_texture_source",
    "AnomalyMix", "ExtendedAnomaly", "SimulatedAnomaly", "perlin_mask",
    "PRN", "PrototypeBank", "build_backbone", "build_prn", "fit_prototypes", "prn_loss",
    "compute_metrics",
    "Chapter", "setup_chapter",
    "evaluate", "fit", "load_model", "load_or_train", "predict", "prepare_data", "run",
]
