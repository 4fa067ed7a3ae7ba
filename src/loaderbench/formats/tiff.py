"""One uncompressed TIFF per image (``tiff/img_000000.tiff``), written and read by tifffile. Reading also takes
volumes: multi-page files whose OME-XML or ImageJ metadata makes pages Z planes come out ``(C, Z, H, W)``."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from loaderbench.formats import atomic_output, check_stream, one_line, sorted_items, unit_record
from loaderbench.formats.base import FormatError, FormatInfo, ImageStream

INFO = FormatInfo(
    name="tiff",
    label="TIFF (directory)",
    kind="directory",
    filename="tiff/",
    requires=("tifffile",),
    read_unit="file",
    random_access=True,  # one file per image
)

SUFFIXES = (".tif", ".tiff")


def item_name(index: int) -> str:
    return f"img_{index:06d}.tiff"


def write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
    """Each ``(C, H, W)`` image of ``data`` as a planar, greyscale TIFF in its own dtype (one page a channel),
    streamed batch by batch; a ``(C, Z, H, W)`` volume as an OME-TIFF whose OME-XML names the axes CZYX (one page a
    plane), so that readers know Z from C. The read unit is one file per image, whatever ``rows_per_unit`` says."""
    import tifffile  # noqa: PLC0415

    data = check_stream(data)
    with atomic_output(path) as tmp:
        tmp.mkdir()
        for i, image in enumerate(data.images()):
            # minisblack: channels stay separate planes, never read as RGB
            volume = {"ome": True, "metadata": {"axes": "CZYX"}} if image.ndim == 4 else {}
            tifffile.imwrite(tmp / item_name(i), image, photometric="minisblack", **volume)
    return unit_record(INFO.read_unit, 1)


def item_paths(path: Path) -> list[Path]:
    """The TIFF files in ``path``, in natural name order."""
    if not path.is_dir():
        raise FormatError(f"{path}: not a directory of TIFF files")
    items = sorted_items([p for p in path.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file()])
    if not items:
        raise FormatError(f"{path}: no .tif/.tiff files")
    return items


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(re.sub(r"^<[^>]*>\s*", "", record.getMessage()))  # drop "<tifffile.TiffPages @8> "


@contextlib.contextmanager
def _tifffile_warnings() -> Iterator[list[str]]:
    """What tifffile logs about a damaged file ("invalid page offset 896"), collected for the error message instead
    of printed as extra lines on stderr."""
    logger = logging.getLogger("tifffile")
    handler = _Collect()
    logger.addHandler(handler)
    try:
        yield handler.messages
    finally:
        logger.removeHandler(handler)


def _image_axes(axes: str, shape: tuple[int, ...], item: Path) -> tuple[list[int], tuple[int, ...]]:
    """Where the axes of tifffile's first series go: the transpose order and the ``(C, H, W)`` shape, or
    ``(C, Z, H, W)`` when a Z axis of more than one plane is there, as the native reader maps pages. Pages are Z
    planes only where the file's OME-XML or ImageJ metadata says so (tifffile's ``Z``); channels are ``C``, the
    samples of a page (``S``) or pages of no stated meaning (``Q``, ``I``...), but only one of them."""
    if 0 in shape:
        raise FormatError(f"{item}: no image data in this TIFF (shape {shape})")
    roles: dict[str, int] = {}
    for k, (name, size) in enumerate(zip(axes, shape, strict=True)):
        if size == 1 and name not in "YX":
            continue
        if name == "T":
            raise FormatError(f"{item}: {size} time points (axes {axes}); time series are not supported (T must be 1)")
        role = name if name in "ZYX" else "C"
        if role in roles:
            raise FormatError(
                f"{item}: tifffile reads axes {axes} of shape {shape}: {axes[roles[role]]} and {name} cannot both be "
                f"{'channels' if role == 'C' else role} (volumes need OME-XML or ImageJ metadata naming C and Z)"
            )
        roles[role] = k
    if "Y" not in roles or "X" not in roles:
        raise FormatError(f"{item}: expected an image with Y and X axes, got axes {axes} of shape {shape}")
    order = [roles[r] for r in "CZYX" if r in roles]
    out = tuple(shape[roles[r]] if r in roles else 1 for r in "CZYX" if r != "Z" or "Z" in roles)
    return order, out


def read_item(item: Path) -> np.ndarray:
    """One image ``(C, H, W)`` (``(C, Z, H, W)`` for a volume) in its stored dtype: tifffile's first series, its axes
    arranged as ``_image_axes`` says; a missing, truncated or corrupt file is a one-line ``FormatError`` naming it."""
    import tifffile  # noqa: PLC0415

    with _tifffile_warnings() as logged:
        try:
            with tifffile.TiffFile(item) as tif:
                series = tif.series[0]
                image, axes = series.asarray(), series.axes
        except OSError as exc:  # missing, unreadable: the system's words
            raise FormatError(f"{item}: cannot read: {exc.strerror or one_line(exc)}") from exc
        except Exception as exc:  # tifffile raises many types (struct.error on a cut header); one clear line
            seen = f" ({logged[0]})" if logged else ""
            raise FormatError(f"{item}: cannot read this TIFF (truncated or corrupt?): {one_line(exc)}{seen}") from exc
    if image.size == 0:
        seen = f": {logged[0]}" if logged else ""
        raise FormatError(f"{item}: no image data in this TIFF (truncated or corrupt?){seen}")
    order, shape = _image_axes(axes, image.shape, item)
    rest = [k for k in range(image.ndim) if k not in order]  # singleton axes, reshaped away
    return np.ascontiguousarray(image.transpose(order + rest).reshape(shape))


def looks_like(path: Path) -> bool:
    """A directory holding at least one ``.tif``/``.tiff`` file."""
    return path.is_dir() and any(p.suffix.lower() in SUFFIXES for p in path.iterdir())


def item_shape(item: Path) -> tuple[tuple[int, ...], str]:
    """One image's ``(C, H, W)`` (``(C, Z, H, W)`` for a volume) and dtype from its TIFF header (the first series, as
    ``read_item`` reads it), without decoding pixels (checking that every image of a directory has one size)."""
    import tifffile  # noqa: PLC0415

    with _tifffile_warnings() as logged:
        try:
            with tifffile.TiffFile(item) as tif:
                series = tif.series[0]
                axes, shape, dtype = series.axes, tuple(int(d) for d in series.shape), str(np.dtype(series.dtype))
        except OSError as exc:
            raise FormatError(f"{item}: cannot read: {exc.strerror or one_line(exc)}") from exc
        except Exception as exc:  # tifffile raises many types on a damaged header; one clear line
            seen = f" ({logged[0]})" if logged else ""
            raise FormatError(f"{item}: cannot read this TIFF (truncated or corrupt?): {one_line(exc)}{seen}") from exc
    return _image_axes(axes, shape, item)[1], dtype
