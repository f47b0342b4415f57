"""Data layer: MVTec AD layout and few-shot split, foregrounds, textures, demo data, download.

Data knows no model: everything here returns numpy arrays, file lists, or plain torch tensors.
"""
from prn_core.data.demo import DEMO_CATEGORIES, DEMO_DEFECTS, make_demo_dataset, render_demo_image
from prn_core.data.download import MVTEC_URLS, DownloadError, download_and_extract, download_mvtec
from prn_core.data.foreground import cached_foreground, estimate_foreground
from prn_core.data.images import (
    IMAGE_EXTENSIONS,
    ImageReadError,
    default_cache_dir,
    load_image,
    load_mask,
    read_image,
    read_mask,
)
from prn_core.data.mvtec import (
    CATEGORIES,
    OBJECT_CATEGORIES,
    TEXTURE_CATEGORIES,
    DatasetLayoutError,
    FewShotSplit,
    ImageCache,
    MVTecDataset,
    Sample,
    few_shot_split,
    list_samples,
)
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
]
