"""Building blocks of the corpus's malformed inputs, shared by the case builders and the case snippets.

Everything starts from what the real ``ome-arrow`` package writes (``ome_arrow.from_numpy``), then one thing is
changed: a field's value, a field's Arrow type (``retype``), a null where a value belongs. Images are *patterned*
(``patterned_images``): the first pixel of image ``i`` is ``i``, so the rows a batch holds can be read back from the
pixels alone (``rows_of``), for loaders whose batches carry no indices (a ``DataLoader`` over workers).

Heavy libraries are imported inside the functions: this module is imported by every case subprocess.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

OME_COLUMN = "ome_image"


# --- images and OME-Arrow rows -------------------------------------------------------------------------------------


def patterned_images(n: int, height: int = 8, width: int = 8, channels: int = 1, dtype: str = "uint8") -> np.ndarray:
    """``(N, C, H, W)`` images: image ``i`` starts with pixel value ``i`` and differs from every other image."""
    if n > 200:
        raise ValueError("patterned_images identifies rows by their first pixel: at most 200 images")
    base = np.arange(channels * height * width, dtype=np.int64).reshape(channels, height, width)
    images = np.stack([(base * 7 + i) % 251 for i in range(n)])
    images[:, 0, 0, 0] = np.arange(n)
    if dtype == "uint16":
        return (images * 257).astype(np.uint16)
    return images.astype(np.dtype(dtype))


def rows_of(batch: Any, scale: float = 255.0) -> list[int]:
    """The row ids of a float batch ``[B, C, H, W]`` of ``patterned_images`` (first pixel * scale)."""
    return [int(round(float(v) * scale)) for v in batch[:, 0, 0, 0]]


def expected_float(images: np.ndarray) -> Any:
    """``images`` as the loader's default float32 output: ``torch.from_numpy(x).float().div(max)``."""
    import torch  # noqa: PLC0415

    scale = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(images.dtype, 1.0)
    return torch.from_numpy(np.ascontiguousarray(images)).float().div(scale)


TEMPLATES_ENV = "CORPUS_TEMPLATES"
_templates: dict[str, Any] | None = None


def capture_templates(path: Path | None = None) -> dict[str, Any]:
    """The struct types and one row per chunk encoding, as ``ome_arrow.from_numpy`` makes them (pickled to ``path``).

    ``ome_arrow`` takes seconds to import; the runner captures these once and every case subprocess loads them.
    """
    import pickle  # noqa: PLC0415

    import ome_arrow  # noqa: PLC0415

    image = np.zeros((1, 1, 1, 8, 8), dtype=np.uint8)
    templates = {
        "list_type": ome_arrow.OME_ARROW_STRUCT,
        "bytes_type": ome_arrow.OME_ARROW_BYTE_STRUCT,
        "list_row": ome_arrow.from_numpy(image, image_id="corpus", dtype_meta="uint8").as_py(),
        "bytes_row": ome_arrow.from_numpy(image, image_id="corpus", dtype_meta="uint8", chunk_encoding="bytes").as_py(),
    }
    if path is not None:
        path.write_bytes(pickle.dumps(templates))
    return templates


def templates() -> dict[str, Any]:
    """The captured templates (from ``$CORPUS_TEMPLATES`` when the runner made them, else captured now)."""
    global _templates  # noqa: PLW0603 - loaded once per process
    if _templates is None:
        import os  # noqa: PLC0415
        import pickle  # noqa: PLC0415

        path = os.environ.get(TEMPLATES_ENV)
        _templates = pickle.loads(Path(path).read_bytes()) if path else capture_templates()
    return _templates


def image_row(image_chw: np.ndarray, layout: str = "chunks", compression: str | None = None) -> dict[str, Any]:
    """One ``(C, H, W)`` uint8/uint16 image as the dict ``ome_arrow.from_numpy(...).as_py()`` gives, keeping one layout.

    ``layout``: ``"chunks"`` (``list<uint16>`` chunks, no planes), ``"planes"`` (planes, no chunks), ``"both"`` (as
    ome-arrow writes by default), ``"bytes"`` (``pixel_bytes`` chunks of uint16, optionally ``compression``). The
    runner checks this against ``ome_arrow.from_numpy`` itself before any case runs (``self_check``).
    """
    import pyarrow as pa  # noqa: PLC0415

    c, h, w = image_chw.shape
    if h > 512 or w > 512:
        raise ValueError("image_row makes one chunk per plane: at most 512x512")
    encoding = "bytes" if layout == "bytes" else "list"
    row = copy.deepcopy(templates()[f"{encoding}_row"])
    meta = row["pixels_meta"]
    meta.update(type=str(image_chw.dtype), size_x=w, size_y=h, size_z=1, size_c=c, size_t=1)
    channel = meta["channels"][0]
    meta["channels"] = [dict(channel, id=f"ch-{i}", name=f"C{i}") for i in range(c)]
    row["chunk_grid"].update(chunk_y=h, chunk_x=w)
    widened = image_chw.astype(np.uint16)
    if encoding == "bytes":
        row["planes"] = []
        row["chunks"] = []
        for ci in range(c):
            raw = widened[ci].tobytes()
            if compression:
                raw = pa.Codec(compression).compress(raw, asbytes=True)
            row["chunks"].append({"t": 0, "c": ci, "z": 0, "y": 0, "x": 0, "shape_z": 1, "shape_y": h, "shape_x": w,
                                  "dtype": "uint16", "compression": compression, "pixel_bytes": raw})
        return row
    row["planes"] = [{"z": 0, "t": 0, "c": ci, "pixels": widened[ci].ravel().tolist()} for ci in range(c)]
    row["chunks"] = [{"t": 0, "c": ci, "z": 0, "y": 0, "x": 0, "shape_z": 1, "shape_y": h, "shape_x": w,
                      "pixels": widened[ci].ravel().tolist()} for ci in range(c)]
    if layout == "chunks":
        row["planes"] = []
    elif layout == "planes":
        row["chunks"] = []
    return row


