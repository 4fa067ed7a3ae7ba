"""The ``ome_image`` column of many images at once, built from numpy with pyarrow's array constructors.

``ome_arrow.from_numpy`` builds one image at a time through Python dicts and ``pa.scalar`` (about a millisecond
for a 100x100 image, and a million Python ints for a 1000x1000 one). ``build_ome_images`` makes the same values
for a whole ``(N, C, H, W)`` batch — or ``(N, C, Z, H, W)`` volumes — with a handful of numpy operations: the struct
type is the package's own (``OME_ARROW_STRUCT``, or ``OME_ARROW_BYTE_STRUCT`` for float32), planes and chunks are
laid out as ome-arrow 0.1.0 writes them (one plane per (C, Z), Z inner; chunks of at most ``1 x 512 x 512``,
row-major in Z, Y, X; uint8 widened to ``list<uint16>`` with ``pixels_meta.type`` keeping "uint8"; float32 as raw
``pixel_bytes`` chunks and no planes), and a test checks every value against ``ome_arrow.from_numpy`` image by
image (dim order ``CZYX`` for volumes).

``layout`` chooses how the pixels are stored (``LAYOUTS``): ``ome-arrow`` is what ``from_numpy`` writes by default
(planes and chunks, both ``list<uint16>``); ``planes`` or ``chunks`` keep one of the two; ``bytes``, ``bytes-zstd``
and ``bytes-lz4`` are byte chunks (``pixel_bytes``, raw or compressed chunk by chunk with pyarrow's codecs, as
``from_numpy(chunk_encoding="bytes", chunk_compression=...)`` stores them) in the images' own dtype, declared as
that dtype (``from_numpy`` widens uint8 to uint16 there: a reader scaling by the declared type would see
near-black images).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaderbench.config import LAYOUTS
from loaderbench.ome_image import OME_COLUMN

#: ome_arrow.from_numpy's default chunk shape (Z, Y, X); images larger than this in Y or X get several chunks
CHUNK_SHAPE = (1, 512, 512)
#: list<uint16> has 32-bit offsets: one batch may hold at most this many pixels
MAX_BATCH_PIXELS = 2**31 - 1
SUPPORTED_DTYPES = ("uint8", "uint16", "float32")
#: how the pixels are stored (config.LAYOUTS); the first, "ome-arrow", is ome_arrow.from_numpy's default
DEFAULT_LAYOUT = LAYOUTS[0]
#: byte layouts -> the chunks' ``compression`` value and pyarrow codec (None: raw)
BYTE_CODECS = {"bytes": None, "bytes-zstd": "zstd", "bytes-lz4": "lz4"}


@functools.cache
def _ome_meta() -> tuple[pa.StructType, pa.StructType, str, str]:
    """The package's struct types and tag (imported on first use: ``import ome_arrow`` takes seconds)."""
    from ome_arrow.meta import (  # noqa: PLC0415
        OME_ARROW_BYTE_STRUCT,
        OME_ARROW_STRUCT,
        OME_ARROW_TAG_TYPE,
        OME_ARROW_TAG_VERSION,
    )

    return OME_ARROW_STRUCT, OME_ARROW_BYTE_STRUCT, str(OME_ARROW_TAG_TYPE), str(OME_ARROW_TAG_VERSION)


def check_layout(dtype: str | np.dtype, layout: str) -> None:
    """A clear error for an unknown layout or one that cannot hold ``dtype`` (float32 has no list layout)."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r} (choose from {', '.join(LAYOUTS)})")
    if np.dtype(dtype).name == "float32" and layout in ("planes", "chunks"):
        raise ValueError(f"float32 images cannot use the {layout!r} layout: ome-arrow stores lists as uint16; use "
                         "a bytes layout")


def _by_bytes(dtype_name: str, layout: str) -> bool:
    return layout in BYTE_CODECS or dtype_name == "float32"


def ome_image_type(dtype: str | np.dtype, layout: str = DEFAULT_LAYOUT) -> pa.StructType:
    """The ``ome_image`` struct type of images of ``dtype`` in ``layout``: byte chunks for float32 and the bytes
    layouts, lists else."""
    name = np.dtype(dtype).name
    if name not in SUPPORTED_DTYPES:
        raise ValueError(f"unsupported dtype {name!r} ({', '.join(SUPPORTED_DTYPES)})")
    check_layout(name, layout)
    list_struct, byte_struct, _, _ = _ome_meta()
    return byte_struct if _by_bytes(name, layout) else list_struct


def ome_batch_schema(dtype: str | np.dtype, layout: str = DEFAULT_LAYOUT) -> pa.Schema:
    """The generated table's schema: ``row_id`` (int64) and ``ome_image``."""
    return pa.schema([pa.field("row_id", pa.int64()), pa.field(OME_COLUMN, ome_image_type(dtype, layout))])


