"""Arrow IPC file format, uncompressed, read through a memory map (no copy, no decode); its read unit is the
record batch."""

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
    project_image,
    take_local,
)

INFO = FormatInfo(
    name="arrow_ipc",
    label="Arrow IPC (mmap)",
    kind="table",
    filename="images.arrow",
    requires=("pyarrow",),
    block_reads=True,
    read_unit="record batch",
    random_access=True,  # one row: the pages holding it, no decode
    unit_chosen_by_writer=True,
    concurrent_reads=False,  # the C++ IPC file reader is not documented reentrant (ARROW-11772)
    block_views=True,
)


def write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
    """Stream ``data`` into an uncompressed Arrow IPC file (Feather v2 layout), one record batch per unit."""
    data = check_stream(data)
    size, batches = unit_batches(data, rows_per_unit)
    with atomic_output(path) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, data.schema) as writer:
        for batch in batches:
            writer.write_batch(batch)
    return unit_record(INFO.read_unit, size)


def read_table(path: Path, column: str | None = None) -> pa.Table:
    """``pa.ipc.open_file(pa.memory_map(path)).read_all()``: buffers point into the mapped file."""
    with library_errors(path, INFO.label):
        table = pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()
    return check_table(table, path, column)


class ArrowIpcBlockReader(BlockReader):
    """Record batches of a memory-mapped IPC file: ``get_batch(k)`` is zero-copy (its buffers point into the map),
    the projection picks two children of the struct (no copy), and contiguous rows are a slice (no copy); scattered
    rows are a ``take`` of just those rows. One row touches only the pages that hold it.

    The map stays valid if the file is deleted (Linux keeps the inode), but a file *truncated* under a live map
    faults (SIGBUS) on access: every read first checks that the file is unchanged (size, mtime, inode) and raises
    ``FormatError`` otherwise, but a table already returned still points into the map. ``copy_rows=True`` returns
    tables that own their buffers (one deep copy of the asked rows, contiguous or not), which a later truncation
    cannot reach, at the cost of one copy of the rows read. Arrow's IPC file reader is not documented as reentrant, so
    reads are serialised (they are cheap: no decode).
    """

    info = INFO

    def __init__(self, path: str | Path, column: str | None = None, *, copy_rows: bool = False,
                 layout: tuple[tuple[int, ...], str, np.ndarray, str] | None = None) -> None:
        self.copy_rows = copy_rows
        # (file identity, column, batch lengths, pixel field) of a reader this one reopens
        self._layout = layout
        super().__init__(path, column)

    def _open(self, column: str | None) -> tuple[int, np.ndarray]:
        self._map = pa.memory_map(str(self.path), "r")
        self._file = pa.ipc.open_file(self._map)
        schema = self._file.schema
        self.column = ome_column(schema, str(self.path), column)
        self._index = schema.get_field_index(self.column)
        # A reopened reader takes the lengths the first one read, unless the file has changed: each length is in
        # its batch's own metadata, spread over the file, so reading them again costs a seek per batch when cold.
        shared = self._layout if self._layout and self._layout[:2] == (self._opened_as, self.column) else None
        if shared is None:
            # batch lengths from each batch's metadata (zero-copy: nothing of the body is touched)
            sizes = np.array([self._file.get_batch(k).num_rows for k in range(self._file.num_record_batches)],
                             np.int64)
        else:
            sizes = shared[2]
        self._batches = np.flatnonzero(sizes > 0)
        self.pixel_field = shared[3] if shared else pixel_field(schema.field(self.column).type,
                                                                 self._chunks_on_first_row, self.path)
        self._layout = (self._opened_as, self.column, sizes, self.pixel_field)
        kept = sizes[self._batches]
        return int(kept.sum()), np.concatenate(([0], np.cumsum(kept)[:-1])).astype(np.int64)

    def _chunks_on_first_row(self) -> int:
        if not len(self._batches):
            return 0
        struct = self._file.get_batch(int(self._batches[0])).column(self._index)
        return first_list_length(struct.field("chunks").slice(0, 1))

    def _read(self, rows: np.ndarray) -> pa.Table:
        units = self.unit_of(rows)
        cuts = np.flatnonzero(np.diff(units)) + 1
        chunks = []
        for part in np.split(rows, cuts):
            unit = int(units[np.searchsorted(rows, part[0])])
            struct = self._file.get_batch(int(self._batches[unit])).column(self._index)
            self.count_calls()
            projected = pa.table({"image": project_image(struct, self.fields)})
            local = part - self.unit_starts[unit]
            chunks.extend(take_local(projected, local).column(0).chunks)
        if self.copy_rows:
            # one deep copy of just the rows read, at memcpy speed (a ``take`` of nested lists was ~13x slower)
            return image_table(pa.chunked_array([pa.concat_arrays(chunks)]))
        return image_table(pa.chunked_array(chunks))

    def _reopen_options(self) -> dict[str, Any]:
        return {"copy_rows": self.copy_rows, "layout": self._layout}

    def _release(self) -> None:
        mapped = getattr(self, "_map", None)
        self._file = None
        if mapped is not None:
            mapped.close()


def block_reader(path: Path, column: str | None = None, *, copy_rows: bool = True) -> ArrowIpcBlockReader:
    """An ``ArrowIpcBlockReader`` over ``path``. By default each read's rows are copied out of the map, so a block a
    loader holds cannot fault when the file is truncated under it (the copy costs one memcpy of the rows read, as a
    plain ``read`` would); ``copy_rows=False`` gives zero-copy views into the map."""
    return ArrowIpcBlockReader(path, column, copy_rows=copy_rows)


def looks_like(path: Path) -> bool:
    """An Arrow IPC file (``ARROW1`` magic)."""
    return has_magic(path, b"ARROW1")
