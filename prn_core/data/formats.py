"""Dataset formats: one registry of folder layouts behind the MVTec AD interface.

Each public defect dataset ships its own layout (BTAD's ``ok``/``ko`` folders, KolektorSDD2's
``<id>_GT.png`` masks, DAGM's ``Label/`` folder). A *format* turns one layout into the same
:class:`~prn_core.data.samples.Sample` lists as MVTec AD, with the same checks at listing time, so
everything downstream (the few-shot split, the cache, the Dataset) never learns which layout the
files came from. ``DataConfig.format`` picks one by name; :func:`few_shot_split` takes the name.

A format is any object with ``categories(root)`` and ``list_samples(root, category, split)``;
:func:`register_format` adds a class to :data:`DATASET_FORMATS` under a name. The built-in ones
are ``mvtec``, ``btad``, ``kolektorsdd2``, ``dagm`` and ``folder`` (one module each),
registered when :mod:`prn_core.data` is imported.

The helpers below are shared by the adapters: a case-insensitive mask index (DAGM writes
``.PNG``), the split check, and locating a dataset inside a freshly extracted archive.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Protocol, TypeVar, runtime_checkable

from prn_core.data.images import is_image_file
from prn_core.data.samples import SPLITS, DatasetLayoutError, Sample

__all__ = [
    "DatasetFormat",
    "DATASET_FORMATS",
    "register_format",
    "get_format",
    "CategoryFolders",
    "check_split",
    "images_in",
    "folders_where",
    "mask_index",
    "locate_extracted",
]


@runtime_checkable
class DatasetFormat(Protocol):
    """A folder layout: which categories a root holds, and the samples of one split.

    ``list_samples`` returns ``train`` as normal images only (label 0) and ``test`` as normal
    and defective images, validated (files readable, masks the size of their images), and raises
    :class:`~prn_core.data.samples.DatasetLayoutError` naming the offending path otherwise.
    """

    name: str

    def categories(self, root: str | Path) -> list[str]: ...

    def list_samples(self, root: str | Path, category: str, split: str) -> list[Sample]: ...


DATASET_FORMATS: dict[str, DatasetFormat] = {}
_F = TypeVar("_F", bound=type)


def register_format(name: str) -> Callable[[_F], _F]:
    """Class decorator: instantiate the class (no arguments) and register it under ``name``.

    >>> @register_format("doc_example")
    ... class Empty:
    ...     def categories(self, root): return []
    ...     def list_samples(self, root, category, split): return []
    >>> get_format("doc_example").name
    'doc_example'
    >>> del DATASET_FORMATS["doc_example"]
    """

    def decorate(cls: _F) -> _F:
        existing = DATASET_FORMATS.get(name)
        if existing is not None and type(existing).__qualname__ != cls.__qualname__:
            raise ValueError(f"dataset format {name!r} is already registered by {type(existing).__qualname__}")
        instance = cls()
        instance.name = name
        if not isinstance(instance, DatasetFormat):
            raise TypeError(f"{cls.__qualname__} needs categories(root) and list_samples(root, category, split)")
        DATASET_FORMATS[name] = instance
        return cls

    return decorate


def get_format(name: str) -> DatasetFormat:
    """The registered format ``name``, or a ValueError that lists the registered ones."""
    try:
        return DATASET_FORMATS[name]
    except KeyError:
        raise ValueError(
            f"unknown dataset format {name!r}; choose one of {sorted(DATASET_FORMATS)} "
            f"(DataConfig.format), or register your own with prn_core.data.register_format."
        ) from None


def check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


def images_in(folder: Path) -> list[Path]:
    """Image files directly in ``folder`` (sorted); an empty list when it does not exist."""
    return sorted(p for p in folder.iterdir() if is_image_file(p)) if folder.is_dir() else []


def folders_where(root: str | Path, keep: Callable[[Path], bool]) -> list[str]:
    """Sorted names of the folders under ``root`` for which ``keep`` holds ([] if no ``root``)."""
    root = Path(root).expanduser()
    return sorted(p.name for p in root.iterdir() if p.is_dir() and keep(p)) if root.is_dir() else []


def mask_index(folder: Path) -> dict[str, Path]:
    """Image files of ``folder`` by lower-case stem, so a mask is found whatever its extension
    or case (``0576_label.PNG``, ``001.bmp``). Two files with one stem are ambiguous: an error."""
    index: dict[str, Path] = {}
    for path in images_in(folder):
        key = path.stem.lower()
        if key in index:
            raise DatasetLayoutError(
                f"two masks share the name {path.stem!r}: {index[key]} and {path}. Keep one of them."
            )
        index[key] = path
    return index


def locate_extracted(dest: Path, is_root: Callable[[Path], bool], what: str) -> Path:
    """``dest`` or the one folder below it for which ``is_root`` holds: archives differ in
    whether they wrap the dataset in a top folder (BTAD's ``BTech_Dataset_transformed``)."""
    for candidate in [dest, *sorted(p for p in dest.iterdir() if p.is_dir() and not p.name.startswith("."))]:
        if is_root(candidate):
            return candidate
    raise DatasetLayoutError(
        f"the extracted archive under {dest} does not hold {what}; found "
        f"{sorted(p.name for p in dest.iterdir())}. Delete {dest} and download again."
    )


class CategoryFolders:
    """Base of the formats whose categories are the folders of a root that pass a layout test.

    A subclass names itself (``@register_format``), says which folders are categories
    (:meth:`is_category`) and lists samples; the category listing, its order and the missing-root
    behaviour (an empty list) are then the same for every such format.
    """

    name = ""

    def is_category(self, folder: Path) -> bool:
        raise NotImplementedError

    def category_key(self, name: str) -> tuple:
        """Sort order of the category names: plain by default."""
        return (name,)

    def categories(self, root: str | Path) -> list[str]:
        return sorted(folders_where(root, self.is_category), key=self.category_key)

    def list_samples(self, root: str | Path, category: str, split: str) -> list[Sample]:
        raise NotImplementedError