def _byte_chunks(payload: np.ndarray, offsets: np.ndarray, codec: str | None) -> pa.Array:
    """``large_binary`` chunks: ``payload`` (bytes) cut at ``offsets``, each compressed with ``codec`` if given."""
    if codec is None:
        return pa.Array.from_buffers(pa.large_binary(), len(offsets) - 1,
                                     [None, pa.py_buffer(offsets), pa.py_buffer(payload)])
    compressor = pa.Codec(codec)
    view = memoryview(payload)
    return pa.array([compressor.compress(view[a:b], asbytes=True) for a, b in zip(offsets[:-1], offsets[1:],
                                                                                   strict=True)],
                    type=pa.large_binary())


def _repeat(value: object, data_type: pa.DataType, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, type=data_type), n)


def _struct(data_type: pa.StructType, columns: dict[str, pa.Array]) -> pa.StructArray:
    """A struct array with exactly the fields (order, nullability, metadata) of ``data_type``."""
    fields = list(data_type)
    return pa.StructArray.from_arrays([columns[f.name] for f in fields], fields=fields)


def _list(data_type: pa.ListType, offsets: np.ndarray, values: pa.Array) -> pa.ListArray:
    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32, copy=False)), values, type=data_type)


def _chunk_grid_cells(height: int, width: int) -> list[tuple[int, int, int, int]]:
    """``(y0, x0, shape_y, shape_x)`` of every chunk of one plane, in ome-arrow's order (Y outer, X inner)."""
    cy, cx = min(CHUNK_SHAPE[1], height), min(CHUNK_SHAPE[2], width)
    return [
        (y0, x0, min(cy, height - y0), min(cx, width - x0))
        for y0 in range(0, height, cy)
        for x0 in range(0, width, cx)
    ]


def _chunk_order(images: np.ndarray, cells: list[tuple[int, int, int, int]], dtype: np.dtype) -> np.ndarray:
    """The pixels of ``(N, C, [Z,] H, W)`` images as ``dtype``, each plane's chunks one after another (flat)."""
    h, w = images.shape[-2:]
    planes = images.reshape(-1, h, w)
    if len(cells) == 1:
        return planes.astype(dtype, copy=False).reshape(-1)
    out = np.empty((len(planes), h * w), dtype=dtype)
    start = 0
    for y0, x0, sy, sx in cells:  # a few cells (4 for 1000x1000), each copied for the whole batch at once
        out[:, start : start + sy * sx].reshape(len(planes), sy, sx)[...] = planes[:, y0 : y0 + sy, x0 : x0 + sx]
        start += sy * sx
    return out.reshape(-1)


