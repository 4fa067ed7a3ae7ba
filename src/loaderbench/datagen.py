"""Synthetic OME-Arrow images, built with the ``ome-arrow`` package itself (as the seed did).

``generate_images`` makes the pixel arrays (seeded), ``build_ome_table`` turns them into the seed's table
(``row_id``, ``ome_image``). Writing them to every format and caching by config hash lives in
``ensure_dataset``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaderbench import interrupts
from loaderbench.config import DataConfig, data_key
from loaderbench.formats import (
    FORMATS,
    atomic_output,
    detect_format,
    get_format,
    one_line,
    remove_path,
    source_column,
)
from loaderbench.formats.base import FormatError
from loaderbench.ome_image import OME_COLUMN, PIXEL_TYPES, OMEImageError, decode_struct, to_chw

MANIFEST = "manifest.json"
REFERENCE = "images.npy"
MANIFEST_VERSION = 2  # 2: Parquet (DuckDB) written with zstd, as the seed


def generate_images(
    n: int, height: int, width: int, dtype: str = "uint8", channels: int = 1, seed: int = 42
) -> np.ndarray:
    """``n`` random images ``(N, C, H, W)`` from ``numpy.random.default_rng(seed)``, as the seed generated them."""
    rng = np.random.default_rng(seed)
    shape = (n, channels, height, width)
    if dtype == "uint8":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, size=shape, dtype=np.uint16)
    if dtype == "float32":
        return rng.random(size=shape, dtype=np.float32)
    raise ValueError(f"unsupported dtype {dtype!r} (uint8, uint16, float32)")


def ome_struct(image_chw: np.ndarray, image_id: str):
    """One image as an ``ome_image`` struct scalar, via ``ome_arrow.from_numpy``.

    uint8/uint16 use the package's default encoding (``planes`` and ``chunks`` of ``list<uint16>``; uint8 is
    widened, and ``pixels_meta.type`` keeps the original dtype). float32 cannot live in ``list<uint16>``, so it
    uses the package's byte-chunk encoding, which stores it losslessly.
    """
    import ome_arrow  # noqa: PLC0415 - heavy import, only needed when generating

    c, h, w = image_chw.shape
    tczyx = image_chw.reshape(1, c, 1, h, w)
    dtype = str(image_chw.dtype)
    if dtype == "float32":
        return ome_arrow.from_numpy(
            tczyx, image_id=image_id, clamp_to_uint16=False, chunk_encoding="bytes", dtype_meta=dtype
        )
    return ome_arrow.from_numpy(tczyx, image_id=image_id, dtype_meta=dtype)


def build_ome_table(images: np.ndarray) -> pa.Table:
    """The seed's table: ``row_id`` (int64) and ``ome_image`` (the OME-Arrow struct) for ``(N, C, H, W)`` images."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {images.shape}")
    if len(images) == 0:
        raise ValueError("cannot build an OME-Arrow table from zero images")
    # Each scalar becomes a one-row array without a trip through Python objects (``.as_py()`` of a 1000x1000
    # image is a million ints), then the rows are joined into one contiguous array.
    rows = [pa.repeat(ome_struct(img, f"img-{i}"), 1) for i, img in enumerate(images)]
    column = pa.concat_arrays(rows)
    return pa.table({"row_id": pa.array(np.arange(len(images), dtype=np.int64)), OME_COLUMN: column})


@dataclass
class DatasetFiles:
    """One dataset on disk in one or more formats: what the tracks iterate over."""

    name: str  # e.g. "generated 100x100 uint8" or the input path
    root: Path  # the dataset folder (for inputs: the folder holding the input)
    height: int
    width: int
    channels: int
    dtype: str
    n_images: int
    paths: dict[str, Path]  # format name -> dataset path, only for formats present and readable
    skipped: dict[str, str]  # format name -> one-line reason (library missing, write failed, ...)
    reference: Path | None  # .npy with the (N, C, H, W) images (None for user inputs)
    source: str  # "generated" or "input"
    column: str | None = None  # a table input's image column as named in the file (read back as ome_image)


