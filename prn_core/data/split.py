"""The few-shot split (DESIGN section 4, after DRA and BGAD) and its fingerprint.

``num_seen`` real anomalies are drawn from the test defect folders, spread over defect types,
and removed from the test set; a share of the normal training images is held out for
validation. One seed decides both, through independent streams.
May import: samples, images and the format registry of :mod:`prn_core.data`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from prn_core.data.formats import get_format
from prn_core.data.images import read_mask
from prn_core.data.samples import Sample

__all__ = ["FewShotSplit", "few_shot_split"]


@dataclass
class FewShotSplit:
    """The samples of one run. ``seen`` are the real anomalies shown in training.

    ``test`` excludes ``seen`` unless ``leaky`` (the unofficial protocol). ``val`` holds normal
    training images kept out of ``train`` for model selection. :meth:`to_dict` is the record
    that results cite.
    """

    train: list[Sample]
    val: list[Sample]
    seen: list[Sample]
    test: list[Sample]
    seed: int
    leaky: bool
    category: str = ""
    root: Path | None = None
    num_seen: int = 0
    val_fraction: float = 0.0
    format: str = "mvtec"

    def _rel(self, samples: list[Sample]) -> list[str]:
        """Paths relative to ``root/category``, else to ``root``, else absolute (a CSV may list
        files anywhere)."""
        bases = [self.root / self.category, self.root] if self.root is not None else []
        out = []
        for s in samples:
            base = next((b for b in bases if s.path.is_relative_to(b)), None)
            out.append(s.path.relative_to(base).as_posix() if base else str(s.path))
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: settings, counts and the relative file list of every part.

        ``format`` is recorded only when it is not ``"mvtec"``, so MVTec records and
        fingerprints are the same as before the other formats existed.
        """
        parts = {name: getattr(self, name) for name in ("train", "val", "seen", "test")}
        record = {
            "root": str(self.root) if self.root is not None else None,
            "category": self.category,
            "seed": self.seed,
            "leaky": self.leaky,
            "num_seen": self.num_seen,
            "val_fraction": self.val_fraction,
            "counts": {k: len(v) for k, v in parts.items()}
            | {
                "test_good": sum(s.label == 0 for s in self.test),
                "test_defective": sum(s.label == 1 for s in self.test),
            },
            "files": {k: self._rel(v) for k, v in parts.items()},
        }
        return record if self.format == "mvtec" else record | {"format": self.format}

    def fingerprint(self) -> str:
        """Short sha256 of the file lists and settings: equal splits give equal fingerprints."""
        record = self.to_dict()
        record.pop("root")
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


def _pick_seen(defective: list[Sample], num_seen: int, rng: np.random.Generator) -> list[Sample]:
    """Round-robin over defect types (in a random order), a random image of each per round."""
    by_type: dict[str, list[Sample]] = {}
    for s in defective:
        by_type.setdefault(s.defect_type, []).append(s)
    queues = {t: [v[i] for i in rng.permutation(len(v))] for t, v in sorted(by_type.items())}
    order = [sorted(queues)[i] for i in rng.permutation(len(queues))]
    picked: list[Sample] = []
    while len(picked) < num_seen:
        for t in order:
            if queues[t] and len(picked) < num_seen:
                picked.append(queues[t].pop())
    return sorted(picked, key=lambda s: (s.defect_type, s.path.name))


def few_shot_split(
    root: str | Path,
    category: str,
    num_seen: int = 10,
    seed: int = 0,
    leaky: bool = False,
    val_fraction: float = 0.1,
    format: str = "mvtec",
) -> FewShotSplit:
    """Split a category for the few-shot protocol, deterministically from ``seed``.

    * ``seen``: ``num_seen`` defective test images, spread round-robin over defect types, removed
      from ``test`` unless ``leaky``.
    * ``val``: ``round(val_fraction * N)`` normal training images (at least one when
      ``val_fraction > 0`` and N >= 5), removed from ``train``.

    Defective images whose mask is empty (the magnetic-tile set has four) stay in ``test`` as
    label 1, so image-level metrics see them as the dataset labels them, but they are never
    drawn as seen anomalies: pasting an empty region would teach the model nothing and the
    "extended" copies would be normal images labelled anomalous. The val and seen draws use
    independent streams of the seed, so changing ``num_seen`` leaves ``val`` unchanged.

    ``format`` names the folder layout (see :mod:`prn_core.data.formats`: ``mvtec``, ``btad``,
    ``kolektorsdd2``, ``dagm``, ``folder``). Defective images without a mask (allowed by the
    ``folder`` format) are test-only, like those with an empty mask.
    """
    lister = get_format(format).list_samples
    if num_seen < 0:
        raise ValueError(f"num_seen must be >= 0, got {num_seen}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    train_all = lister(root, category, "train")
    test_all = lister(root, category, "test")
    val_rng, seen_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))

    n_val = round(val_fraction * len(train_all))
    if val_fraction > 0 and len(train_all) >= 5:
        n_val = max(1, n_val)
    n_val = min(n_val, len(train_all) - 1)
    val_idx = set(val_rng.permutation(len(train_all))[:n_val].tolist())
    train = [s for i, s in enumerate(train_all) if i not in val_idx]
    val = [s for i, s in enumerate(train_all) if i in val_idx]

    eligible = [s for s in test_all if s.label == 1 and s.mask_path is not None and read_mask(s.mask_path).any()]
    if num_seen > len(eligible):
        raise ValueError(
            f"num_seen={num_seen} but category {category!r} has only {len(eligible)} defective test "
            f"images with a non-empty mask; lower data.num_seen."
        )
    seen = _pick_seen(eligible, num_seen, seen_rng)
    seen_paths = {s.path for s in seen}
    test = test_all if leaky else [s for s in test_all if s.path not in seen_paths]
    return FewShotSplit(
        train=train, val=val, seen=seen, test=test, seed=seed, leaky=leaky, category=category,
        root=Path(root).expanduser(), num_seen=num_seen, val_fraction=val_fraction, format=format,
    )  # fmt: skip
