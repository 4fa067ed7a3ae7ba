"""OME-Zarr: one OME-Zarr image (its own Zarr store) per row, ``ome_zarr/img_000000.zarr``.

Written with ``ome_zarr.writer.write_image`` (axes ``cyx``, no downsampled levels, one chunk per image,
the writer's default codec) and read per item with zarr: open the group, take the full-resolution dataset
that the ``multiscales`` metadata names first (``s0`` with ome-zarr 0.18), read it whole.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loaderbench.formats import atomic_output, library_errors, sorted_items
from loaderbench.formats.base import FormatError, FormatInfo

INFO = FormatInfo(
    name="ome_zarr",
    label="OME-Zarr (directory)",
    kind="directory",
    filename="ome_zarr/",
    requires=("zarr", "dask", "ome_zarr"),  # not ome_zarr.writer: it warns on import
)

WRITE_BATCH = 64  # images whose pixel writes go to dask at once
GROUP_FILES = ("zarr.json", ".zgroup")  # Zarr v3, v2


def item_name(index: int) -> str:
    return f"img_{index:06d}.zarr"


def write(table: pa.Table, images: np.ndarray, path: Path) -> None:
    """Each ``(C, H, W)`` image as an OME-Zarr image with only the full-resolution level."""
    import zarr  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ome-zarr builds a deprecated default Scaler at import
        from ome_zarr.writer import write_image  # noqa: PLC0415

    import dask  # noqa: PLC0415 - ome-zarr writes through dask

    with atomic_output(path) as tmp:
        tmp.mkdir()
        pending: list[Any] = []
        for i, image in enumerate(images):
            group = zarr.open_group(str(tmp / item_name(i)), mode="w")
            pending += write_image(
                image, group, scale_factors=[], axes="cyx", storage_options={"chunks": image.shape}, compute=False
            )
            if len(pending) >= WRITE_BATCH or i == len(images) - 1:
                dask.compute(*pending)  # one dask run per batch: a third faster than one per image
                pending = []


def _is_group(path: Path) -> bool:
    return path.is_dir() and any((path / name).is_file() for name in GROUP_FILES)


def item_paths(path: Path) -> list[Path]:
    """The OME-Zarr image groups in ``path``, in natural name order."""
    if not path.is_dir():
        raise FormatError(f"{path}: not a directory of OME-Zarr images")
    items = sorted_items([p for p in path.iterdir() if _is_group(p)])
    if not items:
        raise FormatError(f"{path}: no Zarr groups (directories with zarr.json or .zgroup)")
    return items


def _multiscale(attrs: dict[str, Any], item: Path) -> dict[str, Any]:
    """The first ``multiscales`` entry, from NGFF 0.5 (``attrs["ome"]``) or 0.4 and older (top level)."""
    scales = attrs.get("ome", {}).get("multiscales") or attrs.get("multiscales")
    if not scales or not scales[0].get("datasets"):
        raise FormatError(f"{item}: not an OME-Zarr image (no multiscales datasets in its attributes)")
    return scales[0]


def _to_chw(array: np.ndarray, axes: list[str], item: Path) -> np.ndarray:
    """Drop singleton ``t``/``z`` axes and add a missing ``c`` axis, giving ``(C, H, W)``."""
    if len(axes) != array.ndim:
        raise FormatError(f"{item}: {len(axes)} axes in metadata but the array has shape {array.shape}")
    for name in ("t", "z"):
        if name in axes:
            k = axes.index(name)
            if array.shape[k] != 1:
                raise FormatError(f"{item}: axis {name!r} has size {array.shape[k]}; only 2-D images are supported")
            array = np.squeeze(array, axis=k)
            axes = axes[:k] + axes[k + 1 :]
    if "c" not in axes:
        array, axes = array[np.newaxis], ["c", *axes]
    if axes != ["c", "y", "x"]:
        raise FormatError(f"{item}: unsupported axes {axes} (expected c, y, x)")
    return array


def read_item(item: Path) -> np.ndarray:
    """One image ``(C, H, W)``: ``zarr.open_group(item)[<level 0 path>][...]``."""
    import zarr  # noqa: PLC0415

    with library_errors(item, INFO.label):
        group = zarr.open_group(str(item), mode="r")
        scale = _multiscale(dict(group.attrs), item)
        array = group[scale["datasets"][0]["path"]][...]
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in scale.get("axes", ["c", "y", "x"])]
    if axes == ["c", "y", "x"]:  # what this module writes: no reshaping needed
        return array
    return _to_chw(array, [a.lower() for a in axes], item)


def looks_like(path: Path) -> bool:
    """A directory whose first Zarr group carries OME ``multiscales`` metadata."""
    if not path.is_dir():
        return False
    groups = sorted_items([p for p in path.iterdir() if _is_group(p)])
    if not groups:
        return False
    first = groups[0]
    for name in ("zarr.json", ".zattrs"):
        meta = first / name
        if meta.is_file():
            try:
                attrs = json.loads(meta.read_text())
            except (OSError, ValueError):
                return False
            attrs = attrs.get("attributes", attrs)  # v3 keeps them under "attributes"
            if attrs.get("ome", {}).get("multiscales") or attrs.get("multiscales"):
                return True
    return False
