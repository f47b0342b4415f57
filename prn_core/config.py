"""Typed, frozen configuration for every PRN run.

Configs are plain data (timm style): the CLI parses flags into them, the book builds them in
Python, and a run's JSON result stores them verbatim via :func:`to_dict`. Three profiles cover
the ways the project is used:

* ``ci``   -- tiny and CPU-only, so the whole book and test-suite run in minutes;
* ``cpu``  -- real data at reduced scale on the offline ``tf_efficientnet_lite0`` backbone;
* ``full`` -- the paper's settings (resnet18, 256 px) for a GPU.

Any field can be overridden with :func:`override`, using dotted names such as
``"train.epochs"``.
"""
from __future__ import annotations

import dataclasses
import os
import types
from dataclasses import dataclass, field, fields, replace
from typing import Any, Union, get_args, get_origin, get_type_hints

__all__ = [
    "DataConfig",
    "SynthesisConfig",
    "ModelConfig",
    "TrainConfig",
    "PRNConfig",
    "PROFILES",
    "get_profile",
    "default_profile_name",
    "override",
    "to_dict",
    "from_dict",
    "parse_image_size",
    "AUTO",
    "PROTOCOLS",
]


AUTO = "auto"  # DataConfig.image_size resolved from the training images (prn_core.data.stats)

# The evaluation protocol, one explicit setting (DESIGN section 4). Both honest protocols take the
# seen anomalies out of test and never look at test labels to choose the model; "leaky" keeps the
# seen anomalies in test and picks the best epoch on test, only to reproduce unofficial numbers.
PROTOCOLS = {"honest-final": "final", "honest-val": "val", "leaky": "test"}  # -> selection rule


def _type_name(hint: Any) -> str:
    """``int | None`` -> ``'int or None'``, for error messages users can act on."""
    if get_origin(hint) in (Union, types.UnionType):
        return " or ".join("None" if a is type(None) else _type_name(a) for a in get_args(hint))
    if get_origin(hint) is tuple:
        return "tuple of int"
    return getattr(hint, "__name__", str(hint))


