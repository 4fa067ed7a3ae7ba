"""Parquet written and read by pyarrow (zstd), the seed's main format; its read unit is the row group."""

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
    ome_column,
    unit_batches,
    unit_record,
)
from loaderbench.formats.base import (
    BlockReader,
    FormatInfo,
    ImageStream,
    first_list_length,
    image_table,
    pixel_field,
    take_local,
)

INFO = FormatInfo(
    name="parquet",
    label="Parquet (pyarrow)",
    kind="table",
    filename="images.parquet",
    requires=("pyarrow.parquet",),
    block_reads=True,
    read_unit="row group",
    random_access=True,  # one row group
    unit_chosen_by_writer=True,
    concurrent_reads=False,
)


def write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
    """Stream ``data`` into one zstd-compressed Parquet file with ``pq.ParquetWriter``, one row group of
    ``rows_per_unit`` rows per ``write_batch`` (a row group is held in memory while it is written: one unit)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    data = check_stream(data)
    size, batches = unit_batches(data, rows_per_unit)
    with atomic_output(path) as tmp, pq.ParquetWriter(tmp, data.schema, compression="zstd") as writer:
        for batch in batches:
            writer.write_batch(batch, row_group_size=size)
    return unit_record(INFO.read_unit, size)


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """The whole table via ``pyarrow.parquet.read_table``."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    with library_errors(path, INFO.label):
        table = pq.read_table(path)
    return check_table(table, path, column)


class ParquetBlockReader(BlockReader):
    """Row groups through one open ``pq.ParquetFile``: the footer gives the row-group boundaries; a read decodes
    only the row groups holding an asked row, one at a time (memory: one row group), with nested-column projection
    (``columns=["ome_image.pixels_meta", "ome_image.chunks"]``), then takes the asked rows (a zero-copy slice when
    they are contiguous). One row costs its whole row group (Parquet cannot decode part of one here).

    ``use_threads`` lets pyarrow decode a row group's columns in parallel. A ``ParquetFile`` is not documented as
    safe for concurrent calls: reads are serialised (one reader per thread to read in parallel).
    """

    info = INFO

    def __init__(self, path: str | Path, column: str | None = None, *, use_threads: bool = True,
                 footer: tuple[tuple[int, ...], Any] | None = None) -> None:
        self.use_threads = use_threads
        self._footer = footer  # (file identity, parsed FileMetaData) of a reader this one reopens
        super().__init__(path, column)

    def _open(self, column: str | None) -> tuple[int, np.ndarray]:
        import pyarrow.parquet as pq  # noqa: PLC0415

        # A reopened reader takes the parsed footer of the first (it is immutable), unless the file has changed.
        shared = self._footer[1] if self._footer and self._footer[0] == self._opened_as else None
        self._file = pq.ParquetFile(str(self.path), metadata=shared)  # keeps the file open for the reader's life
        self._footer = (self._opened_as, shared if shared is not None else self._file.metadata)
        schema = self._file.schema_arrow
        self.column = ome_column(schema, str(self.path), column)
        sizes = np.array([self._file.metadata.row_group(i).num_rows for i in range(self._file.num_row_groups)],
                         dtype=np.int64)
        self._groups = np.flatnonzero(sizes > 0)  # unit -> row group (empty row groups hold no unit)
        self.pixel_field = pixel_field(schema.field(self.column).type, self._chunks_on_first_row, self.path)
        self._columns = [f"{self.column}.{name}" for name in self.fields]
        kept = sizes[self._groups]
        return int(kept.sum()), np.concatenate(([0], np.cumsum(kept)[:-1])).astype(np.int64)

    def _chunks_on_first_row(self) -> int:
        """Chunks of row 0, from one leaf of ``chunks`` (a few bytes, not the pixels)."""
        if not len(self._groups):
            return 0
        paths = [self._file.schema.column(i).path for i in range(len(self._file.schema))]
        leaf = next(p for p in paths if p.startswith(f"{self.column}.chunks."))
        batch = next(self._file.iter_batches(batch_size=1, row_groups=[int(self._groups[0])], columns=[leaf]))
        return first_list_length(batch.column(0).field("chunks"))

    def _read(self, rows: np.ndarray) -> pa.Table:
        units = self.unit_of(rows)
        cuts = np.flatnonzero(np.diff(units)) + 1
        pieces = []
        for part in np.split(rows, cuts):
            unit = int(units[np.searchsorted(rows, part[0])])
            group = self._file.read_row_group(int(self._groups[unit]), columns=self._columns,
                                              use_threads=self.use_threads)
            self.count_calls()
            pieces.append(take_local(group, part - self.unit_starts[unit]).column(0))
        chunks = [chunk for piece in pieces for chunk in piece.chunks]
        return image_table(pa.chunked_array(chunks, type=pieces[0].type))

    def _reopen_options(self) -> dict[str, Any]:
        return {"use_threads": self.use_threads, "footer": self._footer}

    def _release(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()


def block_reader(path: Path, column: str | None = None) -> ParquetBlockReader:
    """A ``ParquetBlockReader`` over ``path`` (``FormatError`` when it is not a readable OME-Arrow Parquet file)."""
    return ParquetBlockReader(path, column)


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
