"""Small stand-ins shared by the model and figure tests: a PRN sized for CPU tests with random
prototypes, and a classifier whose answer is fixed."""
from __future__ import annotations

import torch

from prn_core.config import ModelConfig
from prn_core.models import PRN, PrototypeBank, build_prn

ESPRESSO, CUP = 967, 968  # ImageNet classes
TINY = ModelConfig(backbone="resnet18", weights="random", fusion_channels=(8, 16, 16), attention_patch_sizes=(1, 2),
                   attention_dim=8, attention_heads=2, decoder_channels=(16, 16, 8, 8), head_channels=4)


def tiny_prn(size: int = 64, prototypes: int = 2, seed: int = 0) -> PRN:
    """A :data:`TINY` PRN at ``size`` x ``size`` with ``prototypes`` random prototypes per scale."""
    model = build_prn(TINY, size)
    gen = torch.Generator().manual_seed(seed)
    protos = [torch.randn(prototypes, c, size // s, size // s, generator=gen)
              for c, s in zip(model.backbone.channels, (4, 8, 16))]
    model.set_prototypes(PrototypeBank(protos, {"backbone": "resnet18", "image_size": [size, size]}))
    return model


class PeakedClassifier(torch.nn.Module):
    """Logits that ignore the image: espresso first, then cup, then classes 0, 1, ... tied.

    It checks what a classifier is given: 224 x 224 images in [0, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.zeros(1000))
        with torch.no_grad():
            self.logits[ESPRESSO], self.logits[CUP] = 5.0, 2.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[-2:] == (224, 224) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
        return self.logits.expand(len(x), -1)
