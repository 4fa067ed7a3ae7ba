"""Synthetic OME-Arrow images, generated and written as a stream of record batches.

``generate_images`` makes the pixel arrays (seeded; ``(N, C, H, W)``, or ``(N, C, Z, H, W)`` volumes with
``depth > 1``), ``generate_image_batches`` the same pixels a batch at a time,
``build_ome_table`` turns them into the seed's table (``row_id``, ``ome_image``) with the vectorised builder of
``ome_batch`` (``ome_struct`` is ``ome_arrow.from_numpy``'s per-image path, the reference it is tested against).
``ensure_dataset`` writes a dataset to every format and caches it by config hash, never holding more than a batch.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaderbench import interrupts
from loaderbench.config import CONTENTS, DataConfig, data_key
from loaderbench.formats import (
    FORMATS,
    atomic_output,
    detect_format,
    get_format,
    one_line,
    remove_path,
    source_column,
)
from loaderbench.formats.base import FormatError, ImageStream
from loaderbench.ome_batch import DEFAULT_LAYOUT, MAX_BATCH_PIXELS, build_ome_batch, ome_batch_schema
from loaderbench.ome_image import OME_COLUMN, PIXEL_TYPES, OMEImageError, decode_struct, to_chw
from loaderbench.progress import task as progress_task

MANIFEST = "manifest.json"
REFERENCE = "images.npy"
# 2: Parquet (DuckDB) written with zstd, as the seed. 3: formats written from a stream of record batches (their
# read units, e.g. row groups, may differ from version 2's files) and each format's entry records its read unit.
MANIFEST_VERSION = 3
#: bytes of pixels per generated record batch: big enough that per-batch costs vanish, small enough to stay out of
#: the way (the batch's OME-Arrow struct is up to four times as big: uint8 widened to uint16, planes and chunks)
BATCH_BYTES = 32 * 2**20


def batch_rows(channels: int, height: int, width: int, dtype: str, target_bytes: int | None = None,
               depth: int = 1) -> int:
    """Images per generated batch: about ``target_bytes`` (default ``BATCH_BYTES``) of pixels, a multiple of 4
    (at least 4).

    A multiple of 4 keeps the random stream of a batched generation identical to one ``generate_images`` call:
    numpy's ``integers`` draws uint8 values four to a 32-bit word (uint16 two), and each call starts a fresh word.
    """
    pixels = channels * depth * height * width
    rows = min((target_bytes or BATCH_BYTES) // (pixels * np.dtype(dtype).itemsize), MAX_BATCH_PIXELS // pixels)
    return max(4, rows - rows % 4)


def _draw(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype == "uint8":
        return rng.integers(0, 256, size=shape, dtype=np.uint8)
    if dtype == "uint16":
        return rng.integers(0, 65536, size=shape, dtype=np.uint16)
    if dtype == "float32":
        return rng.random(size=shape, dtype=np.float32)
    raise ValueError(f"unsupported dtype {dtype!r} (uint8, uint16, float32)")


#: smooth content: images are generated in groups of about this many pixels, each group from a generator of its own,
#: so that a batched generation gives the pixels of one call whatever the batch size
SMOOTH_GROUP_PIXELS = 1 << 20
#: smooth content: a coarse grid of about this many cells per side, interpolated linearly to the image size
SMOOTH_GRID = 8
#: smooth content: the share of the field below which a pixel is dark background (about 60 % of the image)
SMOOTH_BACKGROUND = 0.55
#: smooth content, per integer dtype: (background level, foreground range, noise levels). Background is the level
#: plus a few noise levels, foreground the field scaled plus noise (a camera's read noise): zstd stores about 2-3x
#: less than the pixels, as it does for fluorescence images (uniform noise: nothing)
SMOOTH_LEVELS = {"uint8": (8, 240, 4), "uint16": (100, 3900, 16)}


def _interpolation(size: int, cells: int) -> np.ndarray:
    """A (size, cells) matrix that interpolates ``cells`` grid values linearly across ``size`` pixels."""
    if cells == 1:
        return np.ones((size, 1), np.float32)
    at = np.linspace(0, cells - 1, size, dtype=np.float64)
    low = np.minimum(at.astype(np.int64), cells - 2)
    frac = at - low
    matrix = np.zeros((size, cells), np.float32)
    matrix[np.arange(size), low] = 1 - frac
    matrix[np.arange(size), low + 1] = frac
    return matrix


def _smooth_group_size(shape: tuple[int, ...]) -> int:
    return max(1, SMOOTH_GROUP_PIXELS // int(np.prod(shape)))


def _smooth_group(seed: int, group: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Group ``group`` of the smooth content (``_smooth_group_size`` images): per plane a random coarse grid,
    interpolated linearly; below ``SMOOTH_BACKGROUND`` dark background, above it bright structure; plus noise."""
    rng = np.random.default_rng((seed, group))
    height, width = shape[-2], shape[-1]
    rows, cols = min(SMOOTH_GRID, height), min(SMOOTH_GRID, width)
    planes = (_smooth_group_size(shape), *shape[:-2])
    coarse = rng.random((*planes, rows, cols), dtype=np.float32)
    field = _interpolation(height, rows) @ coarse @ _interpolation(width, cols).T
    bright = np.clip((field - SMOOTH_BACKGROUND) / (1 - SMOOTH_BACKGROUND), 0, 1)
    if dtype == "float32":
        return bright * 0.9 + 0.1 * rng.random((*planes, height, width), dtype=np.float32)
    low, span, levels = SMOOTH_LEVELS[dtype]
    noise = rng.integers(0, levels, size=(*planes, height, width), dtype=np.dtype(dtype))
    return (low + span * bright).astype(dtype) + noise


