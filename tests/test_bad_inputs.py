"""The bad-input table (issue 11): what a new user can throw at the CLI, and what it answers.

Each row is one kind of input, one command and the expected answer: ``OK`` (the input is
supported) or a regular expression that the single error line must match. Every error must be
one line on stderr, exit status 2, and no traceback. A new kind of bad input is one new row.

All rows run on a tiny MVTec-layout tree (``widget``) written into ``tmp_path`` by
:func:`_tree`; the mutations are small functions of that tree. ``train`` rows that must fail do
so in ``check_run``, before any image is decoded; ``train`` rows that must succeed are checked
with ``prepare_data``, which decodes every image exactly as ``prn train`` does, instead of a
training run per row.
"""

from __future__ import annotations

import errno
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from prn_core.cli import main
from prn_core.config import get_profile, override
from prn_core.models import PrototypeBank, build_prn
from prn_core.checkpoint import save_model
from prn_core.prepare import prepare_data

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")

OK = "OK"
CATEGORY = "widget"
NUM_DEFECTS = 7  # the ci profile moves 4 into training; 3 stay in test


def _png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return path


def _tree(root: Path, hw: tuple[int, int] = (96, 96)) -> Path:
    """train/good 8, test/good 3, test/crack NUM_DEFECTS with masks; seeded noise images."""
    rng = np.random.default_rng(0)
    cat = root / CATEGORY
    for split, folder, n in (
        ("train", "good", 8),
        ("test", "good", 3),
        ("test", "crack", NUM_DEFECTS),
    ):
        for i in range(n):
            image = (rng.random((*hw, 3)) * 60 + 90).astype(np.uint8)
            if folder == "crack":
                mask = np.zeros(hw, np.uint8)
                mask[20 + i : 40 + i, 30:50] = 255
                image[mask > 0] = 250
                _png(cat / "ground_truth" / folder / f"{i:03d}_mask.png", mask)
            _png(cat / split / folder / f"{i:03d}.png", image)
    return root


# --- mutations: each takes the tree's root and returns the files a `predict` row should use ----


def _first_train(root: Path) -> Path:
    return root / CATEGORY / "train" / "good" / "000.png"


def garbage(root: Path) -> list[Path]:
    _first_train(root).write_bytes(b"this is not an image at all" * 10)
    return [_first_train(root)]


