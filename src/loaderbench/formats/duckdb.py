"""A DuckDB database file with one table ``images``, read back as Arrow."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loaderbench.formats import atomic_output, check_table, has_magic, library_errors
from loaderbench.formats.base import FormatError, FormatInfo

INFO = FormatInfo(
    name="duckdb",
    label="DuckDB (file)",
    kind="table",
    filename="images.duckdb",
    requires=("duckdb",),
)

TABLE = "images"


def connect(database: str = ":memory:", read_only: bool = False) -> Any:
    """A DuckDB connection without the progress bar (it would draw over our progress lines and the results)."""
    import duckdb  # noqa: PLC0415

    con = duckdb.connect(database, read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    return con


def write(table: pa.Table, images: np.ndarray, path: Path) -> None:
    """``CREATE TABLE images AS SELECT * FROM src`` from the registered Arrow table, in a new database file."""
    with atomic_output(path) as tmp:
        with connect(str(tmp)) as con:
            con.register("src", table)
            con.execute(f"CREATE TABLE {TABLE} AS SELECT * FROM src")
            con.execute("CHECKPOINT")
        wal = tmp.with_name(tmp.name + ".wal")
        if wal.exists():  # a clean close checkpoints; a leftover log would be orphaned by the rename
            raise RuntimeError(f"DuckDB left a write-ahead log at {wal}")


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """``SELECT * FROM images ORDER BY row_id`` on a read-only connection, as a ``pa.Table``."""
    if not looks_like(path):  # a clear line for a foreign file, before DuckDB tries to open it
        raise FormatError(f"{path}: not a DuckDB database file")
    with library_errors(path, INFO.label), connect(str(path), read_only=True) as con:
        tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if TABLE not in tables:
            raise FormatError(f"{path}: no table {TABLE!r} (tables: {', '.join(sorted(tables)) or 'none'})")
        columns = {row[0] for row in con.execute(f"DESCRIBE {TABLE}").fetchall()}
        order = " ORDER BY row_id" if "row_id" in columns else ""
        table = con.sql(f"SELECT * FROM {TABLE}{order}").to_arrow_table()
    return check_table(table, path, column)


def looks_like(path: Path) -> bool:
    """A DuckDB database file (``DUCK`` magic at byte 8)."""
    return has_magic(path, b"DUCK", offset=8)
