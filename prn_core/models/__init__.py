"""PRN model parts, one module per concept of the paper.

``backbone`` (frozen encoders and offline weights, the image inputs they take, the ImageNet
classifier and its top classes), ``prototypes`` (multi-scale prototypes and residuals), ``fusion``
(MSF), ``attention`` (MSA and its attention weights, read back with hooks), ``decoder`` and
``prn`` (the assembly).

May import: torch, timm, scikit-learn (K-means), ``prn_core.config`` and ``prn_core.atomic``;
never ``data``, ``synthesis``, ``train``, the CLI or ``viz``.
"""
from prn_core.models.attention import MultiSizeAttention, PatchAttention, attention_weights, fit_patch_sizes
from prn_core.models.backbone import (
    BACKBONES,
    Backbone,
    build_backbone,
    build_classifier,
    image_array,
    image_batch,
    list_backbones,
    register_backbone,
    top_classes,
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
    "attention_weights",
    "build_backbone",
    "build_classifier",
    "build_prn",
    "fit_patch_sizes",
    "fit_prototypes",
    "image_array",
    "image_batch",
    "list_backbones",
    "register_backbone",
    "top_classes",
]
