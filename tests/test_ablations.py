import pytest

from prn_core.ablations import (ABLATIONS, ablation_effects, ablation_jobs, ablation_rows, ablation_stats,
                                ablation_table, run_ablations)
from prn_core.config import get_profile, override
from prn_core.synthesis.mix import kind_proportions
from prn_core.prepare import check_run


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


def _rows(variant, values, metric="au_pro"):
    return [{"variant": variant, "seed": s, "metrics": {metric: v}} for s, v in enumerate(values)]


def test_effects_are_real_only_beyond_the_seed_spread():
    results = (_rows("baseline", [0.50, 0.52, 0.54]) + _rows("big", [0.40, 0.41, 0.42])
               + _rows("small", [0.51, 0.53, 0.55]))
    stats = ablation_stats(results)
    assert stats["big"]["au_pro"]["mean"] == pytest.approx(0.41)
    assert stats["big"]["au_pro"]["std"] == pytest.approx(0.01)
    effects = {e["variant"]: e for e in ablation_effects(results)}
    assert effects["big"]["delta"] == pytest.approx(-0.11) and effects["big"]["beyond_spread"]
    assert effects["small"]["spread"] == pytest.approx(0.04) and not effects["small"]["beyond_spread"]
    single = ablation_effects(_rows("baseline", [0.5]) + _rows("big", [0.4]))
    assert single[-1]["spread"] is None and single[-1]["beyond_spread"] is None


def test_table_shows_mean_and_sample_std_per_variant_in_order():
    results = _rows("baseline", [0.50, 0.52, 0.54]) + _rows("big", [0.40, 0.41, 0.42])
    assert ablation_table(results, ["au_pro"]) == [
        ["variant", "au_pro"], ["baseline", "0.520 ± 0.020"], ["big", "0.410 ± 0.010"]]
    assert ablation_table(_rows("baseline", [0.5]), ["au_pro"], digits=2) == [
        ["variant", "au_pro"], ["baseline", "0.50"]]  # one seed: no spread to show


def test_jobs_cover_every_variant_and_seed_in_their_own_folder(tmp_path):
    jobs = ablation_jobs(get_profile("ci"), ["baseline", "no_msa"], [0, 1], tmp_path)
    assert [j.name for j in jobs] == ["baseline/seed0", "baseline/seed1", "no_msa/seed0", "no_msa/seed1"]
    assert [j.config.seed for j in jobs] == [0, 1, 0, 1]
    assert jobs[3].run_dir == tmp_path / "no_msa" / "seed1" and jobs[3].config.model.attention_layers == 0
    with pytest.raises(ValueError, match="no seeds"):
        ablation_jobs(get_profile("ci"), ["baseline"], [], tmp_path)
