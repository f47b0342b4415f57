"""Resumable, verified, atomic download of dataset archives (MVTec AD, per category).

:func:`download_and_extract` is deliberately dependency-free (``urllib``):

* the archive streams into ``<name>.part``; an interrupted download resumes with an HTTP
  ``Range`` request (servers that ignore it are restarted from zero);
* its SHA-256 is checked before anything is extracted; a mismatch deletes the partial file;
* it is extracted into a temporary folder inside ``dest_dir`` and its top-level entries are then
  moved into place, so a crash never leaves a half-extracted category that looks complete;
* a marker file records the finished extraction, so a second call returns immediately.

MVTec AD publishes no per-category checksums. The full archive's SHA-256 is known (anomalib
records it) and is used when all 15 categories are requested with ``full_archive=True``; for
per-category archives, :func:`download_mvtec` checks the extracted image counts against the
numbers in the MVTec AD paper instead.
"""
from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Iterable

from prn_core.atomic import write_text_atomic
from prn_core.data.images import cache_subdir
from prn_core.data.mvtec import CATEGORIES, list_samples

__all__ = [
    "MVTEC_URLS",
    "MVTEC_ARCHIVE_URL",
    "MVTEC_ARCHIVE_SHA256",
    "MVTEC_COUNTS",
    "DownloadError",
    "sha256_of",
    "download_and_extract",
    "download_mvtec",
]

_BASE = "https://www.mydrive.ch/shares/38536/3830184030e49fe74747669442f0f282/download"
MVTEC_URLS: dict[str, str] = {
    "bottle": f"{_BASE}/420937370-1629951468/bottle.tar.xz",
    "cable": f"{_BASE}/420937413-1629951498/cable.tar.xz",
    "capsule": f"{_BASE}/420937454-1629951595/capsule.tar.xz",
    "carpet": f"{_BASE}/420937484-1629951672/carpet.tar.xz",
    "grid": f"{_BASE}/420937487-1629951814/grid.tar.xz",
    "hazelnut": f"{_BASE}/420937545-1629951845/hazelnut.tar.xz",
    "leather": f"{_BASE}/420937607-1629951964/leather.tar.xz",
    "metal_nut": f"{_BASE}/420937637-1629952063/metal_nut.tar.xz",
    "pill": "https://www.mydrive.ch/shares/43421/11a215a5749fcfb75e331ddd5f8e43ee/download/420938129-1629953099/pill.tar.xz",
    "screw": f"{_BASE}/420938130-1629953152/screw.tar.xz",
    "tile": f"{_BASE}/420938133-1629953189/tile.tar.xz",
    "toothbrush": f"{_BASE}/420938134-1629953256/toothbrush.tar.xz",
    "transistor": f"{_BASE}/420938166-1629953277/transistor.tar.xz",
    "wood": f"{_BASE}/420938383-1629953354/wood.tar.xz",
    "zipper": f"{_BASE}/420938385-1629953449/zipper.tar.xz",
}
MVTEC_ARCHIVE_URL = f"{_BASE}/420938113-1629952094/mvtec_anomaly_detection.tar.xz"
MVTEC_ARCHIVE_SHA256 = "cf4313b13603bec67abb49ca959488f7eedce2a9f7795ec54446c649ac98cd3d"
# (train, test) image counts from the MVTec AD paper (Bergmann et al., CVPR 2019, Table 1)
MVTEC_COUNTS: dict[str, tuple[int, int]] = {
    "bottle": (209, 83), "cable": (224, 150), "capsule": (219, 132), "carpet": (280, 117),
    "grid": (264, 78), "hazelnut": (391, 110), "leather": (245, 124), "metal_nut": (220, 115),
    "pill": (267, 167), "screw": (320, 160), "tile": (230, 117), "toothbrush": (60, 42),
    "transistor": (213, 100), "wood": (247, 79), "zipper": (240, 151),
}  # fmt: skip
_CHUNK = 1 << 20
_TIMEOUT_S = 60


class DownloadError(ConnectionError):
    """A download failed (offline, server error); the message says how to use local data instead."""


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def _archive_name(url: str) -> str:
    name = url.split("?")[0].rstrip("/").rsplit("/", 1)[-1]
    if not name.endswith((".tar.xz", ".tar.gz", ".tgz", ".tar", ".zip")):
        raise ValueError(f"cannot tell the archive type of {url!r}: expected .tar.xz, .tar.gz, .tgz, .tar or .zip")
    return name