def _as_volumes(images: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` images as ``(N, C, 1, H, W)`` (a view), volumes ``(N, C, Z, H, W)`` as they are; one code
    path then lays out planes and chunks for both, as ``from_numpy`` does (2-D images are volumes of one plane)."""
    if images.ndim == 4:
        return images[:, :, np.newaxis]
    if images.ndim != 5:
        raise ValueError(f"images must be (N, C, H, W) or (N, C, Z, H, W), got shape {images.shape}")
    return images


def build_ome_images(
    images: np.ndarray, start: int = 0, acquisition_datetime: datetime | None = None, layout: str = DEFAULT_LAYOUT
) -> pa.StructArray:
    """The ``ome_image`` values of ``(N, C, H, W)`` images or ``(N, C, Z, H, W)`` volumes, equal to
    ``ome_arrow.from_numpy`` of each image (``dim_order`` ``CZYX`` for a volume).

    Image ``i`` gets the id ``"img-{start + i}"`` (the row's global index, so batches of one table continue the
    numbering). Every image gets ``acquisition_datetime`` (default: now, UTC, taken once for the batch), where
    ``from_numpy`` takes the clock once per image.
    """
    images = _as_volumes(np.asarray(images))
    n, c, z, h, w = (int(v) for v in images.shape)
    if min(c, z, h, w) <= 0:
        raise ValueError(f"images must have positive C, Z, H and W, got shape {images.shape}")
    if images.size > MAX_BATCH_PIXELS:
        raise ValueError(f"{images.size} pixels in one batch exceed list<uint16>'s 32-bit offsets: build "
                         "the column in smaller batches")
    dtype_name = images.dtype.name
    image_type = ome_image_type(dtype_name, layout)
    _, _, tag_type, tag_version = _ome_meta()
    by_bytes = _by_bytes(dtype_name, layout)
    field = image_type.field
    meta_type: pa.StructType = field("pixels_meta").type
    meta = meta_type.field
    channel_type: pa.StructType = meta("channels").type.value_type
    grid_type: pa.StructType = field("chunk_grid").type
    chunk_type: pa.StructType = field("chunks").type.value_type
    plane_type: pa.StructType = field("planes").type.value_type
    when = acquisition_datetime or datetime.now(UTC)

    # pixels_meta: one struct per image, one channel entry per channel
    nc = n * c
    channel_index = np.tile(np.arange(c), n)
    channels = _struct(
        channel_type,
        {
            "id": pa.array([f"ch-{i}" for i in range(c)], pa.string()).take(channel_index),
            "name": pa.array([f"C{i}" for i in range(c)], pa.string()).take(channel_index),
            "emission_um": pa.array(np.zeros(nc, np.float32)),
            "excitation_um": pa.array(np.zeros(nc, np.float32)),
            "illumination": _repeat("Unknown", pa.string(), nc),
            "color_rgba": pa.array(np.full(nc, 0xFFFFFFFF, np.uint32)),
        },
    )
    unit = "µm"
    pixels_meta = _struct(
        meta_type,
        {
            # from_numpy's orders: "XYCT" when size_z is 1, else "XYZCT"
            "dimension_order": _repeat("XYCT" if z == 1 else "XYZCT", pa.string(), n),
            "type": _repeat(dtype_name, pa.string(), n),
            "size_x": _repeat(w, meta("size_x").type, n),
            "size_y": _repeat(h, meta("size_y").type, n),
            "size_z": _repeat(z, meta("size_z").type, n),
            "size_c": _repeat(c, meta("size_c").type, n),
            "size_t": _repeat(1, meta("size_t").type, n),
            "physical_size_x": _repeat(1.0, meta("physical_size_x").type, n),
            "physical_size_y": _repeat(1.0, meta("physical_size_y").type, n),
            "physical_size_z": _repeat(1.0, meta("physical_size_z").type, n),
            "physical_size_x_unit": _repeat(unit, pa.string(), n),
            "physical_size_y_unit": _repeat(unit, pa.string(), n),
            "physical_size_z_unit": _repeat(unit, pa.string(), n),
            "channels": _list(meta("channels").type, np.arange(n + 1) * c, channels),
        },
    )

    cells = _chunk_grid_cells(h, w)
    chunk_grid = _struct(
        grid_type,
        {
            "order": _repeat("TCZYX", pa.string(), n),
            "chunk_t": _repeat(1, grid_type.field("chunk_t").type, n),
            "chunk_c": _repeat(1, grid_type.field("chunk_c").type, n),
            "chunk_z": _repeat(1, grid_type.field("chunk_z").type, n),
            "chunk_y": _repeat(cells[0][2], grid_type.field("chunk_y").type, n),
            "chunk_x": _repeat(cells[0][3], grid_type.field("chunk_x").type, n),
            "chunk_order": _repeat("ZYX", pa.string(), n),
        },
    )

    # planes: per image, per channel, per Z (from_numpy's T, C, Z order); one plane is one Z slice of one channel
    ncz = nc * z
    plane_c = np.repeat(channel_index, z)
    plane_z = np.tile(np.arange(z), nc)
    # chunks: per plane, its cells (Y outer, X inner); pixels flattened in chunk order
    k = len(cells)
    nk = ncz * k
    cell = np.array(cells, dtype=np.int64)  # (k, 4): y0, x0, shape_y, shape_x
    cell_pixels = cell[:, 2] * cell[:, 3]
    per_chunk = np.tile(cell, (ncz, 1))
    pixel_offsets = np.zeros(nk + 1, np.int64)
    np.cumsum(np.tile(cell_pixels, ncz), out=pixel_offsets[1:])
    chunk_columns: dict[str, pa.Array] = {
        "t": pa.array(np.zeros(nk, np.int32)),
        "c": pa.array(np.repeat(plane_c, k).astype(np.int16)),
        "z": pa.array(np.repeat(plane_z, k).astype(np.int32)),
        "y": pa.array(per_chunk[:, 0].astype(np.int32)),
        "x": pa.array(per_chunk[:, 1].astype(np.int32)),
        "shape_z": pa.array(np.ones(nk, np.int32)),
        "shape_y": pa.array(per_chunk[:, 2].astype(np.int32)),
        "shape_x": pa.array(per_chunk[:, 3].astype(np.int32)),
    }
    plane_offsets = np.arange(ncz + 1, dtype=np.int64) * (h * w)
    if by_bytes:
        payload = _chunk_order(images, cells, images.dtype)
        codec = BYTE_CODECS.get(layout)
        chunk_columns["dtype"] = _repeat(dtype_name, pa.string(), nk)
        chunk_columns["compression"] = (_repeat(codec, pa.string(), nk) if codec else pa.nulls(nk, pa.string()))
        chunk_columns["pixel_bytes"] = _byte_chunks(payload.view(np.uint8), pixel_offsets * images.dtype.itemsize,
                                                    codec)
        # from_numpy drops the planes when chunks are bytes: an empty list per image
        planes = pa.ListArray.from_arrays(
            pa.array(np.zeros(n + 1, np.int32)), pa.array([], plane_type), type=field("planes").type
        )
    else:
        pixel_list_type = chunk_type.field("pixels").type
        plane_values = pa.array(images.astype(np.uint16, copy=False).reshape(-1))
        chunk_values = plane_values if k == 1 else pa.array(_chunk_order(images, cells, np.dtype(np.uint16)))
        chunk_columns["pixels"] = _list(pixel_list_type, pixel_offsets, chunk_values)
        plane_struct = _struct(
            plane_type,
            {
                "z": pa.array(plane_z.astype(np.int32)),
                "t": pa.array(np.zeros(ncz, np.int32)),
                "c": pa.array(plane_c.astype(np.int16)),
                "pixels": _list(plane_type.field("pixels").type, plane_offsets, plane_values),
            },
        )
        planes = _list(field("planes").type, np.arange(n + 1) * (c * z), plane_struct)
        if layout == "chunks":
            planes = _list(field("planes").type, np.zeros(n + 1, np.int64), plane_struct.slice(0, 0))
    chunks = _list(field("chunks").type, np.arange(n + 1) * (c * z * k), _struct(chunk_type, chunk_columns))
    if layout == "planes":
        chunks = _list(field("chunks").type, np.zeros(n + 1, np.int64), _struct(chunk_type, chunk_columns).slice(0, 0))

    ids = pc.binary_join_element_wise("img-", pc.cast(pa.array(np.arange(start, start + n)), pa.string()), "")
    return _struct(
        image_type,
        {
            "type": _repeat(tag_type, pa.string(), n),
            "version": _repeat(tag_version, pa.string(), n),
            "id": ids,
            "name": _repeat("unknown", pa.string(), n),
            "image_type": pa.nulls(n, pa.string()),  # from_numpy leaves it unspecified
            "acquisition_datetime": _repeat(when, field("acquisition_datetime").type, n),
            "pixels_meta": pixels_meta,
            "chunk_grid": chunk_grid,
            "chunks": chunks,
            "planes": planes,
            "masks": pa.nulls(n),
        },
    )


def build_ome_batch(
    images: np.ndarray, start: int = 0, acquisition_datetime: datetime | None = None, layout: str = DEFAULT_LAYOUT
) -> pa.RecordBatch:
    """A record batch of the generated table: ``row_id`` ``start..start+N-1`` and their ``ome_image`` values."""
    column = build_ome_images(images, start, acquisition_datetime, layout)
    row_ids = pa.array(np.arange(start, start + len(column), dtype=np.int64))
    return pa.RecordBatch.from_arrays([row_ids, column], schema=ome_batch_schema(images.dtype, layout))