def self_check() -> None:
    """Raise ``AssertionError`` unless ``image_row`` builds exactly what ``ome_arrow.from_numpy`` writes."""
    import ome_arrow  # noqa: PLC0415

    variants = (("uint8", (2, 8, 10), "list", None), ("uint16", (1, 16, 8), "list", None),
                ("uint8", (1, 8, 8), "bytes", None), ("uint16", (2, 8, 8), "bytes", "zstd"))
    for dtype, shape, encoding, compression in variants:
        image = patterned_images(3, shape[1], shape[2], shape[0], dtype)[2]
        ours = image_row(image, "both" if encoding == "list" else "bytes", compression)
        theirs = ome_arrow.from_numpy(image.reshape(1, *shape[:1], 1, *shape[1:]), image_id="corpus", dtype_meta=dtype,
                                      chunk_encoding=encoding, chunk_compression=compression).as_py()
        for row in (ours, theirs):
            row.pop("acquisition_datetime")
        assert ours == theirs, f"builders.image_row differs from ome_arrow.from_numpy for {dtype} {shape} {encoding}"


def struct_type(layout: str = "chunks") -> Any:
    """The ``ome_image`` struct type ome-arrow writes for ``layout`` (list chunks or byte chunks)."""
    return templates()["bytes_type" if layout == "bytes" else "list_type"]


def retype(t: Any, overrides: dict[str, Any]) -> Any:
    """``t`` (a struct type) with the fields at dotted paths replaced: ``{"chunks.z": pa.int64()}``.

    A path walks through structs and into the items of lists (``chunks.pixels`` is the chunk's pixel list,
    ``chunks.pixels.item`` its values).
    """
    import pyarrow as pa  # noqa: PLC0415

    def walk(current: Any, parts: list[str], new: Any) -> Any:
        if not parts:
            return new
        if pa.types.is_list(current) or pa.types.is_large_list(current):
            inner = walk(current.value_type, parts[1:] if parts[0] == "item" else parts, new)
            make = pa.large_list if pa.types.is_large_list(current) else pa.list_
            return make(current.value_field.with_type(inner))
        if pa.types.is_struct(current):
            head, rest = parts[0], parts[1:]
            if current.get_field_index(head) < 0:
                raise KeyError(f"no field {head!r} in {current}")
            return pa.struct([f.with_type(walk(f.type, rest, new)) if f.name == head else f for f in current])
        raise KeyError(f"cannot descend into {current} at {'.'.join(parts)}")

    for path, new in overrides.items():
        t = walk(t, path.split("."), new)
    return t


def ome_table(rows: list[dict[str, Any] | None], layout: str = "chunks", overrides: dict[str, Any] | None = None,
              row_ids: bool = True, column: str = OME_COLUMN) -> Any:
    """A pyarrow table ``row_id``, ``ome_image`` from row dicts, with the struct type ome-arrow writes, retyped."""
    import pyarrow as pa  # noqa: PLC0415

    t = retype(struct_type(layout), overrides or {})
    columns: dict[str, Any] = {}
    if row_ids:
        columns["row_id"] = pa.array(np.arange(len(rows), dtype=np.int64))
    columns[column] = pa.array(rows, type=t)
    return pa.table(columns)


def valid_rows(images: np.ndarray, layout: str = "chunks", compression: str | None = None) -> list[dict[str, Any]]:
    """One row dict per image, built once and copied (``from_numpy`` is the slow part)."""
    return [image_row(img, layout, compression) for img in images]


def valid_table(n: int = 6, height: int = 8, width: int = 8, channels: int = 1, dtype: str = "uint8",
                layout: str = "chunks") -> tuple[Any, np.ndarray]:
    """A correct table of ``patterned_images`` and the images themselves."""
    images = patterned_images(n, height, width, channels, dtype)
    return ome_table(valid_rows(images, layout), layout), images


