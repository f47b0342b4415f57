import json

import pytest

from prn_core.config import (
    PROFILES,
    PRNConfig,
    from_dict,
    get_profile,
    override,
    parse_image_size,
    to_dict,
)


def test_parse_image_size_forms():
    assert parse_image_size(256) == (256, 256)
    assert parse_image_size("256x640") == (256, 640)
    assert parse_image_size((128, 192)) == (128, 192)


@pytest.mark.parametrize("bad", ["250", "256x100", "abc", (256, 256, 3), 32])
def test_parse_image_size_rejects(bad):
    with pytest.raises(ValueError, match="image_size"):
        parse_image_size(bad)


def test_profiles_are_distinct_and_typed():
    assert set(PROFILES) == {"ci", "cpu", "full"}
    assert get_profile("full").model.backbone == "resnet18"
    assert get_profile("cpu").model.backbone == "tf_efficientnet_lite0"
    assert get_profile("ci").train.epochs < get_profile("cpu").train.epochs
    with pytest.raises(ValueError, match="unknown profile 'gpu'"):
        get_profile("gpu")


def test_override_coerces_strings_and_rejects_unknown_fields():
    cfg = override(get_profile("ci"), **{"train.epochs": "3", "data.image_size": "128x192",
                                         "data.leaky": "true", "model.attention_patch_sizes": "2,4", "seed": "5"})
    assert cfg.train.epochs == 3 and cfg.data.image_size == (128, 192)
    assert cfg.data.leaky is True and cfg.model.attention_patch_sizes == (2, 4) and cfg.seed == 5
    with pytest.raises(ValueError, match="unknown config field 'train.epoch'"):
        override(cfg, **{"train.epoch": 3})
    with pytest.raises(ValueError, match="unknown config section"):
        override(cfg, **{"optim.lr": 1})
    with pytest.raises(ValueError, match="expected int"):
        override(cfg, **{"train.epochs": "many"})


@pytest.mark.parametrize(
    "change, message",
    [
        ({"train.epochs": 0}, "train.epochs"),
        ({"train.batch_size": 1}, "batch_size"),
        ({"model.residual": "pixel"}, "model.residual"),
        ({"synthesis.beta_max": 1.5}, "beta_max"),
        ({"data.val_fraction": 1.0}, "val_fraction"),
        ({"model.attention_dim": 30}, "divisible"),
    ],
)
def test_bad_values_name_the_field(change, message):
    with pytest.raises(ValueError, match=message):
        override(get_profile("ci"), **change)


def test_round_trip_through_json():
    cfg = override(PRNConfig(), **{"data.image_size": "256x320", "seed": 3})
    again = from_dict(json.loads(json.dumps(to_dict(cfg))))
    assert again == cfg
    with pytest.raises(ValueError, match="unknown fields"):
        from_dict({"train": {"epochz": 1}})
