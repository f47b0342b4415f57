"""All the metrics the book reports, with one histogram pass for the pixel ones."""
from __future__ import annotations

import numpy as np

from prn_core.metrics.image import ArrayLike, f1_max, image_auroc
from prn_core.metrics.pixel import MapsLike, Shards, _as_list, pixel_histogram

__all__ = ["compute_metrics", "metrics_by_group"]


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


def metrics_by_group(
    labels: ArrayLike,
    scores: ArrayLike,
    masks: MapsLike,
    maps: MapsLike,
    groups: list[str],
    valid: MapsLike | None = None,
    fpr_limit: float = 0.3,
) -> dict[str, dict[str, float]]:
    """:func:`compute_metrics` once per group of anomalous images (a defect type), each against
    **all** the normal images, plus ``count``, the group's number of anomalous images.

    A whole-test-set number hides which defects a model misses: on magnetic tile, large
    low-contrast ``uneven`` regions and tiny blowholes fail in different ways. Normal images
    (label 0) belong to every group, so each group's image AUROC asks "does this defect score
    above the normals?". Groups are sorted by name; normals' own group name is ignored.
    """
    labels = np.asarray(labels).reshape(-1)
    scores = np.asarray(scores).reshape(-1)
    if len(groups) != len(labels):
        raise ValueError(f"need one group per image; got {len(groups)} groups and {len(labels)} labels")
    mask_list, map_list = _as_list(masks, "masks"), _as_list(maps, "maps")
    valid_list = _as_list(valid, "valid")
    normal = [i for i, y in enumerate(labels) if y == 0]
    out: dict[str, dict[str, float]] = {}
    for group in sorted({g for g, y in zip(groups, labels) if y == 1}):
        keep = normal + [i for i, (g, y) in enumerate(zip(groups, labels)) if y == 1 and g == group]
        out[group] = {
            **compute_metrics(labels[keep], scores[keep], [mask_list[i] for i in keep],
                              [map_list[i] for i in keep],
                              valid=None if valid_list is None else [valid_list[i] for i in keep],
                              fpr_limit=fpr_limit),
            "count": len(keep) - len(normal),
        }
    return out
