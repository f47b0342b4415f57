"""PRN model parts, one module per concept of the paper.

``backbone`` (frozen encoders and offline weights), ``prototypes`` (multi-scale prototypes and
residuals), ``fusion`` (MSF), ``attention`` (MSA), ``decoder`` and ``prn`` (the assembly).

May import: torch, timm, scikit-learn (K-means), ``prn_core.config`` and ``prn_core.atomic``;
never ``data``, ``synthesis``, ``train``, the CLI or ``viz``.
"""
from prn_core.models.attention import MultiSizeAttention, PatchAttention, fit_patch_sizes
from prn_core.models.backbone import (
    BACKBONES,
    Backbone,
    build_backbone,
    build_classifier,
    list_backbones,
    register_backbone,
)
from prn_core.models.decoder import Decoder
from prn_core.models.fusion import MultiScaleFusion
from prn_core.models.prn import PRN, PRNOutput, build_prn
from prn_core.models.prototypes import PrototypeBank, PrototypeMismatchError, fit_prototypes

__all__ = [
    "BACKBONES",
    "PRN",
    "Backbone",
    "Decoder",
    "MultiScaleFusion",
    "MultiSizeAttention",
    "PRNOutput",
    "PatchAttention",
    "PrototypeBank",
    "PrototypeMismatchError",
    "build_backbone",
    "build_classifier",
    "build_prn",
    "fit_patch_sizes",
    "fit_prototypes",
    "list_backbones",
    "register_backbone",
]
