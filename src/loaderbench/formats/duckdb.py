"""A DuckDB database file with one table ``images``, read back as Arrow; its read unit is DuckDB's row group."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loaderbench.formats import (
    ROW_ID,
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
    OME_COLUMN,
    BlockReader,
    FormatError,
    FormatInfo,
    ImageStream,
    image_table,
    pixel_field,
)

INFO = FormatInfo(
    name="duckdb",
    label="DuckDB (file)",
    kind="table",
    filename="images.duckdb",
    requires=("duckdb",),
    block_reads=True,
    read_unit="row group",
    random_access=True,  # a range query touches one row group (zone maps on the key)
    unit_chosen_by_writer=True,  # in multiples of 2,048 rows
    concurrent_reads=False,  # one DuckDB connection runs one query at a time
)

TABLE = "images"
#: DuckDB's vector size: row groups are multiples of it
VECTOR_SIZE = 2048


def connect(database: str = ":memory:", read_only: bool = False) -> Any:
    """A DuckDB connection without the progress bar (it would draw over our progress lines and the results)."""
    import duckdb  # noqa: PLC0415

    con = duckdb.connect(database, read_only=read_only)
    con.execute("SET enable_progress_bar = false")
    return con


def quote(path: Path) -> str:
    """``path`` as an SQL string literal (``COPY`` and ``ATTACH`` take no bound parameter for a path)."""
    return "'" + str(path).replace("'", "''") + "'"


def storage_row_group_size(rows_per_unit: int) -> int:
    """DuckDB's row-group size for ``rows_per_unit``: rounded up to a multiple of its vector size (2,048 rows),
    the only sizes DuckDB accepts."""
    return -(-rows_per_unit // VECTOR_SIZE) * VECTOR_SIZE


def write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
    """``CREATE TABLE images AS SELECT * FROM src`` with a ``RecordBatchReader`` over ``data`` registered as
    ``src`` (DuckDB streams it into storage), in a new database file attached with ``ROW_GROUP_SIZE`` =
    ``rows_per_unit`` rounded up to a multiple of 2,048 (DuckDB's vector size; default 122,880).

    The writing connection runs one thread: with several, each thread fills its own row groups and the file gets
    row groups of uneven sizes (2,000 where 2,048 were asked); with one, every row group but the last is full.
    """
    data = check_stream(data)
    size, batches = unit_batches(data, rows_per_unit)
    group = storage_row_group_size(size)
    reader = pa.RecordBatchReader.from_batches(data.schema, batches)
    with atomic_output(path) as tmp:
        with connect() as con:
            con.execute("SET threads = 1")
            con.execute(f"ATTACH {quote(tmp)} AS out (ROW_GROUP_SIZE {group})")
            con.register("src", reader)
            con.execute(f"CREATE TABLE out.{TABLE} AS SELECT * FROM src")
            con.unregister("src")
            con.execute("CHECKPOINT out")
            con.execute("DETACH out")
        wal = tmp.with_name(tmp.name + ".wal")
        if wal.exists():  # a clean close checkpoints; a leftover log would be orphaned by the rename
            raise RuntimeError(f"DuckDB left a write-ahead log at {wal}")
    return unit_record(INFO.read_unit, group)


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


def identifier(name: str) -> str:
    """``name`` as a quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


class DuckDBBlockReader(BlockReader):
    """Block reads through one DuckDB connection: one query per read, on a key column that equals the row position
    (``row_id`` when the table has one that does, checked once at open by a scan of that column alone; else the
    table's ``rowid`` or Parquet's ``file_row_number``):

    - contiguous rows: ``WHERE key BETWEEN first AND last``; scattered rows: ``WHERE key IN (...)`` (a literal
      list, which DuckDB pushes into the scan). DuckDB skips the row groups whose key range (zone maps, Parquet
      statistics) holds no asked row, so a read costs the row groups holding the rows, not the file.
    - projection: ``SELECT {'pixels_meta': img.pixels_meta, 'chunks': img.chunks} AS ome_image``: DuckDB reads
      only those fields. The key is selected too and checked against ``rows``; no ``ORDER BY`` (a sort in DuckDB
      copies every row once more): when a parallel scan returns the rows out of order (seen with ``IN`` on
      Parquet), one ``take`` by the keys puts them back.

    ``rowid`` is the insertion order of a table without deletes (every table loaderbench writes).

    A DuckDB connection runs one query at a time: reads are serialised (one reader per thread to read in parallel).
    """

    unit_name = "row group"

    def _open(self, column: str | None) -> tuple[int, np.ndarray]:
        self._con = self._connect()
        source = self._source()
        schema = self._con.sql(f"SELECT * FROM {source} LIMIT 0").to_arrow_table().schema
        self.column = ome_column(schema, str(self.path), column)
        self._key = self._position_key(schema, source)
        image = identifier(self.column)
        sizes = self._unit_sizes()
        self.pixel_field = "planes"
        if int(sizes.sum()):
            self.pixel_field = pixel_field(schema.field(self.column).type, lambda: int(self._con.execute(
                f"SELECT coalesce(len({image}.chunks), 0) FROM {source} LIMIT 1").fetchall()[0][0]), self.path)
        fields = ", ".join(f"'{name}': {image}.{identifier(name)}" for name in self.fields)
        self._select = f"SELECT {{{fields}}} AS {OME_COLUMN}, {self._key} AS key FROM {source}"
        return int(sizes.sum()), np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)

    def _connect(self) -> Any:
        return connect(str(self.path), read_only=True)

    def _source(self) -> str:
        tables = {row[0] for row in self._con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if TABLE not in tables:
            raise FormatError(f"{self.path}: no table {TABLE!r} (tables: {', '.join(sorted(tables)) or 'none'})")
        return TABLE

    #: the key that is the row position whatever the data: the table's insertion order
    position_column = "rowid"

    def _position_key(self, schema: pa.Schema, source: str) -> str:
        """``row_id`` when it is an integer column equal to the position on every row (one pass over it), else
        ``position_column``."""
        if ROW_ID in schema.names and pa.types.is_integer(schema.field(ROW_ID).type) and self.column != ROW_ID:
            differ = self._con.execute(f"SELECT count(*) FROM {source} WHERE {ROW_ID} IS DISTINCT FROM "
                                       f"{self.position_column}").fetchall()[0][0]
            if differ == 0:
                return ROW_ID
        return self.position_column

    def _unit_sizes(self) -> np.ndarray:
        """Rows per row group, from DuckDB's storage info (the segments of the first column's validity)."""
        groups = self._con.execute(f"SELECT row_group_id, sum(count) FROM pragma_storage_info('{TABLE}') WHERE "
                                   "column_id = 0 AND column_path = '[0, 0]' GROUP BY ALL ORDER BY 1").fetchall()
        sizes = np.array([int(count) for _, count in groups if count], dtype=np.int64)
        total = int(self._con.execute(f"SELECT count(*) FROM {TABLE}").fetchall()[0][0])
        if int(sizes.sum()) != total:  # a layout this reading of the storage info does not know: one unit
            return np.array([total], dtype=np.int64)
        return sizes

    def _read(self, rows: np.ndarray) -> pa.Table:
        first, last = int(rows[0]), int(rows[-1])
        if last - first + 1 == rows.size:
            where = f"{self._key} BETWEEN {first} AND {last}"
        else:
            where = f"{self._key} IN ({','.join(map(str, rows.tolist()))})"
        table = self._con.sql(f"{self._select} WHERE {where}").to_arrow_table()
        self.count_calls()
        keys = table.column("key").to_numpy()
        if not np.array_equal(keys, rows):
            if not np.array_equal(np.sort(keys), rows):
                raise FormatError(f"{self.path}: {self.label} returned {len(keys)} rows that are not the "
                                  f"{rows.size} asked for (key {self._key} not unique?)")
            table = table.take(pa.array(np.argsort(keys, kind="stable")))
        return image_table(table.column(OME_COLUMN))

    def _release(self) -> None:
        con = getattr(self, "_con", None)
        if con is not None:
            con.close()


class DuckDBFileBlockReader(DuckDBBlockReader):
    """``DuckDBBlockReader`` over table ``images`` of a database file (read-only connection); units are the
    table's row groups (``ROW_GROUP_SIZE`` at write, 122,880 rows by default)."""

    info = INFO

    def _open(self, column: str | None) -> tuple[int, np.ndarray]:
        if not looks_like(self.path):
            raise FormatError(f"{self.path}: not a DuckDB database file")
        return super()._open(column)


def block_reader(path: Path, column: str | None = None) -> DuckDBFileBlockReader:
    """A ``DuckDBFileBlockReader`` over ``path``."""
    return DuckDBFileBlockReader(path, column)


def looks_like(path: Path) -> bool:
    """A DuckDB database file (``DUCK`` magic at byte 8)."""
    return has_magic(path, b"DUCK", offset=8)
