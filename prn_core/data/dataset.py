"""A torch ``Dataset`` over listed samples, decoding each file once through an :class:`ImageCache`.
May import: samples and images of :mod:`prn_core.data`.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset

from prn_core.data.images import ImageCache
from prn_core.data.samples import Sample

__all__ = ["MVTecDataset"]


class MVTecDataset(Dataset):
    """Samples as tensors: ``image`` (3, H, W) float in [0, 1], ``mask`` (1, H, W) float {0, 1},
    ``valid`` (1, H, W) bool, ``label`` int, ``path`` str, ``defect_type`` str.

    Pass a shared :class:`ImageCache` so train, val and test never decode a file twice.
    """

    def __init__(self, samples: list[Sample], image_size: tuple[int, int], cache: ImageCache | None = None) -> None:
        image_size = (int(image_size[0]), int(image_size[1]))
        if cache is not None and cache.image_size != image_size:
            raise ValueError(f"cache image_size {cache.image_size} differs from dataset image_size {image_size}")
        self.samples = list(samples)
        self.image_size = image_size
        self.cache = cache if cache is not None else ImageCache(image_size)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        return {
            "image": torch.from_numpy(self.cache.image(s)).permute(2, 0, 1).contiguous(),  # (3, H, W)
            "mask": torch.from_numpy(self.cache.mask(s)).float()[None],  # (1, H, W)
            "valid": torch.from_numpy(self.cache.valid(s))[None],  # (1, H, W)
            "label": s.label,
            "path": str(s.path),
            "defect_type": s.defect_type,
        }
