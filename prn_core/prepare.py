"""Preparing a run: the config meets the data before any training starts.

Everything here runs before the first optimiser step and is shared by ``prn train``, ``prn
prototypes``, ``prn data check`` and the book: ``check_run`` checks the config against the data
without decoding an image, ``prepare_data`` decodes the training images once, and
``validation_set`` builds the split that selection and threshold calibration use. It holds no
real anomaly (held-out normals, each also with one simulated anomaly), so neither selecting an
epoch nor calibrating a threshold on it can leak the test set (DESIGN section 4).

Nothing here trains, so the CLI's checks and the prototype command import no trainer.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

from .config import AUTO, PROFILES, PRNConfig, get_profile, override
from .data import (
    FewShotSplit,
    ImageCache,
    cached_foreground,
    estimate_foreground,
    few_shot_split,
    get_format,
    make_demo_dataset,
    make_texture_source,
    suggest_image_size,
)
from .models import PrototypeBank, fit_prototypes
from .synthesis import AnomalyMix, ExtendedAnomaly, SimulatedAnomaly

__all__ = [
    "PreparedData",
    "ValidationSet",
    "resolve_device",
    "resolve_config",
    "resolve_data_root",
    "check_run",
    "prepare_data",
    "build_training_mix",
    "validation_set",
    "normal_batches",
    "fit_or_load_prototypes",
]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present; asking for CUDA without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"train.device={name!r} but no CUDA GPU is available; use --device cpu "
            "(or the 'cpu' profile) on this machine"
        )
    return device


def resolve_config(cfg: PRNConfig) -> PRNConfig:
    """Replace ``image_size="auto"`` by a size from the training images' median aspect ratio."""
    if cfg.data.image_size != AUTO:
        return cfg
    budget = get_profile(cfg.profile).data.image_size if cfg.profile in PROFILES else (256, 256)
    layout = get_format(cfg.data.format)
    train = layout.list_samples(resolve_data_root(cfg), cfg.data.category, "train")
    size = suggest_image_size(train, budget if budget != AUTO else (256, 256))
    return override(cfg, **{"data.image_size": size})


