"""Training and evaluation: the product's main job, honest by construction.

``fit`` trains PRN on one category from a :class:`~prn_core.config.PRNConfig`; ``evaluate``
scores a model on the test split; ``run`` does both and writes a result JSON with full
provenance. Three protocol rules hold throughout (DESIGN section 4):

* the seen anomalies are removed from the test set before anything else happens;
* the model is never selected on the test set: ``train.protocol`` is ``honest-final`` (keep the
  final epoch) or ``honest-val`` (the best epoch on a validation split of held-out normal
  images plus simulated anomalies); ``leaky`` is the only exception, kept to reproduce the
  unofficial numbers. ``train.monitor_test`` only logs test metrics, as a diagnostic;
* with ``keep_aspect``, padded pixels never count: no anomaly is drawn there, and neither the
  metrics nor the image score's top-k see them;
* one seed drives the split, the anomaly generation, K-means and the initialisation.

Checkpoints are written atomically after every epoch and ``resume=True`` continues from the
last one exactly: model, optimiser, schedule, epoch and history. Because every training
sample is a pure function of ``(seed, epoch, index)``, no data-loader state needs saving.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from . import distributed
from .config import AUTO, PROFILES, PRNConfig, from_dict, get_profile, override, to_dict
from .data import (
    FewShotSplit,
    ImageCache,
    Sample,
    cached_foreground,
    estimate_foreground,
    few_shot_split,
    get_format,
    make_demo_dataset,
    make_texture_source,
    suggest_image_size,
)
from .losses import prn_loss
from .metrics import compute_metrics
from .models import PRN, PrototypeBank, build_backbone, build_prn, fit_prototypes
from .atomic import torch_save_atomic, write_json_atomic, write_text_atomic
from .runinfo import config_fingerprint, git_commit, hardware, portable_paths, signal_checkpoint
from .synthesis import AnomalyMix, ExtendedAnomaly, SimulatedAnomaly

__all__ = [
    "PreparedData",
    "TrainResult",
    "EvalResult",
    "resolve_device",
    "resolve_config",
    "resolve_data_root",
    "check_run",
    "prepare_data",
    "build_training_mix",
    "fit",
    "evaluate",
    "predict",
    "run",
    "save_model",
    "load_model",
    "load_or_train",
]

CHECKPOINT = "last.pt"
BEST = "best.pt"
MODEL = "model.pt"
PROTOTYPES = "prototypes.pt"
LOG = "log.jsonl"
RESULT = "result.json"


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
    train = get_format(cfg.data.format).list_samples(resolve_data_root(cfg), cfg.data.category, "train")
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
    normals = [cache.image(s) for s in tqdm(split.train, desc="decode train", disable=not progress, leave=False)]
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
    # Leaky mode leaves the seen anomalies in test on purpose; everything else in test is off limits.
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
class _ValidationSet:
    """Held-out normals, each also with one simulated anomaly; ``valid`` is False on padding."""

    labels: np.ndarray  # (N,)
    images: np.ndarray  # (N, H, W, 3)
    masks: np.ndarray  # (N, H, W) uint8
    valid: np.ndarray  # (N, H, W) bool


def _validation_set(cfg: PRNConfig, data: PreparedData) -> _ValidationSet:
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
        return _ValidationSet(
            np.zeros(0, int), np.zeros((0, *data.cache.image_size, 3)), empty, empty.astype(bool)
        )
    return _ValidationSet(np.asarray(labels), np.stack(images), np.stack(masks), np.stack(valid))


def _prototype_meta(cfg: PRNConfig, data: PreparedData) -> dict[str, Any]:
    return {
        "backbone": cfg.model.backbone,
        "image_size": list(cfg.data.image_size),
        "category": cfg.data.category,
        "seed": cfg.seed,
        "ratio": cfg.model.prototype_ratio,
        "fingerprint": data.split.fingerprint(),
    }


def _normal_batches(data: PreparedData, batch_size: int) -> Iterable[torch.Tensor]:
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
    bank = fit_prototypes(backbone.to(device), _normal_batches(data, cfg.train.batch_size),
                          ratio=cfg.model.prototype_ratio, seed=cfg.seed, meta=meta, progress=progress)
    bank.save(path)
    return bank


@dataclass
class EvalResult:
    """Test-set predictions and their metrics; maps are (N, H, W) probabilities."""

    metrics: dict[str, float]
    labels: np.ndarray  # (N,)
    scores: np.ndarray  # (N,)
    maps: np.ndarray  # (N, H, W)
    masks: np.ndarray  # (N, H, W) uint8
    paths: list[str] = field(default_factory=list)
    valid: np.ndarray | None = None  # (N, H, W) bool, False on keep_aspect padding; None = none

    def metric_inputs(self) -> dict[str, Any]:
        """Keyword arguments that make any pixel metric or figure agree with :attr:`metrics`."""
        return {"masks": self.masks, "maps": self.maps, "valid": self.valid}


@torch.no_grad()
def predict(model: PRN, images: np.ndarray | torch.Tensor, device: torch.device | str = "cpu",
            batch_size: int = 8, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Anomaly maps (N, H, W) and image scores (N,) for (N, H, W, 3) float images in [0, 1].

    ``valid`` (N, H, W) bool marks real pixels; the image score then ignores the padding.
    """
    model.eval()
    device = torch.device(device)
    tensor = torch.as_tensor(np.asarray(images, dtype=np.float32)).permute(0, 3, 1, 2)
    regions = None if valid is None else torch.as_tensor(np.asarray(valid, dtype=bool))[:, None]
    maps, scores = [], []
    for start in range(0, len(tensor), batch_size):
        batch = tensor[start : start + batch_size].to(device)
        region = None if regions is None else regions[start : start + batch_size].to(device)
        with torch.autocast(device.type, enabled=device.type == "cuda"):
            out = model(batch, valid=region)
        maps.append(out.anomaly_map[:, 0].float().cpu().numpy())
        scores.append(out.score.float().cpu().numpy())
    if not maps:
        return np.zeros((0,), np.float32), np.zeros((0,), np.float32)
    return np.concatenate(maps), np.concatenate(scores)


