"""Data layer: where images come from, and nothing about models.

* ``samples`` -- :class:`Sample`, :class:`DatasetLayoutError`, the listing-time checks;
* ``images`` -- decoding, resizing, padding and the :class:`ImageCache`;
* ``formats`` -- the registry of folder layouts; ``mvtec``, ``btad``, ``kolektor``, ``dagm``
  and ``folder`` each register one;
* ``split`` -- the seeded few-shot split; ``dataset`` -- a torch Dataset over samples;
* ``foreground``, ``textures``, ``stats``, ``demo``, ``download``, ``convert``.

May import: numpy, OpenCV, PIL and torch, and its own modules; never ``models``, ``synthesis``,
``train`` or ``viz``. Everything here returns arrays, file lists or plain tensors.
"""
from prn_core.data.btad import BTAD_CATEGORIES, BTADFormat, download_btad
from prn_core.data.dagm import DAGM_CATEGORIES, DAGMFormat, download_dagm
from prn_core.data.demo import DEMO_CATEGORIES, DEMO_DEFECTS, make_demo_dataset, render_demo_image
from prn_core.data.download import MVTEC_URLS, DownloadError, download_and_extract, download_mvtec
from prn_core.data.folder import FolderFormat
from prn_core.data.foreground import cached_foreground, estimate_foreground
from prn_core.data.formats import DATASET_FORMATS, DatasetFormat, get_format, register_format
from prn_core.data.images import (
    IMAGE_EXTENSIONS,
    ImageCache,
    ImageReadError,
    default_cache_dir,
    load_image,
    load_mask,
    read_image,
    read_mask,
)
from prn_core.data.kolektor import KSDD2_CATEGORY, KolektorSDD2Format, download_kolektorsdd2
from prn_core.data.mvtec import CATEGORIES, OBJECT_CATEGORIES, TEXTURE_CATEGORIES, MVTecFormat, list_samples
from prn_core.data.samples import DatasetLayoutError, Sample
from prn_core.data.split import FewShotSplit, few_shot_split
from prn_core.data.dataset import MVTecDataset
from prn_core.data.convert import write_folder_dataset
from prn_core.data.stats import image_shape_stats, suggest_image_size
from prn_core.data.textures import (
    DTDTextures,
    FolderTextures,
    ProceduralTextures,
    TextureSource,
    make_texture_source,
)

__all__ = [
    "CATEGORIES",
    "TEXTURE_CATEGORIES",
    "OBJECT_CATEGORIES",
    "DEMO_CATEGORIES",
    "DEMO_DEFECTS",
    "IMAGE_EXTENSIONS",
    "MVTEC_URLS",
    "Sample",
    "FewShotSplit",
    "ImageCache",
    "MVTecDataset",
    "DatasetLayoutError",
    "ImageReadError",
    "DownloadError",
    "list_samples",
    "few_shot_split",
    "load_image",
    "load_mask",
    "read_image",
    "read_mask",
    "default_cache_dir",
    "estimate_foreground",
    "cached_foreground",
    "TextureSource",
    "FolderTextures",
    "ProceduralTextures",
    "DTDTextures",
    "make_texture_source",
    "make_demo_dataset",
    "render_demo_image",
    "download_and_extract",
    "download_mvtec",
    "DatasetFormat",
    "DATASET_FORMATS",
    "register_format",
    "get_format",
    "MVTecFormat",
    "BTADFormat",
    "KolektorSDD2Format",
    "DAGMFormat",
    "FolderFormat",
    "BTAD_CATEGORIES",
    "DAGM_CATEGORIES",
    "KSDD2_CATEGORY",
    "download_btad",
    "download_kolektorsdd2",
    "download_dagm",
    "image_shape_stats",
    "suggest_image_size",
    "write_folder_dataset",
]