def _parse_hint(hint: Any, value: str, name: str) -> Any:
    """Turn one CLI string into a value of type ``hint``; ``Optional`` accepts ``none``."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        if type(None) in args and value.strip().lower() in ("none", "null"):
            return None
        # str last: "288x224" is a size, only what no other type takes stays a string
        for arg in sorted((a for a in args if a is not type(None)), key=lambda a: a is str):
            try:
                return _parse_hint(arg, value, name)
            except ValueError:
                continue
        raise ValueError(f"{name}: expected {_type_name(hint)}, got {value!r}")
    if hint is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{name}: expected a boolean (true/false), got {value!r}")
    if origin is tuple:
        parts = [v.strip() for v in value.replace("x", ",").split(",") if v.strip()]
        fixed = len(args) if Ellipsis not in args else None
        try:
            nums = tuple(int(v) for v in parts)
        except ValueError:
            nums = None
        if nums is None or (fixed is not None and len(nums) != fixed):
            count = f"{fixed} integers" if fixed is not None else "integers"
            raise ValueError(f"{name}: expected {count} separated by commas, got {value!r}")
        return nums
    if hint in (int, float, str):
        try:
            return hint(value)
        except ValueError:
            raise ValueError(f"{name}: expected {hint.__name__}, got {value!r}") from None
    raise TypeError(f"{name}: no parser for type {hint!r}")  # pragma: no cover - internal


def _matches(hint: Any, value: Any) -> bool:
    """Whether a typed value fits ``hint`` (ints count as floats, bools as nothing else)."""
    origin, args = get_origin(hint), get_args(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(a, value) for a in args)
    if hint is type(None):
        return value is None
    if origin is tuple:
        return isinstance(value, tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        )
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, hint)


def _check_types(cfg: Any, section: str) -> None:
    """Refuse wrong types at construction, so a bad value fails here and not minutes later."""
    hints = get_type_hints(type(cfg))
    for f in fields(cfg):
        value = getattr(cfg, f.name)
        if not _matches(hints[f.name], value):
            raise ValueError(
                f"{section}.{f.name} must be {_type_name(hints[f.name])}, got "
                f"{type(value).__name__} {value!r}; on the command line use "
                f"--set {section}.{f.name}=VALUE"
            )


def _check_widths(
    name: str, widths: tuple[int, ...], length: int | None, meaning: str = ""
) -> None:
    if length is not None and len(widths) != length:
        raise ValueError(f"{name} needs {length} integers{meaning}, got {len(widths)}: {widths}")
    if any(w < 1 for w in widths):
        raise ValueError(f"{name}: every width must be >= 1, got {widths}")


def parse_image_size(value: int | str | tuple[int, int] | list[int]) -> tuple[int, int]:
    """Normalise ``256``, ``"256"``, ``"256x640"`` or ``(256, 640)`` to ``(H, W)``.

    Both sides must be multiples of 32 because the encoder downsamples five times; anything
    else would make the decoder's skip connections disagree in size.
    """
    if isinstance(value, str):
        parts = value.lower().replace(",", "x").split("x")
        try:
            nums = [int(p) for p in parts if p.strip()]
        except ValueError as err:
            raise ValueError(f"image_size {value!r} is not 'N' or 'HxW' with integers") from err
    elif isinstance(value, int):
        nums = [value]
    else:
        nums = [int(v) for v in value]
    if len(nums) == 1:
        nums = nums * 2
    if len(nums) != 2:
        raise ValueError(f"image_size {value!r} must be one or two integers, got {len(nums)}")
    h, w = nums
    for side in (h, w):
        if side < 64 or side % 32:
            raise ValueError(
                f"image_size {value!r}: each side must be a multiple of 32 and at least 64 "
                f"(got {h}x{w}); try {max(64, round(h / 32) * 32)}x{max(64, round(w / 32) * 32)}"
            )
    return h, w


@dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how the few-shot protocol splits them."""

    root: str | None = None  # dataset root holding <category>/train|test|ground_truth; None = demo data
    category: str = "bottle"
    format: str = "mvtec"  # dataset layout adapter: mvtec, btad, kolektorsdd2, dagm, folder
    image_size: tuple[int, int] | str = (256, 256)  # (H, W), or "auto": the data's median aspect ratio
    num_seen: int = 10  # real anomalies moved from test into training
    val_fraction: float = 0.1  # normal train images held out for validation
    textures: str | None = None  # texture folder, "dtd", or None for procedural textures
    keep_aspect: bool = False  # pad instead of squash; padding is ignored by the metrics

    def __post_init__(self) -> None:
        if isinstance(self.image_size, list):
            object.__setattr__(self, "image_size", tuple(self.image_size))
        if isinstance(self.image_size, int) and not isinstance(self.image_size, bool):
            object.__setattr__(self, "image_size", (self.image_size, self.image_size))
        for name in ("root", "textures"):  # a pathlib.Path is as good as its string
            if isinstance(getattr(self, name), os.PathLike):
                object.__setattr__(self, name, os.fspath(getattr(self, name)))
        _check_types(self, "data")
        if self.image_size != AUTO:
            object.__setattr__(self, "image_size", parse_image_size(self.image_size))
        if self.num_seen < 0:
            raise ValueError(f"data.num_seen must be >= 0, got {self.num_seen}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"data.val_fraction must be in [0, 1), got {self.val_fraction}")


@dataclass(frozen=True)
class SynthesisConfig:
    """Anomaly generation (DESIGN section 3): proportions and strengths."""

    normal_weight: float = 1.0  # N normal ...
    seen_weight: float = 0.5  # ... N/2 seen + extended ...
    simulated_weight: float = 0.5  # ... N/2 simulated per epoch
    extended_prob: float = 0.75  # share of the seen/extended slot that is an extended (pasted) anomaly
    beta_max: float = 0.8  # texture opacity: beta ~ U[0, beta_max)
    perlin_min_scale: int = 0  # noise period 2**s, s in [min, max], per axis
    perlin_max_scale: int = 5
    perlin_threshold: float = 0.5
    foreground_only: bool = True  # keep simulated anomalies on the object for object categories
    texture_ops: int = 3  # augmentations applied to each texture
    shading_prob: float = 0.0  # ours: share of simulated anomalies that only change brightness

    def __post_init__(self) -> None:
        _check_types(self, "synthesis")
        for name in ("normal_weight", "seen_weight", "simulated_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"synthesis.{name} must be >= 0, got {getattr(self, name)}")
        if self.normal_weight + self.seen_weight + self.simulated_weight <= 0:
            raise ValueError("synthesis weights are all zero: nothing to train on")
        for name in ("extended_prob", "beta_max", "shading_prob"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"synthesis.{name} must be in [0, 1], got {getattr(self, name)}")
        if not -1.0 < self.perlin_threshold < 1.0:  # else every mask is empty (or full)
            raise ValueError(f"synthesis.perlin_threshold must be in (-1, 1), the range of the Perlin "
                             f"noise it cuts, got {self.perlin_threshold}")
        if not 0 <= self.perlin_min_scale <= self.perlin_max_scale <= 8:
            raise ValueError(
                "synthesis.perlin_min_scale <= perlin_max_scale <= 8 is required, got "
                f"{self.perlin_min_scale}, {self.perlin_max_scale}"
            )


@dataclass(frozen=True)
class ModelConfig:
    """Every architectural choice of PRN; the book names which ones are ours."""

    backbone: str = "tf_efficientnet_lite0"
    weights: str = "auto"  # "auto" (file > package > hub > error), "random", or a file path
    prototype_ratio: float = 0.1  # K = max(1, round(ratio * N)) per scale
    residual: str = "image"  # "image": nearest prototype by whole-map L2; "patch": per location
    fusion_channels: tuple[int, int, int] = (48, 96, 192)  # MSF widths at strides 4, 8, 16
    share_fusion: bool = False  # one MSF for features and residuals (ablation)
    attention_patch_sizes: tuple[int, ...] = (2, 4, 8)  # one MSA branch per size
    attention_dim: int = 64
    attention_heads: int = 4
    attention_layers: int = 1  # 0 leaves MSA out (ablation)
    decoder_channels: tuple[int, int, int, int] = (128, 64, 32, 16)
    head_channels: int = 16  # width of the full-resolution head (the unofficial code uses 64)
    use_residuals: bool = True  # False: features only, no prototypical residuals (ablation)
    use_msf: bool = True  # False: per-scale 1x1 convs instead of MSF's exchange (ablation)
    residual_prior: bool = False  # ours: add the training-free residual map to the logits
    score: str = "topk"  # "topk" mean of top-k pixels, or "max_smoothed"
    score_topk: int = 100

    def __post_init__(self) -> None:
        _check_types(self, "model")
        _check_widths("model.fusion_channels", self.fusion_channels, 3, " (strides 4, 8, 16)")
        _check_widths(
            "model.decoder_channels", self.decoder_channels, 4, " (one per decoder stage)"
        )
        _check_widths("model.attention_patch_sizes", self.attention_patch_sizes, None)
        for name in ("attention_dim", "attention_heads", "head_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"model.{name} must be >= 1, got {getattr(self, name)}")
        if self.attention_layers < 0:
            raise ValueError(
                f"model.attention_layers must be >= 0 (0 leaves MSA out), got {self.attention_layers}"
            )
        if self.score_topk < 1:
            raise ValueError(
                f"model.score_topk must be >= 1 (the image score is the mean of the top-k pixels), "
                f"got {self.score_topk}"
            )
        if self.residual not in ("image", "patch"):
            raise ValueError(f"model.residual must be 'image' or 'patch', got {self.residual!r}")
        if self.score not in ("topk", "max_smoothed"):
            raise ValueError(f"model.score must be 'topk' or 'max_smoothed', got {self.score!r}")
        if not 0 < self.prototype_ratio <= 1:
            raise ValueError(f"model.prototype_ratio must be in (0, 1], got {self.prototype_ratio}")
        if not self.attention_patch_sizes:
            raise ValueError("model.attention_patch_sizes needs at least one size")
        if self.attention_dim % self.attention_heads:
            raise ValueError(
                f"model.attention_dim ({self.attention_dim}) must be divisible by "
                f"attention_heads ({self.attention_heads})"
            )


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and the protocol: the split the model is selected on (test only if leaky)."""

    epochs: int = 10
    batch_size: int = 8
    epoch_size: int | None = None  # samples per epoch; None = number of normal train images x mix
    lr: float = 1e-4
    weight_decay: float = 1e-2
    schedule: str = "cosine"  # "constant" or "cosine"
    loss_focal_weight: float = 5.0
    protocol: str = "honest-final"  # see PROTOCOLS: honest-final | honest-val | leaky
    monitor_test: bool = False  # diagnostic: log test metrics per epoch; never used for selection
    amp: bool = True  # only takes effect on CUDA
    num_workers: int = 0
    device: str = "auto"
    threads: int | None = None  # torch CPU threads; None = torch default

    def __post_init__(self) -> None:
        _check_types(self, "train")
        if self.epochs < 1:
            raise ValueError(f"train.epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"train.batch_size must be >= 2 (batches mix normal and anomalous), got {self.batch_size}")
        if self.schedule not in ("constant", "cosine"):
            raise ValueError(f"train.schedule must be 'constant' or 'cosine', got {self.schedule!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(
                f"train.protocol must be one of {list(PROTOCOLS)}, got {self.protocol!r}"
            )
        if self.lr <= 0:
            raise ValueError(f"train.lr must be > 0, got {self.lr}")
        for name in ("weight_decay", "loss_focal_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"train.{name} must be >= 0, got {getattr(self, name)}")
        if self.epoch_size is not None and self.epoch_size < self.batch_size:
            raise ValueError(
                f"train.epoch_size ({self.epoch_size}) is smaller than train.batch_size "
                f"({self.batch_size}), so an epoch would have no step; raise epoch_size or "
                f"lower batch_size"
            )
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"train.threads must be >= 1 or None, got {self.threads}")
        if self.num_workers < 0:
            raise ValueError(f"train.num_workers must be >= 0, got {self.num_workers}")

    @property
    def selection(self) -> str:
        """The epoch-selection rule the protocol implies: ``final``, ``val`` or ``test`` (leaky)."""
        return PROTOCOLS[self.protocol]

    @property
    def leaky(self) -> bool:
        """True for the unofficial protocol: seen anomalies stay in test, selection on test."""
        return self.protocol == "leaky"


@dataclass(frozen=True)
class PRNConfig:
    """One run: data, synthesis, model and training, driven by a single seed."""

    profile: str = "cpu"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    synthesis: SynthesisConfig = field(default_factory=SynthesisConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


PROFILES: dict[str, PRNConfig] = {
    "ci": PRNConfig(
        profile="ci",
        data=DataConfig(category="demo_washer", image_size=(128, 128), num_seen=4),
        model=ModelConfig(
            fusion_channels=(32, 64, 96),
            attention_patch_sizes=(2, 4),
            attention_dim=32,
            decoder_channels=(96, 64, 32, 16),
            head_channels=8,
            score_topk=50,
            residual_prior=True,  # results/experiments/ci_profile.md: needed on seed 2
        ),
        # Adam moves each weight by about lr per step, so 48 steps at 1e-4 left the decoder at its
        # 1% prior (flat maps, image AUROC 0.78). 160 steps at 3e-3 with the residual prior beat
        # the training-free residual detector on every metric for seeds 0-2
        # (results/experiments/ci_profile.md, results/benchmarks/demo_quality.json).
        train=TrainConfig(epochs=8, batch_size=8, epoch_size=160, lr=3e-3, threads=2),
    ),
    "cpu": PRNConfig(
        profile="cpu",
        data=DataConfig(image_size=(256, 256), num_seen=10),
        train=TrainConfig(epochs=12, batch_size=8, epoch_size=400, threads=2),
    ),
    "full": PRNConfig(
        profile="full",
        data=DataConfig(image_size=(256, 256), num_seen=10),
        model=ModelConfig(backbone="resnet18"),
        train=TrainConfig(epochs=60, batch_size=16, num_workers=4, device="cuda"),
    ),
}


def get_profile(name: str) -> PRNConfig:
    """Return a profile preset by name, with an error that lists the choices."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None


def default_profile_name() -> str:
    """``PRN_PROFILE`` if set, else ``full`` with a GPU and ``cpu`` without."""
    env = os.environ.get("PRN_PROFILE")
    if env:
        get_profile(env)
        return env
    try:
        import torch

        return "full" if torch.cuda.is_available() else "cpu"
    except ImportError:  # pragma: no cover - torch is a hard dependency
        return "cpu"


# Old names kept working: each maps (value) -> (new dotted name, new value).
_LEGACY: dict[str, Any] = {
    "data.leaky": lambda v: (
        "train.protocol",
        "leaky" if _parse_hint(bool, str(v), "data.leaky") else "honest-final",
    ),
    "train.selection": lambda v: ("train.protocol", _legacy_selection(v)),
}


def _legacy_selection(value: Any) -> str:
    if value not in ("final", "val"):
        raise ValueError(
            f"train.selection must be 'final' or 'val', got {value!r}; "
            f"prefer train.protocol ({' | '.join(PROTOCOLS)})"
        )
    return "honest-" + value


def _parse_field(sub: Any, leaf: str, value: Any, dotted: str) -> Any:
    """Parse a CLI string with the field's type hint; typed values are checked at construction."""
    return (
        _parse_hint(get_type_hints(type(sub))[leaf], value, dotted)
        if isinstance(value, str)
        else value
    )


def override(cfg: PRNConfig, **changes: Any) -> PRNConfig:
    """Return ``cfg`` with dotted fields replaced: ``override(cfg, **{"train.epochs": 3})``.

    >>> override(get_profile("ci"), **{"train.epochs": "3", "seed": 1}).train.epochs
    3
    """
    sections = ("data", "synthesis", "model", "train")
    grouped: dict[str, dict[str, Any]] = {"": {}, **{name: {} for name in sections}}
    for dotted, value in changes.items():
        if dotted in _LEGACY:
            dotted, value = _LEGACY[dotted](value)
        section, _, leaf = dotted.rpartition(".")
        if section not in grouped:
            raise ValueError(
                f"unknown config section {section!r} in {dotted!r}; use one of {sections}"
            )
        target = getattr(cfg, section) if section else cfg
        names = {f.name for f in fields(target)} - set(sections)
        if leaf not in names:
            where = f"{section} has" if section else "top-level fields are"
            raise ValueError(f"unknown config field {dotted!r}; {where} {sorted(names)}")
        grouped[section][leaf] = _parse_field(target, leaf, value, dotted)
    # One replace per section, so the checks see all changes together (epoch_size vs batch_size).
    subs = {
        name: replace(getattr(cfg, name), **grouped[name]) for name in sections if grouped[name]
    }
    return replace(cfg, **grouped[""], **subs)


def to_dict(cfg: Any) -> dict[str, Any]:
    """A plain nested dict of a config; tuples stay tuples (``json.dumps`` writes them as lists,
    and :func:`from_dict` turns lists back into tuples)."""
    return dataclasses.asdict(cfg)


def from_dict(data: dict[str, Any]) -> PRNConfig:
    """Rebuild a :class:`PRNConfig` from :func:`to_dict` output, rejecting unknown keys."""
    sections = {"data": DataConfig, "synthesis": SynthesisConfig, "model": ModelConfig, "train": TrainConfig}
    kwargs: dict[str, Any] = {}
    data = _upgrade_legacy(data)
    for key, value in data.items():
        if key in sections:
            cls = sections[key]
            known = {f.name for f in fields(cls)}
            unknown = set(value) - known
            if unknown:
                raise ValueError(f"config section {key!r} has unknown fields {sorted(unknown)}")
            value = {k: tuple(v) if isinstance(v, list) else v for k, v in value.items()}
            kwargs[key] = cls(**value)
        elif key in ("profile", "seed"):
            kwargs[key] = value
        else:
            raise ValueError(f"unknown config key {key!r}")
    return PRNConfig(**kwargs)



def _upgrade_legacy(data: dict[str, Any]) -> dict[str, Any]:
    """Configs saved before ``train.protocol`` existed (``data.leaky`` + ``train.selection``)."""
    data_sec, train_sec = dict(data.get("data", {})), dict(data.get("train", {}))
    leaky, selection = data_sec.pop("leaky", None), train_sec.pop("selection", None)
    if leaky is None and selection is None:
        return data
    if "protocol" not in train_sec:
        train_sec["protocol"] = "leaky" if leaky else _legacy_selection(selection or "final")
    return {**data, "data": data_sec, "train": train_sec}
