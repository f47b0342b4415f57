from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.config import AUTO, get_profile, override
from prn_core.data import Sample, image_shape_stats, suggest_image_size
from prn_core.prepare import resolve_config


def _samples(tmp_path: Path, shapes: list[tuple[int, int]]) -> list[Sample]:
    out = []
    for i, (h, w) in enumerate(shapes):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), np.zeros((h, w), np.uint8))
        out.append(Sample(path, 0, "good", None, "train"))
    return out


def test_square_data_stays_square(tmp_path):
    assert suggest_image_size(_samples(tmp_path, [(300, 300), (500, 500)])) == (256, 256)


def test_long_thin_parts_keep_their_aspect_within_the_pixel_budget(tmp_path):
    samples = _samples(tmp_path, [(630, 230), (640, 232), (600, 240)])
    stats = image_shape_stats(samples)
    assert stats["median_aspect"] == pytest.approx(630 / 230)
    h, w = suggest_image_size(samples)
    assert h % 32 == 0 and w % 32 == 0 and h > 2 * w
    assert abs(h * w - 256 * 256) / (256 * 256) < 0.15


def test_sides_are_clamped_to_the_supported_range(tmp_path):
    h, w = suggest_image_size(_samples(tmp_path, [(20, 2000)]))
    assert (h, w) == (128, 512)


def test_empty_split_is_an_error():
    with pytest.raises(ValueError, match="empty"):
        suggest_image_size([])


def test_auto_image_size_is_resolved_from_the_training_images(tmp_path):
    root = tmp_path / "data"
    for split, label in (("train/good", 0), ("test/good", 0)):
        folder = root / "part" / split
        folder.mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(folder / f"{i}.png"), np.full((230, 630, 3), 128, np.uint8))
    cfg = override(get_profile("ci"), **{"data.root": str(root), "data.category": "part", "data.image_size": "auto"})
    assert cfg.data.image_size == AUTO
    resolved = resolve_config(cfg).data.image_size
    assert resolved == (128, 224)  # the ci budget is 128x128; the short side is clamped at 128
