"""The storage formats: a registry of one module per format, plus what their modules share.

Each module follows the contract in ``formats/base.py``. Libraries are imported inside the functions, so this
package imports without them and a missing library makes only its format unavailable.

The shared helpers (``atomic_output``, ``library_errors``, ``check_table``, ...) are defined before the format
modules are imported at the bottom, because those modules import them from here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaderbench.config import ALL_FORMATS
from loaderbench.formats.base import (
    BlockReader,
    FormatError,
    FormatInfo,
    FormatUnavailable,
    ImageStream,
    check_rows_per_unit,
    default_rows_per_unit,
    library_errors,
    one_line,
)
from loaderbench.ome_image import OME_COLUMN

ROW_ID = "row_id"
#: schema metadata key: the image column's name in the file, before ``check_table`` named it ``ome_image``
SOURCE_COLUMN_KEY = b"loaderbench.ome_column"

__all__ = [
    "FORMATS",
    "ROW_ID",
    "BlockReader",
    "FormatError",
    "FormatInfo",
    "FormatUnavailable",
    "ImageStream",
    "atomic_output",
    "check_stream",
    "check_table",
    "compact_batch",
    "detect_format",
    "get_format",
    "has_magic",
    "is_ome_struct",
    "library_errors",
    "ome_column",
    "one_line",
    "remove_path",
    "sorted_items",
    "source_column",
    "unit_batches",
    "unit_record",
]


def remove_path(path: Path) -> None:
    """Delete a file or a directory tree if it exists (partial outputs, stale temp names)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


@contextlib.contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success it replaces ``path``, on failure it is removed.

    Works for files and directories. Readers never see a half-written dataset under the final name.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    remove_path(tmp)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"the writer created nothing at {tmp}")
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)  # os.replace cannot replace a non-empty directory
        os.replace(tmp, path)
    except BaseException:
        _remove_until_gone(tmp)
        raise


def _remove_until_gone(path: Path, settle_s: float = 2.0) -> None:
    """Remove ``path``, again until it stays gone (at most ``settle_s``): after Ctrl-C a library's own I/O thread
    (zarr's event loop) may finish a write it had begun, recreating the folder the interrupted writer was filling."""
    deadline = time.monotonic() + settle_s
    while True:
        remove_path(path)
        time.sleep(0.05)
        if not path.exists() or time.monotonic() > deadline:
            return


def is_ome_struct(data_type: pa.DataType) -> bool:
    """Whether an Arrow type looks like an OME-Arrow image: a struct with ``pixels_meta`` and ``planes`` or
    ``chunks``."""
    if not pa.types.is_struct(data_type):
        return False
    fields = {data_type.field(i).name for i in range(data_type.num_fields)}
    return "pixels_meta" in fields and bool(fields & {"planes", "chunks"})


def ome_column(schema: pa.Schema, where: str, column: str | None = None) -> str:
    """The name of the OME-Arrow image column of ``schema``: ``column`` when given, else ``ome_image``, else the
    one struct column that looks like OME-Arrow (``ome_arrow.to_ome_parquet`` names it ``image``).

    ``FormatError`` starting with ``where`` when the named column is missing or not OME-Arrow, or when no column or
    several columns qualify (listing them, and how to name one).
    """
    names = schema.names
    candidates = [f.name for f in schema if is_ome_struct(f.type)]
    listed = f"columns: {', '.join(names) or 'none'}"
    if column:
        if column not in names:
            found = f"; OME-Arrow image columns: {', '.join(candidates)}" if candidates else ""
            raise FormatError(f"{where}: no column {column!r} ({listed}{found})")
        chosen = column
    elif OME_COLUMN in names:
        chosen = OME_COLUMN
    elif len(candidates) == 1:
        return candidates[0]
    elif candidates:
        raise FormatError(f"{where}: {len(candidates)} OME-Arrow image columns ({', '.join(candidates)}): name the "
                          "one to read with --column NAME (column=NAME in Python)")
    elif {"image_id", "chunk_id", "pixel_bytes"} <= set(names):
        raise FormatError(f"{where}: a table of one chunk per row (ome_arrow.write_ome_arrow_dataset), not one "
                          "image per row; write one OME-Arrow image per row (ome_arrow.from_numpy, to_ome_parquet) "
                          f"({listed})")
    else:
        raise FormatError(f"{where}: no {OME_COLUMN!r} column and no other OME-Arrow image column (a struct with "
                          f"pixels_meta and planes/chunks; {listed})")
    data_type = schema.field(chosen).type
    others = [c for c in candidates if c != chosen]
    hint = f"; OME-Arrow image column(s) here: {', '.join(others)} (--column NAME)" if others else ""
    if not pa.types.is_struct(data_type):
        raise FormatError(f"{where}: column {chosen!r} is {data_type}, not an OME-Arrow struct{hint}")
    if not is_ome_struct(data_type):
        found = ", ".join(sorted(data_type.field(i).name for i in range(data_type.num_fields)))
        raise FormatError(f"{where}: column {chosen!r} lacks pixels_meta and planes/chunks (fields: {found}){hint}")
    return chosen


