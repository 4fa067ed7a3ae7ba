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