def evaluate(model: PRN, samples: Sequence[Sample], cache: ImageCache, device: torch.device | str = "cpu",
             batch_size: int = 8, progress: bool = True) -> EvalResult:
    """Score ``samples`` in chunks and compute every metric; padding (keep_aspect) is excluded.

    Under torchrun each rank scores a block of ``samples`` and the metrics cover all of them;
    the returned arrays then hold this rank's block (see :mod:`prn_core.distributed`).
    """
    chunk = max(batch_size, 32)
    samples, shards = distributed.eval_shards(samples, batch_size, chunk)
    labels = np.asarray([s.label for s in samples])
    maps, scores, masks, valid = [], [], [], []
    for start in tqdm(range(0, len(samples), chunk), desc="evaluate", disable=not progress, leave=False):
        part = samples[start : start + chunk]
        region = np.stack([cache.valid(x) for x in part])
        m, s = predict(
            model, np.stack([cache.image(x) for x in part]), device, batch_size, valid=region
        )
        maps.append(m)
        scores.append(s)
        masks.append(np.stack([cache.mask(x) for x in part]).astype(np.uint8))
        valid.append(region)
    if not maps:  # an empty block: this rank has fewer chunks than the others
        maps, scores, masks, valid = [np.zeros((0, 1, 1), np.float32)], [np.zeros(0, np.float32)], \
            [np.zeros((0, 1, 1), np.uint8)], [np.ones((0, 1, 1), bool)]
    maps_arr, scores_arr, masks_arr = np.concatenate(maps), np.concatenate(scores), np.concatenate(masks)
    padded = not all(v.all() for v in valid)
    if shards is not None:  # every rank must take the same branch below, whatever its block
        padded = any(shards.all_gather(padded))
    valid_arr = np.concatenate(valid) if padded else None
    metrics = compute_metrics(labels, scores_arr, masks_arr, maps_arr, valid=valid_arr, shards=shards)
    return EvalResult(
        metrics, labels, scores_arr, maps_arr, masks_arr, [str(s.path) for s in samples], valid_arr
    )


def _val_metrics(model: PRN, val: _ValidationSet, device: torch.device) -> dict[str, float]:
    if len(val.labels) == 0:
        return {}
    padded = not val.valid.all()
    maps, scores = predict(model, val.images, device, valid=val.valid if padded else None)
    return compute_metrics(val.labels, scores, val.masks, maps, valid=val.valid if padded else None)


def _selection_score(metrics: dict[str, float]) -> float:
    keys = [k for k in ("image_auroc", "pixel_auroc", "pixel_ap", "au_pro") if not math.isnan(metrics.get(k, math.nan))]
    return float(np.mean([metrics[k] for k in keys])) if keys else -math.inf


def _lr_lambda(cfg: PRNConfig, total_steps: int):
    if cfg.train.schedule == "constant":
        return lambda step: 1.0
    return lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(1, total_steps)))


@dataclass
class TrainResult:
    """A trained model with the data it saw and its per-epoch history."""

    model: PRN
    data: PreparedData
    history: list[dict[str, Any]]
    out_dir: Path
    selected_epoch: int
    config: PRNConfig


