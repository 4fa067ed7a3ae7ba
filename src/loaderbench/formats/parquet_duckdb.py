"""Parquet written and read by DuckDB (``COPY ... TO`` / ``read_parquet``), zstd-compressed as the seed wrote it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from loaderbench.formats import atomic_output, check_table, has_magic, library_errors
from loaderbench.formats.base import FormatInfo
from loaderbench.formats.duckdb import connect
from loaderbench.formats.parquet import created_by

INFO = FormatInfo(
    name="parquet_duckdb",
    label="Parquet (DuckDB)",
    kind="table",
    filename="images_duckdb.parquet",
    requires=("duckdb",),
)


def _quote(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def write(table: pa.Table, images: np.ndarray, path: Path) -> None:
    """``COPY (SELECT * FROM tbl) TO 'x.parquet' (FORMAT PARQUET, COMPRESSION ZSTD)`` with the Arrow table registered
    as ``tbl`` (the seed's statement; DuckDB's default, snappy, doubles the file)."""
    with atomic_output(path) as tmp, connect() as con:
        con.register("tbl", table)
        # COPY takes no bound parameter for its target, so the path is quoted as an SQL string literal.
        con.execute(f"COPY (SELECT * FROM tbl) TO {_quote(tmp)} (FORMAT PARQUET, COMPRESSION ZSTD)")


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """The whole table via ``con.sql("SELECT * FROM read_parquet(?)").to_arrow_table()`` (a ``pa.Table``)."""
    with library_errors(path, INFO.label), connect() as con:
        table = con.sql("SELECT * FROM read_parquet(?)", params=[str(path)]).to_arrow_table()
    return check_table(table, path, column)


def looks_like(path: Path) -> bool:
    """A Parquet file whose footer says DuckDB wrote it."""
    return has_magic(path, b"PAR1") and created_by(path).startswith("DuckDB")
