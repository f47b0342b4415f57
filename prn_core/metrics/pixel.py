"""Pixel-level metrics: pixel AUROC and AP, and AU-PRO, in bounded memory.

They must cope with a whole MVTec AD test set (1725 maps of 256x256, 113M pixels) on a 2-core,
24 GiB machine, so they never concatenate the maps or argsort them. Instead :func:`pixel_histogram` makes two
passes over the maps:

1. it estimates ``num_bins`` *equal-mass* bin edges from a sample of at most ``max_sample``
   valid pixels (all of them when there are fewer), and
2. it counts, per bin, the anomalous pixels, the normal pixels and, for AU-PRO, the sum of
   ``1 / |region|`` over anomalous pixels.

Every curve is then a cumulative sum over at most ``num_bins + 1`` bins. Working memory is
``O(num_bins + max_sample + one map)``, whatever the number of maps.

Accuracy. Binning only merges scores that fall in the same bin, i.e. it turns some strict
orderings into ties. When the maps hold at most ``num_bins`` distinct values and the sample is
all pixels, every bin holds one value and the results equal the exact ones (scikit-learn's for
AUROC and AP). Otherwise each bin holds about ``1 / num_bins`` of the pixels, which bounds the
AUROC error by ``0.5 / num_bins`` (about ``8e-6`` with the default ``2**16`` bins); AP and
AU-PRO stay within ``1e-4`` of exact in the tests, and within ``1e-5`` on the benchmark's 100
maps of 256x256 (``results/benchmarks/metrics_speed.json``).

AU-PRO follows the MVTec AD reference evaluation (Bergmann et al., 2019/2021): for every
threshold, the false-positive rate over all normal pixels of all images, and the per-region
overlap averaged over all connected components (8-connectivity) of all ground-truth masks; the
curve from ``(0, 0)`` is integrated up to ``fpr_limit`` (interpolating at the limit) and divided
by ``fpr_limit``, so a perfect map scores 1 and no map scores more.

Padding: pass ``valid`` (True where a pixel is part of the image) and padded pixels are left out
of every pixel metric, including region sizes.

Sharded evaluation (``torchrun``): pass ``shards`` (see :class:`Shards`) and each process scores
only its own contiguous block of images. The histogram is additive, so the processes exchange
histograms, not maps: the per-image valid-pixel counts, the sampled scores that place the bin
edges (the sampling generator is replayed over the other blocks, so the sample is the one a
single process draws), the integer counts, and each image's sparse AU-PRO region weights, which
are added in image order. The result equals a single process's exactly, not approximately.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from scipy import ndimage

from prn_core.metrics.curves import Curve, _ap_from_counts, _area_up_to, _cumulative, _roc_from_counts, _trapezoid

__all__ = [
    "MAX_SAMPLE",
    "NUM_BINS",
    "MapsLike",
    "PixelHistogram",
    "Shards",
    "au_pro",
    "pixel_ap",
    "pixel_auroc",
    "pixel_histogram",
    "pro_curve",
]

NUM_BINS = 1 << 16  # equal-mass score bins for pixel metrics: AUROC error <= 0.5 / NUM_BINS
MAX_SAMPLE = 1 << 22  # pixels used to place the bin edges: about 64 per bin
_SAMPLE_SEED = 0  # metrics must be a deterministic function of their inputs
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)  # as in the MVTec AD reference AU-PRO
MapsLike = np.ndarray | Sequence[Any] | Iterable[Any]


class Shards(Protocol):
    """The processes that each hold one contiguous block of the images, in rank order."""

    rank: int

    def all_gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, indexed by rank (``torch.distributed.all_gather_object``)."""
        ...