def resolve_data_root(cfg: PRNConfig) -> Path:
    """The configured dataset root, or the embedded demo data when none is given."""
    if cfg.data.root is None:
        return make_demo_dataset()
    root = Path(cfg.data.root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(
            f"data root {root} does not exist; pass --data-root pointing at a folder that holds "
            f"<category>/train and <category>/test, or run `prn data download`"
        )
    return root


def _epoch_size(cfg: PRNConfig, num_normals: int) -> int:
    """Samples per epoch: ``train.epoch_size``, or every normal image once at the mix's ratio."""
    weights = (
        cfg.synthesis.normal_weight + cfg.synthesis.seen_weight + cfg.synthesis.simulated_weight
    )
    return cfg.train.epoch_size or round(
        num_normals * weights / max(cfg.synthesis.normal_weight, 1e-6)
    )


def check_run(cfg: PRNConfig) -> FewShotSplit:
    """Check the config against the data before any image is decoded; return the split.

    Listing the samples already checks every file cheaply (header, end marker, mask size); here
    the config meets the data: enough normals, a test split with both classes left once the
    seen anomalies are removed, a validation split for ``honest-val``, at least one step per
    epoch. Raises ``ValueError`` or ``FileNotFoundError`` naming the setting to change.
    """
    cfg = resolve_config(cfg)
    root = resolve_data_root(cfg)
    d = cfg.data
    split = few_shot_split(
        root,
        d.category,
        num_seen=d.num_seen,
        seed=cfg.seed,
        leaky=cfg.train.leaky,
        val_fraction=d.val_fraction,
        format=d.format,
    )
    where = f"category {d.category!r} under {root}"
    if len(split.train) < 2:
        raise ValueError(
            f"{where} leaves {len(split.train)} normal training image(s) after the "
            f"validation split; PRN needs at least 2 (add images or lower data.val_fraction)"
        )
    defective = sum(s.label for s in split.test)
    if defective == 0:
        raise ValueError(
            f"{where}: no defective test image is left after moving data.num_seen="
            f"{d.num_seen} into training; lower data.num_seen or add defective test images"
        )
    if defective == len(split.test):
        raise ValueError(f"{where}: the test split has no normal image (test/good); add some")
    if cfg.train.protocol == "honest-val" and not split.val:
        raise ValueError(
            f"train.protocol='honest-val' needs a validation split, but data.val_fraction="
            f"{d.val_fraction} holds out no image of {len(split.train)}; raise it"
        )
    epoch_size = _epoch_size(cfg, len(split.train))
    if epoch_size < cfg.train.batch_size:
        raise ValueError(
            f"an epoch of {epoch_size} samples is smaller than train.batch_size "
            f"({cfg.train.batch_size}): no training step; set train.epoch_size"
        )
    if cfg.data.textures not in (None, "dtd") and not Path(cfg.data.textures).expanduser().is_dir():
        raise FileNotFoundError(
            f"data.textures folder {cfg.data.textures} does not exist; pass a "
            f"folder of texture images, 'dtd', or none (procedural textures)"
        )
    return split


@dataclass
class PreparedData:
    """Everything training needs, decoded once: the split, cached images and anomaly sources."""

    root: Path
    split: FewShotSplit
    cache: ImageCache
    normals: list[np.ndarray]  # (H, W, 3) float32 training normals, val images excluded
    foregrounds: list[np.ndarray]  # (H, W) bool, one per normal: the object, never padding
    valid: list[np.ndarray]  # (H, W) bool, one per normal: False on keep_aspect padding
    seen_images: list[np.ndarray]
    seen_masks: list[np.ndarray]
    simulated: SimulatedAnomaly


def prepare_data(cfg: PRNConfig, progress: bool = True) -> PreparedData:
    """Split the category, decode every training image once, and build the anomaly sources."""
    cfg = resolve_config(cfg)
    split = check_run(cfg)
    root = split.root
    size, keep = cfg.data.image_size, cfg.data.keep_aspect
    cache = ImageCache(size, keep_aspect=keep)
    bar = tqdm(split.train, desc="decode train", disable=not progress, leave=False)
    normals = [cache.image(s) for s in bar]
    valid = [cache.valid(s) for s in split.train]
    # Extended anomalies always go on the object; synthesis.foreground_only only concerns the
    # simulated ones (AnomalyMix). Padding is excluded from both.
    foregrounds = [
        cached_foreground(s.path, size, keep_aspect=keep) & v for s, v in zip(split.train, valid)
    ]
    seen_images = [cache.image(s) for s in split.seen]
    seen_masks = [cache.mask(s) for s in split.seen]
    textures = make_texture_source(cfg.data.textures, seed=cfg.seed)
    simulated = SimulatedAnomaly.from_config(textures, size, cfg.synthesis)
    return PreparedData(
        root, split, cache, normals, foregrounds, valid, seen_images, seen_masks, simulated
    )


def build_training_mix(cfg: PRNConfig, data: PreparedData) -> AnomalyMix:
    """The epoch dataset of DESIGN section 3, with the no-test-image-in-training check."""
    extended = ExtendedAnomaly(data.seen_images, data.seen_masks) if data.seen_images else None
    epoch_size = _epoch_size(cfg, len(data.normals))
    # Leaky mode leaves the seen anomalies in test on purpose; everything else in test is off
    # limits.
    forbidden = [s for s in data.split.test if s not in set(data.split.seen)] + data.split.val
    return AnomalyMix(
        data.normals,
        data.simulated,
        foregrounds=data.foregrounds,
        valid_regions=data.valid,
        seen_images=data.seen_images,
        seen_masks=data.seen_masks,
        extended=extended,
        config=cfg.synthesis,
        epoch_size=epoch_size,
        batch_size=cfg.train.batch_size,
        seed=cfg.seed,
        train_paths=data.split.train + data.split.seen,
        forbidden_paths=forbidden,
    )


@dataclass
class ValidationSet:
    """Held-out normals, each also with one simulated anomaly; ``valid`` is False on padding."""

    labels: np.ndarray  # (N,)
    images: np.ndarray  # (N, H, W, 3)
    masks: np.ndarray  # (N, H, W) uint8
    valid: np.ndarray  # (N, H, W) bool


def validation_set(cfg: PRNConfig, data: PreparedData) -> ValidationSet:
    """It contains no real anomaly, so selecting on it cannot leak the test set."""
    images, masks, labels, valid = [], [], [], []
    for i, sample in enumerate(data.split.val):
        img, region = data.cache.image(sample), data.cache.valid(sample)
        fg = estimate_foreground(img) & region if cfg.synthesis.foreground_only else region
        rng = np.random.default_rng([cfg.seed, 7_919, i])
        anomalous, mask = data.simulated(img, rng, foreground=fg)
        images += [img, anomalous]
        masks += [np.zeros(img.shape[:2], np.uint8), mask.astype(np.uint8)]
        labels += [0, int(mask.any())]
        valid += [region, region]
    if not images:
        empty = np.zeros((0, *data.cache.image_size), np.uint8)
        return ValidationSet(
            np.zeros(0, int), np.zeros((0, *data.cache.image_size, 3)), empty, empty.astype(bool)
        )
    return ValidationSet(np.asarray(labels), np.stack(images), np.stack(masks), np.stack(valid))


def _prototype_meta(cfg: PRNConfig, data: PreparedData) -> dict[str, Any]:
    return {
        "backbone": cfg.model.backbone,
        "image_size": list(cfg.data.image_size),
        "category": cfg.data.category,
        "seed": cfg.seed,
        "ratio": cfg.model.prototype_ratio,
        "fingerprint": data.split.fingerprint(),
    }


def normal_batches(data: PreparedData, batch_size: int) -> Iterable[torch.Tensor]:
    """The training normals as (B, 3, H, W) CPU batches, for K-means and the residual prior."""
    for i in range(0, len(data.normals), batch_size):
        yield torch.from_numpy(np.stack(data.normals[i : i + batch_size])).permute(0, 3, 1, 2)


def fit_or_load_prototypes(
    cfg: PRNConfig, data: PreparedData, backbone: torch.nn.Module, path: Path, device: torch.device,
    progress: bool = True,
) -> PrototypeBank:
    """Reuse prototypes saved for exactly this data and backbone, otherwise run K-means."""
    meta = _prototype_meta(cfg, data)
    if path.exists():
        return PrototypeBank.load(path, expect=meta)
    bank = fit_prototypes(backbone.to(device), normal_batches(data, cfg.train.batch_size),
                          ratio=cfg.model.prototype_ratio, seed=cfg.seed, meta=meta,
                          progress=progress)
    bank.save(path)
    return bank