def source_column(table: pa.Table) -> str:
    """The name the image column had in the file ``check_table`` read (``ome_image`` when it was not renamed)."""
    return ((table.schema.metadata or {}).get(SOURCE_COLUMN_KEY) or OME_COLUMN.encode()).decode()


def check_table(table: pa.Table, path: Path, column: str | None = None) -> pa.Table:
    """Check a table read from ``path`` is an OME-Arrow image table; return it as the loaders read it.

    The image column is ``column``, else ``ome_image``, else the one OME-Arrow struct column (``ome_column``); it
    comes back named ``ome_image`` (its name in the file is kept in the schema metadata, ``source_column``), beside
    ``row_id`` when the file has one. ``row_id`` is optional: when present it must be integers without nulls and
    the rows come back sorted by it; when absent, row order is file order. At least one row is needed.
    """
    chosen = ome_column(table.schema, str(path), column)
    names = table.schema.names
    keep = [chosen]
    if ROW_ID in names and chosen != ROW_ID:
        if not pa.types.is_integer(table.schema.field(ROW_ID).type):
            raise FormatError(f"{path}: column {ROW_ID!r} is {table.schema.field(ROW_ID).type}, not an integer "
                              "(row_id is optional: without it, rows are read in file order)")
        keep = [ROW_ID, chosen]
    if table.num_rows == 0:
        raise FormatError(f"{path}: the table has no rows")
    if len(keep) == 2:
        row_ids = table.column(ROW_ID)
        if row_ids.null_count:
            raise FormatError(f"{path}: column {ROW_ID!r} has {row_ids.null_count} null values")
        if table.num_rows > 1:
            ids = row_ids.to_numpy()
            if not bool(np.all(ids[1:] > ids[:-1])):
                table = table.take(pc.sort_indices(row_ids))
    # Select and rename are metadata only: the buffers (memory-mapped ones included) are not copied.
    table = table.select(keep).rename_columns([*keep[:-1], OME_COLUMN])
    return table.replace_schema_metadata({**(table.schema.metadata or {}), SOURCE_COLUMN_KEY: chosen.encode()})


def has_magic(path: Path, magic: bytes, offset: int = 0) -> bool:
    """Whether ``path`` is a file holding ``magic`` at byte ``offset`` (format sniffing)."""
    if not path.is_file():
        return False
    with path.open("rb") as f:
        f.seek(offset)
        return f.read(len(magic)) == magic


def sorted_items(paths: list[Path]) -> list[Path]:
    """Paths in natural name order (``img_2`` before ``img_10``): the row order of a directory dataset."""

    def key(p: Path) -> list[tuple[int, int | str]]:
        return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", p.name)]

    return sorted(paths, key=key)


# --- writers: the stream cut into read units ------------------------------------------------------------------


def check_stream(data: Any) -> ImageStream:
    """``data`` if it is an ``ImageStream``, else ``TypeError`` (before anything is created on disk)."""
    if not isinstance(data, ImageStream):
        raise TypeError(f"a format writer takes an ImageStream, got {type(data).__name__}")
    return data


