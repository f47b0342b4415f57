"""The epoch mix: proportions, per-batch balance, determinism across workers, no test leakage."""
from __future__ import annotations

from collections import Counter
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from prn_core.config import SynthesisConfig
from prn_core.data import ProceduralTextures, load_image, load_mask
from prn_core.synthesis.extended import ExtendedAnomaly
from prn_core.synthesis.mix import AnomalyMix, balanced_schedule, check_no_leak, kind_proportions
from prn_core.synthesis.simulated import SimulatedAnomaly

SIZE = (64, 64)


class Textures:
    def __len__(self) -> int:
        return 2

    def load(self, index: int, image_size: tuple[int, int]) -> np.ndarray:
        return np.random.default_rng(index).random((*image_size, 3), dtype=np.float32)


def _mix(num_seen: int = 3, extended: bool = True, **kwargs) -> AnomalyMix:
    rng = np.random.default_rng(0)
    normals = [(rng.random((*SIZE, 3)) * 255).astype(np.uint8) for _ in range(6)]
    seen = [rng.random((*SIZE, 3), dtype=np.float32) for _ in range(num_seen)]
    masks = [np.pad(np.ones((10, 12), np.uint8), ((20, 34), (20, 32))) for _ in range(num_seen)]
    foreground = np.zeros(SIZE, bool)
    foreground[8:56, 8:56] = True
    return AnomalyMix(
        normals,
        SimulatedAnomaly(Textures(), SIZE),
        foregrounds=[foreground] * len(normals),
        seen_images=seen,
        seen_masks=masks,
        extended=ExtendedAnomaly(seen, masks) if extended and num_seen else None,
        **kwargs,
    )


def test_kind_proportions_follow_config_and_redistribute():
    p = kind_proportions(SynthesisConfig(), num_seen=10, has_extended=True)
    assert p == pytest.approx({"normal": 0.5, "seen": 0.0625, "extended": 0.1875, "simulated": 0.25})
    assert kind_proportions(SynthesisConfig(), 10, has_extended=False)["seen"] == pytest.approx(0.25)
    assert kind_proportions(SynthesisConfig(), 0, has_extended=False)["simulated"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="simulated=None"):
        kind_proportions(SynthesisConfig(), 10, True, has_simulated=False)


@pytest.mark.parametrize("batch_size,epoch_size", [(8, 400), (16, 1000), (6, 99), (5, 40)])
def test_schedule_balances_every_batch_and_the_epoch(batch_size, epoch_size):
    p = kind_proportions(SynthesisConfig(), num_seen=10, has_extended=True)
    kinds = balanced_schedule(p, epoch_size, batch_size, np.random.default_rng(0))
    assert len(kinds) == epoch_size
    for start in range(0, epoch_size, batch_size):
        batch = Counter(kinds[start : start + batch_size])
        size = min(batch_size, epoch_size - start)
        for kind, share in p.items():
            assert np.floor(share * size) <= batch[kind] <= np.ceil(share * size), (start, kind, batch)
    totals = Counter(kinds)
    for kind, share in p.items():
        assert abs(totals[kind] - share * epoch_size) <= 1.5, (kind, totals)


def test_schedule_is_seeded_and_shuffled_within_batches():
    p = {"normal": 0.5, "simulated": 0.5}
    a = balanced_schedule(p, 64, 8, np.random.default_rng(0))
    assert a == balanced_schedule(p, 64, 8, np.random.default_rng(0))
    assert len({tuple(a[i : i + 8]) for i in range(0, 64, 8)}) > 1


def test_items_have_the_agreed_format():
    assert len(_mix()) == 12  # by default the 6 normal images are half the epoch
    mix = _mix(epoch_size=32)
    seen_kinds = set()
    for i in range(len(mix)):
        item = mix[i]
        assert item["image"].shape == (3, *SIZE) and item["image"].dtype == torch.float32
        assert item["mask"].shape == (1, *SIZE) and item["mask"].dtype == torch.float32
        assert 0 <= item["image"].min() and item["image"].max() <= 1
        assert set(item["mask"].unique().tolist()) <= {0.0, 1.0}
        assert item["label"].shape == () and item["label"].item() == float(item["mask"].any())
        assert item["label"].item() == (0.0 if item["kind"] == "normal" else 1.0)
        seen_kinds.add(item["kind"])
    assert seen_kinds == {"normal", "seen", "extended", "simulated"}


def test_anomalies_stay_on_the_foreground():
    mix = _mix(epoch_size=32)
    foreground = torch.from_numpy(mix.foregrounds[0])
    for i in range(len(mix)):
        item = mix[i]
        if item["kind"] in ("extended", "simulated"):
            assert not item["mask"][0][~foreground].any()


def test_deterministic_by_seed_epoch_and_index():
    a, b = _mix(seed=3), _mix(seed=3)
    for i in (0, 5, 11):
        torch.testing.assert_close(a[i]["image"], b[i]["image"])
    first = [a[i]["image"] for i in range(len(a))]
    a.set_epoch(1)
    assert any(not torch.equal(x, a[i]["image"]) for i, x in enumerate(first))
    a.set_epoch(0)
    assert all(torch.equal(x, a[i]["image"]) for i, x in enumerate(first))
    other = _mix(seed=4)
    assert any(not torch.equal(x, other[i]["image"]) for i, x in enumerate(first))


