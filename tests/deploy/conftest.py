"""Shared cases for the deployment tests: a ci-sized model, its test images and eager outputs.

Parity needs identical outputs, not a good model: the model has the real (offline) encoder
weights, K-means prototypes and residual-prior statistics fitted on the category's normals,
and a seeded untrained head, which already makes a detector whose AUROCs are worth comparing.
Exports are slow (10 to 40 s each on 2 cores), so each (format, precision) is written once per
session, on first use, by :class:`Exports`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import torch

from prn_core.checkpoint import save_model
from prn_core.config import get_profile, override
from prn_core.data import few_shot_split, load_image, load_mask, make_demo_dataset
from prn_core.deploy import export
from prn_core.models import build_backbone, build_prn, fit_prototypes

BATCH = 8


def middle_threshold(scores: np.ndarray) -> float:
    """The median score moved to the middle of the gap around it, so that rounding at 1e-7
    cannot flip an image that sits exactly on the threshold."""
    ordered = np.sort(scores)
    mid = len(ordered) // 2
    return float((ordered[mid - 1] + ordered[mid]) / 2)


@dataclass
class Case:
    """A saved model and the images it is checked on, with the eager PyTorch outputs."""

    checkpoint: Path
    normals: np.ndarray  # (N, H, W, 3) training normals in [0, 1]
    images: np.ndarray  # (M, H, W, 3) test images
    labels: np.ndarray  # (M,)
    masks: np.ndarray  # (M, H, W) uint8
    maps: np.ndarray  # (M, H, W) eager anomaly maps
    scores: np.ndarray  # (M,) eager scores
    threshold: float  # the checkpoint's calibrated image threshold, else the middle one
    exports: dict[tuple[str, str], Path] = field(default_factory=dict)


def make_case(root: Path, category: str, out: Path, test_samples, train_samples,
              store_threshold: bool) -> Case:
    """Fit the model on ``train_samples`` and score ``test_samples`` eagerly."""
    torch.set_num_threads(2)
    cfg = override(get_profile("ci"), **{"data.category": category, "data.root": str(root)})
    size = cfg.data.image_size
    normals = np.stack([load_image(s.path, size) for s in train_samples])
    images = np.stack([load_image(s.path, size) for s in test_samples])
    masks = np.stack([load_mask(s.mask_path, size) if s.mask_path else np.zeros(size, np.uint8)
                      for s in test_samples])
    torch.manual_seed(0)
    backbone = build_backbone(cfg.model.backbone, "auto")
    batches = [torch.from_numpy(normals[i : i + BATCH]).permute(0, 3, 1, 2)
               for i in range(0, len(normals), BATCH)]
    bank = fit_prototypes(backbone, batches, ratio=cfg.model.prototype_ratio, progress=False)
    model = build_prn(cfg.model, size, prototypes=bank, backbone=backbone)
    model.calibrate_residual_prior(batches)
    model.eval()
    with torch.no_grad():
        outs = [model(torch.from_numpy(images[i : i + BATCH]).permute(0, 3, 1, 2))
                for i in range(0, len(images), BATCH)]
    maps = torch.cat([o.anomaly_map[:, 0] for o in outs]).numpy()
    scores = torch.cat([o.score for o in outs]).numpy()
    threshold = middle_threshold(scores)
    # stands in for the thresholds training calibrates on the validation split
    extra = {"thresholds": {"image": threshold, "image_rule": "test-median stand-in",
                            "image_normal_q995": None, "pixel": 0.5}} if store_threshold else {}
    checkpoint = save_model(model, cfg, out / "model.pt", extra=extra)
    labels = np.asarray([s.label for s in test_samples])
    return Case(checkpoint, normals, images, labels, masks, maps, scores, threshold)


class Exports:
    """Exports of one case, each written on first request and reused for the session."""

    def __init__(self, case: Case, root: Path) -> None:
        self.case, self.root = case, root

    def get(self, fmt: str, precision: str = "fp32") -> Path:
        key = (fmt, precision)
        if key not in self.case.exports:
            source = self.case.checkpoint
            if fmt == "openvino":  # convert the onnx export: one trace fewer
                source = self.get("onnx").parent
            calibration = self.case.normals[:16] if precision == "int8" else None
            self.case.exports[key] = export(source, fmt, self.root / f"{fmt}_{precision}",
                                            precision=precision, calibration_images=calibration)
        return self.case.exports[key]


@pytest.fixture(scope="session")
def demo_exports(tmp_path_factory) -> Exports:
    """The ci profile on the demo washer: its few-shot test split, thresholds in the model."""
    cfg = get_profile("ci")
    root = make_demo_dataset()
    split = few_shot_split(root, cfg.data.category, num_seen=cfg.data.num_seen, seed=cfg.seed,
                           val_fraction=cfg.data.val_fraction)
    out = tmp_path_factory.mktemp("demo_deploy")
    case = make_case(root, cfg.data.category, out, split.test, split.train, store_threshold=True)
    return Exports(case, out)


@pytest.fixture(scope="session")
def bottle_exports(shared_data, tmp_path_factory) -> Exports:
    """A ci-sized model fitted on 8 real bottle normals, checked on 4 good and 4 broken images;
    no thresholds in the model file, so decisions use the middle score."""
    from prn_core.data import list_samples

    root = shared_data / "mvtec"
    test = list_samples(root, "bottle", "test")
    chosen = [s for s in test if s.label == 0][:4] + [s for s in test if s.label == 1][:4]
    train = list_samples(root, "bottle", "train")[:8]
    out = tmp_path_factory.mktemp("bottle_deploy")
    return Exports(make_case(root, "bottle", out, chosen, train, store_threshold=False), out)
