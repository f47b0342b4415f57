"""The few-shot split: seen anomalies out of test, spread, determinism, records, errors."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from prn_core.data.images import read_mask
from prn_core.data.mvtec import list_samples
from prn_core.data.split import few_shot_split

from fake_mvtec import make_tree

def test_split_removes_exactly_the_seen_files(tree: Path):
    full = list_samples(tree, "widget", "test")
    split = few_shot_split(tree, "widget", num_seen=4, seed=0)
    seen = {s.path for s in split.seen}
    assert len(seen) == 4 and all(s.label == 1 for s in split.seen)
    assert {s.path for s in split.test} == {s.path for s in full} - seen
    assert len(split.test) == len(full) - 4


def test_split_spreads_seen_over_defect_types(tree: Path):
    for seed in range(5):
        counts = Counter(s.defect_type for s in few_shot_split(tree, "widget", num_seen=5, seed=seed).seen)
        assert set(counts) == {"scratch", "dent", "hole"}  # every type before any repeats
        assert max(counts.values()) - min(counts.values()) <= 1
    # a type with fewer images than its share is exhausted and the others fill in
    counts = Counter(s.defect_type for s in few_shot_split(tree, "widget", num_seen=9, seed=0).seen)
    assert counts == {"scratch": 4, "dent": 3, "hole": 2}


def test_split_is_deterministic_and_differs_across_seeds(tree: Path):
    a, b = few_shot_split(tree, "widget", 3, seed=7), few_shot_split(tree, "widget", 3, seed=7)
    assert a.to_dict() == b.to_dict() and a.fingerprint() == b.fingerprint()
    others = [few_shot_split(tree, "widget", 3, seed=s) for s in range(8)]
    assert len({tuple(s.path for s in o.seen) for o in others}) > 1
    assert len({tuple(s.path for s in o.val) for o in others}) > 1
    assert len({o.fingerprint() for o in others}) == 8


def test_leaky_keeps_seen_in_test(tree: Path):
    split = few_shot_split(tree, "widget", 4, seed=1, leaky=True)
    assert {s.path for s in split.seen} <= {s.path for s in split.test}
    assert len(split.test) == len(list_samples(tree, "widget", "test")) and split.leaky


def test_val_is_held_out_normals(tree: Path):
    split = few_shot_split(tree, "widget", 2, seed=0, val_fraction=0.2)
    assert len(split.val) == 2 and len(split.train) == 8
    assert not {s.path for s in split.val} & {s.path for s in split.train}
    assert few_shot_split(tree, "widget", 2, seed=0, val_fraction=0.01).val  # at least one
    assert few_shot_split(tree, "widget", 2, seed=0, val_fraction=0.0).val == []
    # the val draw does not depend on num_seen
    assert few_shot_split(tree, "widget", 5, seed=0, val_fraction=0.2).val == split.val


def test_split_record_is_json_with_relative_paths(tree: Path):
    split = few_shot_split(tree, "widget", 3, seed=0)
    record = json.loads(json.dumps(split.to_dict()))
    assert record["counts"] == {"train": 9, "val": 1, "seen": 3, "test": 9, "test_good": 3, "test_defective": 6}
    assert all(not Path(p).is_absolute() for part in record["files"].values() for p in part)
    listed = {f"test/{s.defect_type}/{s.path.name}" for s in list_samples(tree, "widget", "test")}
    assert set(record["files"]["seen"]) <= listed


def test_too_many_seen_is_a_clear_error(tree: Path):
    with pytest.raises(ValueError, match="num_seen=10 but category 'widget' has only 9"):
        few_shot_split(tree, "widget", num_seen=10)


def test_empty_masks_stay_in_test_and_are_never_seen(tmp_path: Path):
    make_tree(tmp_path, empty_masks=1)  # 000 of each defect type has an empty mask
    empty = {s.path for s in list_samples(tmp_path, "widget", "test") if s.label and not read_mask(s.mask_path).any()}
    assert len(empty) == 3
    for seed in range(4):
        split = few_shot_split(tmp_path, "widget", num_seen=6, seed=seed)
        assert not empty & {s.path for s in split.seen} and empty <= {s.path for s in split.test}
    with pytest.raises(ValueError, match="only 6 defective test images with a non-empty mask"):
        few_shot_split(tmp_path, "widget", num_seen=7)


# --- the real sets ----------------------------------------------------------------------------------
