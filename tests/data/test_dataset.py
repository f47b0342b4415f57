"""The torch Dataset over listed samples: item shapes, types and batches."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch.utils.data import DataLoader

from prn_core.data.dataset import MVTecDataset
from prn_core.data.images import ImageCache
from prn_core.data.mvtec import list_samples

def test_dataset_items_and_batches(tree: Path):
    samples = list_samples(tree, "widget", "test")
    ds = MVTecDataset(samples, (64, 64))
    item = ds[len(ds) - 1]
    assert item["image"].shape == (3, 64, 64) and item["image"].dtype == torch.float32
    assert item["mask"].shape == (1, 64, 64) and set(item["mask"].unique().tolist()) == {0.0, 1.0}
    assert item["label"] == 1 and item["path"] == str(samples[-1].path)
    batch = next(iter(DataLoader(ds, batch_size=4)))
    labels = [s.label for s in samples[:4]]
    assert batch["image"].shape == (4, 3, 64, 64) and batch["label"].tolist() == labels
    assert [bool(m.any()) for m in batch["mask"]] == [bool(x) for x in labels]
    with pytest.raises(ValueError, match="image_size"):
        MVTecDataset(samples, (64, 64), cache=ImageCache((32, 32)))

# --- few-shot split ---------------------------------------------------------------------------------
