"""prn_core.atomic: one primitive for every file the package writes (issue 11, item 9)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import prn_core
from prn_core.atomic import (
    atomic_path,
    torch_save_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from prn_core.models import PrototypeBank

PACKAGE = Path(prn_core.__file__).parent
REPO = PACKAGE.parent

# A writer that kills its own process with SIGKILL in the middle of serialising: the payload's
# first half is already handed to the file when the bomb goes off, so nothing can clean up.
_KILLER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from prn_core.atomic import torch_save_atomic, write_json_atomic

    class Bomb:
        def __str__(self):  # json's default=str calls this mid-dump
            os.kill(os.getpid(), signal.SIGKILL)
        def __reduce__(self):  # torch.save (pickle) calls this mid-save
            os.kill(os.getpid(), signal.SIGKILL)

    kind, target = sys.argv[1], Path(sys.argv[2])
    payload = {"first": "x" * 200_000, "bomb": Bomb()}
    if kind == "json":
        write_json_atomic(target, payload)
    else:
        torch_save_atomic(payload, target)
    """)


@pytest.mark.parametrize("kind", ["json", "torch"])
def test_writer_killed_mid_write_leaves_the_old_file(tmp_path: Path, kind: str) -> None:
    target = tmp_path / f"result.{kind}"
    old = b'{"old": true}\n'
    target.write_bytes(old)
    proc = subprocess.run(
        [sys.executable, "-c", _KILLER, kind, str(target)],
        cwd=REPO,
        capture_output=True,
        env={"PYTHONPATH": str(REPO), "PATH": ""},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()
    assert target.read_bytes() == old
    leftovers = [p.name for p in tmp_path.iterdir() if p != target]
    assert all(re.fullmatch(rf"\.{re.escape(target.name)}\..+\.tmp\.{kind}", n) for n in leftovers)


def test_failed_write_keeps_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    write_json_atomic(target, {"v": 1})

    class Boom:
        def __str__(self) -> str:
            raise RuntimeError("serialiser failed")

    with pytest.raises(RuntimeError, match="serialiser failed"):
        write_json_atomic(target, {"big": "y" * 100_000, "bad": Boom()})
    assert target.read_text() == '{\n  "v": 1\n}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json"]


def test_writers_round_trip_and_replace(tmp_path: Path) -> None:
    write_text_atomic(tmp_path / "t.md", "é\n")
    write_text_atomic(tmp_path / "t.md", "ü\n")
    assert (tmp_path / "t.md").read_text(encoding="utf-8") == "ü\n"
    write_bytes_atomic(tmp_path / "sub" / "b.bin", b"\x00\x01")
    assert (tmp_path / "sub" / "b.bin").read_bytes() == b"\x00\x01"
    torch_save_atomic({"w": torch.arange(3)}, tmp_path / "m.pt")
    assert torch.load(tmp_path / "m.pt", weights_only=True)["w"].tolist() == [0, 1, 2]


def test_writing_over_a_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        with atomic_path(tmp_path / "out"):
            pass


def test_prototype_bank_save_uses_a_unique_temporary_and_cleans_up(
    tmp_path: Path, monkeypatch
) -> None:
    """Before the fix, a failed save left a fixed ``<name>.tmp`` that two writers would share."""
    bank = PrototypeBank([torch.zeros(2, 3, 4, 4)] * 3, {"backbone": "x"})
    path = bank.save(tmp_path / "prototypes.pt")
    before = path.read_bytes()
    real_save = torch.save

    def half_then_fail(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        bank.save(path)
    monkeypatch.setattr(torch, "save", real_save)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prototypes.pt"]


# Writes that are allowed outside prn_core/atomic.py, each with its reason.
_ALLOWED = {
    "viz/widgets.py": "savefig into an in-memory buffer",
    "data/demo.py": "images written into a staging folder that is moved in with one rename",
    "data/download.py": "the resumable .part download is renamed into place when complete",
    "predict.py": "owned by the deployment rewrite (issue 11, item 4)",
}
_RAW_WRITE = re.compile(
    r"\.write_text\(|\.write_bytes\(|\.savefig\(|torch\.save\(|torch\.export\.save\(|"
    r"cv2\.imwrite\(|os\.replace\(|mkstemp\(|open\([^)]*['\"][wa]b?['\"]"
)


def test_no_module_hand_rolls_its_own_file_write() -> None:
    """Raw writes are allowed only into the temporary path of a ``with atomic_path(...)`` block."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == "atomic.py" or rel in _ALLOWED:
            continue
        block_indent = None  # indentation of the enclosing `with atomic_path(...)`, if any
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            indent = len(line) - len(line.lstrip())
            if block_indent is not None and code.strip() and indent <= block_indent:
                block_indent = None
            if "with atomic_path(" in code:
                block_indent = indent
                continue
            if block_indent is None and _RAW_WRITE.search(code) and ">>>" not in line:
                offenders.append(f"{rel}:{number}: {line.strip()}")
    assert not offenders, "write through prn_core.atomic instead:\n" + "\n".join(offenders)
