"""Parquet written and read by pyarrow (zstd), the seed's main format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from loaderbench.formats import atomic_output, check_table, has_magic, library_errors
from loaderbench.formats.base import FormatInfo

INFO = FormatInfo(
    name="parquet",
    label="Parquet (pyarrow)",
    kind="table",
    filename="images.parquet",
    requires=("pyarrow.parquet",),
)


def write(table: pa.Table, images: np.ndarray, path: Path) -> None:
    """Store ``table`` as one zstd-compressed Parquet file."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """The whole table via ``pyarrow.parquet.read_table``."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    with library_errors(path, INFO.label):
        table = pq.read_table(path)
    return check_table(table, path, column)


def created_by(path: Path) -> str:
    """The writer named in a Parquet footer ("" when the footer cannot be read)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        return pq.read_metadata(path).created_by or ""
    except (OSError, pa.ArrowException):
        return ""


def looks_like(path: Path) -> bool:
    """A Parquet file (``PAR1`` magic) not written by DuckDB (those are ``parquet_duckdb``)."""
    return has_magic(path, b"PAR1") and not created_by(path).startswith("DuckDB")
