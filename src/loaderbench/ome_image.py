"""Reading pixels out of an OME-Arrow ``ome_image`` struct in Python.

This is the *seed's* path (``.as_py()`` then numpy); it is the baseline the native loader is measured
against and the reference the tests compare with. It understands every layout ome-arrow 0.1 writes:
``planes`` (YX planes of ``list<uint16>``), ``chunks`` with ``pixels: list<uint16>`` and ``chunks``
with ``pixel_bytes`` (raw, zstd or lz4). Images come back as ``(C, Z, Y, X)`` in the declared dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OME_COLUMN = "ome_image"

#: pixels_meta.type -> numpy dtype
PIXEL_TYPES = {
    "uint8": np.uint8,
    "uint16": np.uint16,
    "float32": np.float32,
    "float": np.float32,
}

#: value that maps to 1.0 when scaling to [0, 1]; floats are already in range
SCALE_MAX = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


class OMEImageError(ValueError):
    """An OME-Arrow image struct that cannot be decoded."""


def pixel_dtype(meta: dict[str, Any]) -> np.dtype:
    """The numpy dtype an image declares in ``pixels_meta.type``."""
    name = str(meta.get("type", "")).lower()
    if name not in PIXEL_TYPES:
        raise OMEImageError(f"unsupported pixel type {name!r} (supported: {sorted(PIXEL_TYPES)})")
    return np.dtype(PIXEL_TYPES[name])


def _decompress(raw: bytes, compression: str | None, expected_bytes: int) -> bytes:
    """Undo a chunk's compression with the same pyarrow codec ome-arrow compressed it with."""
    if not compression or str(compression).strip().lower() in {"", "none"}:
        return raw
    import pyarrow as pa  # noqa: PLC0415

    try:
        return pa.Codec(str(compression)).decompress(raw, expected_bytes).to_pybytes()
    except (ValueError, OSError, pa.ArrowException) as exc:
        raise OMEImageError(f"cannot decompress {compression} chunk: {exc}") from exc


def decode_struct(image: dict[str, Any]) -> np.ndarray:
    """Decode one ``ome_image`` value (as given by ``.as_py()``) into a ``(C, Z, Y, X)`` array.

    Chunks are preferred when present (as ``ome_arrow.to_numpy`` does); planes otherwise.
    Every plane or chunk is checked against the declared shape.
    """
    if image is None:
        raise OMEImageError("image is null")
    meta = image.get("pixels_meta") or {}
    try:
        sx, sy, sz, sc, st = (int(meta[k]) for k in ("size_x", "size_y", "size_z", "size_c", "size_t"))
    except (KeyError, TypeError) as exc:
        raise OMEImageError(f"pixels_meta lacks sizes: {exc}") from exc
    if min(sx, sy, sz, sc, st) <= 0:
        raise OMEImageError(f"non-positive image size x={sx} y={sy} z={sz} c={sc} t={st}")
    if st != 1:
        raise OMEImageError(f"time series (size_t={st}) are not supported")
    dtype = pixel_dtype(meta)
    out = np.zeros((sc, sz, sy, sx), dtype=dtype)
    chunks = image.get("chunks") or []
    planes = image.get("planes") or []
    if chunks:
        for ch in chunks:
            shape = (int(ch["shape_z"]), int(ch["shape_y"]), int(ch["shape_x"]))
            z, y, x, c = int(ch["z"]), int(ch["y"]), int(ch["x"]), int(ch["c"])
            if "pixel_bytes" in ch and ch.get("pixel_bytes") is not None:
                chunk_dtype = np.dtype(PIXEL_TYPES.get(str(ch.get("dtype")), dtype))
                expected = shape[0] * shape[1] * shape[2] * chunk_dtype.itemsize
                raw = _decompress(ch["pixel_bytes"], ch.get("compression"), expected)
                values = np.frombuffer(raw, dtype=chunk_dtype)
            else:
                values = np.asarray(ch["pixels"], dtype=np.uint16)
            if values.size != shape[0] * shape[1] * shape[2]:
                raise OMEImageError(f"chunk at c={c} z={z} y={y} x={x} has {values.size} pixels, shape {shape}")
            if c >= sc or z + shape[0] > sz or y + shape[1] > sy or x + shape[2] > sx:
                raise OMEImageError(f"chunk at c={c} z={z} y={y} x={x} shape {shape} lies outside the image")
            out[c, z : z + shape[0], y : y + shape[1], x : x + shape[2]] = values.reshape(shape)
    elif planes:
        for plane in planes:
            c, z = int(plane["c"]), int(plane["z"])
            values = np.asarray(plane["pixels"], dtype=np.uint16)
            if values.size != sy * sx:
                raise OMEImageError(f"plane c={c} z={z} has {values.size} pixels, expected {sy}x{sx}")
            if c >= sc or z >= sz:
                raise OMEImageError(f"plane c={c} z={z} lies outside the image (c<{sc}, z<{sz})")
            out[c, z] = values.reshape(sy, sx)
    else:
        raise OMEImageError("image has neither planes nor chunks")
    return out


def to_chw(image_czyx: np.ndarray) -> np.ndarray:
    """Drop a singleton Z so 2-D images come out as ``(C, H, W)``; volumes stay ``(C, Z, H, W)``."""
    return image_czyx[:, 0] if image_czyx.shape[1] == 1 else image_czyx


