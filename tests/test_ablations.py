import pytest

from prn_core.ablations import ABLATIONS, ablation_rows, run_ablations
from prn_core.config import get_profile, override
from prn_core.synthesis.mix import kind_proportions
from prn_core.train import check_run


def test_every_variant_is_a_valid_config_change():
    base = get_profile("ci")
    for name, (description, changes) in ABLATIONS.items():
        cfg = override(base, **changes)
        assert description
        assert (cfg == base) == (name == "baseline"), name


def test_unknown_variant_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown ablation"):
        run_ablations(get_profile("ci"), ["no_such_thing"], tmp_path)


def test_rows_are_deltas_against_the_baseline():
    results = [
        {"variant": "baseline", "metrics": {"image_auroc": 0.9, "au_pro": 0.5}},
        {"variant": "no_seen", "metrics": {"image_auroc": 0.8, "au_pro": 0.6}},
    ]
    rows = dict(ablation_rows(results))
    assert rows["baseline"] == {"image_auroc": 0.0, "au_pro": 0.0}
    assert rows["no_seen"]["image_auroc"] == pytest.approx(-0.1)
    assert rows["no_seen"]["au_pro"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="baseline"):
        ablation_rows(results[1:])


def test_every_variant_is_scored_on_the_baselines_test_files():
    """A variant may change training, never which images it is tested on (no_seen included)."""
    base = get_profile("ci")
    want = [s.path for s in check_run(base).test]
    for name, (_, changes) in ABLATIONS.items():
        assert [s.path for s in check_run(override(base, **changes)).test] == want, name


def test_no_seen_trains_on_normal_and_simulated_only():
    cfg = override(get_profile("ci"), **ABLATIONS["no_seen"][1])
    shares = kind_proportions(cfg.synthesis, num_seen=cfg.data.num_seen, has_extended=True)
    assert shares == {"normal": 0.5, "seen": 0.0, "extended": 0.0, "simulated": 0.5}
