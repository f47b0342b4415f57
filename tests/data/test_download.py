"""Download and extract against archives built here: checksum, resume, atomicity, offline."""
from __future__ import annotations

import hashlib
import http.server
import tarfile
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from prn_core.data import download as dl
from prn_core.data.download import DownloadError, download_and_extract, download_mvtec, sha256_of


def _tree(root: Path) -> Path:
    """widget/{train/good,test/good}/*.png with random (incompressible) pixels."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        folder = root / "widget" / split / "good"
        folder.mkdir(parents=True)
        for i in range(3):
            cv2.imwrite(str(folder / f"{i:03d}.png"), rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    return root


@pytest.fixture()
def archive(tmp_path: Path) -> tuple[Path, str]:
    src = _tree(tmp_path / "src")
    path = tmp_path / "served" / "widget.tar.xz"
    path.parent.mkdir()
    with tarfile.open(path, "w:xz") as tf:
        tf.add(src / "widget", arcname="widget")
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_extracts_and_verifies(archive, tmp_path: Path):
    path, digest = archive
    dest = download_and_extract(path.as_uri(), digest, tmp_path / "cache")
    assert sorted(p.name for p in (dest / "widget" / "train" / "good").iterdir()) == ["000.png", "001.png", "002.png"]
    assert (dest / ".widget.tar.xz.done").read_text() == digest
    assert not list(dest.glob("*.part")) and not (dest / "widget.tar.xz").exists()
    assert not list(dest.glob(".extract-*"))


def test_completed_extraction_is_reused(archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path, digest = archive
    download_and_extract(path.as_uri(), digest, tmp_path / "cache")

    def no_network(*args):
        raise AssertionError("downloaded again")

    monkeypatch.setattr(dl, "_fetch", no_network)
    assert download_and_extract(path.as_uri(), digest, tmp_path / "cache") == tmp_path / "cache"


def test_checksum_mismatch_deletes_and_extracts_nothing(archive, tmp_path: Path):
    path, digest = archive
    wrong = ("0" if digest[0] != "0" else "1") + digest[1:]
    dest = tmp_path / "cache"
    with pytest.raises(ValueError, match=f"checksum mismatch .* expected sha256 {wrong}, got {digest}"):
        download_and_extract(path.as_uri(), wrong, dest)
    assert not (dest / "widget").exists() and not list(dest.glob("widget.tar.xz*"))
    assert not (dest / ".widget.tar.xz.done").exists()


def test_stale_partial_file_is_restarted_when_range_is_ignored(archive, tmp_path: Path):
    path, digest = archive
    dest = tmp_path / "cache"
    dest.mkdir()
    (dest / "widget.tar.xz.part").write_bytes(b"garbage from an older, different file")
    download_and_extract(path.as_uri(), digest, dest)  # file:// ignores Range: full restart
    assert (dest / "widget" / "test" / "good" / "002.png").is_file()


class _RangeHandler(http.server.BaseHTTPRequestHandler):
    """Serves one payload with HTTP Range support and records the Range headers it saw."""

    payload = b""
    ranges: list[str | None] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        header = self.headers.get("Range")
        type(self).ranges.append(header)
        start = int(header.split("=")[1].rstrip("-")) if header else 0
        body = self.payload[start:]
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_interrupted_download_resumes_with_range(archive, tmp_path: Path):
    path, digest = archive
    data = path.read_bytes()
    _RangeHandler.payload, _RangeHandler.ranges = data, []
    server = http.server.HTTPServer(("127.0.0.1", 0), _RangeHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        dest = tmp_path / "cache"
        dest.mkdir()
        half = len(data) // 2
        (dest / "widget.tar.xz.part").write_bytes(data[:half])  # what an interrupted run left
        url = f"http://127.0.0.1:{server.server_port}/files/widget.tar.xz"
        download_and_extract(url, digest, dest)
    finally:
        server.shutdown()
        thread.join()
    assert _RangeHandler.ranges == [f"bytes={half}-"]
    assert (dest / "widget" / "train" / "good" / "000.png").is_file()


def test_zip_and_tar_gz(tmp_path: Path):
    src = _tree(tmp_path / "src")
    zpath = tmp_path / "w.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        for p in sorted(src.rglob("*.png")):
            zf.write(p, p.relative_to(src).as_posix())
    gpath = tmp_path / "w.tar.gz"
    with tarfile.open(gpath, "w:gz") as tf:
        tf.add(src / "widget", arcname="widget")
    for archive_path in (zpath, gpath):
        dest_dir = tmp_path / archive_path.name.replace(".", "_")
        dest = download_and_extract(archive_path.as_uri(), sha256_of(archive_path), dest_dir)
        assert len(list((dest / "widget").rglob("*.png"))) == 6


def test_archive_escaping_its_folder_is_rejected(tmp_path: Path):
    zpath = tmp_path / "evil.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("../escaped.txt", "boo")
    with pytest.raises(ValueError, match="outside its folder"):
        download_and_extract(zpath.as_uri(), None, tmp_path / "cache")
    assert not (tmp_path / "escaped.txt").exists()


def test_unknown_archive_type(tmp_path: Path):
    with pytest.raises(ValueError, match="cannot tell the archive type"):
        download_and_extract("https://example.invalid/data.rar", None, tmp_path)


def test_mvtec_urls_cover_every_category():
    assert set(dl.MVTEC_URLS) == set(dl.CATEGORIES) == set(dl.MVTEC_COUNTS)
    assert all(url.startswith("https://") and url.endswith(f"/{c}.tar.xz") for c, url in dl.MVTEC_URLS.items())
    assert dl.MVTEC_COUNTS["bottle"] == (209, 83)


def test_mvtec_offline_says_how_to_use_local_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(dl.MVTEC_URLS, "bottle", (tmp_path / "no" / "bottle.tar.xz").as_uri())
    with pytest.raises(DownloadError, match="--data-root"):
        download_mvtec(tmp_path / "mvtec", categories=["bottle"])


def test_mvtec_unknown_category(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown MVTec AD categories \\['bottles'\\]"):
        download_mvtec(tmp_path, categories=["bottles"])


def test_mvtec_present_category_is_not_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    root = tmp_path / "mvtec"
    _tree(root)
    (root / "widget").rename(root / "bottle")
    monkeypatch.setitem(dl.MVTEC_COUNTS, "bottle", (3, 3))

    def no_network(*args):
        raise AssertionError("downloaded although present")

    monkeypatch.setattr(dl, "download_and_extract", no_network)
    assert download_mvtec(root, categories=["bottle"]) == root


def test_mvtec_incomplete_after_download_is_an_error(archive, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path, digest = archive
    with tarfile.open(path) as tf, tarfile.open(tmp_path / "bottle.tar.xz", "w:xz") as out:
        for member in tf.getmembers():  # rename widget/ -> bottle/
            member.name = member.name.replace("widget", "bottle", 1)
            out.addfile(member, tf.extractfile(member) if member.isfile() else None)
    monkeypatch.setitem(dl.MVTEC_URLS, "bottle", (tmp_path / "bottle.tar.xz").as_uri())
    with pytest.raises(ValueError, match="incomplete after download: expected 209 train"):
        download_mvtec(tmp_path / "mvtec", categories=["bottle"])