def mutated(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A deep copy of ``rows`` to break."""
    return copy.deepcopy(rows)


# --- the malformed tables several cases share ---------------------------------------------------------------------


def overflow_table() -> Any:
    """One 1x20x8x8 volume whose single chunk sits at ``z = 2**63 - 10`` with ``shape_z = 20`` (int64 fields):
    ``z + shape_z`` overflows int64, so a bounds check written as ``z + shape_z > size_z`` wraps and passes."""
    import pyarrow as pa  # noqa: PLC0415

    volume = patterned_images(1, 8, 8)[0]
    row = image_row(volume)
    row["pixels_meta"]["size_z"] = 20
    chunk = row["chunks"][0]
    chunk.update(z=2**63 - 10, shape_z=20, pixels=list(range(256)) * 5)  # 20 * 64 pixels: the count adds up
    overrides = {f"chunks.{f}": pa.int64() for f in ("t", "c", "z", "y", "x", "shape_z", "shape_y", "shape_x")}
    return ome_table([row], overrides=overrides)


def zstd_bomb_table(height: int = 65536, width: int = 32768) -> Any:
    """One uint8 image whose pixels_meta declares ``height x width`` pixels (default 2**31), stored as a 17-byte zstd
    chunk (the frame of 64 zero bytes): nothing may allocate the declared size before noticing that the payload
    cannot hold it."""
    import pyarrow as pa  # noqa: PLC0415

    row = image_row(np.zeros((1, 8, 8), np.uint8), "bytes", "zstd")
    payload = pa.Codec("zstd").compress(bytes(64), asbytes=True)
    assert len(payload) == 17, len(payload)
    row["chunks"][0].update(dtype="uint8", pixel_bytes=payload, shape_y=height, shape_x=width)
    row["pixels_meta"].update(size_y=height, size_x=width)
    return ome_table([row], "bytes")


def raising_reader(fail_after: int = 1) -> Any:
    """A ``RecordBatchReader`` over a generator that yields ``fail_after`` good batches, then raises."""
    import pyarrow as pa  # noqa: PLC0415

    table, _ = valid_table(6)
    batches = table.to_batches(max_chunksize=2)

    def produce() -> Any:
        yield from batches[:fail_after]
        raise ValueError("corpus producer failed at batch 2")

    return pa.RecordBatchReader.from_batches(table.schema, produce())


# --- sparse inputs -------------------------------------------------------------------------------------------------


def small_csr(n_cells: int = 20, n_genes: int = 30, seed: int = 0) -> Any:
    """A seeded ``scipy.sparse.csr_matrix`` (float32, about 20 % non-zeros, a few empty rows)."""
    import scipy.sparse as sp  # noqa: PLC0415

    rng = np.random.default_rng(seed)
    dense = rng.integers(1, 9, size=(n_cells, n_genes)).astype(np.float32)
    dense[rng.random((n_cells, n_genes)) > 0.2] = 0
    dense[::7] = 0
    return sp.csr_matrix(dense)


def coo_table(csr: Any) -> Any:
    """A SOMA-like COO pyarrow table (``soma_dim_0``, ``soma_dim_1``, ``soma_data``) of ``csr``, sorted by cell."""
    import pyarrow as pa  # noqa: PLC0415

    coo = csr.tocoo()
    order = np.lexsort((coo.col, coo.row))
    return pa.table({"soma_dim_0": pa.array(coo.row[order].astype(np.int64)),
                     "soma_dim_1": pa.array(coo.col[order].astype(np.int64)),
                     "soma_data": pa.array(coo.data[order].astype(np.float32))})


def write_h5ad(csr: Any, path: Path, with_x: bool = True) -> None:
    """An AnnData ``.h5ad`` holding ``csr`` as its CSR ``X`` (or, ``with_x=False``, only ``obs``/``var``)."""
    import anndata  # noqa: PLC0415
    import pandas as pd  # noqa: PLC0415

    obs = pd.DataFrame(index=[f"cell{i}" for i in range(csr.shape[0])])
    var = pd.DataFrame(index=[f"gene{j}" for j in range(csr.shape[1])])
    adata = anndata.AnnData(X=csr if with_x else None, obs=obs, var=var)
    adata.write_h5ad(path)


def truncate(path: Path, keep: float = 0.5) -> None:
    """Cut a file to ``keep`` of its size."""
    size = path.stat().st_size
    with path.open("r+b") as f:
        f.truncate(int(size * keep))


def scribble(path: Path, start: int = 0, length: int | None = None, value: int = 0xA5) -> None:
    """Overwrite ``length`` bytes (default: to the end) from byte ``start`` with ``value``: a corrupt file."""
    size = path.stat().st_size
    count = size - start if length is None else min(length, max(0, size - start))
    with path.open("r+b") as f:
        f.seek(start)
        f.write(bytes([value]) * count)
