"""Bad inputs to export() and load_engine() fail early with a message naming the fix."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

from prn_core.checkpoint import load_model
from prn_core.config import override
from prn_core.deploy import export, load_engine
from prn_core.deploy.meta import fingerprint_state


def test_unknown_format_precision_and_engine_list_the_choices(demo_exports, tmp_path):
    checkpoint = demo_exports.case.checkpoint
    with pytest.raises(ValueError, match=r"unknown export format 'tflite'.*'pt2', 'onnx'"):
        export(checkpoint, "tflite", tmp_path)
    with pytest.raises(ValueError, match=r"'onnx' supports precision \['fp32'\], not 'fp16'"):
        export(checkpoint, "onnx", tmp_path, precision="fp16")
    with pytest.raises(ValueError, match=r"unknown engine 'tensorrt'.*'torch', 'pt2'"):
        load_engine(checkpoint, "tensorrt")
    assert not any(tmp_path.iterdir())  # nothing written before the options are checked


def test_int8_calibration_images_are_checked(demo_exports, tmp_path):
    case = demo_exports.case
    with pytest.raises(ValueError, match="'int8' needs calibration_images"):
        export(case.checkpoint, "openvino", tmp_path, precision="int8")
    with pytest.raises(ValueError, match="only used by precision 'int8'"):
        export(case.checkpoint, "openvino", tmp_path, calibration_images=case.normals)
    with pytest.raises(ValueError, match=r"must be \(N, H, W, 3\)"):
        export(case.checkpoint, "openvino", tmp_path, precision="int8",
               calibration_images=case.normals[..., 0])
    with pytest.raises(ValueError, match=r"calibration_images are \(64, 64\).*takes \(128, 128\)"):
        export(case.checkpoint, "openvino", tmp_path, precision="int8",
               calibration_images=case.normals[:, :64, :64])


def test_sources_that_cannot_be_exported(demo_exports, tmp_path):
    pt2_folder = demo_exports.get("pt2").parent
    with pytest.raises(ValueError, match="only an fp32 onnx export converts further"):
        export(pt2_folder, "openvino", tmp_path)
    with pytest.raises(TypeError, match=r"a \(PRN, PRNConfig\) pair.*got dict"):
        export({"model": 1}, "pt2", tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        export(tmp_path / "missing.pt", "pt2", tmp_path)
    model, cfg = load_model(demo_exports.case.checkpoint)
    with pytest.raises(ValueError, match="differs from the model's"):
        export((model, override(cfg, **{"data.image_size": (64, 64)})), "pt2", tmp_path)


def test_engine_paths_that_are_not_exports(demo_exports, tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no prn_export.json"):
        load_engine(tmp_path, "onnx")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_engine(tmp_path / "nope", "onnx")
    onnx_file = demo_exports.get("onnx")
    with pytest.raises(ValueError, match="holds a 'onnx' export, not 'openvino'"):
        load_engine(onnx_file.parent, "openvino")
    with pytest.raises(ValueError, match="engine 'torch' runs a model file"):
        load_engine(onnx_file.parent, "torch")
    (tmp_path / "prn_export.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_engine(tmp_path, "onnx")
    (tmp_path / "prn_export.json").write_text(json.dumps({"schema": "prn-export/1",
                                                         "format": "onnx"}))
    with pytest.raises(FileNotFoundError, match="names model.onnx, which is missing"):
        load_engine(tmp_path, "onnx")


def test_images_that_do_not_fit_the_export(demo_exports):
    runner = load_engine(demo_exports.get("onnx"), "onnx")
    images = demo_exports.case.images[:2]
    with pytest.raises(ValueError, match=r"images are \(64, 64\).*exported for \(128, 128\).*"
                                         r"load_image"):
        runner(images[:, :64, :64])
    with pytest.raises(ValueError, match=r"must be \(N, H, W, 3\)"):
        runner(images.transpose(0, 3, 1, 2))
    with pytest.raises(ValueError, match="divide uint8 images by 255"):
        runner((images * 255).astype(np.uint8))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        runner(images * 255)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        runner(images, batch_size=0)
    maps, scores = runner(images[:0])
    assert maps.shape == (0, 128, 128) and scores.shape == (0,)


def test_missing_runtime_names_the_extra(demo_exports, tmp_path, monkeypatch):
    folder = demo_exports.get("onnx").parent
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import now raises ImportError
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'prn-core\[deploy\]'"):
        load_engine(folder, "onnx")
    with pytest.raises(ModuleNotFoundError, match=r"OpenVINO export needs.*'openvino'"):
        export(folder, "openvino", tmp_path)


def test_state_dict_fingerprint_follows_the_weights(demo_exports):
    model, _ = load_model(demo_exports.case.checkpoint)
    state = model.state_dict()
    before = fingerprint_state(state)
    assert fingerprint_state(dict(reversed(list(state.items())))) == before  # order-free
    with torch.no_grad():
        next(p for p in model.parameters() if p.requires_grad).add_(1e-3)
    assert fingerprint_state(model.state_dict()) != before


def test_onnx_falls_back_to_torchscript_when_dynamo_fails(demo_exports, tmp_path, monkeypatch):
    """A (model, config) pair, no thresholds; the dynamo exporter is made to fail."""
    model, cfg = load_model(demo_exports.case.checkpoint)
    real = torch.onnx.export

    def dynamo_fails(*args, **kwargs):
        if kwargs.get("dynamo", True):
            raise RuntimeError("simulated dynamo failure")
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.onnx, "export", dynamo_fails)
    path = export((model, cfg), "onnx", tmp_path)
    runner = load_engine(path, "onnx", threads=2)
    meta = runner.meta
    assert meta["exporter"] == "torch.onnx torchscript" and meta["opset"] == 17
    assert "simulated dynamo failure" in meta["dynamo_error"]
    assert meta["fingerprint_of"] == "state dict" and meta["thresholds"] is None
    assert meta["checkpoint_sha256"] == fingerprint_state(model.state_dict())
    case = demo_exports.case
    maps, _ = runner(case.images, batch_size=len(case.images))  # dynamic batch here too
    assert np.abs(maps - case.maps).max() <= 1e-4