def test_same_batches_with_zero_or_two_workers():
    mix = _mix(epoch_size=16, batch_size=4)
    mix.set_epoch(2)
    batches = [list(DataLoader(mix, batch_size=4, num_workers=n)) for n in (0, 2)]
    for b0, b2 in zip(*batches):
        assert b0["kind"] == b2["kind"]
        for key in ("image", "mask", "label"):
            assert torch.equal(b0[key], b2[key])


def test_no_seen_anomalies_means_only_normal_and_simulated():
    mix = _mix(num_seen=0, epoch_size=40)
    assert set(mix.schedule()[0]) == {"normal", "simulated"}
    mix = _mix(extended=False, epoch_size=40)
    assert set(mix.schedule()[0]) == {"normal", "seen", "simulated"}


def test_seen_anomalies_are_repeated_evenly():
    mix = _mix(num_seen=3, epoch_size=96)
    kinds, sources = mix.schedule()
    used = Counter(int(s) for k, s in zip(kinds, sources) if k == "seen")
    assert sorted(used) == [0, 1, 2] and max(used.values()) - min(used.values()) <= 1


def test_a_test_file_in_training_raises_naming_it(tmp_path):
    train = [tmp_path / "train" / "good" / "000.png", tmp_path / "test" / "crack" / "003.png"]
    test = [tmp_path / "test" / "crack" / "003.png", tmp_path / "test" / "good" / "000.png"]
    with pytest.raises(ValueError, match="003.png"):
        _mix(train_paths=train, forbidden_paths=test)
    _mix(train_paths=train[:1], forbidden_paths=test)  # disjoint: fine
    with pytest.raises(ValueError, match="would enter training"):  # same file, spelled differently
        check_no_leak([tmp_path / "test" / "crack" / ".." / "crack" / "003.png"], [str(test[0])])


def test_user_errors():
    with pytest.raises(ValueError, match="at least one normal"):
        AnomalyMix([], None)
    with pytest.raises(ValueError, match="simulated=None"):
        AnomalyMix([np.zeros((*SIZE, 3), np.float32)], None)
    with pytest.raises(IndexError):
        _mix(epoch_size=4).sample(4)


@pytest.mark.realdata
@pytest.mark.parametrize("category", ["mvtec/bottle", "hazelnut_toy/hazelnut"])
def test_real_epoch_without_leakage(shared_data, category):
    size, root = (128, 128), shared_data / category
    normal_paths = sorted((root / "train" / "good").iterdir())[:8]
    defects = sorted(p for p in (root / "test").glob("*/*") if p.parent.name != "good")
    seen_paths, test_paths = defects[:3], defects[3:] + sorted((root / "test" / "good").iterdir())
    seen = [load_image(p, size) for p in seen_paths]
    masks = [load_mask(root / "ground_truth" / p.parent.name / f"{p.stem}_mask.png", size) for p in seen_paths]
    normals = [(load_image(p, size) * 255).round().astype(np.uint8) for p in normal_paths]  # a uint8 cache
    simulated = SimulatedAnomaly(ProceduralTextures(count=4), size)
    kwargs = dict(seen_images=seen, seen_masks=masks, extended=ExtendedAnomaly(seen, masks), batch_size=8, seed=1)
    mix = AnomalyMix(normals, simulated, train_paths=normal_paths + seen_paths, forbidden_paths=test_paths, **kwargs)
    batch = next(iter(DataLoader(mix, batch_size=8)))
    assert batch["image"].shape == (8, 3, *size) and Counter(batch["kind"])["normal"] == 4
    assert torch.equal(batch["label"], (batch["mask"].flatten(1).amax(1) > 0).float())
    with pytest.raises(ValueError, match=seen_paths[0].name):
        AnomalyMix(normals, simulated, train_paths=normal_paths + seen_paths, forbidden_paths=defects, **kwargs)


# --- issue 11, items 6 and 7: foreground_only concerns simulated anomalies only; padding never --

@pytest.mark.parametrize("foreground_only", [True, False])
def test_extended_stay_on_the_foreground_and_nothing_lands_in_padding(foreground_only):
    valid = np.ones(SIZE, bool)
    valid[:, 48:] = False  # keep_aspect padding on the right
    mix = _mix(epoch_size=64, valid_regions=[valid] * 6,
               config=SynthesisConfig(foreground_only=foreground_only, extended_prob=0.5))
    foreground = mix.foregrounds[0]
    kinds = Counter()
    for i in range(len(mix)):
        item = mix[i]
        mask = item["mask"][0].numpy() > 0
        kinds[item["kind"]] += 1
        if item["kind"] != "normal" and item["kind"] != "seen":
            assert not mask[~valid].any(), item["kind"]
        if item["kind"] == "extended" or (item["kind"] == "simulated" and foreground_only):
            assert not mask[~foreground].any(), item["kind"]
    assert kinds["extended"] and kinds["simulated"]
    if not foreground_only:  # simulated anomalies do leave the object then, inside the image
        off_object = [mix[i]["mask"][0].numpy()[~foreground & valid].any()
                      for i in range(len(mix)) if mix[i]["kind"] == "simulated"]
        assert any(off_object)
