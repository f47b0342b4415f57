"""Extended anomalies: exact masks, untouched outside, foreground placement, components, real data."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from prn_core.data import estimate_foreground, load_image, load_mask
from prn_core.synthesis.extended import ExtendedAnomaly

H, W = 64, 80


def _seen(blobs: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """A seen anomaly with bright textured defects in the given (y, x, h, w) boxes."""
    image = np.zeros((H, W, 3), np.float32)
    mask = np.zeros((H, W), np.uint8)
    rng = np.random.default_rng(0)
    for y, x, h, w in blobs:
        image[y : y + h, x : x + w] = 0.5 + 0.5 * rng.random((h, w, 3), dtype=np.float32)
        mask[y : y + h, x : x + w] = 1
    return image, mask


def _disk(radius: int) -> np.ndarray:
    foreground = np.zeros((H, W), np.uint8)
    cv2.circle(foreground, (W // 2, H // 2), radius, 1, -1)
    return foreground.astype(bool)


@pytest.mark.parametrize("augment", [False, True])
def test_mask_is_exactly_the_pasted_pixels(augment):
    image, mask = _seen([(10, 12, 12, 9), (40, 50, 6, 14)])
    ext = ExtendedAnomaly([image], [mask], augment=augment)
    normal = np.zeros((H, W, 3), np.float32)  # defect pixels are >= ~0.4 after any jitter
    for seed in range(10):
        out, pasted = ext(normal, None, np.random.default_rng(seed))
        assert pasted.dtype == np.float32 and set(np.unique(pasted).tolist()) <= {0.0, 1.0} and pasted.any()
        np.testing.assert_array_equal((out != normal).any(axis=2), pasted > 0)
        assert 0.0 <= out.min() and out.max() <= 1.0


def test_outside_is_untouched_bit_for_bit():
    image, mask = _seen([(20, 20, 15, 15)])
    normal = np.random.default_rng(1).random((H, W, 3), dtype=np.float32)
    out, pasted = ExtendedAnomaly([image], [mask])(normal, _disk(25), np.random.default_rng(0))
    np.testing.assert_array_equal(out[pasted == 0], normal[pasted == 0])


def test_lies_inside_the_foreground_and_keeps_most_of_the_defect():
    image, mask = _seen([(5, 5, 10, 10)])
    foreground = _disk(20)
    ext = ExtendedAnomaly([image], [mask], augment=False)
    for seed in range(20):
        _, pasted = ext(np.zeros((H, W, 3), np.float32), foreground, np.random.default_rng(seed))
        assert pasted.any() and not pasted[~foreground].any()
        assert pasted.sum() >= 2 / 3 * mask.sum()


def test_components_move_separately_when_the_whole_defect_cannot_fit():
    # Two blobs 60 px apart can never both sit on a 24 px wide foreground: each must move alone.
    image, mask = _seen([(5, 2, 6, 6), (5, 66, 6, 6)])
    foreground = np.zeros((H, W), bool)
    foreground[20:44, 28:52] = True
    ext = ExtendedAnomaly([image], [mask], augment=False)
    for seed in range(10):
        _, pasted = ext(np.zeros((H, W, 3), np.float32), foreground, np.random.default_rng(seed))
        assert not pasted[~foreground].any()
        assert pasted.sum() > mask.sum() / 2  # both blobs landed (they may overlap a little)


def test_seeded():
    image, mask = _seen([(20, 20, 15, 15)])
    ext = ExtendedAnomaly([image], [mask])
    normal = np.full((H, W, 3), 0.2, np.float32)
    a, b, c = (ext(normal, None, np.random.default_rng(s)) for s in (3, 3, 4))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[1], c[1])


def test_augmentation_changes_shape_but_keeps_a_binary_mask():
    image, mask = _seen([(10, 10, 20, 8)])
    ext = ExtendedAnomaly([image], [mask], augment=True)
    areas = {int(ext(np.zeros((H, W, 3), np.float32), None, np.random.default_rng(s))[1].sum()) for s in range(10)}
    assert len(areas) > 3  # scale and distortion vary the pasted area


def test_user_errors():
    image, mask = _seen([(10, 10, 5, 5)])
    with pytest.raises(ValueError, match="empty mask"):
        ExtendedAnomaly([image], [np.zeros((H, W), np.uint8)])
    with pytest.raises(ValueError, match="masks"):
        ExtendedAnomaly([image], [])
    with pytest.raises(ValueError, match="at least one seen"):
        ExtendedAnomaly([], [])
    ext = ExtendedAnomaly([image], [mask])
    with pytest.raises(ValueError, match="foreground has shape"):
        ext(np.zeros((H, W, 3), np.float32), np.ones((8, 8), bool), np.random.default_rng(0))


@pytest.mark.realdata
@pytest.mark.parametrize("category", ["mvtec/bottle", "hazelnut_toy/hazelnut"])
def test_real_defects_pasted_onto_real_objects(shared_data, category):
    size, root = (128, 128), shared_data / category
    defects = sorted(p for p in (root / "test").glob("*/*") if p.parent.name != "good")[:4]
    masks = [load_mask(root / "ground_truth" / p.parent.name / f"{p.stem}_mask.png", size) for p in defects]
    ext = ExtendedAnomaly([load_image(p, size) for p in defects], masks)
    normal = load_image(sorted((root / "train" / "good").iterdir())[0], size)
    foreground = estimate_foreground(normal)
    assert 0.2 < foreground.mean() < 0.9  # a real object, so "inside the foreground" means something
    for seed in range(6):
        out, pasted = ext(normal, foreground, np.random.default_rng(seed))
        assert pasted.any() and not pasted[~foreground].any()
        np.testing.assert_array_equal(out[pasted == 0], normal[pasted == 0])
        assert 0.0 <= out.min() and out.max() <= 1.0