def unit_batches(data: ImageStream, rows_per_unit: int | None) -> tuple[int, Iterator[pa.RecordBatch]]:
    """The unit size and the stream's record batches cut to it (one pass over ``data.batches()``).

    ``rows_per_unit`` ``None`` picks ``default_rows_per_unit`` of the first batch (about 32 MiB of Arrow data).
    Every batch but the last holds exactly that many rows: a batch that holds several units is sliced (no copy), a
    unit that spans several batches is concatenated (one copy of that unit). So a writer holds one unit at a time.
    """
    check_stream(data)
    if rows_per_unit is not None:
        rows_per_unit = check_rows_per_unit(rows_per_unit)
    source = (batch for batch, _pixels in data.batches())
    first = next(source, None)
    if first is None:
        return rows_per_unit or 1, iter(())
    size = rows_per_unit or default_rows_per_unit(first)
    return size, _rebatch(itertools.chain([first], source), size, data.schema)


def _rebatch(batches: Iterator[pa.RecordBatch], size: int, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    pending: list[pa.RecordBatch] = []
    held = 0
    for batch in batches:
        if not batch.schema.equals(schema):
            raise ValueError(f"a record batch of the stream has schema {batch.schema}, not the stream's {schema}")
        start = 0
        while start < batch.num_rows:
            piece = batch.slice(start, min(size - held, batch.num_rows - start))
            pending.append(piece)
            held += piece.num_rows
            start += piece.num_rows
            if held == size:
                yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
                pending, held = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def compact_batch(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` with its arrays starting at offset 0 (a copy only when one of them is a slice).

    Lance and Vortex (arrow-rs) panic on sliced struct arrays ("assertion failed: end <= self.len()"), so their
    writers hand them compact batches.
    """
    if not any(column.offset for column in batch.columns):
        return batch
    return batch.take(pa.array(np.arange(batch.num_rows, dtype=np.int64)))


def unit_record(read_unit: str, rows_per_unit: int) -> dict[str, Any]:
    """What a writer returns for the manifest: the read unit it used and its rows."""
    return {"read_unit": read_unit, "rows_per_unit": int(rows_per_unit)}


# The format modules import the helpers above from this package, so they come after them.
from loaderbench.formats import (  # noqa: E402
    arrow_ipc,
    duckdb,
    lance,
    ome_zarr,
    parquet,
    parquet_duckdb,
    tiff,
    vortex,
)

_MODULES: dict[str, ModuleType] = {
    m.INFO.name: m for m in (parquet, parquet_duckdb, lance, vortex, duckdb, tiff, ome_zarr, arrow_ipc)
}

#: format name -> module, in the order of ``config.ALL_FORMATS``
FORMATS: dict[str, ModuleType] = {name: _MODULES[name] for name in ALL_FORMATS}


def get_format(name: str) -> ModuleType:
    """The module of format ``name``; ``FormatError`` listing the known names otherwise."""
    try:
        return FORMATS[name]
    except KeyError:
        raise FormatError(f"unknown format {name!r} (known: {', '.join(FORMATS)})") from None


def detect_format(path: Path) -> str:
    """The name of the format whose ``looks_like`` accepts ``path`` (first in registry order)."""
    path = Path(path)
    if not path.exists():
        raise FormatError(f"{path}: no such file or directory")
    for name, module in FORMATS.items():
        try:
            if module.looks_like(path):
                return name
        except OSError:
            continue
    if (path / "_ome_arrow_dataset.json").is_file():  # ome_arrow.write_ome_arrow_dataset: one chunk per row
        raise FormatError(f"{path}: an ome_arrow.write_ome_arrow_dataset folder (one chunk per row), which loaderbench "
                          "does not read; write one OME-Arrow image per row (ome_arrow.to_ome_parquet, or "
                          "ome_arrow.from_numpy into a pyarrow table)")
    raise FormatError(f"{path} is not a dataset of any supported format ({', '.join(FORMATS)})")
