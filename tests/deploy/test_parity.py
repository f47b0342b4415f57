"""Every engine gives eager PyTorch's maps, scores, decisions and AUROCs, within its budget.

The budgets are the ones :mod:`prn_core.deploy` documents: FP32 engines match to 1e-4 per pixel
with identical decisions and AUROCs equal to 4 decimals; OpenVINO FP16 and INT8 get looser,
measured budgets.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from prn_core.deploy import load_engine
from prn_core.deploy.meta import fingerprint_file
from prn_core.metrics import image_auroc, pixel_auroc

FP32_MAP_ATOL = 1e-4
AUROC_DECIMALS = 5e-5  # "equal to 4 decimals"


def _outputs(exports, engine: str, precision: str = "fp32"):
    path = exports.case.checkpoint if engine == "torch" else exports.get(engine, precision)
    runner = load_engine(path, engine, threads=2)
    return runner, *runner(exports.case.images)


def _aurocs(case, maps, scores) -> tuple[float, float]:
    return image_auroc(case.labels, scores), pixel_auroc(case.masks, maps)


def _assert_fp32_parity(exports, engine: str) -> None:
    case = exports.case
    runner, maps, scores = _outputs(exports, engine)
    assert maps.shape == case.maps.shape and scores.shape == case.scores.shape
    assert np.abs(maps - case.maps).max() <= FP32_MAP_ATOL
    np.testing.assert_array_equal(scores >= case.threshold, case.scores >= case.threshold)
    for got, want in zip(_aurocs(case, maps, scores), _aurocs(case, case.maps, case.scores)):
        assert abs(got - want) < AUROC_DECIMALS
    assert runner.meta["checkpoint_sha256"] == fingerprint_file(case.checkpoint)


@pytest.mark.parametrize("engine", ["torch", "pt2", "onnx", "openvino"])
def test_fp32_engines_match_eager_on_the_demo_test_split(demo_exports, engine):
    _assert_fp32_parity(demo_exports, engine)


@pytest.mark.realdata
@pytest.mark.parametrize("engine", ["pt2", "onnx", "openvino"])
def test_fp32_engines_match_eager_on_real_bottles(bottle_exports, engine):
    _assert_fp32_parity(bottle_exports, engine)
    assert load_engine(bottle_exports.get(engine), engine).meta["thresholds"] is None


def test_the_json_describes_input_thresholds_and_origin(demo_exports):
    case = demo_exports.case
    model_file = demo_exports.get("onnx")
    meta = json.loads((model_file.parent / "prn_export.json").read_text())
    assert meta["format"] == "onnx" and meta["precision"] == "fp32"
    assert meta["model_file"] == model_file.name == "model.onnx"
    assert meta["image_size"] == list(case.images.shape[1:3]) and meta["keep_aspect"] is False
    assert meta["normalization"]["in_graph"] is True
    assert len(meta["normalization"]["mean"]) == 3 and len(meta["normalization"]["std"]) == 3
    assert meta["thresholds"]["image"] == case.threshold
    assert meta["exporter"] == "torch.onnx dynamo" and meta["opset"] == 18
    assert meta["batch"] == "dynamic"
    assert meta["checkpoint_sha256"] == fingerprint_file(case.checkpoint)
    from prn_core._version import __version__

    assert meta["prn_core_version"] == __version__


@pytest.mark.parametrize("engine", ["pt2", "onnx", "openvino"])
def test_batch_is_dynamic_even_past_torch_cdist_switch_at_25(demo_exports, engine):
    """One batch of 40 images (torch's cdist changes formula above 25 rows) and batches of 1
    give the maps eager PyTorch gives in batches of 8."""
    case = demo_exports.case
    runner = load_engine(demo_exports.get(engine), engine, threads=2)
    doubled = np.concatenate([case.images, case.images])
    maps, scores = runner(doubled, batch_size=len(doubled))
    np.testing.assert_allclose(maps, np.concatenate([case.maps, case.maps]), atol=FP32_MAP_ATOL)
    single_maps, single_scores = runner(case.images[:3], batch_size=1)
    np.testing.assert_allclose(single_maps, case.maps[:3], atol=FP32_MAP_ATOL)
    np.testing.assert_allclose(scores[:3], single_scores, atol=1e-5)


def test_openvino_fp16_stays_within_its_budget(demo_exports):
    """FP16 weights, FP32 arithmetic: <= 5e-3 per pixel, AUROCs within 0.005, at most one
    decision in 20 flips (measured: 9e-4, AUROCs equal to 4 decimals, no flip)."""
    case = demo_exports.case
    runner, maps, scores = _outputs(demo_exports, "openvino", "fp16")
    assert runner.meta["precision"] == "fp16"
    assert np.abs(maps - case.maps).max() <= 5e-3
    flips = np.sum((scores >= case.threshold) != (case.scores >= case.threshold))
    assert flips <= max(1, len(scores) // 20)
    for got, want in zip(_aurocs(case, maps, scores), _aurocs(case, case.maps, case.scores)):
        assert abs(got - want) <= 0.005


def test_openvino_int8_stays_within_its_budget(demo_exports):
    """NNCF post-training INT8 on 16 normals: mean per-pixel error <= 0.01, image AUROC within
    0.05, pixel AUROC within 0.02 (measured: 0.0035 mean and 0.18 max per pixel, image AUROC
    equal, pixel AUROC 0.0094 lower)."""
    case = demo_exports.case
    runner, maps, scores = _outputs(demo_exports, "openvino", "int8")
    assert runner.meta["quantization"]["calibration_images"] == 16
    assert np.abs(maps - case.maps).mean() <= 0.01
    image, pixel = _aurocs(case, maps, scores)
    eager_image, eager_pixel = _aurocs(case, case.maps, case.scores)
    assert abs(image - eager_image) <= 0.05 and abs(pixel - eager_pixel) <= 0.02
    assert np.abs(maps - case.maps).max() > 1e-4  # it did quantise: not an FP32 graph renamed
