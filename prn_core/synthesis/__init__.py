"""Anomaly generation for PRN (DESIGN section 3).

* :mod:`~prn_core.synthesis.perlin` -- Perlin-noise masks (pure functions);
* :mod:`~prn_core.synthesis.augment` -- the 10 texture augmentation ops;
* :mod:`~prn_core.synthesis.simulated` -- DRAEM-style texture anomalies ("unseen");
* :mod:`~prn_core.synthesis.extended` -- augmented copy-paste of real defects ("seen", extended);
* :mod:`~prn_core.synthesis.mix` -- the balanced, seeded training epoch that mixes them.

Generators are transforms ``(image, ...) -> (image, mask)``, not logic inside a Dataset.
May import: numpy, OpenCV, torch, ``prn_core.config`` and ``prn_core.data`` (textures,
foregrounds); never ``models``, ``train`` or ``viz``.
"""
from prn_core.synthesis.augment import TEXTURE_OPS, augment_texture
from prn_core.synthesis.extended import ExtendedAnomaly
from prn_core.synthesis.mix import KINDS, AnomalyMix, balanced_schedule, check_no_leak, kind_proportions
from prn_core.synthesis.perlin import perlin_mask, perlin_noise
from prn_core.synthesis.simulated import SimulatedAnomaly, as_float_image

__all__ = [
    "KINDS",
    "TEXTURE_OPS",
    "AnomalyMix",
    "ExtendedAnomaly",
    "SimulatedAnomaly",
    "as_float_image",
    "augment_texture",
    "balanced_schedule",
    "check_no_leak",
    "kind_proportions",
    "perlin_mask",
    "perlin_noise",
]