def save_model(model: PRN, cfg: PRNConfig, path: Path, extra: dict[str, Any] | None = None) -> Path:
    """A self-contained model file: config, prototypes and weights; loads with weights_only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch_save_atomic(
        {
            "format": "prn-model/1",
            "config": json.dumps(to_dict(cfg)),
            "prototypes": model.prototypes.to_state(),
            "state_dict": model.state_dict(),
            **(extra or {}),
        },
        path,
    )
    return path


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[PRN, PRNConfig]:
    """Rebuild a model from :func:`save_model` output, with clear errors for wrong files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist; train first with `prn train`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for corrupt or foreign files
        raise ValueError(f"checkpoint {path} could not be read as a PRN model file: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != "prn-model/1":
        raise ValueError(f"{path} is not a PRN model file (expected format 'prn-model/1')")
    cfg = from_dict(json.loads(payload["config"]))
    bank = PrototypeBank.from_state(payload["prototypes"])
    model = build_prn(cfg.model, cfg.data.image_size, prototypes=bank, backbone=build_backbone(cfg.model.backbone, "random"))
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
    return model.to(device).eval(), cfg


def fit(cfg: PRNConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
        data: PreparedData | None = None) -> TrainResult:
    """Train one category; see the module docstring for the protocol and the checkpoints."""
    cfg = resolve_config(cfg)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = distributed.setup(resolve_device(cfg.train.device))
    progress = progress and distributed.is_main()  # one set of bars, not one per rank
    if cfg.train.threads:
        torch.set_num_threads(cfg.train.threads)
    data = data or prepare_data(cfg, progress)

    backbone = build_backbone(cfg.model.backbone, cfg.model.weights)
    bank = distributed.broadcast_prototypes(
        lambda: fit_or_load_prototypes(cfg, data, backbone, out_dir / PROTOTYPES, device, progress))
    torch.manual_seed(cfg.seed)
    model = build_prn(cfg.model, cfg.data.image_size, prototypes=bank, backbone=backbone).to(device)
    model.calibrate_residual_prior(_normal_batches(data, cfg.train.batch_size))
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    forward = distributed.wrap(model, device)  # DDP under torchrun, else the model itself

    mix = build_training_mix(cfg, data)
    loader = DataLoader(mix, batch_size=cfg.train.batch_size, shuffle=False, drop_last=True,
                        num_workers=cfg.train.num_workers, persistent_workers=False,
                        pin_memory=device.type == "cuda")
    loader = distributed.shard_loader(loader)  # this rank's slice of every batch under torchrun
    steps_per_epoch = len(loader)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _lr_lambda(cfg, cfg.train.epochs * steps_per_epoch))
    use_amp = cfg.train.amp and device.type == "cuda"
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp)

    history: list[dict[str, Any]] = []
    start_epoch = 0
    ckpt_path = out_dir / CHECKPOINT
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=True)
        if state["config"] != json.dumps(to_dict(cfg)):
            raise ValueError(f"cannot resume from {ckpt_path}: it was written with a different config; "
                             "use a new --out folder or the same flags")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        history = json.loads(state["history"])
        start_epoch = int(state["epoch"])

    val = _validation_set(cfg, data)
    test_samples = data.split.test
    for epoch in range(start_epoch, cfg.train.epochs):
        mix.set_epoch(epoch)
        model.train()
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "smooth_l1": 0.0, "focal": 0.0}
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{cfg.train.epochs}", disable=not progress, leave=False)
        for batch in bar:
            images = batch["image"].to(device, non_blocking=True)
            masks = batch["mask"].to(device, non_blocking=True)
            if device.type == "cuda":
                images = images.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, enabled=use_amp):
                logits = forward(images)
            loss, parts = prn_loss(logits, masks, focal_weight=cfg.train.loss_focal_weight)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            sums["loss"] += loss.item()
            for key, value in parts.items():
                sums[key] += float(value.detach())
            bar.set_postfix(loss=f"{loss.item():.4f}")
        distributed.sync_from_main(model)  # BatchNorm statistics too: every rank scores one model
        seconds = time.perf_counter() - t0
        row: dict[str, Any] = {
            "epoch": epoch + 1,
            **{k: v / steps_per_epoch for k, v in sums.items()},
            "lr": scheduler.get_last_lr()[0],
            "seconds": seconds,
            "samples_per_s": steps_per_epoch * cfg.train.batch_size / seconds,
        }
        row["val"] = _val_metrics(model, val, device)
        if cfg.train.monitor_test or cfg.train.leaky:  # leaky selects on it; else a diagnostic
            row["test"] = evaluate(model, test_samples, data.cache, device, cfg.train.batch_size, progress=False).metrics
        history.append(row)
        distributed.check_epoch_shards(loader, out_dir, epoch + 1)
        if not distributed.is_main():
            continue  # every rank holds the same state; rank 0 writes it
        if _is_best(cfg, history):
            torch_save_atomic({"model": model.state_dict(), "epoch": epoch + 1}, out_dir / BEST)
        torch_save_atomic({
            "config": json.dumps(to_dict(cfg)), "epoch": epoch + 1, "model": model.state_dict(),
            "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
            "scaler": scaler.state_dict(), "torch_rng": torch.get_rng_state(),
            "history": json.dumps(history),
        }, ckpt_path)
        _write_log(out_dir / LOG, history)
        signal_checkpoint(out_dir, epoch + 1)

    selected = len(history)
    distributed.barrier()  # rank 0's best.pt is complete before any rank reads it
    if cfg.train.selection != "final":
        best = torch.load(out_dir / BEST, map_location="cpu", weights_only=True)
        model.load_state_dict(best["model"])
        selected = int(best["epoch"])
    if distributed.is_main():
        save_model(model, cfg, out_dir / MODEL, {"selected_epoch": selected})
    return TrainResult(model.eval(), data, history, out_dir, selected, cfg)