def _fetch(url: str, part: Path) -> None:
    """Stream ``url`` into ``part``, resuming from its current size when the server allows."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # "range not satisfiable": the partial file is already whole
            return
        raise
    with response:
        resumed = have > 0 and getattr(response, "status", None) == 206
        with open(part, "ab" if resumed else "wb") as f:
            shutil.copyfileobj(response, f, _CHUNK)


def _extract(archive: Path, into: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                target = (into / member).resolve()
                if not target.is_relative_to(into.resolve()):
                    raise ValueError(f"archive {archive} has an entry outside its folder: {member!r}")
            zf.extractall(into)
    else:
        with tarfile.open(archive) as tf:
            if hasattr(tarfile, "data_filter"):
                tf.extractall(into, filter="data")  # rejects absolute paths, links out, devices
            else:  # Python < 3.10.12 / 3.11.4: check the paths ourselves
                for member in tf.getmembers():
                    if not (into / member.name).resolve().is_relative_to(into.resolve()):
                        raise ValueError(f"archive {archive} has an entry outside its folder: {member.name!r}")
                tf.extractall(into)


def download_and_extract(url: str, sha256: str | None, dest_dir: str | Path, keep_archive: bool = False) -> Path:
    """Download ``url`` (resumably), verify ``sha256`` (skipped when None), extract into
    ``dest_dir``; return ``dest_dir``. A completed extraction of the same URL is reused.

    Supports .tar.xz, .tar.gz, .tgz, .tar and .zip. Raises :class:`ValueError` on a checksum
    mismatch (the partial file is deleted, so a retry starts clean) and :class:`DownloadError`
    when the URL cannot be fetched.
    """
    dest = Path(dest_dir).expanduser()
    name = _archive_name(url)
    marker = dest / f".{name}.done"
    if marker.is_file() and marker.read_text().strip() == (sha256 or url):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    archive, part = dest / name, dest / f"{name}.part"
    if not archive.is_file():
        try:
            _fetch(url, part)
        except (urllib.error.URLError, OSError) as err:
            raise DownloadError(f"could not download {url}: {err}. The partial file {part} is kept to resume.") from err
        part.replace(archive)
    if sha256 is not None:
        actual = sha256_of(archive)
        if actual != sha256.lower():
            archive.unlink()
            raise ValueError(
                f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}. The file was "
                f"deleted; retry, and if it keeps failing the server or the recorded checksum changed."
            )
    tmp = dest / f".extract-{name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        _extract(archive, tmp)
        for entry in sorted(tmp.iterdir()):
            target = dest / entry.name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            entry.replace(target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_text_atomic(marker, sha256 or url)
    if not keep_archive:
        archive.unlink()
    return dest


def download_mvtec(
    cache_dir: str | Path | None = None, categories: Iterable[str] = CATEGORIES, full_archive: bool = False
) -> Path:
    """Fetch MVTec AD categories into ``cache_dir`` (default ``default_cache_dir() / "mvtec"``)
    and return it, ready to be ``DataConfig.root``.

    Per-category archives are fetched by default (bottle alone is 150 MB; all 15 are 4.9 GB);
    ``full_archive=True`` fetches the single checksummed archive instead. Categories already
    present with the paper's image counts are not downloaded again. Offline, the
    :class:`DownloadError` says how to point the package at a local copy.
    """
    root = cache_subdir(cache_dir, "mvtec")
    wanted = list(categories)
    unknown = sorted(set(wanted) - set(CATEGORIES))
    if unknown:
        raise ValueError(f"unknown MVTec AD categories {unknown}; choose from {CATEGORIES}")
    missing = [c for c in wanted if not _complete(root, c)]
    try:
        if full_archive and missing:
            download_and_extract(MVTEC_ARCHIVE_URL, MVTEC_ARCHIVE_SHA256, root)
        else:
            for category in missing:
                download_and_extract(MVTEC_URLS[category], None, root)
    except DownloadError as err:
        raise DownloadError(
            f"{err}\nMVTec AD could not be downloaded (offline?). If you have a copy, pass "
            f"--data-root /path/to/mvtec (DataConfig.root) pointing at the folder that holds "
            f"<category>/train, <category>/test and <category>/ground_truth. Without it, `prn demo` "
            f"runs on the embedded demo dataset (prn_core.data.make_demo_dataset)."
        ) from err
    for category in missing:
        if not _complete(root, category):
            train, test = MVTEC_COUNTS[category]
            raise ValueError(
                f"MVTec AD {category} under {root} is incomplete after download: expected {train} train and "
                f"{test} test images. Delete {root / category} and retry."
            )
    return root


def _complete(root: Path, category: str) -> bool:
    """True when ``root/category`` lists without errors and has the paper's image counts."""
    try:
        counts = (len(list_samples(root, category, "train")), len(list_samples(root, category, "test")))
    except (ValueError, FileNotFoundError):
        return False
    return counts == MVTEC_COUNTS[category]
