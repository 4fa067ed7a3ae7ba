"""The storage formats: a registry of one module per format, plus what their modules share.

Each module follows the contract in ``formats/base.py``. Libraries are imported inside the functions, so this
package imports without them and a missing library makes only its format unavailable.

The shared helpers (``atomic_output``, ``library_errors``, ``check_table``, ...) are defined before the format
modules are imported at the bottom, because those modules import them from here.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from loaderbench.config import ALL_FORMATS
from loaderbench.formats.base import FormatError, FormatInfo, FormatUnavailable
from loaderbench.ome_image import OME_COLUMN

ROW_ID = "row_id"

__all__ = [
    "FORMATS",
    "ROW_ID",
    "FormatError",
    "FormatInfo",
    "FormatUnavailable",
    "atomic_output",
    "check_table",
    "detect_format",
    "get_format",
    "has_magic",
    "library_errors",
    "one_line",
    "remove_path",
    "sorted_items",
]


def one_line(exc: BaseException) -> str:
    """An exception as one short line: its type and its message, without native backtraces."""
    text = str(exc)
    for marker in ("Backtrace:", "Stack backtrace:"):  # Rust libraries (Vortex, Lance) append native frames
        text = text.split(marker, 1)[0]
    text = " ".join(text.split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


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
        remove_path(tmp)
        raise


@contextlib.contextmanager
def library_errors(path: Path, what: str) -> Iterator[None]:
    """Turn any exception a library raises while reading ``path`` into a one-line ``FormatError``."""
    try:
        yield
    except FormatError:
        raise
    except Exception as exc:  # libraries raise many types; the user needs one clear line
        raise FormatError(f"{path}: cannot read as {what}: {one_line(exc)}") from exc


def check_table(table: pa.Table, path: Path) -> pa.Table:
    """Check a table read from ``path`` is an OME-Arrow image table; return it in ``row_id`` order.

    Needs a ``row_id`` integer column and an ``ome_image`` struct with ``pixels_meta`` and ``planes`` or
    ``chunks``, and at least one row. Rows out of order are sorted by ``row_id``.
    """
    names = table.schema.names
    if OME_COLUMN not in names:
        raise FormatError(f"{path}: no {OME_COLUMN!r} column (columns: {', '.join(names) or 'none'})")
    ome_type = table.schema.field(OME_COLUMN).type
    if not pa.types.is_struct(ome_type):
        raise FormatError(f"{path}: column {OME_COLUMN!r} is {ome_type}, not an OME-Arrow struct")
    fields = {ome_type.field(i).name for i in range(ome_type.num_fields)}
    if "pixels_meta" not in fields or not fields & {"planes", "chunks"}:
        found = ", ".join(sorted(fields))
        raise FormatError(f"{path}: column {OME_COLUMN!r} lacks pixels_meta and planes/chunks (fields: {found})")
    if ROW_ID not in names:
        raise FormatError(f"{path}: no {ROW_ID!r} column (columns: {', '.join(names)})")
    if not pa.types.is_integer(table.schema.field(ROW_ID).type):
        raise FormatError(f"{path}: column {ROW_ID!r} is {table.schema.field(ROW_ID).type}, not an integer")
    if table.num_rows == 0:
        raise FormatError(f"{path}: the table has no rows")
    row_ids = table.column(ROW_ID)
    if row_ids.null_count:
        raise FormatError(f"{path}: column {ROW_ID!r} has {row_ids.null_count} null values")
    if table.num_rows > 1:
        ids = row_ids.to_numpy()
        if not bool(np.all(ids[1:] > ids[:-1])):
            table = table.take(pc.sort_indices(row_ids))
    return table


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
    raise FormatError(f"{path} is not a dataset of any supported format ({', '.join(FORMATS)})")
