"""Decoding, resizing and caching of images and masks.

Every image enters the package through :func:`read_image` / :func:`read_mask`, so greyscale,
palette and 16-bit files, masks stored as 0/1 or 0/255, and truncated files are all handled in
one place. Files are read as bytes and decoded with ``cv2.imdecode`` (paths with non-ASCII
characters work on every OS); a file that does not end in its format's end marker is rejected
up front because some OpenCV builds silently return a partially decoded JPEG.

Resizing squashes to ``image_size`` (the MVTec convention) unless ``keep_aspect`` is set, in
which case the image is scaled to fit and the rest is padded by replicating the border;
:func:`valid_region` tells which pixels are real so metrics can ignore the padding.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
from PIL import Image

if TYPE_CHECKING:  # samples imports this module; the cache only needs the type
    from prn_core.data.samples import Sample

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageReadError",
    "default_cache_dir",
    "cache_subdir",
    "is_image_file",
    "image_size_of",
    "check_complete",
    "read_image",
    "read_mask",
    "resize_image",
    "resize_mask",
    "valid_region",
    "load_image",
    "load_mask",
    "ImageCache",
]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
_PNG_END = b"IEND"
_JPEG_END = b"\xff\xd9"


class ImageReadError(ValueError):
    """An image or mask file exists but cannot be decoded (corrupt, truncated, not an image)."""


def default_cache_dir() -> Path:
    """``$PRN_CACHE_DIR`` if set, else ``~/.cache/prn_core``: downloads, foregrounds, DTD."""
    env = os.environ.get("PRN_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "prn_core"


def cache_subdir(cache_dir: str | Path | None, name: str) -> Path:
    """``cache_dir`` as given (``~`` expanded), else ``default_cache_dir() / name``."""
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir() / name


def is_image_file(path: Path) -> bool:
    """True for visible files with an extension from :data:`IMAGE_EXTENSIONS` (any case)."""
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_EXTENSIONS


_SIGNATURES = {b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"BM": "BMP",
               b"II*\x00": "TIFF", b"MM\x00*": "TIFF"}  # TIFF: prn predict only
_SUFFIX_FORMAT = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".bmp": "BMP",
                  ".tif": "TIFF", ".tiff": "TIFF"}


def _sniff(head: bytes) -> str | None:
    """The format named by a file's first bytes, or None."""
    return next((fmt for sig, fmt in _SIGNATURES.items() if head.startswith(sig)), None)


