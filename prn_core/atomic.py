"""Atomic file writes: a reader (or a resumed run) sees the old file or the new one, never half.

Every file the package writes goes through :func:`atomic_path`: the content is written to a
uniquely named temporary file in the destination's folder (so two writers never share one, and
the final rename never crosses file systems), flushed to disk with ``fsync``, and renamed over
the destination with :func:`os.replace`, which POSIX and Windows make atomic. The folder is
fsynced too, so the rename itself survives a power cut. If the writer fails, the temporary file
is removed and the destination is untouched; if the process is killed, only a hidden
``.<name>.*.tmp`` file can be left behind, never a truncated destination.

The typed writers below (text, bytes, JSON, ``torch.save``, matplotlib figures, images) are
thin wrappers, so no module hand-rolls its own temporary-file dance.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_path",
    "write_bytes_atomic",
    "write_text_atomic",
    "write_json_atomic",
    "torch_save_atomic",
    "save_figure_atomic",
    "write_image_atomic",
]


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk; folders cannot be opened for fsync on every OS."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. folders on Windows
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some file systems refuse fsync on folders
        pass
    finally:
        os.close(fd)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` in one rename.

    The temporary name keeps ``path``'s suffix, so writers that pick a format from the file
    name (``cv2.imwrite``, ``savefig``) behave as they would on ``path`` itself.

    >>> import tempfile
    >>> target = Path(tempfile.mkdtemp()) / "a.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("new")
    >>> target.read_text()
    'new'
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a folder; choose a file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}"
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync(path.parent)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically (explicit encoding: locale-independent)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Write ``data`` as indented JSON; values JSON cannot hold (paths, numpy scalars) via str."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False, default=str)
        fh.write("\n")
    return Path(path)


def torch_save_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` atomically: a kill during checkpointing never leaves half a checkpoint."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_figure_atomic(fig: Any, path: str | Path, **savefig_kwargs: Any) -> Path:
    """``fig.savefig`` atomically; the format comes from ``path``'s suffix."""
    path = Path(path)
    fmt = savefig_kwargs.pop("format", path.suffix.lstrip(".") or "png")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **savefig_kwargs)
    return path


def write_image_atomic(path: str | Path, image: np.ndarray) -> Path:
    """Encode a uint8 (H, W) or BGR (H, W, 3) array with OpenCV and write it atomically."""
    import cv2

    path = Path(path)
    ok, encoded = cv2.imencode(path.suffix or ".png", image)
    if not ok:
        raise OSError(f"OpenCV could not encode an image of shape {image.shape} as {path.suffix!r}")
    return write_bytes_atomic(path, encoded.tobytes())
