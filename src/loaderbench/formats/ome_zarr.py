"""OME-Zarr: one OME-Zarr image (its own Zarr store) per row, ``ome_zarr/img_000000.zarr``.

Written with ``ome_zarr.writer.write_image`` (axes ``cyx``, ``czyx`` for volumes, no downsampled levels, one chunk
per image, the writer's default codec, every chunk stored) and read per item with zarr: open the group, take the
full-resolution dataset that the ``multiscales`` metadata names first (``s0`` with ome-zarr 0.18), check that its
chunk files are all there, read it whole.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from loaderbench.formats import (
    atomic_output,
    check_stream,
    library_errors,
    sorted_items,
    unit_record,
)
from loaderbench.formats.base import FormatError, FormatInfo, ImageStream

INFO = FormatInfo(
    name="ome_zarr",
    label="OME-Zarr (directory)",
    kind="directory",
    filename="ome_zarr/",
    requires=("zarr", "dask", "ome_zarr"),  # not ome_zarr.writer: it warns on import
    read_unit="chunk",
    random_access=True,  # one store (one chunk) per image
)

WRITE_BATCH = 64  # images whose pixel writes go to dask at once
GROUP_FILES = ("zarr.json", ".zgroup")  # Zarr v3, v2


def item_name(index: int) -> str:
    return f"img_{index:06d}.zarr"


def write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
    """Each ``(C, H, W)`` image (axes ``cyx``; a ``(C, Z, H, W)`` volume: ``czyx``) of ``data`` as an OME-Zarr image
    with only the full-resolution level, streamed (at
    most ``WRITE_BATCH`` images pending). The read unit is one chunk (one store) per image, whatever
    ``rows_per_unit`` says."""
    import zarr  # noqa: PLC0415

    data = check_stream(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ome-zarr builds a deprecated default Scaler at import
        from ome_zarr.writer import write_image  # noqa: PLC0415

    import dask  # noqa: PLC0415 - ome-zarr writes through dask

    # zarr skips chunks that hold only the fill value (an all-zero image); storing them all makes a missing chunk
    # file mean lost data, which read_item reports. The pool is stopped before atomic_output cleans up.
    with atomic_output(path) as tmp, zarr.config.set({"array.write_empty_chunks": True}), _writer_pool() as pool:
        tmp.mkdir()
        pending: list[Any] = []
        for i, image in enumerate(data.images()):
            group = zarr.open_group(str(tmp / item_name(i)), mode="w")
            pending += write_image(
                image, group, scale_factors=[], axes="czyx" if image.ndim == 4 else "cyx",
                storage_options={"chunks": image.shape}, compute=False,
            )
            if len(pending) >= WRITE_BATCH:
                # one dask run per batch: a third faster than one per image
                dask.compute(*pending, scheduler="threads", pool=pool)
                pending = []
        if pending:
            dask.compute(*pending, scheduler="threads", pool=pool)
    return unit_record(INFO.read_unit, 1)


@contextlib.contextmanager
def _writer_pool() -> Iterator[ThreadPoolExecutor]:
    """dask's threads for one write, all finished when the write returns or fails: on Ctrl-C dask returns at once
    while its running tasks go on writing chunks, into a temp folder that is being removed."""
    from dask.system import CPU_COUNT  # noqa: PLC0415 - as many threads as dask's own default pool

    pool = ThreadPoolExecutor(max_workers=CPU_COUNT, thread_name_prefix="loaderbench-zarr")
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


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
    """Drop ``t`` (of size 1) and a singleton ``z``, add a missing ``c`` axis: ``(C, H, W)``, or ``(C, Z, H, W)``
    for a volume (``z`` of more than one plane), as the native reader does."""
    if len(axes) != array.ndim:
        raise FormatError(f"{item}: {len(axes)} axes in metadata but the array has shape {array.shape}")
    if "t" in axes:
        k = axes.index("t")
        if array.shape[k] != 1:
            raise FormatError(
                f"{item}: axis 't' has size {array.shape[k]}; time series are not supported (t must be 1)"
            )
        array, axes = np.squeeze(array, axis=k), axes[:k] + axes[k + 1 :]
    if "z" in axes and array.shape[axes.index("z")] == 1:
        k = axes.index("z")
        array, axes = np.squeeze(array, axis=k), axes[:k] + axes[k + 1 :]
    if "c" not in axes:
        array, axes = array[np.newaxis], ["c", *axes]
    if axes not in (["c", "y", "x"], ["c", "z", "y", "x"]):
        raise FormatError(f"{item}: unsupported axes {axes} (expected (t,) (c,) (z,) y, x)")
    return array


def missing_chunks(item: Path, array_path: str, array: Any) -> tuple[list[str], int]:
    """The chunk (or shard) files of ``array`` absent from ``item/array_path``, and how many there should be.

    The Zarr spec reads a missing chunk as the fill value; in this layout (one chunk per image, every chunk stored)
    it is lost data. One ``stat`` per chunk: a store listing (``nchunks_initialized``) would double a read's time.
    """
    unit = getattr(array, "shards", None) or array.chunks
    grid = [-(-int(size) // int(step)) for size, step in zip(array.shape, unit, strict=True)]
    folder = item / array_path
    keys = [array.metadata.encode_chunk_key(c) for c in itertools.product(*(range(n) for n in grid))]
    return [key for key in keys if not (folder / key).is_file()], len(keys)


def read_item(item: Path) -> np.ndarray:
    """One image ``(C, H, W)`` (``(C, Z, H, W)`` for a volume): ``zarr.open_group(item)[<level 0 path>][...]``,
    after checking that no chunk file of it is missing (``FormatError`` naming the item and the chunk otherwise)."""
    import zarr  # noqa: PLC0415

    with library_errors(item, INFO.label):
        group = zarr.open_group(str(item), mode="r")
        scale = _multiscale(dict(group.attrs), item)
        array_path = str(scale["datasets"][0]["path"])
        stored = group[array_path]
        missing, total = missing_chunks(item, array_path, stored)
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise FormatError(
                f"{item}: chunk file {array_path}/{missing[0]}{more} missing ({total - len(missing)} of {total} "
                "stored): the image's pixels are lost"
            )
        array = stored[...]
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


def item_shape(item: Path) -> tuple[tuple[int, ...], str]:
    """One image's ``(C, H, W)`` (or ``(C, Z, H, W)``) and dtype from its Zarr metadata, as ``read_item`` would
    return it, without reading a chunk (checking that every image of a directory has one size)."""
    import zarr  # noqa: PLC0415

    with library_errors(item, INFO.label):
        group = zarr.open_group(str(item), mode="r")
        scale = _multiscale(dict(group.attrs), item)
        stored = group[str(scale["datasets"][0]["path"])]
        shape, dtype = tuple(int(d) for d in stored.shape), np.dtype(stored.dtype)
    axes = [a["name"] if isinstance(a, dict) else str(a) for a in scale.get("axes", ["c", "y", "x"])]
    shaped = _to_chw(np.broadcast_to(np.zeros((), dtype), shape), [a.lower() for a in axes], item)  # no allocation
    return tuple(int(d) for d in shaped.shape), str(dtype)