def truncated(root: Path) -> list[Path]:
    data = _first_train(root).read_bytes()
    _first_train(root).write_bytes(data[: len(data) // 2])
    return [_first_train(root)]


def zero_bytes(root: Path) -> list[Path]:
    _first_train(root).write_bytes(b"")
    return [_first_train(root)]


def mislabelled(root: Path) -> list[Path]:
    ok, jpeg = cv2.imencode(".jpg", cv2.imread(str(_first_train(root))))
    _first_train(root).write_bytes(jpeg.tobytes())
    return [_first_train(root)]


def mask_wrong_size(root: Path) -> list[Path]:
    _png(root / CATEGORY / "ground_truth" / "crack" / "000_mask.png", np.zeros((50, 70), np.uint8))
    return [_first_train(root)]


def mask_rgb_and_0_1(root: Path) -> list[Path]:
    mask = cv2.imread(
        str(root / CATEGORY / "ground_truth" / "crack" / "000_mask.png"), cv2.IMREAD_GRAYSCALE
    )
    _png(root / CATEGORY / "ground_truth" / "crack" / "000_mask.png", np.dstack([mask] * 3))
    _png(root / CATEGORY / "ground_truth" / "crack" / "001_mask.png", (mask > 0).astype(np.uint8))
    return [_first_train(root)]


def empty_train_folder(root: Path) -> list[Path]:
    for p in (root / CATEGORY / "train" / "good").iterdir():
        p.unlink()
    return [root / CATEGORY / "train" / "good"]


def missing_test_folder(root: Path) -> list[Path]:
    shutil.rmtree(root / CATEGORY / "test")
    return [root / CATEGORY / "test" / "good" / "000.png"]


def symlinked_folders(root: Path) -> list[Path]:
    real = root.parent / "elsewhere"
    shutil.move(str(root / CATEGORY / "train"), real)
    (root / CATEGORY / "train").symlink_to(real, target_is_directory=True)
    return [_first_train(root)]


def odd_modes(root: Path) -> list[Path]:
    """Greyscale, RGBA and 16-bit images side by side with RGB ones."""
    files = sorted((root / CATEGORY / "train" / "good").glob("*.png"))[:3]
    grey, rgba, deep = (cv2.imread(str(f)) for f in files)
    _png(files[0], cv2.cvtColor(grey, cv2.COLOR_BGR2GRAY))
    _png(files[1], cv2.cvtColor(rgba, cv2.COLOR_BGR2BGRA))
    _png(files[2], deep.astype(np.uint16) * 257)
    return files


def fewer_defects_than_num_seen(root: Path) -> list[Path]:
    for i in range(3, NUM_DEFECTS):
        (root / CATEGORY / "test" / "crack" / f"{i:03d}.png").unlink()
    return [_first_train(root)]


def no_defect_left_in_test(root: Path) -> list[Path]:
    for i in range(4, NUM_DEFECTS):
        (root / CATEGORY / "test" / "crack" / f"{i:03d}.png").unlink()
    return [_first_train(root)]


def unchanged(root: Path) -> list[Path]:
    return [_first_train(root)]


def pattern_without_match(root: Path) -> list[Path]:
    return [root / CATEGORY / "**" / "*.tiff"]


def folder_without_images(root: Path) -> list[Path]:
    (root / "empty" / "sub").mkdir(parents=True)
    (root / "empty" / "notes.txt").write_text("no image here")
    return [root / "empty"]


def folder_and_pattern(root: Path) -> list[Path]:
    return [root / CATEGORY / "test", root / CATEGORY / "train" / "good" / "00[0-2].png"]


@dataclass(frozen=True)
class Row:
    kind: str
    command: str  # data-check | train | evaluate | predict
    expect: str  # OK or a regular expression for the one error line
    mutate: Callable[[Path], list[Path]] = unchanged
    root_name: str = "data"  # the folder the tree is written into
    hw: tuple[int, int] = (96, 96)
    extra: tuple[str, ...] = ()  # more CLI flags; "{file}" is a path that is a file
    checkpoint: str = (  # good | other-backbone | other-size | other-bank | other-weights |
        "good"  # training-state | no-thresholds
    )


DATA_COMMANDS = ("data-check", "train", "evaluate", "predict")
_DATA_KINDS = [  # kind, mutation, answer (predict sees the mutated file itself)
    ("unreadable image", garbage, r"is not a PNG/JPEG/BMP image"),
    ("truncated image", truncated, r"is truncated"),
    ("zero-byte image", zero_bytes, r"is empty \(0 bytes\)"),
    ("mislabelled image", mislabelled, r"has the extension \.png but holds JPEG data"),
    ("greyscale, RGBA and 16-bit images", odd_modes, OK),
]
ROWS: list[Row] = [
    Row(kind, cmd, expect, mutate) for kind, mutate, expect in _DATA_KINDS for cmd in DATA_COMMANDS
]
ROWS += [
    Row(kind, cmd, expect, mutate)
    for kind, mutate, expect in [
        ("mask of the wrong size", mask_wrong_size, r"mask .*000_mask\.png is 50x70 but its image"),
        ("mask saved as RGB or as 0/1", mask_rgb_and_0_1, OK),
        ("empty folder", empty_train_folder, r"no images .* found under .*train"),
        ("missing folder", missing_test_folder, r"missing split folder .*test"),
        ("symlinked folder", symlinked_folders, OK),
        (
            "fewer defects than num_seen",
            fewer_defects_than_num_seen,
            r"num_seen=4 but category 'widget' has only 3 defective test images",
        ),
        (
            "no defective test image left",
            no_defect_left_in_test,
            r"no defective test image is left",
        ),
    ]
    for cmd in ("data-check", "train", "evaluate")
]
ROWS += (
    [
        Row("path with spaces and non-ASCII", cmd, OK, root_name="my data ü 测试")
        for cmd in DATA_COMMANDS
    ]
    + [Row("non-square images", cmd, OK, hw=(96, 160)) for cmd in DATA_COMMANDS]
    + [
        Row(
            "--set value of the wrong type",
            cmd,
            r"train\.epoch_size: expected int or None, got 'lots'",
            extra=("--set", "train.epoch_size=lots"),
        )
        for cmd in ("data-check", "train")
    ]
    + [
        Row(
            "--set unknown key",
            cmd,
            r"unknown config field 'train\.epochz'",
            extra=("--set", "train.epochz=1"),
        )
        for cmd in ("data-check", "train")
    ]
    + [
        Row("checkpoint from another backbone", cmd, r"backbone", checkpoint="other-backbone")
        for cmd in ("evaluate", "predict")
    ]
    + [
        Row("checkpoint from another image size", cmd, r"image_size", checkpoint="other-size")
        for cmd in ("evaluate", "predict")
    ]
    + [
        Row("checkpoint with another prototype bank", cmd, r"prototype", checkpoint="other-bank")
        for cmd in ("evaluate", "predict")
    ]
    + [
        Row(
            "checkpoint with weights of another shape",
            cmd,
            r"holds weights of another shape",
            checkpoint="other-weights",
        )
        for cmd in ("evaluate", "predict")
    ]
    + [
        Row(
            "training state instead of a model file",
            cmd,
            r"not a PRN model file",
            checkpoint="training-state",
        )
        for cmd in ("evaluate", "predict")
    ]
    + [
        Row("output folder is a file", "train", r"--out .* is a file", extra=("--out", "{file}")),
        Row(
            "output folder is a file",
            "evaluate",
            r"--out .* is a folder; pass the name of a JSON file",
            extra=("--out", "{dir}"),
        ),
        Row(
            "output folder is a file",
            "predict",
            r"--out .* is a file; pass a folder",
            extra=("--out", "{file}"),
        ),
    ]
    + [
        Row("glob pattern that matches nothing", "predict", r"pattern '.*\*\.tiff' matches no",
            pattern_without_match),
        Row("folder without images", "predict", r"folder .*empty holds no image",
            folder_without_images),
        Row("folder and glob pattern", "predict", OK, folder_and_pattern),
        Row("negative threshold", "predict", r"--threshold must be a number in \[0, 1\]",
            extra=("--threshold", "-0.5")),
        Row("NaN threshold", "predict", r"--pixel-threshold must be a number in \[0, 1\]",
            extra=("--pixel-threshold", "nan")),
        Row(
            "checkpoint without thresholds and no --threshold",
            "predict",
            r"holds no calibrated image threshold \(saved before thresholds were calibrated\); "
            r"pass --threshold",
            checkpoint="no-thresholds",
        ),
        Row("model file given to an export engine", "predict",
            r"holds no prn_export\.json, so it is not an export folder",
            extra=("--engine", "onnx")),
    ]
)


def _kinds_covered() -> set[str]:
    return {row.kind for row in ROWS}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    """A real ci model file (random prototypes, untrained head) and foreign variants of it."""
    folder = tmp_path_factory.mktemp("ckpt")
    cfg = override(get_profile("ci"), **{"data.category": CATEGORY})
    torch.manual_seed(0)
    model = build_prn(cfg.model, cfg.data.image_size)
    shapes = [f.shape[1:] for f in model.backbone(torch.zeros(1, 3, *cfg.data.image_size))[:3]]
    meta = {**model.expected_prototype_meta(), "category": CATEGORY}
    model.set_prototypes(PrototypeBank([torch.rand(2, *s) for s in shapes], meta))
    thresholds = {"image": 0.5, "image_rule": "val_f1", "image_normal_q995": 0.6, "pixel": 0.5}
    good = save_model(model, cfg, folder / "model.pt", {"thresholds": thresholds})
    paths = {"good": good, "no-thresholds": save_model(model, cfg, folder / "old.pt")}
    payload = torch.load(good, weights_only=True)
    variants = {
        "other-backbone": lambda p: p["prototypes"]["meta"].__setitem__("backbone", "resnet18"),
        "other-size": lambda p: p["prototypes"]["meta"].__setitem__("image_size", [256, 256]),
        "other-bank": lambda p: p["prototypes"]["prototypes"].__setitem__(
            0, torch.rand(2, 7, 3, 3)
        ),
        "other-weights": lambda p: p["state_dict"].__setitem__(
            next(
                k
                for k, v in p["state_dict"].items()
                if isinstance(v, torch.Tensor) and v.ndim == 4 and "backbone" not in k
            ),
            torch.rand(3, 3, 1, 1),
        ),
    }
    for name, change in variants.items():
        changed = torch.load(good, weights_only=True)
        change(changed)
        torch.save(changed, folder / f"{name}.pt")
        paths[name] = folder / f"{name}.pt"
    torch.save(
        {"config": payload["config"], "epoch": 1, "model": payload["state_dict"]},
        folder / "last.pt",
    )
    paths["training-state"] = folder / "last.pt"
    return paths


def _argv(row: Row, root: Path, files: list[Path], checkpoint: Path, tmp_path: Path) -> list[str]:
    file_ = tmp_path / "a file.txt"
    file_.write_text("x")
    extra = [a.replace("{file}", str(file_)).replace("{dir}", str(tmp_path)) for a in row.extra]
    config = ["--profile", "ci", "--data-root", str(root)]
    if row.command == "data-check":
        return ["data", "check", *config, "--categories", CATEGORY, *extra]
    if row.command == "train":
        out = [] if "--out" in extra else ["--out", str(tmp_path / "run")]
        return ["train", *config, "--category", CATEGORY, *out, *extra]
    if row.command == "evaluate":
        return [
            "evaluate",
            "--checkpoint",
            str(checkpoint),
            "--data-root",
            str(root),
            "--category",
            CATEGORY,
            *extra,
        ]
    out = [] if "--out" in extra else ["--out", str(tmp_path / "pred")]
    return ["predict", *map(str, files), "--checkpoint", str(checkpoint), *out, *extra]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: f"{r.command}: {r.kind}")
def test_bad_input_table(row: Row, tmp_path: Path, capsys, checkpoints) -> None:
    root = _tree(tmp_path / row.root_name, row.hw)
    files = row.mutate(root)
    if row.command == "train" and row.expect == OK:  # decode everything as `prn train` would
        cfg = override(get_profile("ci"), **{"data.root": str(root), "data.category": CATEGORY})
        data = prepare_data(cfg, progress=False)
        assert all(
            im.shape == (*cfg.data.image_size, 3) and 0 <= im.min() <= im.max() <= 1
            for im in data.normals
        )
        return
    code = main(_argv(row, root, files, checkpoints[row.checkpoint], tmp_path))
    captured = capsys.readouterr()
    if row.expect == OK:
        assert code == 0, captured.err
        return
    lines = [line for line in captured.err.splitlines() if "error:" in line]  # progress bars aside
    assert code == 2 and len(lines) == 1 and "Traceback" not in captured.err, captured.err
    assert re.search(row.expect, lines[0]), lines[0]
    assert lines[0].startswith(f"prn {row.command.split('-')[0]}: error: ")


# --- kinds that need the environment to misbehave: simulated, one row each ---------------------


def test_output_folder_not_writable(tmp_path: Path, capsys, checkpoints, monkeypatch) -> None:
    import prn_core.atomic as atomic

    def refuse(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(kwargs.get("dir", "")))

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    root = _tree(tmp_path / "data")
    argv = [
        "evaluate",
        "--checkpoint",
        str(checkpoints["good"]),
        "--data-root",
        str(root),
        "--category",
        CATEGORY,
        "--out",
        str(tmp_path / "metrics.json"),
    ]
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    assert "\n" not in line and re.search(
        r"Permission denied \(.*\); choose a folder you can write to", line
    )


def test_full_disk_during_checkpointing(tmp_path: Path, capsys, monkeypatch) -> None:
    real_save = torch.save

    def full_on_checkpoint(obj, f, *args, **kwargs):
        if "last.pt" in str(f):
            Path(f).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_on_checkpoint)
    out = tmp_path / "run"
    argv = [
        "train",
        "--profile",
        "ci",
        "--out",
        str(out),
        "--set",
        "train.epochs=1",
        "--set",
        "train.epoch_size=16",
    ]
    assert main(argv) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line == (
        "prn train: error: No space left on device; free disk space, then rerun "
        "(prn train: add --resume)"
    )
    assert not (out / "last.pt").exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".last.pt")]  # no half checkpoint


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_ctrl_c_is_one_line(tmp_path: Path, capsys, monkeypatch, checkpoints, command) -> None:
    """The real signal, with resume, is tested in tests/test_train.py; here every command."""
    import prn_core.evaluation as evaluation
    import prn_core.train as train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    if command == "train":
        monkeypatch.setattr(train, "run", interrupted)
    else:
        monkeypatch.setattr(evaluation, "evaluate", interrupted)
    root = _tree(tmp_path / "data")
    argv = (
        [
            "train",
            "--profile",
            "ci",
            "--data-root",
            str(root),
            "--category",
            CATEGORY,
            "--out",
            str(tmp_path),
        ]
        if command == "train"
        else [
            "evaluate",
            "--checkpoint",
            str(checkpoints["good"]),
            "--data-root",
            str(root),
            "--category",
            CATEGORY,
        ]
    )
    assert main(argv) == 2
    line = capsys.readouterr().err.strip()
    if command == "train":
        assert line.startswith("prn train: error: interrupted; every finished epoch is saved in")
        assert line.endswith("Rerun the same command with --resume to continue from the last one")
    else:
        assert line == "prn evaluate: error: interrupted"


def test_unexpected_errors_are_one_line_with_a_debug_hint(capsys, monkeypatch) -> None:
    import prn_core.models as models

    def broken():
        raise KeyError("registry")

    monkeypatch.setattr(models, "list_backbones", broken)
    assert main(["backbones"]) == 2
    assert capsys.readouterr().err.strip() == (
        "prn backbones: error: unexpected KeyError: 'registry' "
        "(rerun with PRN_DEBUG=1 for the traceback)"
    )
    monkeypatch.setenv("PRN_DEBUG", "1")
    with pytest.raises(KeyError):
        main(["backbones"])


def test_data_check_on_an_empty_root_fails_clearly(tmp_path: Path, capsys) -> None:
    assert main(["data", "check", "--data-root", str(tmp_path)]) == 2
    assert re.search(r"no category found under .* in the 'mvtec' layout", capsys.readouterr().err)


def test_the_table_covers_every_kind_the_issue_names() -> None:
    kinds = _kinds_covered() | {
        "output folder not writable",
        "full disk during checkpointing",
        "Ctrl-C",
    }
    assert len(kinds) >= 22
    for command in DATA_COMMANDS:
        assert {r.kind for r in ROWS if r.command == command} >= {k for k, _, _ in _DATA_KINDS}