def _module_version(module_name: str) -> str:
    """``__version__`` of the top-level package of ``module_name`` ("unknown" when it has none)."""
    top = module_name.split(".", maxsplit=1)[0]
    try:
        return str(getattr(importlib.import_module(top), "__version__", "unknown"))
    except Exception:  # noqa: BLE001 - a version is informative only
        return "unavailable"


def _read_manifest(folder: Path) -> dict[str, Any]:
    """The folder's manifest, or ``{}`` when it is missing, unreadable or of another layout version."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict) or manifest.get("manifest_version") != MANIFEST_VERSION:
        return {}
    return manifest


def _write_json(path: Path, value: dict[str, Any]) -> None:
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def _reference_matches(path: Path, shape: tuple[int, ...], dtype: str) -> bool:
    """Whether a saved ``images.npy`` has the expected shape and dtype (reads only its header)."""
    try:
        saved = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return saved.shape == shape and str(saved.dtype) == dtype


def ensure_dataset(
    data: DataConfig,
    size: tuple[int, int],
    formats: list[str],
    data_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> DatasetFiles:
    """Generate the images of ``data`` at ``size`` and write them in ``formats``, reusing what is on disk.

    The folder is ``data_dir / "<data_key>-<h>x<w>"``. A format listed in its ``manifest.json`` whose dataset is
    still there is reused; the others are written (atomically). A format whose library is missing, or whose
    write fails, is recorded in ``skipped`` with a one-line reason and leaves nothing behind. The manifest is
    written last, so an interrupted run never lists a half-written format.
    """
    height, width = int(size[0]), int(size[1])
    key = data_key(data)
    folder = Path(data_dir) / f"{key}-{height}x{width}"
    folder.mkdir(parents=True, exist_ok=True)
    shape = (data.n_images, data.channels, height, width)
    manifest = _read_manifest(folder)
    recorded: dict[str, Any] = dict(manifest.get("formats", {}))
    skipped_before: dict[str, str] = dict(manifest.get("skipped", {}))
    reference = folder / REFERENCE
    say = progress or (lambda _msg: None)

    images: np.ndarray | None = None
    table: pa.Table | None = None

    def get_images() -> np.ndarray:
        nonlocal images
        if images is None:
            if _reference_matches(reference, shape, data.dtype):
                images = np.load(reference)
            else:
                say(f"generating {data.n_images} images {height}x{width} {data.dtype} (seed {data.seed})")
                images = generate_images(data.n_images, height, width, data.dtype, data.channels, data.seed)
                with atomic_output(reference) as tmp, tmp.open("wb") as f:
                    np.save(f, images)
        return images

    def get_table() -> pa.Table:
        nonlocal table
        if table is None:
            say(f"building the OME-Arrow table ({data.n_images} images)")
            table = build_ome_table(get_images())
        return table

    if not _reference_matches(reference, shape, data.dtype):
        get_images()

    paths: dict[str, Path] = {}
    skipped: dict[str, str] = {}
    for name in formats:
        module = get_format(name)
        info = module.INFO
        target = folder / info.filename.rstrip("/")
        entry = recorded.get(name)
        if entry and target.exists() and module.looks_like(target):
            paths[name] = target
            continue
        recorded.pop(name, None)
        reason = info.unavailable_reason()
        if reason is not None:
            skipped[name] = reason
            continue
        remove_path(target)  # a leftover not in the manifest is stale
        try:
            pixels = get_images()
            ome_table = get_table() if info.kind == "table" else None
            say(f"writing {info.label} to {target}")
            module.write(ome_table, pixels, target)
            if not module.looks_like(target):
                raise FormatError(f"{target}: the writer finished but the result is not a {info.label} dataset")
        except Exception as exc:  # noqa: BLE001 - one format failing must not stop the others
            remove_path(target)
            interrupts.raise_if_interrupted()  # DuckDB, say, reports Ctrl-C as its own error: not a failed format
            skipped[name] = f"{info.label}: write failed: {one_line(exc)}"
            continue
        paths[name] = target
        recorded[name] = {
            "path": target.name,
            "versions": {m.split(".", maxsplit=1)[0]: _module_version(m) for m in info.requires},
        }

    skipped_all = {k: v for k, v in skipped_before.items() if k not in paths}
    skipped_all.update(skipped)
    new_manifest = {
        "manifest_version": MANIFEST_VERSION,
        "key": key,
        "source": "generated",
        "config": dataclasses.asdict(data),
        "height": height,
        "width": width,
        "channels": data.channels,
        "dtype": data.dtype,
        "n_images": data.n_images,
        "reference": REFERENCE,
        "formats": recorded,
        "skipped": skipped_all,
        "generator_versions": manifest.get("generator_versions")
        or {m: _module_version(m) for m in ("numpy", "pyarrow", "ome_arrow")},
    }
    if new_manifest != manifest:
        _write_json(folder / MANIFEST, new_manifest)

    return DatasetFiles(
        name=f"generated {height}x{width} {data.dtype}" + (f" {data.channels}ch" if data.channels > 1 else ""),
        root=folder,
        height=height,
        width=width,
        channels=data.channels,
        dtype=data.dtype,
        n_images=data.n_images,
        paths=paths,
        skipped=skipped,
        reference=reference,
        source="generated",
    )


def _parse_input_spec(spec: str) -> tuple[str | None, Path]:
    """``"PATH"`` or ``"FORMAT:PATH"`` -> (format name or None, path)."""
    head, sep, tail = spec.partition(":")
    if sep and head in FORMATS:
        if not tail:
            raise FormatError(f"input {spec!r} names format {head!r} but no path")
        return head, Path(tail)
    if sep and re.fullmatch(r"[A-Za-z_]\w+", head) and not Path(spec).exists():
        raise FormatError(f"input {spec!r}: unknown format {head!r} (known: {', '.join(FORMATS)})")
    return None, Path(spec)


def _rows_text(rows: np.ndarray, limit: int = 5) -> str:
    """``"row 4"``, ``"rows 1, 3"`` or ``"rows 1, 3, 5, 7, 9 and 12 more"`` (table positions, from 0)."""
    shown = ", ".join(str(int(r)) for r in rows[:limit])
    more = f" and {len(rows) - limit} more" if len(rows) > limit else ""
    return f"row{'s' if len(rows) > 1 else ''} {shown}{more}"


def _meta_values(meta: pa.ChunkedArray, field: str, path: Path, name: str) -> np.ndarray:
    """One ``pixels_meta`` field of every row as a numpy array; ``FormatError`` naming the rows where it is null."""
    try:
        values = pc.struct_field(meta, field)
    except (KeyError, pa.ArrowException) as exc:
        raise FormatError(f"{path}: {name}.pixels_meta has no {field!r}") from exc
    if values.null_count:
        rows = np.flatnonzero(values.is_null().to_numpy(zero_copy_only=False))
        raise FormatError(f"{path}: {_rows_text(rows)}: {name}.pixels_meta.{field} is null")
    return values.to_numpy()


def _uniform_images(table: pa.Table, path: Path, name: str) -> list[str]:
    """Check every image of the table has the size of row 0 (batches need one shape) and a pixel type the loaders
    know; return the declared types, smallest first. Images of different types are fine: each is scaled by its
    own type's maximum, by the native loader and the seed's loaders alike."""
    meta = pc.struct_field(table.column(OME_COLUMN), "pixels_meta")
    sizes = np.stack([_meta_values(meta, f, path, name) for f in ("size_c", "size_z", "size_y", "size_x")], axis=1)
    differ = np.flatnonzero(np.any(sizes != sizes[0], axis=1))
    if differ.size:
        def shape(row: int) -> str:
            c, z, y, x = (int(v) for v in sizes[row])
            return f"{c}x{y}x{x}" + (f" z={z}" if z != 1 else "")

        first = int(differ[0])
        raise FormatError(
            f"{path}: images differ in size: row 0 is {shape(0)} (CxHxW), row {first} is {shape(first)} "
            f"({differ.size} of {len(sizes)} rows differ from row 0: {_rows_text(differ)}); batches need one size, "
            "so keep one image size per dataset"
        )
    types = np.array([str(t).lower() for t in _meta_values(meta, "type", path, name)], dtype=object)
    unknown = np.flatnonzero(~np.isin(types, list(PIXEL_TYPES)))
    if unknown.size:
        raise FormatError(f"{path}: {_rows_text(unknown)}: pixel type {types[unknown[0]]!r} is not supported "
                          f"(supported: {', '.join(sorted(PIXEL_TYPES))})")
    return sorted({str(np.dtype(PIXEL_TYPES[t])) for t in set(types)}, key=lambda t: np.dtype(t).itemsize)


def _uniform_items(module: Any, items: list[Path], path: Path) -> list[str]:
    """Check every item of a directory dataset has the first item's ``(C, H, W)``, from its metadata (TIFF header,
    Zarr array metadata: no pixels decoded); return the dtypes, smallest first."""
    item_shape = getattr(module, "item_shape", None)
    if item_shape is None:
        return []
    first_shape, first_dtype = item_shape(items[0])
    dtypes = {first_dtype}
    for item in items[1:]:
        shape, dtype = item_shape(item)
        if shape != first_shape:
            dims = "x".join(map(str, shape))
            raise FormatError(
                f"{item}: image is {dims} (CxHxW) but {items[0].name} is {'x'.join(map(str, first_shape))}; every "
                f"image of {path} needs one size (batches need one shape)"
            )
        dtypes.add(dtype)
    return sorted(dtypes, key=lambda t: np.dtype(t).itemsize)


def open_input(spec: str, column: str | None = None) -> DatasetFiles:
    """Open a user dataset (``"PATH"`` or ``"FORMAT:PATH"``) once to validate it and learn its image shape.

    Table formats: the image column is ``column``, else ``ome_image``, else the one OME-Arrow struct column;
    ``row_id`` is optional. Every image must have one size (checked on ``pixels_meta`` for tables, on each item's
    metadata for directories); pixel types may differ (``dtype`` is then e.g. ``"uint8+uint16"``). Every problem
    is a ``FormatError`` naming the path (and the row or file) and what is wrong.
    """
    name, path = _parse_input_spec(spec)
    if not path.exists():
        raise FormatError(f"{path}: no such file or directory")
    if name is None:
        name = detect_format(path)
    module = get_format(name)
    info = module.INFO
    reason = info.unavailable_reason()
    if reason is not None:
        raise FormatError(f"{path}: {reason}")
    if info.kind == "table":
        table = module.read_table(path, column=column)
        image_name = source_column(table)
        images = table.column(OME_COLUMN)
        if images.null_count:
            rows = np.flatnonzero(images.is_null().to_numpy(zero_copy_only=False))
            raise FormatError(f"{path}: {images.null_count} of {table.num_rows} rows have a null {image_name} "
                              f"({_rows_text(rows)}); drop or fill those rows")
        dtypes = _uniform_images(table, path, image_name)
        try:
            first = to_chw(decode_struct(images[0].as_py()))
        except (OMEImageError, KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"{path}: the first image cannot be decoded: {one_line(exc)}") from exc
        n_images = table.num_rows
        column = image_name
    else:
        if column:
            raise FormatError(f"{path}: --column applies to table formats; {info.label} has one image per file")
        items = module.item_paths(path)
        dtypes = _uniform_items(module, items, path)
        first = module.read_item(items[0])
        n_images = len(items)
    if first.ndim != 3:
        raise FormatError(f"{path}: images of shape {first.shape} are volumes; only 2-D (C, H, W) images are supported")
    channels, height, width = first.shape
    return DatasetFiles(
        name=str(path),
        root=path.parent,
        height=int(height),
        width=int(width),
        channels=int(channels),
        dtype="+".join(dtypes) if len(dtypes) > 1 else str(first.dtype),
        n_images=int(n_images),
        paths={name: path},
        skipped={},
        reference=None,
        source="input",
        column=column,
    )
