"""Figures for the book, the run reports and the benchmarks, one module per topic.

Every function returns a :class:`matplotlib.figure.Figure` (or, for the widgets, something that
displays as one) and accepts numpy arrays or torch tensors in the package's conventions: images
``(H, W, 3)`` or ``(3, H, W)`` in [0, 1], masks ``(H, W)`` or ``(1, H, W)`` in {0, 1}.

* ``common``: image and mask conversion, the red overlay, colour scales, line styles;
* ``data``: samples, the few-shot split, foregrounds, resizing, Perlin masks, textures, extended
  anomalies, the epoch mix, anomaly galleries;
* ``model``: the pipeline diagram, encoder maps, prototypes, residuals, top classes, MSF,
  attention, parameters;
* ``evaluation``: the training history, predictions, curves, the focal loss, region overlap,
  score histograms, thresholds, calibrated thresholds, heatmap and mask files;
* ``widgets``: the interactive threshold explorer;
* ``comparisons``: ours against published numbers, stability over epochs, the per-category
  paper table, ablation deltas, speed benchmarks.

Every name is importable from here (``from prn_core import viz; viz.show_samples(...)``).

May import: ``config``, ``data``, ``synthesis``, ``models``, ``metrics``, ``losses``,
``reference`` and ``results``, plus ``ablations`` (the summaries of finished ablation runs,
imported inside the one function that needs them, since ``ablations`` launches training); never
``train``, ``cli``, ``launch``, ``report`` or the other run and deployment modules. viz draws:
it computes nothing a lower layer provides (metrics, losses, nearest prototypes, attention
weights and ImageNet classes are the lower layers' own functions).
"""
from prn_core.models import attention_weights, top_classes
from prn_core.viz.common import SPLIT_STYLES, overlay_mask
from prn_core.viz.comparisons import (
    plot_ablation_deltas,
    plot_metric_bars,
    plot_metrics_speed,
    plot_model_speed,
    plot_paper_table,
    plot_protocol_parts,
    plot_reference_means,
    plot_stability,
    plot_synthesis_speed,
    plot_val_vs_test,
)
from prn_core.viz.data import (
    anomaly_gallery,
    plot_epoch_mix,
    plot_split,
    show_anomalies,
    show_extended,
    show_foregrounds,
    show_perlin_masks,
    show_resizing,
    show_samples,
    show_textures,
)
from prn_core.viz.evaluation import (
    plot_calibration,
    plot_curves,
    plot_focal_loss,
    plot_history,
    plot_score_histograms,
    plot_threshold,
    show_heatmap_files,
    show_predictions,
    show_region_overlap,
    stretch_maps,
)
from prn_core.viz.model import (
    plot_fusion,
    plot_parameters,
    plot_pipeline,
    show_attention,
    show_feature_maps,
    show_prototypes,
    show_residuals,
    show_top_classes,
)
from prn_core.viz.widgets import ThresholdExplorer, threshold_explorer

__all__ = ["show_anomalies", "anomaly_gallery", "overlay_mask", "plot_history", "show_predictions", "plot_curves",
           "plot_pipeline", "plot_reference_means", "show_samples", "plot_split", "show_foregrounds",
           "show_perlin_masks", "show_textures", "show_extended", "plot_epoch_mix",
           "top_classes", "show_top_classes", "show_feature_maps", "show_prototypes", "show_residuals",
           "plot_fusion", "attention_weights",
           "show_attention", "plot_parameters",
           "plot_focal_loss", "show_region_overlap", "plot_score_histograms", "plot_threshold",
           "ThresholdExplorer", "threshold_explorer", "stretch_maps",
           "plot_metric_bars", "plot_stability", "plot_paper_table", "plot_ablation_deltas", "plot_model_speed",
           "plot_synthesis_speed", "plot_metrics_speed", "plot_val_vs_test", "plot_protocol_parts",
           "show_resizing", "show_heatmap_files", "plot_calibration"]
