"""Parquet written and read by DuckDB (``COPY ... TO`` / ``read_parquet``), zstd-compressed as the seed wrote it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loaderbench.formats import (
    atomic_output,
    check_stream,
    check_table,
    has_magic,
    library_errors,
    unit_batches,
    unit_record,
)
from loaderbench.formats.base import FormatInfo, ImageStream
from loaderbench.formats.duckdb import DuckDBBlockReader, connect, quote
from loaderbench.formats.parquet import created_by

INFO = FormatInfo(
    name="parquet_duckdb",
    label="Parquet (DuckDB)",
    kind="table",
    filename="images_duckdb.parquet",
    requires=("duckdb",),
    block_reads=True,
    read_unit="row group",
    random_access=True,  # a range query touches one row group (footer statistics of the key)
    unit_chosen_by_writer=True,
    concurrent_reads=False,  # one DuckDB connection runs one query at a time
)


def write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
    """``COPY (SELECT * FROM tbl) TO 'x.parquet' (FORMAT PARQUET, COMPRESSION ZSTD, ROW_GROUP_SIZE n)`` with a
    ``RecordBatchReader`` over ``data`` registered as ``tbl`` (the seed's statement; DuckDB's default, snappy,
    doubles the file), streamed. DuckDB makes a row group of each record batch it is handed that fits in
    ``ROW_GROUP_SIZE``, so the batches are cut to ``rows_per_unit`` rows first: every row group but the last holds
    exactly that many. DuckDB buffers record batches to keep their order (its own memory limit bounds it: about
    2 GB at most for 100x100 images on 2 threads, whatever the dataset's size)."""
    data = check_stream(data)
    size, batches = unit_batches(data, rows_per_unit)
    reader = pa.RecordBatchReader.from_batches(data.schema, batches)
    with atomic_output(path) as tmp, connect() as con:
        con.register("tbl", reader)
        con.execute(f"COPY (SELECT * FROM tbl) TO {quote(tmp)} (FORMAT PARQUET, COMPRESSION ZSTD, "
                    f"ROW_GROUP_SIZE {size})")
        con.unregister("tbl")
    return unit_record(INFO.read_unit, size)


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """The whole table via ``con.sql("SELECT * FROM read_parquet(?)").to_arrow_table()`` (a ``pa.Table``)."""
    with library_errors(path, INFO.label), connect() as con:
        table = con.sql("SELECT * FROM read_parquet(?)", params=[str(path)]).to_arrow_table()
    return check_table(table, path, column)


class ParquetDuckDBBlockReader(DuckDBBlockReader):
    """``DuckDBBlockReader`` over ``read_parquet(path, file_row_number=true)`` on an in-memory connection (footer
    cache on, so a read does not parse the footer again); units are the file's row groups (``parquet_metadata``).
    DuckDB decodes a whole row group for one row of it (about 0.1 s for 833 images of 100x100)."""

    info = INFO
    position_column = "file_row_number"

    def _connect(self) -> Any:
        con = connect()
        con.execute("SET parquet_metadata_cache = true")
        return con

    def _source(self) -> str:
        return f"read_parquet({quote(self.path)}, file_row_number = true)"

    def _unit_sizes(self) -> np.ndarray:
        groups = self._con.execute("SELECT DISTINCT row_group_id, row_group_num_rows FROM parquet_metadata(?) "
                                   "ORDER BY 1", [str(self.path)]).fetchall()
        return np.array([int(rows) for _, rows in groups if rows], dtype=np.int64)


def block_reader(path: Path, column: str | None = None) -> ParquetDuckDBBlockReader:
    """A ``ParquetDuckDBBlockReader`` over ``path``."""
    return ParquetDuckDBBlockReader(path, column)


def looks_like(path: Path) -> bool:
    """A Parquet file whose footer says DuckDB wrote it."""
    return has_magic(path, b"PAR1") and created_by(path).startswith("DuckDB")
