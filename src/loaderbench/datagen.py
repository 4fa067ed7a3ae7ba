"""Synthetic OME-Arrow images, built with the ``ome-arrow`` package itself (as the seed did).

``generate_images`` makes the pixel arrays (seeded), ``build_ome_table`` turns them into the seed's table
(``row_id``, ``ome_image``). Writing them to every format and caching by config hash lives in
``ensure_dataset``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from loaderbench.ome_image import OME_COLUMN


def generate_images(n: int, height: int, width: int, dtype: str = "uint8", channels: int = 1, seed: int = 42) -> np.ndarray:
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
    structs = [ome_struct(img, f"img-{i}") for i, img in enumerate(images)]
    column = pa.array([s.as_py() for s in structs], type=structs[0].type)
    return pa.table({"row_id": pa.array(np.arange(len(images), dtype=np.int64)), OME_COLUMN: column})