def _smooth(seed: int, start: int, stop: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Images ``start`` .. ``stop`` of the smooth content, whatever range a batch asks for."""
    size = _smooth_group_size(shape)
    first, last = start // size, (stop - 1) // size
    groups = [_smooth_group(seed, g, shape, dtype) for g in range(first, last + 1)]
    images = np.concatenate(groups) if len(groups) > 1 else groups[0]
    offset = start - first * size
    return np.ascontiguousarray(images[offset : offset + stop - start])


def image_shape(channels: int, height: int, width: int, depth: int = 1) -> tuple[int, ...]:
    """One image's array shape: ``(C, H, W)``, or ``(C, Z, H, W)`` for a volume (``depth > 1``), as the loaders
    return it (a singleton Z is dropped, so 2-D data keeps the seed's shapes)."""
    return (channels, height, width) if depth == 1 else (channels, depth, height, width)


def size_text(height: int, width: int, depth: int = 1) -> str:
    """An image size as the results, the dataset names and the data folders show it: ``"HxW"``, or ``"ZxHxW"`` for
    a volume (the array's order, channels aside)."""
    return f"{depth}x{height}x{width}" if depth > 1 else f"{height}x{width}"


def generate_images(
    n: int, height: int, width: int, dtype: str = "uint8", channels: int = 1, seed: int = 42, depth: int = 1,
    content: str = "random",
) -> np.ndarray:
    """``n`` images ``(N, C, H, W)`` (``(N, C, Z, H, W)`` when ``depth > 1``): ``content="random"``, uniform noise
    from ``numpy.random.default_rng(seed)``, as the seed generated them; ``"smooth"``, images that compress
    (``config.CONTENTS``)."""
    shape = image_shape(channels, height, width, depth)
    if content == "smooth":
        return _smooth(seed, 0, n, shape, dtype) if n else np.empty((0, *shape), dtype)
    _check_content(content)
    return _draw(np.random.default_rng(seed), (n, *shape), dtype)


def _check_content(content: str) -> None:
    if content not in CONTENTS:
        raise ValueError(f"unknown image content {content!r} (choose from {', '.join(CONTENTS)})")


def generate_image_batches(
    n: int, height: int, width: int, dtype: str = "uint8", channels: int = 1, seed: int = 42,
    rows: int | None = None, depth: int = 1, content: str = "random",
) -> Iterator[np.ndarray]:
    """The images of ``generate_images`` (the same pixels), ``rows`` at a time (default ``batch_rows``) from one
    generator; for random content ``rows`` must be a multiple of 4 for the pixels to equal one call's (see
    ``batch_rows``)."""
    _check_content(content)
    rows = rows or batch_rows(channels, height, width, dtype, depth=depth)
    rng = np.random.default_rng(seed)
    shape = image_shape(channels, height, width, depth)
    for start in range(0, n, rows):
        stop = min(start + rows, n)
        yield _smooth(seed, start, stop, shape, dtype) if content == "smooth" else _draw(rng, (stop - start, *shape),
                                                                                          dtype)


def ome_struct(image_chw: np.ndarray, image_id: str, acquisition_datetime: datetime | None = None):
    """One ``(C, H, W)`` image or ``(C, Z, H, W)`` volume as an ``ome_image`` struct scalar, via
    ``ome_arrow.from_numpy`` (the reference of ``ome_batch``).

    uint8/uint16 use the package's default encoding (``planes`` and ``chunks`` of ``list<uint16>``; uint8 is
    widened, and ``pixels_meta.type`` keeps the original dtype). float32 cannot live in ``list<uint16>``, so it
    uses the package's byte-chunk encoding, which stores it losslessly. ``acquisition_datetime`` defaults to now.
    """
    import ome_arrow  # noqa: PLC0415 - heavy import, only needed when generating

    if image_chw.ndim not in (3, 4):
        raise ValueError(f"an image must be (C, H, W) or (C, Z, H, W), got shape {image_chw.shape}")
    c, h, w = image_chw.shape[0], image_chw.shape[-2], image_chw.shape[-1]
    tczyx = image_chw.reshape(1, c, -1, h, w)
    dtype = str(image_chw.dtype)
    if dtype == "float32":
        return ome_arrow.from_numpy(
            tczyx, image_id=image_id, clamp_to_uint16=False, chunk_encoding="bytes", dtype_meta=dtype,
            acquisition_datetime=acquisition_datetime,
        )
    return ome_arrow.from_numpy(tczyx, image_id=image_id, dtype_meta=dtype, acquisition_datetime=acquisition_datetime)


def build_ome_table(images: np.ndarray, acquisition_datetime: datetime | None = None,
                    layout: str = DEFAULT_LAYOUT) -> pa.Table:
    """The seed's table: ``row_id`` (int64) and ``ome_image`` (the OME-Arrow struct) for ``(N, C, H, W)`` images
    (or ``(N, C, Z, H, W)`` volumes), its pixels stored in ``layout`` (``ome_batch.LAYOUTS``; default: as
    ``ome_arrow.from_numpy`` writes them).

    One chunk when its pixel lists fit 32-bit offsets (always, but for gigapixel inputs), else one per batch.
    """
    if images.ndim not in (4, 5):
        raise ValueError(f"images must be (N, C, H, W) or (N, C, Z, H, W), got shape {images.shape}")
    if len(images) == 0:
        raise ValueError("cannot build an OME-Arrow table from zero images")
    when = acquisition_datetime or datetime.now(UTC)
    per_image = int(np.prod(images.shape[1:]))
    rows = len(images) if len(images) * per_image <= MAX_BATCH_PIXELS else MAX_BATCH_PIXELS // per_image
    batches = [build_ome_batch(images[s : s + rows], s, when, layout) for s in range(0, len(images), rows)]
    return pa.Table.from_batches(batches)


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
    reference: Path | None  # .npy with the (N, C, H, W) or (N, C, Z, H, W) images (None for user inputs)
    source: str  # "generated" or "input"
    column: str | None = None  # a table input's image column as named in the file (read back as ome_image)
    # format name -> what its writer returned (read unit, rows per unit), for generated datasets
    layouts: dict[str, dict[str, Any]] = field(default_factory=dict)
    depth: int = 1  # Z planes per image: 1 for 2-D images, more for volumes (samples (C, Z, H, W))

    @property
    def is_volume(self) -> bool:
        """Whether samples are ``(C, Z, H, W)`` volumes (batches ``[B, C, Z, H, W]``) rather than 2-D images."""
        return self.depth > 1

    @property
    def image_size(self) -> str:
        """The size the results show: ``"HxW"``, or ``"ZxHxW"`` for a volume (``size_text``)."""
        return size_text(self.height, self.width, self.depth)

    @property
    def image_shape(self) -> tuple[int, ...]:
        """One sample's shape as the loaders return it: ``(C, H, W)`` or ``(C, Z, H, W)``."""
        return image_shape(self.channels, self.height, self.width, self.depth)


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


def write_reference(
    path: Path, batches: Iterator[np.ndarray], shape: tuple[int, ...], dtype: str,
    progress: Callable[[str], None] | None = None,
) -> None:
    """Write ``images.npy`` of ``shape`` from ``batches`` of rows, atomically (a temp name until the last row).

    The file is laid out by ``np.lib.format.open_memmap``, then filled with ordinary writes: pages of a mapping
    stay in the process's RSS until unmapped, so writing through it would count the whole dataset as resident.
    """
    with atomic_output(path) as tmp, progress_task(progress, "generating images", shape[0], "images") as rows_done:
        layout = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.dtype(dtype), shape=shape)
        offset = layout.offset
        del layout  # unmapped before a page is touched
        written = 0
        with tmp.open("r+b") as f:
            f.seek(offset)
            for batch in batches:
                interrupts.raise_if_interrupted()
                if tuple(batch.shape[1:]) != tuple(shape[1:]) or written + len(batch) > shape[0]:
                    raise ValueError(f"{path}: a batch of shape {batch.shape} after {written} images does not fit "
                                     f"{shape}")
                f.write(memoryview(np.ascontiguousarray(batch, dtype=dtype)).cast("B"))
                written += len(batch)
                rows_done.advance(len(batch))
        if written != shape[0]:
            raise ValueError(f"{path}: {written} images generated, {shape[0]} expected")


def read_reference_batches(path: Path, rows: int, start: int = 0, stop: int | None = None) -> Iterator[np.ndarray]:
    """Rows ``start..stop`` of a saved ``images.npy``, ``rows`` at a time, by plain reads (see ``write_reference``)."""
    header = np.load(path, mmap_mode="r")
    shape, dtype, offset = header.shape, header.dtype, header.offset
    del header
    stop = shape[0] if stop is None else min(stop, shape[0])
    row_bytes = int(np.prod(shape[1:])) * dtype.itemsize
    with Path(path).open("rb") as f:
        f.seek(offset + start * row_bytes)
        for first in range(start, stop, rows):
            out = np.empty((min(rows, stop - first), *shape[1:]), dtype=dtype)
            if f.readinto(memoryview(out).cast("B")) != out.nbytes:
                raise OSError(f"{path}: file ends before image {first + len(out)} of {shape[0]}")
            yield out


def reference_stream(path: Path, acquisition_datetime: datetime, rows: int | None = None,
                     layout: str = DEFAULT_LAYOUT) -> ImageStream:
    """The dataset of a saved ``images.npy`` as an ``ImageStream``: each ``batches()`` call re-reads the pixels
    batch by batch and builds their record batch with the vectorised builder (ids and row_id global)."""
    header = np.load(path, mmap_mode="r")
    shape, dtype = header.shape, header.dtype
    del header
    depth = shape[2] if len(shape) == 5 else 1  # (N, C, Z, H, W) volumes
    rows = rows or batch_rows(shape[1], shape[-2], shape[-1], dtype.name, depth=depth)

    def batches() -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        start = 0
        for pixels in read_reference_batches(path, rows):
            yield build_ome_batch(pixels, start, acquisition_datetime, layout), pixels
            start += len(pixels)

    return ImageStream(schema=ome_batch_schema(dtype, layout), num_rows=int(shape[0]), batches=batches)


def _reporting(stream: ImageStream, say: Callable[[str], None], label: str) -> ImageStream:
    """``stream`` reporting every tenth of its rows as a writer consumes them (when it has several batches)."""

    def batches() -> Iterator[tuple[pa.RecordBatch, np.ndarray]]:
        with progress_task(say, label, stream.num_rows, "images") as rows_done:
            for batch, pixels in stream.batches():
                yield batch, pixels
                rows_done.advance(batch.num_rows)

    return dataclasses.replace(stream, batches=batches)


def _check_items_read_back(module: Any, target: Path, shape: tuple[int, ...]) -> None:
    """A directory format's first written item must read back as ``shape`` (from its header or metadata): a writer
    that lays a volume out as pages or axes its reader cannot name as C and Z would leave files no loader reads."""
    item_shape = getattr(module, "item_shape", None)
    if module.INFO.kind != "directory" or item_shape is None:
        return
    first = module.item_paths(target)[0]
    got, _dtype = item_shape(first)
    if tuple(got) != tuple(shape):
        raise FormatError(f"{first.name} reads back as {_shape_text(tuple(got))}, written as {_shape_text(shape)}")


def _timestamp(manifest: dict[str, Any]) -> datetime:
    """The dataset's ``acquisition_datetime``: the manifest's (formats written later match), else now (UTC)."""
    try:
        return datetime.fromisoformat(manifest["acquisition_datetime"])
    except (KeyError, TypeError, ValueError):
        return datetime.now(UTC).replace(microsecond=0)


def ensure_dataset(
    data: DataConfig,
    size: tuple[int, int],
    formats: list[str],
    data_dir: Path,
    progress: Callable[[str], None] | None = None,
) -> DatasetFiles:
    """Generate the images of ``data`` at ``size`` and write them in ``formats``, reusing what is on disk.

    The folder is ``data_dir / "<data_key>-<h>x<w>"`` (``<z>x<h>x<w>`` for volumes). The images are generated
    batch by batch into ``images.npy`` (the reference), then each format's writer consumes a stream of record
    batches re-read from it, so memory holds a batch or two whatever the dataset size. A format listed in
    ``manifest.json`` whose dataset is still there is reused; the others are written (atomically). A format whose
    library is missing, or whose write fails (or, for a directory format, whose first item does not read back in
    the written shape), is recorded in ``skipped`` with a one-line reason and leaves nothing behind. The manifest
    is rewritten after each format, and lists only finished ones, so an interrupted run keeps what it finished.
    """
    height, width = int(size[0]), int(size[1])
    key = data_key(data)
    size_name = size_text(height, width, data.depth)
    folder = Path(data_dir) / f"{key}-{size_name}"
    folder.mkdir(parents=True, exist_ok=True)
    shape = (data.n_images, *image_shape(data.channels, height, width, data.depth))
    manifest = _read_manifest(folder)
    recorded: dict[str, Any] = dict(manifest.get("formats", {}))
    skipped_before: dict[str, str] = dict(manifest.get("skipped", {}))
    reference = folder / REFERENCE
    say = progress or (lambda _msg: None)
    rows = batch_rows(data.channels, height, width, data.dtype, depth=data.depth)
    several_batches = data.n_images > rows

    if not _reference_matches(reference, shape, data.dtype):
        say(f"generating {data.n_images} images {size_name} {data.dtype}, {data.content} (seed {data.seed})")
        pixels = generate_image_batches(data.n_images, height, width, data.dtype, data.channels, data.seed, rows,
                                        data.depth, data.content)
        write_reference(reference, pixels, shape, data.dtype, say if several_batches else None)
    when = _timestamp(manifest)
    stream = reference_stream(reference, when, rows, data.layout)
    generator_versions = manifest.get("generator_versions") or {
        m: _module_version(m) for m in ("numpy", "pyarrow", "ome_arrow")
    }
    paths: dict[str, Path] = {}
    skipped: dict[str, str] = {}

    def manifest_now() -> dict[str, Any]:
        skipped_all = {k: v for k, v in skipped_before.items() if k not in paths}
        skipped_all.update(skipped)
        return {
            "manifest_version": MANIFEST_VERSION,
            "key": key,
            "source": "generated",
            "config": dataclasses.asdict(data),
            "height": height,
            "width": width,
            "depth": data.depth,
            "channels": data.channels,
            "dtype": data.dtype,
            "layout": data.layout,
            "content": data.content,
            "n_images": data.n_images,
            "reference": REFERENCE,
            "acquisition_datetime": when.isoformat(),
            "formats": recorded,
            "skipped": skipped_all,
            "generator_versions": generator_versions,
        }

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
            say(f"writing {info.label} to {target}")
            source = _reporting(stream, say, f"{info.label} written") if several_batches else stream
            layout = module.write(source, target, rows_per_unit=data.rows_per_unit)
            if not module.looks_like(target):
                raise FormatError(f"{target}: the writer finished but the result is not a {info.label} dataset")
            _check_items_read_back(module, target, shape[1:])
        except Exception as exc:  # noqa: BLE001 - one format failing must not stop the others
            remove_path(target)
            interrupts.raise_if_interrupted()  # DuckDB, say, reports Ctrl-C as its own error: not a failed format
            skipped[name] = f"{info.label}: write failed: {one_line(exc)}"
            continue
        paths[name] = target
        recorded[name] = {
            "path": target.name,
            "versions": {m.split(".", maxsplit=1)[0]: _module_version(m) for m in info.requires},
            "layout": json.loads(json.dumps(layout or {}, default=str)),  # as it reads back from the manifest
        }
        _write_json(folder / MANIFEST, manifest_now())  # a long run interrupted later keeps this format

    new_manifest = manifest_now()
    if new_manifest != manifest:
        _write_json(folder / MANIFEST, new_manifest)

    return DatasetFiles(
        name=f"generated {size_name} {data.dtype}" + (f" {data.channels}ch" if data.channels > 1 else ""),
        root=folder,
        height=height,
        width=width,
        depth=data.depth,
        channels=data.channels,
        dtype=data.dtype,
        n_images=data.n_images,
        paths=paths,
        skipped=skipped,
        reference=reference,
        source="generated",
        layouts={name: dict(recorded[name].get("layout", {})) for name in paths},
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


def _shape_text(shape: tuple[int, ...]) -> str:
    """``"2x24x32 (CxHxW)"`` or, for a volume, ``"2x3x24x32 (CxZxHxW)"``."""
    return "x".join(map(str, shape)) + (" (CxZxHxW)" if len(shape) == 4 else " (CxHxW)")


def _uniform_items(module: Any, items: list[Path], path: Path) -> list[str]:
    """Check every item of a directory dataset has the first item's ``(C, H, W)`` (or ``(C, Z, H, W)``), from its
    metadata (TIFF header, Zarr array metadata: no pixels decoded); return the dtypes, smallest first."""
    item_shape = getattr(module, "item_shape", None)
    if item_shape is None:
        return []
    first_shape, first_dtype = item_shape(items[0])
    dtypes = {first_dtype}
    for item in items[1:]:
        shape, dtype = item_shape(item)
        if shape != first_shape:
            raise FormatError(
                f"{item}: image is {_shape_text(shape)} but {items[0].name} is {_shape_text(first_shape)}; every "
                f"image of {path} needs one size (batches need one shape)"
            )
        dtypes.add(dtype)
    return sorted(dtypes, key=lambda t: np.dtype(t).itemsize)


def open_input(spec: str, column: str | None = None) -> DatasetFiles:
    """Open a user dataset (``"PATH"`` or ``"FORMAT:PATH"``) once to validate it and learn its image shape.

    Table formats: the image column is ``column``, else ``ome_image``, else the one OME-Arrow struct column;
    ``row_id`` is optional. Every image must have one size (checked on ``pixels_meta`` for tables, on each item's
    metadata for directories); pixel types may differ (``dtype`` is then e.g. ``"uint8+uint16"``). Volumes (a Z of
    more than one plane: ``pixels_meta.size_z``, or a directory item read as ``(C, Z, H, W)``) set ``depth``. Every
    problem is a ``FormatError`` naming the path (and the row or file) and what is wrong.
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
    if first.ndim not in (3, 4):
        raise FormatError(f"{path}: the first image has shape {first.shape}; expected (C, H, W) images or "
                          "(C, Z, H, W) volumes")
    channels, height, width = first.shape[0], first.shape[-2], first.shape[-1]
    return DatasetFiles(
        name=str(path),
        root=path.parent,
        height=int(height),
        width=int(width),
        depth=int(first.shape[1]) if first.ndim == 4 else 1,
        channels=int(channels),
        dtype="+".join(dtypes) if len(dtypes) > 1 else str(first.dtype),
        n_images=int(n_images),
        paths={name: path},
        skipped={},
        reference=None,
        source="input",
        column=column,
    )