def _is_best(cfg: PRNConfig, history: list[dict[str, Any]]) -> bool:
    """Selection key: test metrics only in leaky mode, else the validation split.

    The honest key never reads ``row["test"]``, so ``monitor_test`` cannot change the choice.
    """
    key = "test" if cfg.train.leaky else "val"
    scores = [_selection_score(row.get(key, {})) for row in history]
    return scores[-1] >= max(scores)


def _write_log(path: Path, history: Iterable[dict[str, Any]]) -> None:
    """Rewrite the JSON-lines log from the history, so a resumed run never duplicates epochs."""
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in history))


def run(cfg: PRNConfig, out_dir: str | Path, resume: bool = False, progress: bool = True,
        command: str | None = None) -> tuple[TrainResult, EvalResult, dict[str, Any]]:
    """Train, evaluate on the (leak-free) test split and write ``result.json`` with provenance."""
    started = time.time()
    cfg = resolve_config(cfg)
    progress = progress and distributed.is_main()
    trained = fit(cfg, out_dir, resume=resume, progress=progress)
    device = next(trained.model.parameters()).device
    ev = evaluate(trained.model, trained.data.split.test, trained.data.cache, device, cfg.train.batch_size, progress)
    result = {
        "command": command,
        "profile": cfg.profile,
        "category": cfg.data.category,
        "data_root": str(trained.data.root),
        "config": to_dict(cfg),
        "git_commit": git_commit(),
        "hardware": hardware(),
        "seed": cfg.seed,
        "protocol": "leaky" if cfg.train.leaky else "honest",
        "protocol_setting": cfg.train.protocol,
        "selection": "test (leaky)" if cfg.train.leaky else cfg.train.selection,
        "test_monitor": ("diagnostic only: per-epoch test metrics in history, never used to select"
                         if cfg.train.monitor_test and not cfg.train.leaky else None),
        "selected_epoch": trained.selected_epoch,
        "split": trained.data.split.to_dict(),
        "history": trained.history,
        "train_seconds": sum(r["seconds"] for r in trained.history),
        "wall_seconds": time.time() - started,
        "metrics": ev.metrics,
        "test_counts": {"normal": int((ev.labels == 0).sum()), "anomalous": int((ev.labels == 1).sum())},
    }
    result = portable_paths(result)  # committed results name no folder of this machine
    result["config_fingerprint"] = config_fingerprint(result["config"])
    if distributed.world_size() > 1:  # ev's arrays are this rank's block; count the whole split
        labels = np.asarray([s.label for s in trained.data.split.test])
        result["test_counts"] = {"normal": int((labels == 0).sum()),
                                 "anomalous": int((labels == 1).sum())}
        result["world_size"] = distributed.world_size()
    if distributed.is_main():
        write_json_atomic(Path(out_dir) / RESULT, result)
    return trained, ev, result


def load_or_train(cfg: PRNConfig, out_dir: str | Path, progress: bool = True) -> tuple[PRN, dict[str, Any]]:
    """For the book: reuse a finished run in ``out_dir`` when its config matches, else train it."""
    cfg = resolve_config(cfg)
    out_dir = Path(out_dir)
    result_path = out_dir / RESULT
    if result_path.exists() and (out_dir / MODEL).exists():
        result = json.loads(result_path.read_text())
        if result.get("config") == json.loads(json.dumps(portable_paths(to_dict(cfg)))):
            model, _ = load_model(out_dir / MODEL)
            return model, result
    trained, _, result = run(cfg, out_dir, progress=progress)
    return trained.model, result