def check_complete(path: Path) -> None:
    """Raise :class:`ImageReadError` for an empty, mislabelled or truncated image file.

    Reads only the first and last bytes, so it is cheap enough to run over a whole dataset at
    listing time: the magic bytes must match the extension, and a PNG/JPEG must end with its
    end marker (a truncated copy does not).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 1024))
            tail = f.read()
    except OSError as err:
        raise ImageReadError(f"cannot read image file {path}: {err.strerror or err}") from err
    if size == 0:
        raise ImageReadError(f"image file {path} is empty (0 bytes); re-copy it or delete it")
    found, expected = _sniff(head), _SUFFIX_FORMAT.get(suffix)
    if found is None:
        raise ImageReadError(f"image file {path} is not a PNG/JPEG/BMP image (it starts with "
                             f"{head[:8]!r}); re-copy it or delete it")
    if expected is not None and found != expected:
        raise ImageReadError(f"image file {path} has the extension {path.suffix} but holds {found} "
                             f"data; rename it to match its format")
    if suffix not in (".png", ".jpg", ".jpeg"):
        return
    ok = tail[-8:-4] == _PNG_END if suffix == ".png" else _JPEG_END in tail[-64:]
    if not ok:
        raise ImageReadError(
            f"image file {path} is truncated: it does not end with the {suffix} end marker "
            f"({size} bytes). Re-copy or re-download it, or delete it from the dataset."
        )


def image_size_of(path: Path) -> tuple[int, int]:
    """(H, W) of an image file from its header only (no full decode)."""
    try:
        with Image.open(path) as im:
            w, h = im.size
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageReadError(f"cannot read image file {path}: {err}. Is it a valid PNG/JPEG/BMP?") from err
    return h, w


def _decode(path: Path, flags: int) -> np.ndarray:
    path = Path(path)
    check_complete(path)
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise ImageReadError(f"cannot read image file {path}: {err}") from err
    image = cv2.imdecode(data, flags) if data.size else None
    if image is None:
        raise ImageReadError(
            f"cannot decode image file {path} ({data.size} bytes): it is corrupt or not a "
            f"PNG/JPEG/BMP. Re-copy or re-download it, or delete it from the dataset."
        )
    return image


def read_image(path: Path) -> np.ndarray:
    """Decode an image file at its own size as uint8 RGB (H, W, 3); greyscale becomes RGB."""
    return cv2.cvtColor(_decode(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def read_mask(path: Path) -> np.ndarray:
    """Decode a mask at its own size as uint8 (H, W) in {0, 1}.

    Masks saved as 0/255 are thresholded at 127 (tolerating JPEG or anti-aliasing noise); masks
    saved as 0/1 (max value 1) keep every non-zero pixel.
    """
    mask = _decode(path, cv2.IMREAD_GRAYSCALE)
    return (mask > (127 if mask.max() > 1 else 0)).astype(np.uint8)


def _fit(src_hw: tuple[int, int], image_size: tuple[int, int], keep_aspect: bool) -> tuple[int, int, int, int]:
    """(h, w, top, left) of the resized content inside the ``image_size`` canvas."""
    H, W = image_size
    if not keep_aspect:
        return H, W, 0, 0
    scale = min(H / src_hw[0], W / src_hw[1])
    h, w = min(H, max(1, round(src_hw[0] * scale))), min(W, max(1, round(src_hw[1] * scale)))
    return h, w, (H - h) // 2, (W - w) // 2


def _pad(array: np.ndarray, image_size: tuple[int, int], top: int, left: int, border: int) -> np.ndarray:
    bottom = image_size[0] - array.shape[0] - top
    right = image_size[1] - array.shape[1] - left
    if top == bottom == left == right == 0:
        return array
    return cv2.copyMakeBorder(array, top, bottom, left, right, border, value=0)


def resize_image(image: np.ndarray, image_size: tuple[int, int], keep_aspect: bool = False) -> np.ndarray:
    """Resize (H0, W0, 3) to (H, W, 3): area averaging when shrinking (no aliasing), bilinear
    when enlarging; with ``keep_aspect`` the border is replicated into the padding."""
    h, w, top, left = _fit(image.shape[:2], image_size, keep_aspect)
    if (h, w) != image.shape[:2]:
        shrink = h * w < image.shape[0] * image.shape[1]
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return _pad(image, image_size, top, left, cv2.BORDER_REPLICATE)


def resize_mask(mask: np.ndarray, image_size: tuple[int, int], keep_aspect: bool = False) -> np.ndarray:
    """Resize a {0,1} uint8 (H0, W0) mask with nearest neighbour, keeping it binary.

    A defect smaller than one output pixel can vanish under nearest neighbour; then the mask is
    resized by area and every touched pixel kept, so a defective image never gets an empty mask
    just because it was shrunk.
    """
    h, w, top, left = _fit(mask.shape[:2], image_size, keep_aspect)
    out = mask
    if (h, w) != mask.shape[:2]:
        out = cv2.resize(mask, (w, h), interpolation=cv2.INTER_NEAREST)
        if not out.any() and mask.any():
            out = (cv2.resize(mask.astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) > 0).astype(np.uint8)
    return _pad(out, image_size, top, left, cv2.BORDER_CONSTANT)


def valid_region(src_hw: tuple[int, int], image_size: tuple[int, int], keep_aspect: bool = False) -> np.ndarray:
    """bool (H, W): True where the resized image has real content (all True unless padded)."""
    h, w, top, left = _fit(src_hw, image_size, keep_aspect)
    valid = np.zeros(image_size, dtype=bool)
    valid[top : top + h, left : left + w] = True
    return valid


def load_image(path: Path, image_size: tuple[int, int], keep_aspect: bool = False) -> np.ndarray:
    """Read and resize an image: float32 (H, W, 3) RGB in [0, 1].

    >>> import tempfile, cv2, numpy as np
    >>> p = Path(tempfile.mkdtemp()) / "grey.png"
    >>> _ = cv2.imwrite(str(p), np.full((40, 60), 255, np.uint8))
    >>> im = load_image(p, (64, 96)); im.shape, im.dtype, float(im.max())
    ((64, 96, 3), dtype('float32'), 1.0)
    """
    return resize_image(read_image(path), tuple(image_size), keep_aspect).astype(np.float32) / 255.0


def load_mask(path: Path, image_size: tuple[int, int], keep_aspect: bool = False) -> np.ndarray:
    """Read and resize a mask: uint8 (H, W) in {0, 1}."""
    return resize_mask(read_mask(path), tuple(image_size), keep_aspect)


class ImageCache:
    """Decode and resize each file once; keep uint8 copies in memory.

    ``.image`` -> float32 (H, W, 3) in [0, 1], ``.mask`` -> uint8 (H, W) in {0, 1} (zeros for a
    normal sample), ``.valid`` -> bool (H, W), False only on ``keep_aspect`` padding.
    A real category at 256x256 is about 200 KB per image, so whole splits fit comfortably.
    """

    def __init__(self, image_size: tuple[int, int], keep_aspect: bool = False) -> None:
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.keep_aspect = keep_aspect
        self._images: dict[Path, np.ndarray] = {}
        self._masks: dict[Path, np.ndarray] = {}
        self._source_hw: dict[Path, tuple[int, int]] = {}

    def _source(self, path: Path) -> tuple[int, int]:
        if path not in self._source_hw:
            self._source_hw[path] = image_size_of(path)
        return self._source_hw[path]

    def image(self, sample: Sample) -> np.ndarray:
        if sample.path not in self._images:
            raw = read_image(sample.path)
            self._source_hw[sample.path] = raw.shape[:2]
            self._images[sample.path] = resize_image(raw, self.image_size, self.keep_aspect)
        return self._images[sample.path].astype(np.float32) / 255.0

    def mask(self, sample: Sample) -> np.ndarray:
        if sample.mask_path is None:
            return np.zeros(self.image_size, dtype=np.uint8)
        if sample.mask_path not in self._masks:
            self._masks[sample.mask_path] = resize_mask(read_mask(sample.mask_path), self.image_size, self.keep_aspect)
        return self._masks[sample.mask_path].copy()

    def valid(self, sample: Sample) -> np.ndarray:
        if not self.keep_aspect:
            return np.ones(self.image_size, dtype=bool)
        return valid_region(self._source(sample.path), self.image_size, keep_aspect=True)
