"""prn_core.export: the exported program gives the original model's maps and scores."""
from __future__ import annotations

import pytest
import torch

from prn_core.config import get_profile, override
from prn_core.export import export_model, load_exported
from prn_core.models import build_backbone, build_prn, fit_prototypes

SIZE = (64, 96)  # non-square on purpose: H and W must not be swapped anywhere


@pytest.fixture(scope="module")
def model_and_cfg():
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(0)
    cfg = override(get_profile("ci"), **{"data.image_size": SIZE, "data.keep_aspect": True})
    backbone = build_backbone(cfg.model.backbone, "random")
    bank = fit_prototypes(backbone, [torch.rand(4, 3, *SIZE, generator=gen)], ratio=0.5, progress=False)
    return build_prn(cfg.model, SIZE, prototypes=bank, backbone=backbone).eval(), cfg


@pytest.fixture(scope="module")
def exported(model_and_cfg, tmp_path_factory):
    model, cfg = model_and_cfg
    return export_model(model, cfg, tmp_path_factory.mktemp("export") / "model.pt2")


def test_exported_program_matches_the_model_on_a_random_input(model_and_cfg, exported):
    model, cfg = model_and_cfg
    program, loaded_cfg = load_exported(exported)
    x = torch.rand(1, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = model(x)
        anomaly_map, score = program(x)
    assert anomaly_map.shape == (1, 1, *SIZE) and score.shape == (1,)
    torch.testing.assert_close(anomaly_map, expected.anomaly_map, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(score, expected.score, rtol=1e-5, atol=1e-6)
    assert loaded_cfg == cfg and loaded_cfg.data.keep_aspect


def test_export_rejects_a_config_of_another_size(model_and_cfg, tmp_path):
    model, cfg = model_and_cfg
    with pytest.raises(ValueError, match="differs from the model's"):
        export_model(model, override(cfg, **{"data.image_size": (64, 64)}), tmp_path / "m.pt2")
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        export_model(model, cfg, tmp_path / "m.pt2", batch_size=0)


def test_load_exported_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_exported(tmp_path / "missing.pt2")
    junk = tmp_path / "junk.pt2"
    junk.write_bytes(b"not a program")
    with pytest.raises(ValueError, match="not a torch.export program"):
        load_exported(junk)
