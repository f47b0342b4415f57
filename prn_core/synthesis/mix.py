"""The training epoch: normal, seen, extended and simulated samples in balanced batches.

DESIGN section 3: per epoch N normal images, N/2 seen + extended anomalies and N/2 simulated
anomalies, with the ratios taken from :class:`~prn_core.config.SynthesisConfig`. Design choices:

* **Balanced batches.** Every consecutive run of ``batch_size`` indices holds each kind's share
  rounded down, plus the leftover slots. The leftovers go to kinds in proportion to their
  fractional parts by systematic sampling across batches, so each batch is within one sample of
  its quota *and* the epoch as a whole is within one sample of the configured proportions (plain
  per-batch largest-remainder rounding would give a kind with a 0.5 quota a full slot in every
  batch). Kinds are shuffled within each batch. Use a sequential sampler (``shuffle=False``):
  the schedule is already random, and shuffling would break the per-batch balance.
* **Determinism.** Sample ``index`` of ``epoch`` uses only
  ``np.random.default_rng([seed, epoch, index])``, and the schedule only its own stream, so the
  epoch is identical for any number of DataLoader workers. Call :meth:`AnomalyMix.set_epoch`
  before each epoch (with ``persistent_workers=False``, the default, workers see the new epoch).
* **Who goes where.** With no seen anomalies their whole share goes to simulated ones; with seen
  anomalies but no :class:`ExtendedAnomaly`, the extended share goes to seen ones. Normal images
  and seen anomalies are drawn by a per-epoch permutation, so each is used about equally often
  ("repeated as needed"); simulated and extended anomalies start from a random normal image.
* **No test leakage.** Given ``train_paths`` and ``forbidden_paths`` (the test split), any file in
  both raises ``ValueError`` naming it, before a single sample is made.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from prn_core.config import SynthesisConfig
from prn_core.synthesis.extended import ExtendedAnomaly
from prn_core.synthesis.simulated import SimulatedAnomaly, as_float_image

__all__ = ["KINDS", "AnomalyMix", "kind_proportions", "balanced_schedule", "check_no_leak"]

KINDS: tuple[str, ...] = ("normal", "seen", "extended", "simulated")
_SCHEDULE_STREAM = 2**32 - 1  # third seed word of the schedule's generator; sample indices stay below it


def kind_proportions(
    config: SynthesisConfig, num_seen: int, has_extended: bool, has_simulated: bool = True
) -> dict[str, float]:
    """Share of each kind in an epoch, after moving the shares of kinds that cannot be made.

    >>> kind_proportions(SynthesisConfig(), num_seen=10, has_extended=True)
    {'normal': 0.5, 'seen': 0.0625, 'extended': 0.1875, 'simulated': 0.25}
    >>> kind_proportions(SynthesisConfig(), num_seen=0, has_extended=False)
    {'normal': 0.5, 'seen': 0.0, 'extended': 0.0, 'simulated': 0.5}
    """
    weights = {
        "normal": config.normal_weight,
        "seen": config.seen_weight * (1.0 - config.extended_prob),
        "extended": config.seen_weight * config.extended_prob,
        "simulated": config.simulated_weight,
    }
    if not has_extended:
        weights["seen"], weights["extended"] = weights["seen"] + weights["extended"], 0.0
    if num_seen == 0:
        weights["simulated"], weights["seen"] = weights["simulated"] + weights["seen"], 0.0
    if not has_simulated and weights["simulated"] > 0:
        raise ValueError(
            f"the mix needs simulated anomalies (share {weights['simulated']:.3g}) but simulated=None; "
            "pass a SimulatedAnomaly or set synthesis.simulated_weight=0 (and provide seen anomalies)"
        )
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"all kind weights are zero after redistribution: {weights}")
    return {kind: w / total for kind, w in weights.items()}


def balanced_schedule(
    proportions: dict[str, float], epoch_size: int, batch_size: int, rng: np.random.Generator
) -> list[str]:
    """Kind of every index in an epoch; each batch holds ``floor`` or ``ceil`` of its quota.

    >>> kinds = balanced_schedule({"normal": 0.5, "simulated": 0.5}, 8, 4, np.random.default_rng(0))
    >>> [kinds[i : i + 4].count("normal") for i in range(0, 8, 4)]
    [2, 2]
    """
    if epoch_size < 1 or batch_size < 1:
        raise ValueError(f"epoch_size and batch_size must be >= 1, got {epoch_size} and {batch_size}")
    names = list(proportions)
    p = np.array([proportions[k] for k in names], np.float64)
    num_batches = -(-epoch_size // batch_size)
    order = rng.permutation(num_batches)  # where each batch sits on the systematic-sampling line
    kinds: list[str] = []
    for b in range(num_batches):
        size = min(batch_size, epoch_size - b * batch_size)
        quota = p * size
        counts = np.floor(quota + 1e-9).astype(int)
        frac = np.clip(quota - counts, 0.0, None)
        leftover = size - int(counts.sum())
        if leftover > 0:
            edges = np.cumsum(frac) * leftover / frac.sum()  # renormalise against rounding drift
            points = (order[b] + 0.5) / num_batches + np.arange(leftover)
            hit = np.minimum(np.searchsorted(edges, points, side="right"), len(names) - 1)  # (leftover,)
            counts += np.bincount(hit, minlength=len(names))
        batch = np.repeat(np.arange(len(names)), counts)
        kinds.extend(names[k] for k in rng.permutation(batch))
    return kinds


def _resolve(item: Any) -> Path:
    """A path from a str, PathLike or anything with a ``.path`` (e.g. ``prn_core.data.Sample``)."""
    return Path(os.fspath(getattr(item, "path", item))).resolve()


def check_no_leak(train_paths: Sequence[Any], forbidden_paths: Sequence[Any]) -> None:
    """Raise ``ValueError`` naming every file that is both a training input and a test file.

    >>> check_no_leak(["/data/train/good/000.png"], ["/data/test/good/000.png"])
    >>> check_no_leak(["/data/test/crack/001.png"], ["/data/test/crack/001.png"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ValueError: 1 test file(s) would enter training: /data/test/crack/001.png. ...
    """
    overlap = sorted({_resolve(p) for p in train_paths} & {_resolve(p) for p in forbidden_paths})
    if overlap:
        shown = ", ".join(str(p) for p in overlap[:5]) + (" ..." if len(overlap) > 5 else "")
        raise ValueError(
            f"{len(overlap)} test file(s) would enter training: {shown}. Seen anomalies must be removed "
            "from the test split (use a FewShotSplit), or the evaluation is not honest"
        )


class AnomalyMix(Dataset):
    """Map-style dataset of one epoch's mix; ``(seed, epoch, index)`` fixes every sample.

    Args:
        normal_images: decoded normal training images ``(H, W, 3)``, uint8 or float32 (the caller
            caches them; nothing is decoded here).
        simulated: maker of simulated anomalies, or None when ``simulated_weight`` is 0.
        foregrounds: one bool ``(H, W)`` foreground per normal image, or None (whole image).
            Extended anomalies are always pasted on it; simulated ones only if ``foreground_only``.
        valid_regions: one bool ``(H, W)`` per normal image, False on ``keep_aspect`` padding, or
            None (no padding). No anomaly of any kind is ever drawn outside it.
        seen_images, seen_masks: the real seen anomalies and their ``(H, W)`` masks.
        extended: maker of extended anomalies from the seen ones, or None.
        config: proportions (``normal_weight``, ``seen_weight``, ``simulated_weight``,
            ``extended_prob``) and ``foreground_only`` for simulated anomalies.
        epoch_size: samples per epoch; None = enough for every normal image once.
        batch_size: the batch size the DataLoader will use (for per-batch balance).
        seed: the run's seed, in [0, 2**32).
        train_paths, forbidden_paths: files behind the training inputs and the test files; any
            overlap raises ``ValueError``.

    Items are dicts: ``image`` float32 (3, H, W) in [0, 1], ``mask`` float32 (1, H, W) in {0, 1},
    ``label`` float32 scalar (1.0 iff the mask is non-empty) and ``kind`` (one of :data:`KINDS`).
    """

    def __init__(
        self,
        normal_images: Sequence[np.ndarray],
        simulated: SimulatedAnomaly | None,
        *,
        foregrounds: Sequence[np.ndarray] | None = None,
        valid_regions: Sequence[np.ndarray] | None = None,
        seen_images: Sequence[np.ndarray] = (),
        seen_masks: Sequence[np.ndarray] = (),
        extended: ExtendedAnomaly | None = None,
        config: SynthesisConfig = SynthesisConfig(),
        epoch_size: int | None = None,
        batch_size: int = 8,
        seed: int = 0,
        train_paths: Sequence[Any] | None = None,
        forbidden_paths: Sequence[Any] | None = None,
    ) -> None:
        if train_paths is not None and forbidden_paths is not None:
            check_no_leak(train_paths, forbidden_paths)
        if len(normal_images) == 0:
            raise ValueError("AnomalyMix needs at least one normal image; got none")
        shape = normal_images[0].shape
        if len(shape) != 3 or shape[2] != 3 or any(im.shape != shape for im in normal_images):
            raise ValueError(
                f"normal images must all be (H, W, 3) like the first one {shape}; resize them when caching"
            )
        if foregrounds is not None and (
            len(foregrounds) != len(normal_images) or any(f.shape != shape[:2] for f in foregrounds)
        ):
            raise ValueError(
                f"need one {shape[:2]} foreground per normal image ({len(normal_images)}), got "
                f"{len(foregrounds)} of shapes {sorted({f.shape for f in foregrounds})}"
            )
        if valid_regions is not None and (
            len(valid_regions) != len(normal_images)
            or any(v.shape != shape[:2] for v in valid_regions)
        ):
            raise ValueError(
                f"need one {shape[:2]} valid region per normal image ({len(normal_images)}), got "
                f"{len(valid_regions)}"
            )
        if len(seen_images) != len(seen_masks):
            raise ValueError(f"got {len(seen_images)} seen images but {len(seen_masks)} masks; pass one mask per image")
        if not 0 <= seed < _SCHEDULE_STREAM:
            raise ValueError(f"seed must be in [0, 2**32 - 1), got {seed}")
        self.normal_images, self.foregrounds = normal_images, foregrounds
        self.valid_regions = valid_regions
        self.seen_images = list(seen_images)
        self.seen_masks = [np.asarray(m, dtype=np.float32) for m in seen_masks]
        self.simulated, self.extended, self.config = simulated, extended, config
        self.proportions = kind_proportions(config, len(seen_images), extended is not None, simulated is not None)
        if epoch_size is None:
            share = self.proportions["normal"]
            epoch_size = round(len(normal_images) / share) if share > 0 else len(normal_images)
        if not 1 <= epoch_size < _SCHEDULE_STREAM:
            raise ValueError(f"epoch_size must be a positive count below 2**32 - 1, got {epoch_size}")
        self.epoch_size, self.batch_size, self.seed = int(epoch_size), int(batch_size), int(seed)
        self.epoch = 0
        self._schedules: dict[int, tuple[list[str], np.ndarray]] = {}

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose schedule and samples ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.epoch_size

    def schedule(self, epoch: int | None = None) -> tuple[list[str], np.ndarray]:
        """``(kinds, sources)`` per index: the kind, and the normal / seen image it uses (or -1)."""
        epoch = self.epoch if epoch is None else int(epoch)
        if epoch not in self._schedules:
            rng = np.random.default_rng([self.seed, epoch, _SCHEDULE_STREAM])
            kinds = balanced_schedule(self.proportions, self.epoch_size, self.batch_size, rng)
            sources = np.full(len(kinds), -1, np.int64)
            for kind, pool in (("normal", len(self.normal_images)), ("seen", len(self.seen_images))):
                slots = np.array([i for i, k in enumerate(kinds) if k == kind], np.int64)
                if len(slots):
                    reps = -(-len(slots) // pool)
                    sources[slots] = np.concatenate([rng.permutation(pool) for _ in range(reps)])[: len(slots)]
            self._schedules[epoch] = (kinds, sources)
        return self._schedules[epoch]

    def sample(self, index: int, epoch: int | None = None) -> tuple[np.ndarray, np.ndarray, str]:
        """Sample ``index`` as numpy: float32 (H, W, 3) image, float32 (H, W) mask, kind."""
        epoch = self.epoch if epoch is None else int(epoch)
        if not 0 <= index < self.epoch_size:
            raise IndexError(f"index {index} out of range for an epoch of {self.epoch_size}")
        kinds, sources = self.schedule(epoch)
        kind, source = kinds[index], int(sources[index])
        if kind == "normal":
            image = as_float_image(self.normal_images[source])
            return image, np.zeros(image.shape[:2], np.float32), kind
        if kind == "seen":
            return as_float_image(self.seen_images[source]), self.seen_masks[source], kind
        rng = np.random.default_rng([self.seed, epoch, index])
        base = int(rng.integers(len(self.normal_images)))
        valid = (
            None if self.valid_regions is None else np.asarray(self.valid_regions[base], dtype=bool)
        )
        foreground = (
            valid if self.foregrounds is None else np.asarray(self.foregrounds[base], dtype=bool)
        )
        if valid is not None and self.foregrounds is not None:
            foreground = foreground & valid  # padded pixels never count, on the object or not
        if kind == "extended":
            assert self.extended is not None  # guaranteed by kind_proportions
            image, mask = self.extended(self.normal_images[base], foreground, rng)
        else:
            assert self.simulated is not None
            restrict = foreground if self.config.foreground_only else valid
            image, mask = self.simulated(self.normal_images[base], rng, restrict)
        return image, mask, kind

    def __getitem__(self, index: int) -> dict[str, Any]:
        image, mask, kind = self.sample(index)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),  # (3, H, W)
            "mask": torch.from_numpy(mask.astype(np.float32))[None],  # (1, H, W), a copy: seen masks are shared
            "label": torch.tensor(1.0 if mask.any() else 0.0),
            "kind": kind,
        }
