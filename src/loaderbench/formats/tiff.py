"""One uncompressed TIFF per image (``tiff/img_000000.tiff``), written and read by tifffile."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from loaderbench.formats import atomic_output, library_errors, sorted_items
from loaderbench.formats.base import FormatError, FormatInfo

INFO = FormatInfo(
    name="tiff",
    label="TIFF (directory)",
    kind="directory",
    filename="tiff/",
    requires=("tifffile",),
)

SUFFIXES = (".tif", ".tiff")


def item_name(index: int) -> str:
    return f"img_{index:06d}.tiff"


def write(table: pa.Table, images: np.ndarray, path: Path) -> None:
    """Each ``(C, H, W)`` image as a planar, single-page, greyscale TIFF in its own dtype."""
    import tifffile  # noqa: PLC0415

    with atomic_output(path) as tmp:
        tmp.mkdir()
        for i, image in enumerate(images):
            # minisblack: channels stay separate planes, never read as RGB
            tifffile.imwrite(tmp / item_name(i), image, photometric="minisblack")


def item_paths(path: Path) -> list[Path]:
    """The TIFF files in ``path``, in natural name order."""
    if not path.is_dir():
        raise FormatError(f"{path}: not a directory of TIFF files")
    items = sorted_items([p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()])
    if not items:
        raise FormatError(f"{path}: no .tif/.tiff files")
    return items


def read_item(item: Path) -> np.ndarray:
    """One image ``(C, H, W)`` in its stored dtype via ``tifffile.imread``."""
    import tifffile  # noqa: PLC0415

    with library_errors(item, INFO.label):
        image = tifffile.imread(item)
    if image.ndim == 2:
        return image[np.newaxis]
    if image.ndim != 3:
        raise FormatError(f"{item}: expected a (C, H, W) or (H, W) image, got shape {image.shape}")
    return image


def looks_like(path: Path) -> bool:
    """A directory holding at least one ``.tif``/``.tiff`` file."""
    return path.is_dir() and any(p.suffix.lower() in SUFFIXES for p in path.iterdir())
