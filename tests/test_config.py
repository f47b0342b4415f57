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
    cfg = override(
        get_profile("ci"),
        **{
            "train.epochs": "3",
            "data.image_size": "128x192",
            "train.protocol": "leaky",
            "model.attention_patch_sizes": "2,4",
            "seed": "5",
        },
    )
    assert cfg.train.epochs == 3 and cfg.data.image_size == (128, 192)
    assert cfg.train.leaky is True and cfg.model.attention_patch_sizes == (2, 4) and cfg.seed == 5
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
        ({"synthesis.extended_prob": -0.1}, r"synthesis.extended_prob must be in \[0, 1\]"),
        ({"synthesis.perlin_threshold": 1.0}, r"perlin_threshold must be in \(-1, 1\)"),
        ({"train.weight_decay": -1e-3}, "train.weight_decay must be >= 0"),
        ({"train.loss_focal_weight": -1.0}, "train.loss_focal_weight must be >= 0"),
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


# --- issue 11, item 2: --set coerces from the type hints, Optional included ------------------


@pytest.mark.parametrize(
    "key, text, expected",
    [
        ("train.epoch_size", "2000", 2000),
        ("train.epoch_size", "none", None),
        ("train.threads", "4", 4),
        ("train.threads", "None", None),
        ("data.textures", "dtd", "dtd"),
        ("data.textures", "none", None),
        ("data.root", "my data/ünïcode", "my data/ünïcode"),
        ("data.image_size", "auto", "auto"),
        ("model.fusion_channels", "16,32,64", (16, 32, 64)),
        ("train.lr", "3e-4", 3e-4),
        ("train.amp", "off", False),
    ],
)
def test_set_coerces_from_type_hints(key, text, expected):
    cfg = override(get_profile("ci"), **{key: text})
    section, leaf = key.split(".")
    got = getattr(getattr(cfg, section), leaf)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("train.epoch_size", "lots", r"train.epoch_size: expected int or None, got 'lots'"),
        ("train.threads", "2.5", r"train.threads: expected int or None"),
        ("train.epochs", "many", r"train.epochs: expected int, got 'many'"),
        ("train.amp", "maybe", r"train.amp: expected a boolean"),
        ("model.fusion_channels", "16,x,64", r"model.fusion_channels: expected 3 integers"),
        ("train.epoch_size", "2000", None),
    ],
)
def test_set_rejects_wrong_types_with_the_field_name(key, value, message):
    if message is None:  # the same value given as the wrong Python type is refused too
        with pytest.raises(
            ValueError, match=r"train.epoch_size must be int or None, got str '2000'"
        ):
            from prn_core.config import TrainConfig

            TrainConfig(epoch_size=value)
        return
    with pytest.raises(ValueError, match=message):
        override(get_profile("ci"), **{key: value})


# --- issue 11, item 3: impossible configurations fail before any work -------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        ({"train.epoch_size": 4, "train.batch_size": 8}, r"epoch_size \(4\) .*batch_size \(8\)"),
        ({"model.score_topk": 0}, r"model.score_topk must be >= 1"),
        (
            {"model.fusion_channels": (32, 64)},
            r"model.fusion_channels needs 3 integers \(strides 4, 8, 16\), got 2",
        ),
        ({"model.decoder_channels": (96, 64, 32)}, r"model.decoder_channels needs 4 integers"),
        (
            {"model.fusion_channels": (32, 0, 64)},
            r"model.fusion_channels: every width must be >= 1",
        ),
        (
            {"model.attention_patch_sizes": (2, 0)},
            r"model.attention_patch_sizes: every width must be >= 1",
        ),
        ({"train.threads": 0}, r"train.threads must be >= 1 or None"),
        ({"train.num_workers": -1}, r"train.num_workers must be >= 0"),
        ({"train.protocol": "test"}, r"train.protocol must be one of"),
    ],
)
def test_impossible_configs_fail_at_construction(change, message):
    with pytest.raises(ValueError, match=message):
        override(get_profile("ci"), **change)


# --- issue 11, item 8: one explicit protocol setting; the test monitor is opt-in ---------------


def test_protocol_is_one_explicit_setting():
    cfg = get_profile("ci")
    assert (
        cfg.train.protocol == "honest-final"
        and cfg.train.selection == "final"
        and not cfg.train.leaky
    )
    val = override(cfg, **{"train.protocol": "honest-val"})
    assert val.train.selection == "val" and not val.train.leaky
    leaky = override(cfg, **{"train.protocol": "leaky"})
    assert leaky.train.selection == "test" and leaky.train.leaky
    fields_ = {**to_dict(cfg)["data"], **to_dict(cfg)["train"]}
    assert "leaky" not in fields_ and "selection" not in fields_


def test_legacy_protocol_names_still_work():
    cfg = get_profile("ci")
    assert override(cfg, **{"data.leaky": "true"}).train.protocol == "leaky"
    assert override(cfg, **{"train.selection": "val"}).train.protocol == "honest-val"
    assert override(cfg, **{"train.selection": "final"}).train.protocol == "honest-final"
    with pytest.raises(ValueError, match="train.selection must be 'final' or 'val'"):
        override(cfg, **{"train.selection": "test"})
    old = to_dict(cfg)
    del old["train"]["protocol"]  # as written before train.protocol existed
    old["data"]["leaky"] = False
    old["train"]["selection"] = "val"
    assert from_dict(json.loads(json.dumps(old))).train.protocol == "honest-val"
    old["data"]["leaky"] = True
    assert from_dict(old).train.protocol == "leaky"


def test_test_monitor_is_off_in_every_profile():
    assert not any(p.train.monitor_test for p in PROFILES.values())


def test_to_dict_keeps_tuples_and_json_turns_them_into_lists():
    d = to_dict(get_profile("ci"))
    assert d["model"]["fusion_channels"] == (32, 64, 96)
    assert json.loads(json.dumps(d))["model"]["fusion_channels"] == [32, 64, 96]


def test_related_fields_are_checked_together_not_in_flag_order():
    cfg = override(get_profile("ci"), **{"train.epoch_size": "4", "train.batch_size": "2"})
    assert (cfg.train.epoch_size, cfg.train.batch_size) == (4, 2)


def test_paths_are_accepted_for_path_fields(tmp_path):
    cfg = override(get_profile("ci"), **{"data.root": tmp_path, "data.textures": tmp_path})
    assert cfg.data.root == str(tmp_path) and cfg.data.textures == str(tmp_path)
