"""Multi-scale prototypes and prototypical residuals (PRN, DESIGN sections 2.2 and 2.3).

PRN summarises the normal training images by K prototype *feature maps* per scale: K-means over
the flattened whole maps at strides 4, 8 and 16, with K = max(1, round(ratio * N)). At test time
each image is compared with its nearest prototype and the network sees the residual
R = (F - P)^2, which is large where the image departs from every normal pattern.

Design choices:

* Prototypes are buffers of an ``nn.Module``, so they travel with the model's state dict and its
  device; the metadata (backbone, image size, category, K, seed, data fingerprint, version) is
  the module's extra state and is saved with :meth:`PrototypeBank.save` too.
* Loading prototypes that do not fit the model is an error (:class:`PrototypeMismatchError`)
  listing every field that differs, never a silent broadcast.
* ``mode="image"`` picks one prototype per image by L2 over the whole map (the paper);
  ``mode="patch"`` picks, at every location, the prototype whose vector there is nearest (an
  ablation that tolerates small misalignments).
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans
from torch import nn
from tqdm.auto import tqdm

from prn_core._version import __version__
from prn_core.atomic import torch_save_atomic
from prn_core.models.backbone import Backbone

__all__ = [
    "PROTOTYPE_STRIDES",
    "PrototypeBank",
    "PrototypeMismatchError",
    "fit_prototypes",
    "fuse_residual_maps",
    "num_prototypes",
]

PROTOTYPE_STRIDES: tuple[int, int, int] = (4, 8, 16)  # scales that get prototypes and residuals
_FORMAT = 1  # version of the file layout written by PrototypeBank.save
_MODES = ("image", "patch")


class PrototypeMismatchError(ValueError):
    """Prototypes were fitted for another backbone, image size or channel layout."""


def num_prototypes(num_images: int, ratio: float) -> int:
    """K = max(1, round(ratio * N)).

    >>> num_prototypes(209, 0.1), num_prototypes(3, 0.1)
    (21, 1)
    """
    if num_images < 1:
        raise ValueError(f"need at least one normal image to fit prototypes, got {num_images}")
    if not 0 < ratio <= 1:
        raise ValueError(f"prototype ratio must be in (0, 1], got {ratio}")
    return max(1, round(ratio * num_images))


class PrototypeBank(nn.Module):
    """K prototype maps per scale, ``prototypes[i]`` of shape (K, C_i, H/s_i, W/s_i).

    Args:
        prototypes: one (K, C, h, w) tensor per scale (strides 4, 8, 16), same K for all.
        meta: JSON-able metadata (backbone, image_size, category, num_prototypes, seed,
            fingerprint, version, ...); :meth:`validate` compares it with what a model expects.
    """

    def __init__(self, prototypes: Sequence[torch.Tensor], meta: Mapping[str, Any]) -> None:
        super().__init__()
        if len(prototypes) != len(PROTOTYPE_STRIDES):
            raise ValueError(f"need {len(PROTOTYPE_STRIDES)} prototype tensors, got {len(prototypes)}")
        counts = {p.shape[0] for p in prototypes}
        if len(counts) != 1 or any(p.dim() != 4 for p in prototypes):
            raise ValueError(f"prototypes must be (K, C, h, w) with one K, got {[tuple(p.shape) for p in prototypes]}")
        for index, tensor in enumerate(prototypes):
            self.register_buffer(f"scale{index}", tensor.detach().float().contiguous())
        self.meta: dict[str, Any] = dict(meta)

    @property
    def prototypes(self) -> list[torch.Tensor]:
        """The (K, C, h, w) buffers, finest scale first."""
        return [getattr(self, f"scale{i}") for i in range(len(PROTOTYPE_STRIDES))]

    @property
    def num_prototypes(self) -> int:
        return int(self.scale0.shape[0])

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(int(p.shape[1]) for p in self.prototypes)

    def get_extra_state(self) -> dict[str, Any]:
        return dict(self.meta)

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.meta = dict(state)

    # --- persistence ---------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Tensors and metadata as plain containers, loadable with ``weights_only=True``."""
        return {"format": _FORMAT, "prototypes": [p.cpu() for p in self.prototypes], "meta": dict(self.meta)}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], expect: Mapping[str, Any] | None = None) -> PrototypeBank:
        """Rebuild a bank from :meth:`to_state`; ``expect`` is checked with :meth:`validate`."""
        if not isinstance(state, Mapping) or state.get("format") != _FORMAT:
            raise ValueError(f"not a prototype state of format {_FORMAT}; fit prototypes with fit_prototypes")
        bank = cls(state["prototypes"], state["meta"])
        if expect:
            bank.validate(expect)
        return bank

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_state` atomically (a temporary file renamed into place)."""
        return torch_save_atomic(self.to_state(), path)

    @classmethod
    def load(cls, path: str | Path, expect: Mapping[str, Any] | None = None) -> PrototypeBank:
        """Read a bank written by :meth:`save`; ``expect`` is checked with :meth:`validate`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"prototype file {str(path)!r} does not exist; fit prototypes first")
        try:
            return cls.from_state(torch.load(path, map_location="cpu", weights_only=True), expect)
        except ValueError as err:  # name the file in mismatch and format errors alike
            raise type(err)(f"{path}: {err}") from None

    def validate(self, expect: Mapping[str, Any]) -> None:
        """Raise :class:`PrototypeMismatchError` listing every field that differs from ``expect``.

        Keys are metadata names (``backbone``, ``image_size``, ``category``, ...) plus
        ``channels`` (per-scale channel counts of the encoder), checked against the tensors.
        """
        found: dict[str, Any] = {**self.meta, "channels": list(self.channels)}
        problems = []
        for key, want in expect.items():
            have = found.get(key)
            if _plain(have) != _plain(want):
                problems.append(f"{key}: prototypes have {have!r}, model expects {want!r}")
        if "image_size" in expect:
            h, w = expect["image_size"]
            shapes = [tuple(p.shape[2:]) for p in self.prototypes]
            wanted = [(h // s, w // s) for s in PROTOTYPE_STRIDES]
            if shapes != wanted:
                problems.append(f"map sizes: prototypes have {shapes}, model expects {wanted}")
        if problems:
            raise PrototypeMismatchError(
                "prototypes do not match the model -- " + "; ".join(problems)
                + ". Refit them for this backbone and image size (fit_prototypes)."
            )

    # --- nearest prototypes and residuals ------------------------------------------------

    def nearest(self, features: Sequence[torch.Tensor], mode: str = "image") -> list[torch.Tensor]:
        """The nearest prototype for each feature map, same shape as the features (float32).

        ``features``: [(B, C_i, h_i, w_i)] for the three scales (extra maps are ignored).
        ``mode="image"``: one prototype per image, nearest by L2 over the whole map.
        ``mode="patch"``: per location, the prototype vector nearest at that location.
        """
        if mode not in _MODES:
            raise ValueError(f"residual mode must be one of {_MODES}, got {mode!r}")
        nearest = _nearest_image if mode == "image" else _nearest_patch
        return [nearest(feat, proto) for feat, proto in self._pairs(features)]

    def distances(self, features: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Whole-map L2 distance of every image to every prototype, per scale: [(B, K)] float32.

        Row ``b``'s argmin is the prototype :meth:`nearest` assigns to image ``b`` in
        ``mode="image"``; column ``k``'s argmin is the image closest to prototype ``k``.
        """
        return [_image_distances(feat, proto) for feat, proto in self._pairs(features)]

    def _pairs(self, features: Sequence[torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """(float32 features, prototypes) per scale, after checking that their shapes match."""
        pairs = []
        for feat, proto in zip(features, self.prototypes):
            if feat.shape[1:] != proto.shape[1:]:
                raise PrototypeMismatchError(
                    f"features {tuple(feat.shape[1:])} do not match prototypes {tuple(proto.shape[1:])}"
                )
            pairs.append((feat.float(), proto))  # distances over ~10^5 values overflow half precision under AMP
        return pairs

    def residuals(self, features: Sequence[torch.Tensor], mode: str = "image") -> list[torch.Tensor]:
        """Prototypical residuals R = (F - P)^2 per scale, each (B, C_i, h_i, w_i), in float32."""
        return [(f.float() - p).square() for f, p in zip(features, self.nearest(features, mode))]

    def residual_map(self, features: Sequence[torch.Tensor], image_size: tuple[int, int],
                     mode: str = "image") -> torch.Tensor:
        """The training-free detector on ``features``: see :func:`fuse_residual_maps`."""
        return fuse_residual_maps(self.residuals(features, mode), image_size)


def fuse_residual_maps(residuals: Sequence[torch.Tensor], image_size: tuple[int, int]) -> torch.Tensor:
    """Channel-mean residuals, upsampled to ``image_size`` and summed over scales: (B, H, W).

    It is what prototypes alone can see, before any network is trained: the baseline every
    trained PRN has to beat (:mod:`prn_core.baseline`), and the optional residual prior of
    :class:`prn_core.models.PRN`.
    """
    maps = [
        nn.functional.interpolate(r.mean(1, keepdim=True), size=tuple(image_size), mode="bilinear",
                                  align_corners=False)
        for r in residuals
    ]
    return torch.stack(maps).sum(0)[:, 0]


def _image_distances(feat: torch.Tensor, proto: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w), (K, C, h, w) -> (B, K): L2 distances between whole maps."""
    return torch.cdist(feat.flatten(1)[None], proto.flatten(1)[None])[0]


def _nearest_image(feat: torch.Tensor, proto: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w), (K, C, h, w) -> (B, C, h, w): whole-map nearest prototype."""
    return proto[_image_distances(feat, proto).argmin(dim=1)]


def _nearest_patch(feat: torch.Tensor, proto: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w), (K, C, h, w) -> (B, C, h, w): per-location nearest prototype vector."""
    # ||f - p||^2 = ||f||^2 - 2 f.p + ||p||^2 per location; ||f||^2 is the same for every k.
    score = proto.square().sum(1)[None] - 2 * torch.einsum("bchw,kchw->bkhw", feat, proto)  # (B, K, h, w)
    index = score.argmin(dim=1)  # (B, h, w)
    onehot = nn.functional.one_hot(index, proto.shape[0]).to(feat.dtype)  # (B, h, w, K)
    return torch.einsum("bhwk,kchw->bchw", onehot, proto)


def _plain(value: Any) -> Any:
    """Compare tuples and lists alike (metadata round-trips through JSON-like containers)."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _batches(images: Iterable[Any]) -> Iterable[torch.Tensor]:
    """Accept (B, 3, H, W) tensors or DataLoader dicts with an ``image`` entry."""
    for batch in images:
        yield batch["image"] if isinstance(batch, Mapping) else batch


@torch.no_grad()
def fit_prototypes(
    backbone: Backbone,
    images: Iterable[torch.Tensor | Mapping[str, torch.Tensor]],
    ratio: float = 0.1,
    seed: int = 0,
    meta: Mapping[str, Any] | None = None,
    n_init: int = 3,
    progress: bool = True,
) -> PrototypeBank:
    """Fit K-means prototypes per scale on the backbone features of normal images.

    Features are extracted batch by batch (with a progress bar) and kept as float32 numpy rows,
    one flattened whole map per image and scale; scikit-learn's K-means (``random_state=seed``)
    then finds K = max(1, round(ratio * N)) centres, reshaped back to maps.

    Args:
        backbone: the frozen encoder the prototypes belong to.
        images: an iterable of (B, 3, H, W) tensors in [0, 1] (or DataLoader dicts with
            ``image``), all the same size.
        ratio: prototypes per image.
        seed: K-means seed; same seed and data give the same prototypes.
        meta: extra metadata, e.g. ``{"category": "bottle"}``; a ``fingerprint`` given here
            replaces the one computed from the pixels.
        n_init: K-means restarts.
        progress: show a tqdm bar.
    """
    rows: list[list[np.ndarray]] = [[] for _ in PROTOTYPE_STRIDES]
    digest = hashlib.sha256()
    shapes: list[tuple[int, ...]] = []
    image_size: tuple[int, int] | None = None
    device = next(iter(backbone.buffers())).device
    for batch in tqdm(_batches(images), desc="prototype features", disable=not progress):
        if image_size is not None and tuple(batch.shape[-2:]) != image_size:
            raise ValueError(f"all images must share one size; got {tuple(batch.shape[-2:])} after {image_size}")
        image_size = (int(batch.shape[-2]), int(batch.shape[-1]))
        digest.update(batch.detach().cpu().float().numpy().tobytes())
        feats = backbone(batch.to(device).float())[: len(PROTOTYPE_STRIDES)]
        shapes = [tuple(f.shape[1:]) for f in feats]
        for store, feat in zip(rows, feats):
            store.append(feat.flatten(1).float().cpu().numpy())
    if image_size is None:
        raise ValueError("no images given to fit_prototypes")
    num_images = sum(len(r) for r in rows[0])
    k = num_prototypes(num_images, ratio)
    centres = []
    for store, shape in zip(rows, shapes):
        data = np.concatenate(store, axis=0)  # (N, C*h*w)
        kmeans = KMeans(n_clusters=k, n_init=n_init, random_state=seed).fit(data)
        centres.append(torch.from_numpy(kmeans.cluster_centers_.astype(np.float32)).reshape(k, *shape))
    info: dict[str, Any] = {
        "backbone": backbone.name,
        "image_size": list(image_size),
        "num_prototypes": k,
        "num_images": num_images,
        "ratio": ratio,
        "seed": seed,
        "fingerprint": digest.hexdigest()[:16],
        "version": __version__,
        "category": None,
    }
    info.update(meta or {})
    return PrototypeBank(centres, info)