def decode_column(images: Any) -> np.ndarray:
    """Decode an ``ome_image`` column (a pyarrow ``StructArray`` or ``ChunkedArray``) of images of one shape into
    ``(N, C, Z, Y, X)`` in the declared dtype, from the Arrow buffers without ``.as_py()``: what a user who knows
    Arrow writes (the fast baseline, not the seed's path).

    Chunks are preferred when present and non-empty, planes otherwise (as ``decode_struct``). When every image is one
    full-plane piece per (C, Z) in order, the pixel column is converted in one vectorised step; other layouts
    (tiled chunks, byte chunks) are copied piece by piece with numpy (a Python loop over pieces, never pixels).
    """
    import pyarrow as pa  # noqa: PLC0415

    if isinstance(images, pa.ChunkedArray):
        images = images.combine_chunks()
    n = len(images)
    if n == 0:
        raise OMEImageError("no images to decode")
    if images.null_count:
        raise OMEImageError("the column has null images")
    meta = images.field("pixels_meta")
    sizes = {k: np.asarray(meta.field(k).to_numpy(zero_copy_only=False), dtype=np.int64)
             for k in ("size_c", "size_z", "size_y", "size_x", "size_t")}
    types = meta.field("type").unique().to_pylist()
    shapes = {k: np.unique(v) for k, v in sizes.items()}
    if any(len(v) != 1 for v in shapes.values()) or len(types) != 1:
        raise OMEImageError("the images differ in shape or dtype; batching needs images of one shape and dtype")
    sc, sz, sy, sx, st = (int(shapes[k][0]) for k in ("size_c", "size_z", "size_y", "size_x", "size_t"))
    if st != 1:
        raise OMEImageError(f"time series (size_t={st}) are not supported")
    dtype = pixel_dtype({"type": types[0]})
    pieces, kind = _pieces(images)
    out = np.zeros((n, sc, sz, sy, sx), dtype=dtype)
    offsets = np.asarray(pieces.offsets.to_numpy(), dtype=np.int64) - int(pieces.offsets[0].as_py())
    entries = pieces.flatten()
    per_image = np.diff(offsets)

    def field(name: str) -> np.ndarray:
        return np.asarray(entries.field(name).to_numpy(zero_copy_only=False), dtype=np.int64)

    c, z = field("c"), field("z")
    if kind == "chunks":
        y, x, shz, shy, shx = field("y"), field("x"), field("shape_z"), field("shape_y"), field("shape_x")
    else:
        y = x = np.zeros(len(entries), np.int64)
        shz, shy, shx = np.ones(len(entries), np.int64), np.full(len(entries), sy), np.full(len(entries), sx)
    byte_chunks = kind == "chunks" and "pixel_bytes" in [f.name for f in entries.type]
    planes_per_image = sc * sz
    expected_c = np.repeat(np.arange(sc), sz)
    expected_z = np.tile(np.arange(sz), sc)
    full_planes = (
        not byte_chunks
        and bool(np.all(per_image == planes_per_image))
        and bool(np.all((y == 0) & (x == 0) & (shz == 1) & (shy == sy) & (shx == sx)))
        and bool(np.array_equal(c.reshape(n, -1), np.broadcast_to(expected_c, (n, planes_per_image))))
        and bool(np.array_equal(z.reshape(n, -1), np.broadcast_to(expected_z, (n, planes_per_image))))
    )
    if full_planes:
        values = entries.field("pixels").flatten().to_numpy(zero_copy_only=False)
        if values.size != n * planes_per_image * sy * sx:
            raise OMEImageError(f"the pixel lists hold {values.size} values for {n} images of {sc}x{sz}x{sy}x{sx}")
        out[:] = values.astype(dtype, copy=False).reshape(out.shape)
        return out
    image_of = np.repeat(np.arange(n), per_image)
    for i in range(len(entries)):
        shape = (int(shz[i]), int(shy[i]), int(shx[i]))
        ci, zi, yi, xi = int(c[i]), int(z[i]), int(y[i]), int(x[i])
        if ci >= sc or zi + shape[0] > sz or yi + shape[1] > sy or xi + shape[2] > sx:
            raise OMEImageError(f"a piece at c={ci} z={zi} y={yi} x={xi} shape {shape} lies outside the image")
        piece = entries[i]
        if byte_chunks and piece["pixel_bytes"].is_valid:
            chunk_dtype = np.dtype(PIXEL_TYPES.get(str(piece["dtype"].as_py()), dtype))
            raw = _decompress(piece["pixel_bytes"].as_buffer().to_pybytes(), piece["compression"].as_py(),
                              shape[0] * shape[1] * shape[2] * chunk_dtype.itemsize)
            values = np.frombuffer(raw, dtype=chunk_dtype)
        else:
            values = piece["pixels"].values.to_numpy(zero_copy_only=False)
        if values.size != shape[0] * shape[1] * shape[2]:
            raise OMEImageError(f"a piece at c={ci} z={zi} y={yi} x={xi} has {values.size} pixels, shape {shape}")
        out[image_of[i], ci, zi : zi + shape[0], yi : yi + shape[1], xi : xi + shape[2]] = values.reshape(shape)
    return out


def _pieces(images: Any) -> tuple[Any, str]:
    """The ``chunks`` list column when the images have chunks, else ``planes``, and which it is."""
    names = [f.name for f in images.type]
    if "chunks" in names:
        chunks = images.field("chunks")
        if chunks.null_count == 0 and len(chunks.flatten()) > 0:
            return chunks, "chunks"
    if "planes" in names:
        return images.field("planes"), "planes"
    raise OMEImageError("images have neither planes nor chunks")