@dataclass(frozen=True, eq=False)
class PixelHistogram:
    """Per-bin pixel counts from which every pixel metric and curve is computed.

    Bin ``i`` holds the scores in ``(edges[i-1], edges[i]]``; the last bin holds scores above
    ``edges[-1]``. Build it once with :func:`pixel_histogram` and ask it for several metrics.
    """

    edges: np.ndarray  # (K,) float32 bin edges, ascending, each an observed score
    positives: np.ndarray  # (K+1,) int64 anomalous (ground truth 1) valid pixels per bin
    negatives: np.ndarray  # (K+1,) int64 normal valid pixels per bin
    region_weight: np.ndarray  # (K+1,) float64 sum over anomalous pixels of 1/|their region|
    num_regions: int  # connected ground-truth regions over all images
    max_score: float  # the largest valid score, the threshold of the top bin

    def _occupied(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Non-empty bins only, ascending: (thresholds, positives, negatives, region_weight)."""
        keep = (self.positives + self.negatives) > 0
        thresholds = np.append(self.edges, self.max_score)[keep]
        return thresholds, self.positives[keep], self.negatives[keep], self.region_weight[keep]

    def _require(self, positives: bool = True) -> None:
        if self.negatives.sum() == 0:
            raise ValueError(
                "pixel metrics need normal pixels (mask 0) but every valid pixel is anomalous"
            )
        if positives and self.positives.sum() == 0:
            raise ValueError(
                "pixel metrics need anomalous pixels (mask 1) but all masks are empty; "
                "evaluate on a test set that includes defective images"
            )

    def roc_curve(self) -> Curve:
        """Pixel-level ROC curve (false-positive rate, true-positive rate)."""
        self._require()
        thresholds, pos, neg, _ = self._occupied()
        fpr, tpr = _roc_from_counts(pos, neg)
        return Curve(fpr, tpr, np.concatenate([[np.inf], thresholds[::-1]]))

    def auroc(self) -> float:
        """Area under the pixel ROC curve (``roc_auc_score`` on all valid pixels)."""
        curve = self.roc_curve()
        return _trapezoid(curve.x, curve.y)

    def average_precision(self) -> float:
        """Pixel average precision (``average_precision_score`` on all valid pixels)."""
        self._require()
        _, pos, neg, _ = self._occupied()
        return _ap_from_counts(pos, neg)

    def pro_curve(self) -> Curve:
        """Per-region overlap against the false-positive rate on normal pixels."""
        self._require()
        thresholds, _, neg, weight = self._occupied()
        fpr = np.concatenate([[0.0], _cumulative(neg) / neg.sum()])
        pro = np.concatenate([[0.0], _cumulative(weight) / self.num_regions])
        np.clip(pro, 0.0, 1.0, out=pro)  # rounding of 1/|region| sums must not exceed 1
        return Curve(fpr, pro, np.concatenate([[np.inf], thresholds[::-1]]))

    def au_pro(self, fpr_limit: float = 0.3) -> float:
        """Area under the PRO curve up to ``fpr_limit``, divided by ``fpr_limit`` (in [0, 1])."""
        if not 0.0 < fpr_limit <= 1.0:
            raise ValueError(f"fpr_limit must be in (0, 1]; got {fpr_limit}")
        curve = self.pro_curve()
        return min(1.0, _area_up_to(curve.x, curve.y, fpr_limit) / fpr_limit)


def _as_list(items: MapsLike | None, what: str) -> list[Any] | None:
    """A random-access view of maps/masks; one-shot iterators are kept as a list of maps."""
    if items is None:
        return None
    if isinstance(items, np.ndarray) and items.ndim < 3:
        raise ValueError(f"{what} must be (N, H, W) or a sequence of (H, W); got {items.shape}")
    return list(items)  # a list of views for arrays and sequences: no map is copied


def _plane(item: Any, what: str, index: int) -> np.ndarray:
    """One (H, W) map, mask or valid-mask; accepts a leading channel of size 1."""
    a = np.asarray(item)
    if a.ndim == 3 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{what}[{index}] must be (H, W) or (1, H, W); got shape {a.shape}")
    return a


def _image_planes(
    masks: list[Any], maps: list[Any], valid: list[Any] | None, index: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(scores float32 (P,), ground truth bool (P,), labelled regions (P,)) of one image's
    valid pixels; the region label array is None when the mask is empty."""
    score = _plane(maps[index], "maps", index)
    mask = _plane(masks[index], "masks", index)
    if mask.shape != score.shape:
        raise ValueError(
            f"masks[{index}] has shape {mask.shape} but maps[{index}] has {score.shape}; "
            "resize the maps to the mask size before scoring"
        )
    if mask.size and mask.max() > 1:
        raise ValueError(
            f"masks[{index}] must hold 0 and 1; found a maximum of {mask.max()}. "
            "Divide 0/255 masks by 255"
        )
    gt = mask > 0.5
    score = score.astype(np.float32, copy=False)
    if valid is not None:
        keep = _plane(valid[index], "valid", index).astype(bool, copy=False)
        if keep.shape != score.shape:
            raise ValueError(
                f"valid[{index}] has shape {keep.shape} but maps[{index}] has {score.shape}"
            )
    else:
        keep = None
    regions = None
    if gt.any():
        regions, _ = ndimage.label(gt, structure=_EIGHT_CONNECTED)
        regions = regions[keep] if keep is not None else regions.reshape(-1)
    if keep is not None:
        score, gt = score[keep], gt[keep]
    else:
        score, gt = score.reshape(-1), gt.reshape(-1)
    if not np.isfinite(score).all():
        raise ValueError(f"maps[{index}] contains NaN or infinity; check the model output")
    return score, gt, regions


def _bin_edges(
    maps: list[Any], valid: list[Any] | None, num_bins: int, max_sample: int,
    shards: Shards | None = None,
) -> np.ndarray:
    """Equal-mass bin edges from (a seeded sample of) the valid scores; pass one of two.

    With ``shards``, this process holds images ``offset .. offset + len(maps)`` of the whole
    set; the generator still draws for every image in order, so the sample is the same.
    """
    sizes = [
        int(np.count_nonzero(_plane(valid[i], "valid", i))) if valid is not None
        else _plane(m, "maps", i).size
        for i, m in enumerate(maps)
    ]
    offset, all_sizes = 0, sizes
    if shards is not None:
        blocks = shards.all_gather(sizes)
        offset = sum(len(b) for b in blocks[: shards.rank])
        all_sizes = [size for block in blocks for size in block]
    if not all_sizes:
        raise ValueError("no maps to score; pass at least one image")
    total = sum(all_sizes)
    if total == 0:
        raise ValueError("no valid pixels to score: every map is empty or fully padded")
    rng = np.random.default_rng(_SAMPLE_SEED)
    parts = []
    for j, size in enumerate(all_sizes):
        picks = None
        if total > max_sample and size:
            count = -(-size * max_sample // total)  # ceil: every image is represented
            picks = rng.integers(0, size, count)
        i = j - offset
        if not 0 <= i < len(maps):
            continue  # another process's image: its draws were made above, its pixels are not here
        score = _plane(maps[i], "maps", i).astype(np.float32, copy=False)
        if valid is not None:
            score = score[_plane(valid[i], "valid", i).astype(bool, copy=False)]
        score = score.reshape(-1)
        parts.append(score if picks is None else score[picks])
    if shards is not None:
        parts = [part for block in shards.all_gather(parts) for part in block]
    sample = np.sort(np.concatenate(parts))
    if not np.isfinite(sample[[0, -1]]).all():
        raise ValueError("maps contain NaN or infinity; check the model output")
    if sample.size > num_bins:  # equal-mass quantiles, each an observed value
        picks = np.ceil(np.arange(1, num_bins + 1) * (sample.size / num_bins)).astype(np.int64)
        sample = sample[picks - 1]
    return np.unique(sample)


def pixel_histogram(
    masks: MapsLike,
    maps: MapsLike,
    valid: MapsLike | None = None,
    num_bins: int = NUM_BINS,
    max_sample: int = MAX_SAMPLE,
    shards: Shards | None = None,
) -> PixelHistogram:
    """Count the valid pixels of all images into equal-mass score bins (two passes).

    ``masks`` and ``maps`` are (N, H, W) arrays or sequences of (H, W) arrays (sizes may differ
    between images; a leading channel of 1 is accepted, float16 maps too). ``valid`` is an
    optional matching boolean array or sequence, True for pixels to score. One-shot iterators
    are read into a list first (the maps are kept as they are, never copied to float64).
    ``shards``: this process holds one block of the images; see the module docstring.

    >>> masks = np.zeros((2, 4, 4), np.uint8); masks[1, :2, :2] = 1
    >>> hist = pixel_histogram(masks, masks.astype(np.float32))
    >>> hist.auroc(), hist.average_precision(), hist.au_pro(), hist.num_regions
    (1.0, 1.0, 1.0, 1)
    """
    if num_bins < 1 or max_sample < 1:
        raise ValueError(f"num_bins and max_sample must be positive; got {num_bins}, {max_sample}")
    mask_list, map_list = _as_list(masks, "masks"), _as_list(maps, "maps")
    valid_list = _as_list(valid, "valid")
    if len(mask_list) != len(map_list) or (valid_list is not None and len(valid_list) != len(map_list)):
        raise ValueError(
            f"need one mask (and valid mask) per map; got {len(mask_list)} masks, "
            f"{len(map_list)} maps" + ("" if valid_list is None else f", {len(valid_list)} valid")
        )
    if not map_list and shards is None:
        raise ValueError("no maps to score; pass at least one image")
    edges = _bin_edges(map_list, valid_list, num_bins, max_sample, shards)
    size = len(edges) + 1
    positives = np.zeros(size, np.int64)
    negatives = np.zeros(size, np.int64)
    region_weight = np.zeros(size, np.float64)
    num_regions, max_score = 0, -np.inf
    region_parts = []  # (bins, weights) per image with defects, in image order, for shards
    for i in range(len(map_list)):
        score, gt, regions = _image_planes(mask_list, map_list, valid_list, i)
        if not score.size:
            continue
        max_score = max(max_score, float(score.max()))
        bins = np.searchsorted(edges, score, side="left")  # (P,) bin of each valid pixel
        negatives += np.bincount(bins[~gt], minlength=size)
        if regions is not None:
            anomalous = regions[gt]  # (A,) region id of each anomalous valid pixel
            region_size = np.bincount(anomalous)  # region 0 (background) never occurs here
            present = region_size > 0
            num_regions += int(np.count_nonzero(present))
            inverse = np.divide(1.0, region_size, out=np.zeros(len(region_size)), where=present)
            hit = bins[gt]
            positives += np.bincount(hit, minlength=size)
            weight = np.bincount(hit, weights=inverse[anomalous], minlength=size)
            if shards is None:
                region_weight += weight
            else:
                region_parts.append((np.flatnonzero(weight), weight[weight > 0]))
    if shards is not None:
        blocks = shards.all_gather((positives, negatives, num_regions, max_score, region_parts))
        positives = np.sum([b[0] for b in blocks], axis=0)
        negatives = np.sum([b[1] for b in blocks], axis=0)
        num_regions, max_score = sum(b[2] for b in blocks), max(b[3] for b in blocks)
        for block in blocks:  # image order, as one process adds them: equal to the last bit
            for hit_bins, weights in block[4]:
                region_weight[hit_bins] += weights
    return PixelHistogram(edges, positives, negatives, region_weight, num_regions, max_score)


def pixel_auroc(masks: MapsLike, maps: MapsLike, valid: MapsLike | None = None) -> float:
    """Pixel AUROC over all valid pixels of all images (see :func:`pixel_histogram`)."""
    return pixel_histogram(masks, maps, valid).auroc()


def pixel_ap(masks: MapsLike, maps: MapsLike, valid: MapsLike | None = None) -> float:
    """Pixel average precision over all valid pixels; unlike AUROC it is sensitive to the
    rarity of anomalous pixels, which is why PRN reports it."""
    return pixel_histogram(masks, maps, valid).average_precision()


def pro_curve(masks: MapsLike, maps: MapsLike, valid: MapsLike | None = None) -> Curve:
    """The PRO curve (false-positive rate, mean per-region overlap) for plotting."""
    return pixel_histogram(masks, maps, valid).pro_curve()


def au_pro(
    masks: MapsLike, maps: MapsLike, fpr_limit: float = 0.3, valid: MapsLike | None = None
) -> float:
    """Normalised area under the PRO curve up to ``fpr_limit`` (MVTec AD's AU-PRO, in [0, 1]).

    Every connected defect region counts equally, however small, so a map that finds the large
    defects but misses the small ones scores lower here than in pixel AUROC.
    """
    return pixel_histogram(masks, maps, valid).au_pro(fpr_limit)
