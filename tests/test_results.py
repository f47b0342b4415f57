"""Reading result files: missing files, lists, tables, provenance and the final-vs-best check."""
from __future__ import annotations

import json

import pytest

from prn_core.results import (COMMANDS, TEAM_REFERENCES, UNOFFICIAL_SPEED, final_vs_best, find_result, format_table,
                              load_result, load_results, provenance, results_table)


def test_find_result_reads_a_file_or_a_run_folder_and_returns_none_when_missing(tmp_path):
    assert find_result(tmp_path / "nope.json") is None
    assert find_result(tmp_path) is None  # a folder without result.json
    (tmp_path / "result.json").write_text(json.dumps({"metrics": {"au_pro": 0.5}}))
    assert find_result(tmp_path) == {"metrics": {"au_pro": 0.5}}
    assert find_result(tmp_path / "result.json")["metrics"]["au_pro"] == 0.5


def test_find_result_rejects_a_broken_file(tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        find_result(tmp_path / "bad.json")


def test_load_results_sorts_tags_files_and_flattens_lists(tmp_path):
    for name in ("b", "a"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "result.json").write_text(json.dumps({"category": name}))
    (tmp_path / "summary.json").write_text(json.dumps([{"variant": "x"}, {"variant": "y"}]))
    runs = load_results("*/result.json", tmp_path)
    assert [r["category"] for r in runs] == ["a", "b"]
    assert runs[0]["file"] == "a/result.json"
    assert [r["variant"] for r in load_results("summary.json", tmp_path)] == ["x", "y"]
    assert load_results("missing/*.json", tmp_path) == []


def test_load_results_rejects_a_list_of_non_objects(tmp_path):
    (tmp_path / "x.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="expected a JSON object"):
        load_results("x.json", tmp_path)


def test_results_table_formats_rounds_and_marks_missing():
    rows = results_table({"ours": {"image_auroc": 0.99951, "au_pro": 0.5}, "ref": {"image_auroc": 1.0}},
                         ("image_auroc", "au_pro"), digits=2)
    assert rows == [["method", "I-AUROC", "AU-PRO"], ["ours", "1.00", "0.50"], ["ref", "1.00", "-"]]
    assert format_table(rows).splitlines()[2] == "ref     1.00     -"
    assert format_table(rows, markdown=True).splitlines()[:2] == ["| method | I-AUROC | AU-PRO |", "|---|---|---|"]


def test_provenance_names_profile_machine_commit_and_command():
    result = {"profile": "cpu", "category": "bottle", "seed": 0, "protocol": "honest", "train_seconds": 1800,
              "git_commit": "0123456789abcdef", "command": "prn train --profile cpu",
              "hardware": {"cpu_count": 2, "torch": "2.4", "torch_threads": 1}}
    text = provenance(result)
    assert "profile cpu | category bottle | seed 0 | protocol honest | 2 CPUs, torch 2.4, 1 threads" in text
    assert "training 30 min | commit 0123456789ab" in text
    assert text.endswith("command: prn train --profile cpu")
    assert "command: not recorded" in provenance({})


def test_final_vs_best_finds_the_gap_and_skips_unlogged_epochs():
    history = [{"epoch": 1, "test": {"m": 0.5}}, {"epoch": 2}, {"epoch": 3, "test": {"m": 0.9}},
               {"epoch": 4, "test": {"m": 0.7}}]
    assert final_vs_best(history, metrics=("m",)) == {"m": {"final": 0.7, "best": 0.9, "best_epoch": 3, "gap": 0.2}}
    with pytest.raises(ValueError, match="train.monitor_test=true"):
        final_vs_best([{"epoch": 1}], metrics=("m",))


def test_references_are_probabilities_with_the_four_metrics():
    for methods in TEAM_REFERENCES.values():
        for metrics in methods.values():
            assert set(metrics) == {"image_auroc", "pixel_auroc", "au_pro", "pixel_ap"}
            assert all(0.0 <= v <= 1.0 for v in metrics.values())
    low, high = UNOFFICIAL_SPEED["train_s_per_image"]
    assert low < high


def test_load_result_prints_the_command_for_a_missing_file(tmp_path, capsys):
    assert load_result("cpu/bottle/result.json", tmp_path) is None
    out = capsys.readouterr().out
    assert out.startswith("results/cpu/bottle/result.json does not exist yet. It is produced by:\n  prn train")
    assert "--category bottle" in out
    (tmp_path / "x.json").write_text("{}")
    assert load_result("x.json", tmp_path) == {} and capsys.readouterr().out == ""
    assert load_result("y.json", tmp_path) is None
    assert "no command registered" in capsys.readouterr().out


def test_every_registered_command_runs_the_prn_cli_or_a_benchmark():
    assert all(c.startswith(("prn ", "python benchmarks/")) for c in COMMANDS.values())


def test_seed_row_names_the_seed_count_and_gives_spread_and_worst_seed():
    from prn_core.reproduce import summarise
    from prn_core.results import seed_row

    runs = [{"category": "tile", "seed": s, "profile": "cpu", "metrics": {
        "image_auroc": v, "pixel_auroc": v, "au_pro": v, "pixel_ap": v, "image_f1_max": v}}
        for s, v in enumerate((0.9, 0.8, 0.7))]
    named, spread, worst = seed_row(summarise(runs), "tile", "ours", ("au_pro",))
    assert list(named) == ["ours, mean of 3 seeds"] and list(spread) == list(named)
    assert named["ours, mean of 3 seeds"]["au_pro"] == pytest.approx(0.8)
    assert spread["ours, mean of 3 seeds"]["au_pro"] == pytest.approx(0.1)
    assert worst == {"au_pro": pytest.approx(0.7)}
    rows = results_table(named, ("au_pro",), errors=spread)
    assert rows[1] == ["ours, mean of 3 seeds", "0.800 ± 0.100"]
    assert seed_row(None, "tile", "ours") == ({}, {}, {})
