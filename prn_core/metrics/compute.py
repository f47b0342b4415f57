"""All the metrics the book reports, with one histogram pass for the pixel ones."""
from __future__ import annotations

import numpy as np

from prn_core.metrics.image import ArrayLike, f1_max, image_auroc
from prn_core.metrics.pixel import MapsLike, Shards, _as_list, pixel_histogram

__all__ = ["compute_metrics"]


def compute_metrics(
    labels: ArrayLike,
    scores: ArrayLike,
    masks: MapsLike,
    maps: MapsLike,
    valid: MapsLike | None = None,
    fpr_limit: float = 0.3,
    shards: Shards | None = None,
) -> dict[str, float]:
    """All five metrics the book reports, with one histogram pass for the pixel ones.

    Returns ``image_auroc``, ``image_f1_max``, ``pixel_auroc``, ``pixel_ap`` and ``au_pro``.
    With ``shards``, the arguments are this process's block of images and the metrics cover
    every block (image labels and scores are gathered; pixel histograms are summed).
    """
    mask_list, map_list = _as_list(masks, "masks"), _as_list(maps, "maps")
    if len(np.asarray(labels).reshape(-1)) != len(map_list):
        raise ValueError(
            f"need one label per map; got {len(np.asarray(labels).reshape(-1))} labels and "
            f"{len(map_list)} maps"
        )
    hist = pixel_histogram(mask_list, map_list, valid, shards=shards)
    if shards is not None:
        labels = np.concatenate([np.asarray(x).reshape(-1) for x in shards.all_gather(labels)])
        scores = np.concatenate([np.asarray(x).reshape(-1) for x in shards.all_gather(scores)])
    return {
        "image_auroc": image_auroc(labels, scores),
        "image_f1_max": f1_max(labels, scores).f1,
        "pixel_auroc": hist.auroc(),
        "pixel_ap": hist.average_precision(),
        "au_pro": hist.au_pro(fpr_limit),
    }
