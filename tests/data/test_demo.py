"""The embedded demo dataset: layout, exact masks, byte-identical determinism, reuse."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from prn_core.data.demo import DEMO_CATEGORIES, DEMO_DEFECTS, make_demo_dataset, render_demo_image
from prn_core.data.images import read_image, read_mask
from prn_core.data.mvtec import list_samples
from prn_core.data.split import few_shot_split

SMALL = dict(num_train=3, num_test_good=2, num_per_defect=2, size=96)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("demo"), seed=0, **SMALL)


def test_layout_counts_and_masks(demo: Path):
    for category in DEMO_CATEGORIES:
        assert len(list_samples(demo, category, "train")) == 3
        test = list_samples(demo, category, "test")
        assert sorted({s.defect_type for s in test}) == sorted(["good", *DEMO_DEFECTS])
        assert sum(s.label == 0 for s in test) == 2 and sum(s.label for s in test) == 2 * len(DEMO_DEFECTS)
        for s in test:
            img = read_image(s.path)
            assert img.shape == (96, 96, 3) and img.dtype == np.uint8
            if s.label:
                mask = read_mask(s.mask_path)
                assert mask.shape == (96, 96) and mask.any() and set(np.unique(mask)) == {0, 1}
        assert len(few_shot_split(demo, category, num_seen=4, seed=0).seen) == 4


def test_same_seed_is_byte_identical_other_seed_differs(demo: Path, tmp_path: Path):
    again = make_demo_dataset(tmp_path / "again", seed=0, **SMALL)
    other = make_demo_dataset(tmp_path / "other", seed=1, **SMALL)
    reference = _files(demo)
    assert len(reference) == 2 * (3 + 2 + 2 * len(DEMO_DEFECTS) * 2)  # images + masks
    assert _files(again) == reference
    different = _files(other)
    assert different.keys() == reference.keys()
    assert all(different[k] != reference[k] for k in reference if "_mask" not in k)


@pytest.mark.parametrize("category", DEMO_CATEGORIES)
@pytest.mark.parametrize("defect", DEMO_DEFECTS)
def test_mask_is_exactly_the_changed_pixels(category: str, defect: str):
    for seed in range(3):
        clean, image, mask = render_demo_image(category, defect, np.random.default_rng(seed), size=128)
        changed = (clean != image).any(-1)
        assert np.array_equal(changed, mask.astype(bool)) and mask.sum() >= 20
        assert np.abs(clean.astype(int) - image.astype(int)).max() >= 40  # visible, not a faint tint


def test_normal_renders_have_pose_variation():
    def render(i: int) -> np.ndarray:
        return render_demo_image("demo_washer", None, np.random.default_rng(i), size=128)[1]

    renders = [render(i) for i in range(4)]
    assert all(np.array_equal(r, render(i)) for i, r in enumerate(renders))
    diffs = [np.abs(renders[0].astype(int) - r.astype(int)).mean() for r in renders[1:]]
    assert min(diffs) > 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown demo category"):
        render_demo_image("demo_car", None, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown demo defect"):
        render_demo_image("demo_washer", "dent", np.random.default_rng(0))
    with pytest.raises(ValueError, match="at least one image"):
        make_demo_dataset(Path("/nonexistent"), num_train=0)


def test_reuse_and_regeneration(tmp_path: Path):
    root = make_demo_dataset(tmp_path, seed=0, **SMALL)
    probe = root / DEMO_CATEGORIES[0] / "train" / "good" / "000.png"
    stamp = probe.stat().st_mtime_ns
    assert make_demo_dataset(tmp_path, seed=0, **SMALL) == root and probe.stat().st_mtime_ns == stamp
    before = probe.read_bytes()
    make_demo_dataset(tmp_path, seed=2, **SMALL)  # new settings: rebuilt in place
    assert probe.read_bytes() != before
    assert json.loads((root / ".prn_demo.json").read_text())["seed"] == 2
    assert not list(tmp_path.glob(".demo-tmp-*"))


@pytest.mark.slow
def test_default_demo_is_small(tmp_path: Path):
    root = make_demo_dataset(tmp_path)
    size = sum(p.stat().st_size for p in root.rglob("*.png"))
    assert size < 10 * 2**20
    for category in DEMO_CATEGORIES:
        assert len(list_samples(root, category, "train")) == 40
        test = list_samples(root, category, "test")
        assert sum(s.label == 0 for s in test) == 8 and sum(s.label for s in test) == 16
