"""Block readers over the stored forms of a cell x gene matrix, for a streaming loader that reads blocks of cells.

A streaming loader asks, on a background thread, for the entries of a sorted set of cells: ``read(rows)`` with
``rows`` a sorted, unique int64 array of cell ids. Every reader answers with COO Arrow (``soma_dim_0`` int64 *local*
row = the cell's position in ``rows``, ``soma_dim_1`` int64 gene, ``soma_data`` float32), sorted by local row then
gene; a cell without non-zeros has no entries. ``read_rows(rows)`` gives the same cells as CSR rows instead (one Arrow
row per asked cell, ``genes`` and ``values`` lists in stored order: 8 bytes an entry, no row index), which is what the
streaming loader reads. A read costs what the asked cells (and the storage units holding them) cost, never the whole
matrix, and it goes through the format's own library:

- ``CooParquetBlockReader`` (``cells.parquet``): the row groups whose cell range (footer statistics of
  ``soma_dim_0``) holds an asked cell, read one at a time; the cells' entries are found by ``searchsorted`` on the
  (sorted) cell column.
- ``H5adBlockReader`` (``cells.h5ad``) and ``ZarrBlockReader`` (``cells.zarr``, annbatch's layout): the CSR
  ``indptr`` is read once at open (one int64 per cell: 8 MB per million cells, held for the reader's life); a read
  takes one slice of ``indices``/``data`` per run of consecutive asked cells (runs close together are read as one
  slice, see ``coalesce_entries``).
- ``SomaBlockReader`` (``cells.soma``, a TileDB-SOMA ``SparseNDArray`` or an ``Experiment``):
  ``X.read(coords=(rows,)).tables()``, put in order by numpy when TileDB's order is not the asked one.

Each reader also says what its natural read unit is (``unit_name``) and the first cell of each unit
(``unit_starts``), so that a sampler can align its chunks to them, and counts what it did (``counters``).

A reader serialises its own ``read`` calls (a lock): one background thread per reader is the intended use. A bad file
raises ``SparseInputError`` (a ``ValueError``) naming it, at open or at the read that meets the damage; bad ``rows``
raise a plain ``ValueError``.
"""

from __future__ import annotations

import json
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from loaderbench.formats import one_line
from loaderbench.formats.base import check_rows
from loaderbench.sparse.blocks import runs
from loaderbench.sparse.sources import (
    COLUMNS,
    DATA,
    DIM0,
    DIM1,
    SparseInputError,
    _attr,
    _h5_key,
    _shape_metadata,
    matrix_name,
)

#: the table every reader returns
OUTPUT_SCHEMA = pa.schema([pa.field(DIM0, pa.int64()), pa.field(DIM1, pa.int64()), pa.field(DATA, pa.float32())])
#: a unit of a CSR store without chunks (a contiguous HDF5 dataset): about a Parquet row group's worth of entries
DEFAULT_UNIT_ENTRIES = 1 << 20
#: HDF5 slices this close together (in entries) are read as one slice: a slice call costs about as much as copying
#: some 100 kB, so a gap of 32,768 entries (128 kB per array) is cheaper to read than to skip
H5AD_COALESCE_ENTRIES = 1 << 15
#: Zarr chunks this many apart are read in one slice (a zarr call costs about a millisecond, a chunk ~0.1 ms)
ZARR_COALESCE_CHUNKS = 4
#: TileDB space tiles along the cells when the schema does not say
DEFAULT_SOMA_UNIT_CELLS = 2048


@dataclass
class ReadCounters:
    """What a reader has done since it was opened (or ``reset``). ``units`` is the number of natural units touched:
    Parquet row groups read; HDF5/Zarr chunks (or fixed entry ranges) spanned by the slices read; TileDB space tiles
    holding an asked cell (computed from the request: TileDB does not report it)."""

    reads: int = 0  # read() calls
    units: int = 0
    storage_calls: int = 0  # calls into the format's library: row-group reads, slice reads, SOMA queries
    entries_read: int = 0  # entries fetched from storage, before the cells not asked for are dropped
    entries_returned: int = 0

    def reset(self) -> None:
        for item in fields(self):
            setattr(self, item.name, 0)


def concat_ranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, b) for a, b in zip(starts, stops)])`` without the Python loop (int64)."""
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(stops, dtype=np.int64) - starts
    keep = lengths > 0
    starts, lengths = starts[keep], lengths[keep]
    total = int(lengths.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    steps = np.ones(total, dtype=np.int64)
    steps[0] = starts[0]
    at = np.cumsum(lengths)[:-1]  # where each range after the first begins in the output
    steps[at] = starts[1:] - (starts[:-1] + lengths[:-1] - 1)
    return np.cumsum(steps)


def units_from_entries(indptr: np.ndarray, unit_entries: int) -> np.ndarray:
    """First cell of each unit of a CSR store whose units are ``unit_entries`` consecutive entries: unit ``k`` holds
    the cells whose first entry lies in ``[k * unit_entries, (k + 1) * unit_entries)`` (and the empty cells before
    the next such cell); a unit in which no cell begins is merged into the one before."""
    n_obs = len(indptr) - 1
    if n_obs <= 0:
        return np.empty(0, dtype=np.int64)
    bounds = np.arange(0, int(indptr[-1]), max(1, unit_entries), dtype=np.int64)
    starts = np.unique(np.concatenate(([0], np.searchsorted(indptr, bounds, side="left"))))
    return starts[starts < n_obs].astype(np.int64)


def _local_rows(rows: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The position in ``rows`` of each of ``cells`` (non-decreasing, every one in ``rows``): one lookup per
    distinct cell, not per entry."""
    if cells.size == 0:
        return np.empty(0, dtype=np.int64)
    first = np.concatenate(([0], np.flatnonzero(cells[1:] != cells[:-1]) + 1))
    counts = np.diff(np.append(first, cells.size))
    return np.repeat(np.searchsorted(rows, cells[first]).astype(np.int64), counts)


def _in_order(local: np.ndarray, genes: np.ndarray) -> bool:
    return not (local.size > 1 and np.any((local[1:] == local[:-1]) & (genes[1:] < genes[:-1])))


class SparseBlockReader(ABC):
    """What every reader gives: shape, natural unit and its boundaries, ``read(rows)``, counters, ``close()``."""

    unit_name: str = ""
    path: Path
    num_rows: int  # cells
    num_cols: int  # genes
    unit_starts: np.ndarray  # int64, first cell of each natural unit, increasing, starting at 0

    def __init__(self) -> None:
        self.counters = ReadCounters()
        self._lock = threading.Lock()
        self._closed = False

    @property
    def shape(self) -> tuple[int, int]:
        return self.num_rows, self.num_cols

    @property
    def num_units(self) -> int:
        return len(self.unit_starts)

    def unit_range(self, unit: int) -> tuple[int, int]:
        """The cells ``[start, stop)`` of unit ``unit``."""
        if not 0 <= unit < self.num_units:
            raise IndexError(f"unit {unit} out of range: {self.path} has {self.num_units} {self.unit_name}s")
        stop = int(self.unit_starts[unit + 1]) if unit + 1 < self.num_units else self.num_rows
        return int(self.unit_starts[unit]), stop

    def unit_of(self, rows: np.ndarray) -> np.ndarray:
        """The unit holding each of ``rows``."""
        return np.searchsorted(self.unit_starts, np.asarray(rows, dtype=np.int64), side="right") - 1

    def check_rows(self, rows: Any) -> np.ndarray:
        """``rows`` as a 1-D int64 array, or ``ValueError`` when it is not sorted, unique and in ``[0, num_rows)``."""
        return check_rows(rows, self.num_rows, self.path)

    def read(self, rows: Any) -> pa.Table:
        """The entries of cells ``rows`` (sorted, unique) as COO with local rows (see the module docstring)."""
        if self._closed:
            raise ValueError(f"{self.path}: the block reader is closed")
        rows = self.check_rows(rows)
        with self._lock:
            self.counters.reads += 1
            if rows.size == 0:
                return OUTPUT_SCHEMA.empty_table()
            local, genes, values = self._read(rows)
        if genes.size and (int(genes.min()) < 0 or int(genes.max()) >= self.num_cols):
            bad = int(genes.min()) if int(genes.min()) < 0 else int(genes.max())
            raise SparseInputError(f"{self.path}: gene index {bad} is outside [0, {self.num_cols})")
        if not _in_order(local, genes):  # a user's file may list a cell's genes in any order
            order = np.lexsort((genes, local))
            local, genes, values = local[order], genes[order], values[order]
        self.counters.entries_returned += int(local.size)
        return pa.Table.from_arrays([pa.array(local, pa.int64()), pa.array(genes.astype(np.int64, copy=False)),
                                     pa.array(values.astype(np.float32, copy=False))], schema=OUTPUT_SCHEMA)

    def read_rows(self, rows: Any) -> pa.Table:
        """The cells ``rows`` (sorted, unique) as CSR rows: one Arrow row per asked cell, in order, with a ``genes``
        and a ``values`` list (a cell's genes as stored; the consumer sorts them). About 8 bytes an entry where
        ``read`` gives 20, and no row index to expand: what the streaming loader reads."""
        if self._closed:
            raise ValueError(f"{self.path}: the block reader is closed")
        rows = self.check_rows(rows)
        with self._lock:
            self.counters.reads += 1
            if rows.size:
                counts, genes, values = self._read_rows(rows)
            else:
                counts, genes, values = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        if genes.size and (int(genes.min()) < 0 or int(genes.max()) >= self.num_cols):
            bad = int(genes.min()) if int(genes.min()) < 0 else int(genes.max())
            raise SparseInputError(f"{self.path}: gene index {bad} is outside [0, {self.num_cols})")
        self.counters.entries_returned += int(genes.size)
        offsets = pa.array(np.concatenate(([0], np.cumsum(counts))).astype(np.int64, copy=False))
        return pa.table({"genes": pa.LargeListArray.from_arrays(offsets, pa.array(genes)),
                         "values": pa.LargeListArray.from_arrays(offsets,
                                                                 pa.array(values.astype(np.float32, copy=False)))})

    @abstractmethod
    def _read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(local row, gene, value)`` arrays for non-empty checked ``rows``, local rows non-decreasing."""

    def _read_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(entries per asked cell, gene, value)`` for non-empty checked ``rows``, entries in cell order."""
        local, genes, values = self._read(rows)
        return np.bincount(local, minlength=rows.size).astype(np.int64), genes, values

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._close()

    def _close(self) -> None:  # noqa: B027 - a reader with nothing to release need not override it
        pass

    def __enter__(self) -> SparseBlockReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.num_rows} cells x {self.num_cols} genes, "
                f"{self.num_units} {self.unit_name}s)")


def _is_file(path: Path) -> None:
    if not path.is_file():
        raise SparseInputError(f"{path}: no such file")


# ----------------------------------------------------------------------------------------------- COO Parquet


class CooParquetBlockReader(SparseBlockReader):
    """SOMA-like COO Parquet sorted by cell; natural unit = row group.

    Opening reads the footer only: each row group's cell range comes from the statistics of ``soma_dim_0`` (a file
    written without statistics costs one pass over ``soma_dim_0`` at open, noted in ``notes``). Unit ``k`` holds the
    cells that begin in the ``k``-th non-empty row group, i.e. from one past the last cell of the row group before;
    a cell whose entries straddle two row groups makes a read of it touch both. ``n_obs``/``n_vars`` override the
    shape (else the file's shape metadata, else the largest index + 1 from the statistics).
    """

    unit_name = "row group"

    def __init__(self, path: str | Path, n_obs: int | None = None, n_vars: int | None = None, *,
                 use_threads: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self.use_threads = use_threads
        self.notes: list[str] = []
        _is_file(self.path)
        try:
            self._file = pq.ParquetFile(self.path)
        except (pa.ArrowException, OSError) as exc:
            raise SparseInputError(f"{self.path}: not a readable Parquet file ({one_line(exc)})") from exc
        try:
            self._index(n_obs, n_vars)
        except BaseException:
            self._file.close()
            raise

    def _index(self, n_obs: int | None, n_vars: int | None) -> None:
        schema = self._file.schema_arrow
        missing = [c for c in COLUMNS if c not in schema.names]
        if missing:
            raise SparseInputError(f"{self.path}: missing column(s) {', '.join(missing)} (a SOMA-like COO table has "
                                   f"{', '.join(COLUMNS)}; found {', '.join(schema.names) or 'none'})")
        for name in (DIM0, DIM1):
            if not pa.types.is_integer(schema.field(name).type):
                raise SparseInputError(f"{self.path}: column {name} must be integers, got {schema.field(name).type}")
        if not (pa.types.is_floating(schema.field(DATA).type) or pa.types.is_integer(schema.field(DATA).type)):
            raise SparseInputError(f"{self.path}: column {DATA} must be numeric, got {schema.field(DATA).type}")
        meta = self._file.metadata
        sizes = np.array([meta.row_group(g).num_rows for g in range(meta.num_row_groups)], dtype=np.int64)
        self.nnz = int(sizes.sum())
        groups = np.flatnonzero(sizes > 0)
        cells = self._ranges(DIM0, groups)
        lo, hi = cells[:, 0], cells[:, 1]
        if lo.size and int(lo.min()) < 0:
            raise SparseInputError(f"{self.path}: {DIM0} (cell index) {int(lo.min())} is negative")
        if lo.size > 1 and np.any(lo[1:] < hi[:-1]):
            at = int(groups[1:][np.flatnonzero(lo[1:] < hi[:-1])[0]])
            raise SparseInputError(f"{self.path}: rows must be sorted by {DIM0} (cell); row group {at} starts "
                                   "before the one before it ends")
        shape = _shape_metadata(schema)
        self.num_rows = int(n_obs if n_obs is not None else shape.get("n_obs", int(hi.max()) + 1 if hi.size else 0))
        if n_vars is not None or "n_vars" in shape:
            self.num_cols = int(n_vars if n_vars is not None else shape["n_vars"])
        else:
            genes = self._ranges(DIM1, groups)
            self.num_cols = int(genes[:, 1].max()) + 1 if genes.size else 0
        if hi.size and int(hi.max()) >= self.num_rows:
            raise SparseInputError(f"{self.path}: {DIM0} (cell index) {int(hi.max())} is outside "
                                   f"[0, {self.num_rows})")
        self._groups, self._lo, self._hi = groups, lo, hi
        self.row_group_offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        starts = np.unique(np.concatenate(([0], hi[:-1] + 1))).astype(np.int64)
        self.unit_starts = starts[starts < self.num_rows] if self.num_rows else starts[:0]

    @property
    def num_row_groups(self) -> int:
        return self._file.metadata.num_row_groups

    def _ranges(self, column: str, groups: np.ndarray) -> np.ndarray:
        """``[[min, max], ...]`` of ``column`` in each of ``groups``: footer statistics, else a pass over it."""
        meta = self._file.metadata
        at = self._file.schema_arrow.get_field_index(column)
        out = np.empty((len(groups), 2), dtype=np.int64)
        passed = False
        for i, group in enumerate(groups.tolist()):
            stats = meta.row_group(group).column(at).statistics
            if stats is not None and stats.has_min_max:
                out[i] = (int(stats.min), int(stats.max))
                continue
            values = self._read_group(group, [column]).column(0)
            if values.null_count:
                raise SparseInputError(f"{self.path}: row group {group} has null {column} values")
            values = values.to_numpy()
            out[i] = (int(values.min()), int(values.max()))
            passed = True
        if passed:
            self.notes.append(f"{column}: no footer statistics in some row groups; read once at open")
        return out

    def _read_group(self, group: int, columns: list[str]) -> pa.Table:
        try:
            return self._file.read_row_group(group, columns=columns, use_threads=self.use_threads)
        except (pa.ArrowException, OSError) as exc:
            raise SparseInputError(f"{self.path}: row group {group} cannot be read ({one_line(exc)})") from exc

    def _hits(self, rows: np.ndarray) -> np.ndarray:
        """Positions (in the non-empty row groups) of the row groups whose cell range holds one of ``rows``."""
        if rows.size == 0:
            return np.empty(0, dtype=np.int64)
        first = np.searchsorted(rows, self._lo, side="left")
        return np.flatnonzero((first < rows.size) & (rows[np.minimum(first, rows.size - 1)] <= self._hi))

    def groups_for(self, rows: Any) -> np.ndarray:
        """The row groups a read of ``rows`` (sorted, unique) reads."""
        return self._groups[self._hits(self.check_rows(rows))]

    def _read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        locals_, genes_, values_ = [], [], []
        for i in self._hits(rows).tolist():  # one row group in memory at a time
            group = int(self._groups[i])
            first = int(np.searchsorted(rows, self._lo[i], side="left"))
            last = int(np.searchsorted(rows, self._hi[i], side="right"))
            asked = rows[first:last]  # the asked cells in this row group's cell range
            table = self._read_group(group, list(COLUMNS))
            self.counters.units += 1
            self.counters.storage_calls += 1
            self.counters.entries_read += table.num_rows
            if any(column.null_count for column in table.columns):
                raise SparseInputError(f"{self.path}: row group {group} has null values")
            cells = table.column(DIM0).to_numpy()
            if cells.size > 1 and np.any(cells[1:] < cells[:-1]):
                raise SparseInputError(f"{self.path}: rows must be sorted by {DIM0} (cell); row group {group} is "
                                       "not")
            lo = np.searchsorted(cells, asked, side="left")
            hi = np.searchsorted(cells, asked, side="right")
            counts = hi - lo
            if not counts.any():
                continue
            take = concat_ranges(lo, hi)
            locals_.append(np.repeat(np.arange(first, last, dtype=np.int64), counts))
            genes_.append(table.column(DIM1).to_numpy()[take])
            values_.append(table.column(DATA).to_numpy()[take])
        if not locals_:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float32)
        return np.concatenate(locals_), np.concatenate(genes_), np.concatenate(values_)

    def _close(self) -> None:
        self._file.close()


# ----------------------------------------------------------------------------------------------- CSR stores


class _CsrBlockReader(SparseBlockReader):
    """A CSR matrix as three arrays (``indptr`` in memory, ``indices``/``data`` read by slices on demand)."""

    _indices: Any
    _data: Any
    indptr: np.ndarray
    unit_entries: int  # entries per natural unit (a chunk, or a fixed range)
    coalesce_entries: int

    def _setup(self, n_obs: int, n_vars: int, indptr: Any, matrix: str) -> None:
        self.num_rows, self.num_cols = int(n_obs), int(n_vars)
        indptr = np.asarray(indptr)
        if indptr.ndim != 1 or not np.issubdtype(indptr.dtype, np.integer):
            raise SparseInputError(f"{self.path}: {matrix}/indptr is not a 1-D integer array")
        indptr = indptr.astype(np.int64, copy=False)
        entries = int(self._indices.shape[0])
        if len(indptr) != self.num_rows + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise SparseInputError(f"{self.path}: {matrix}/indptr is not a valid CSR index for {self.num_rows} cells")
        if int(self._data.shape[0]) != entries or int(indptr[-1]) != entries:
            raise SparseInputError(f"{self.path}: {matrix}/indices, data and indptr do not agree in length")
        self.indptr = indptr
        self.nnz = entries
        self.unit_starts = units_from_entries(indptr, self.unit_entries)

    def _fill(self, array: Any, out: np.ndarray, start: int, stop: int, at: int) -> None:
        """Entries ``[start, stop)`` of ``array`` into ``out[at:]``."""
        out[at : at + stop - start] = array[start:stop]

    def _read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        counts, indices, data = self._read_rows(rows)
        return np.repeat(np.arange(rows.size, dtype=np.int64), counts), indices, data

    def _read_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        indptr = self.indptr
        counts = indptr[rows + 1] - indptr[rows]
        starts, stops = runs(rows)
        lo, hi = indptr[starts], indptr[stops]
        keep = hi > lo
        lo, hi = lo[keep], hi[keep]
        if lo.size == 0:
            return counts, np.empty(0, np.int64), np.empty(0, np.float32)
        # Runs at most coalesce_entries apart are read as one slice; the entries between them are dropped after.
        new_span = np.concatenate(([True], lo[1:] - hi[:-1] > self.coalesce_entries))
        span_of = np.cumsum(new_span) - 1
        span_lo = lo[new_span]
        span_hi = np.concatenate((hi[np.flatnonzero(new_span)[1:] - 1], hi[-1:]))
        lengths = span_hi - span_lo
        offsets = np.concatenate(([0], np.cumsum(lengths)))
        indices = np.empty(int(offsets[-1]), dtype=self._indices.dtype)
        data = np.empty(int(offsets[-1]), dtype=self._data.dtype)
        try:
            for s, e, at in zip(span_lo.tolist(), span_hi.tolist(), offsets[:-1].tolist(), strict=True):
                self._fill(self._indices, indices, s, e, at)
                self._fill(self._data, data, s, e, at)
        except SparseInputError:
            raise
        except Exception as exc:  # h5py raises OSError, zarr many types, on a damaged file
            raise SparseInputError(f"{self.path}: entries cannot be read ({one_line(exc)})") from exc
        self.counters.storage_calls += 2 * len(span_lo)
        self.counters.entries_read += int(offsets[-1])
        first_unit, last_unit = span_lo // self.unit_entries, (span_hi - 1) // self.unit_entries
        self.counters.units += int((last_unit - first_unit + 1).sum() - np.sum(first_unit[1:] == last_unit[:-1]))
        if int(offsets[-1]) != int(counts.sum()):  # gaps were read: keep only the asked cells' entries
            base = offsets[span_of] - span_lo[span_of]
            take = concat_ranges(lo + base, hi + base)
            indices, data = indices[take], data[take]
        return counts, indices, data


class H5adBlockReader(_CsrBlockReader):
    """The CSR ``X`` (or ``raw.X``, ``layers/NAME``) of an ``.h5ad``, read with h5py; the file stays open.

    Natural unit: the HDF5 chunk of ``indices``/``data`` when they are chunked, else fixed ranges of
    ``unit_entries`` entries (``cells.h5ad`` is written contiguous), each mapped to the cells that begin in it.
    ``indptr`` is read whole at open: O(cells) int64 memory. Files in anndata's current encoding and in the old
    ``h5sparse_format`` one are read; a dense or CSC matrix is refused.
    """

    unit_name = "HDF5 chunk"

    def __init__(self, path: str | Path, matrix: str = "X", *, unit_entries: int = DEFAULT_UNIT_ENTRIES,
                 coalesce_entries: int = H5AD_COALESCE_ENTRIES) -> None:
        import h5py  # noqa: PLC0415 - optional until an .h5ad is read

        super().__init__()
        self.path = Path(path)
        self.matrix = matrix_name(matrix)
        self.coalesce_entries = int(coalesce_entries)
        _is_file(self.path)
        try:
            self._handle = h5py.File(self.path, "r")
        except OSError as exc:
            raise SparseInputError(f"{self.path}: not a readable HDF5/.h5ad file ({one_line(exc)})") from exc
        try:
            self._open(h5py, unit_entries)
        except BaseException:
            self._handle.close()
            raise

    def _open(self, h5py: Any, unit_entries: int) -> None:
        key = _h5_key(self._handle, self.matrix)
        if key is None:
            raise SparseInputError(f"{self.path}: no {self.matrix} matrix")
        x = self._handle[key]
        if not isinstance(x, h5py.Group):
            raise SparseInputError(f"{self.path}: {self.matrix} must be a CSR sparse matrix, found a dense array")
        legacy = not _attr(x, "encoding-type") and _attr(x, "h5sparse_format") == "csr"
        if _attr(x, "encoding-type") != "csr_matrix" and not legacy:
            kind = _attr(x, "encoding-type") or _attr(x, "h5sparse_format") or "none"
            raise SparseInputError(f"{self.path}: {self.matrix} must be a CSR sparse matrix, found encoding {kind!r}")
        for name in ("data", "indices", "indptr"):
            if name not in x:
                raise SparseInputError(f"{self.path}: {self.matrix} has no {name!r} array")
        self._indices, self._data = x["indices"], x["data"]
        chunks = self._data.chunks
        if chunks and self._indices.chunks == chunks:
            self.unit_entries = int(chunks[0])
        else:
            self.unit_name = "entry range"
            self.unit_entries = int(unit_entries)
        try:
            shape = x.attrs["h5sparse_shape" if legacy else "shape"]
            n_obs, n_vars = (int(v) for v in shape)
            indptr = x["indptr"][...]
        except (KeyError, OSError, TypeError, ValueError) as exc:
            raise SparseInputError(f"{self.path}: {self.matrix} has no readable shape/indptr ({one_line(exc)})") \
                from exc
        self._setup(n_obs, n_vars, indptr, self.matrix)

    def _fill(self, array: Any, out: np.ndarray, start: int, stop: int, at: int) -> None:
        array.read_direct(out, np.s_[start:stop], np.s_[at : at + stop - start])  # no temporary array

    def _close(self) -> None:
        self._handle.close()


class ZarrBlockReader(_CsrBlockReader):
    """The CSR ``X`` of an AnnData Zarr store (``cells.zarr``, annbatch's sharded layout), read with zarr.

    Natural unit: the Zarr chunk of ``data`` (32,768 entries in annbatch's layout; the shard is the file, the chunk
    what is decompressed), mapped to the cells that begin in it. ``indptr`` is read whole at open (O(cells) int64).
    Asked cells in chunks up to ``coalesce_chunks`` apart are read in one slice: zarr's cost per call dominates.
    """

    unit_name = "Zarr chunk"

    def __init__(self, path: str | Path, *, coalesce_chunks: int = ZARR_COALESCE_CHUNKS) -> None:
        import zarr  # noqa: PLC0415 - optional until a Zarr store is read

        super().__init__()
        self.path = Path(path)
        if not self.path.is_dir():
            raise SparseInputError(f"{self.path}: no such Zarr store (a directory)")
        try:
            x = zarr.open_group(str(self.path), mode="r")["X"]
            encoding = x.attrs.get("encoding-type", "")
            if encoding != "csr_matrix":
                raise SparseInputError(f"{self.path}: X must be a CSR sparse matrix, found encoding {encoding!r}")
            self._indices, self._data = x["indices"], x["data"]
            n_obs, n_vars = (int(v) for v in x.attrs["shape"])
            indptr = x["indptr"][...]
        except SparseInputError:
            raise
        except Exception as exc:  # zarr raises KeyError, FileNotFoundError, ValueError ... on a broken store
            raise SparseInputError(f"{self.path}: not a readable AnnData Zarr store with a CSR X "
                                   f"({one_line(exc)})") from exc
        self.unit_entries = int(self._data.chunks[0])
        self.coalesce_entries = int(coalesce_chunks) * self.unit_entries
        self._setup(n_obs, n_vars, indptr, "X")


# ----------------------------------------------------------------------------------------------- TileDB-SOMA


class SomaBlockReader(SparseBlockReader):
    """A TileDB-SOMA ``SparseNDArray`` (``cells.soma``), or the ``X[layer]`` of an ``Experiment``'s measurement.

    Natural unit: the space tile along the cells (the ``soma_dim_0`` tile extent of the schema, 16 cells in
    ``cells.soma``; ``DEFAULT_SOMA_UNIT_CELLS`` when the schema does not say). ``counters.units`` counts the tiles
    holding an asked cell, computed from the request.
    """

    unit_name = "space tile"

    def __init__(self, path: str | Path, *, measurement: str = "RNA", layer: str = "data") -> None:
        import tiledbsoma  # noqa: PLC0415 - optional until a SOMA array is read

        super().__init__()
        self.path = Path(path)
        if not self.path.exists():
            raise SparseInputError(f"{self.path}: no such TileDB-SOMA object")
        self._errors: tuple[type[BaseException], ...] = (tiledbsoma.SOMAError, OSError, RuntimeError)
        try:
            self._object = tiledbsoma.open(str(self.path), mode="r")
        except Exception as exc:  # tiledbsoma raises DoesNotExistError, SOMAError, TileDBError ...
            raise SparseInputError(f"{self.path}: not a readable TileDB-SOMA object ({one_line(exc)})") from exc
        try:
            self._array = self._x(tiledbsoma, measurement, layer)
            self._shape()
        except BaseException:
            self._object.close()
            raise

    def _x(self, tiledbsoma: Any, measurement: str, layer: str) -> Any:
        if isinstance(self._object, tiledbsoma.SparseNDArray):
            return self._object
        if isinstance(self._object, tiledbsoma.Experiment):
            try:
                array = self._object.ms[measurement].X[layer]
            except (KeyError, tiledbsoma.SOMAError) as exc:
                raise SparseInputError(f"{self.path}: no ms[{measurement!r}].X[{layer!r}] in this experiment") \
                    from exc
            if isinstance(array, tiledbsoma.SparseNDArray):
                return array
        raise SparseInputError(f"{self.path}: expected a TileDB-SOMA SparseNDArray or Experiment, found "
                               f"{type(self._object).__name__}")

    def _shape(self) -> None:
        array = self._array
        if array.ndim != 2:
            raise SparseInputError(f"{self.path}: a {array.ndim}-D array, not cells x genes")
        shape = tuple(int(v) for v in array.shape)
        if not getattr(array, "tiledbsoma_has_upgraded_shape", True):  # arrays of SOMA < 1.15: shape = max domain
            domain = array.non_empty_domain()
            shape = tuple(int(d[1]) + 1 for d in domain) if domain else (0, 0)
        self.num_rows, self.num_cols = shape
        self.nnz = int(array.nnz)
        tile = DEFAULT_SOMA_UNIT_CELLS
        try:
            dims = json.loads(array.schema_config_options().dims)
            tile = int(dims[DIM0]["tile"])
        except (AttributeError, KeyError, TypeError, ValueError):
            self.unit_name = "cell range"
        self.unit_cells = max(1, tile)
        self.unit_starts = np.arange(0, self.num_rows, self.unit_cells, dtype=np.int64)

    def _read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            # TileDB's own order (its global order: row-major tiles here); asking for "row-major" costs ~10x.
            tables = list(self._array.read(coords=(rows,)).tables())
        except self._errors as exc:
            raise SparseInputError(f"{self.path}: cells cannot be read ({one_line(exc)})") from exc
        self.counters.storage_calls += 1
        self.counters.units += int(np.unique(rows // self.unit_cells).size)
        table = pa.concat_tables(tables) if tables else OUTPUT_SCHEMA.empty_table()
        self.counters.entries_read += table.num_rows
        cells = table.column(DIM0).to_numpy()
        if cells.size > 1 and np.any(cells[1:] < cells[:-1]):  # not in cell order: put it in order
            order = np.lexsort((table.column(DIM1).to_numpy(), cells))
            table, cells = table.take(pa.array(order)), cells[order]
        return _local_rows(rows, cells), table.column(DIM1).to_numpy(), table.column(DATA).to_numpy()

    def _close(self) -> None:
        self._object.close()


# ----------------------------------------------------------------------------------------------- registry

#: one reader per stored form that ``sparse generate`` writes (``datagen.FORMATS``)
READERS: dict[str, type[SparseBlockReader]] = {
    "parquet": CooParquetBlockReader, "h5ad": H5adBlockReader, "zarr": ZarrBlockReader, "soma": SomaBlockReader,
}


def open_block_reader(form: str, path: str | Path, **options: Any) -> SparseBlockReader:
    """The block reader of ``form`` (``parquet``, ``h5ad``, ``zarr``, ``soma``) over ``path``."""
    if form not in READERS:
        raise ValueError(f"no sparse block reader for {form!r} (choose from {', '.join(READERS)})")
    return READERS[form](path, **options)


__all__ = [
    "OUTPUT_SCHEMA", "READERS", "CooParquetBlockReader", "H5adBlockReader", "ReadCounters", "SomaBlockReader",
    "SparseBlockReader", "ZarrBlockReader", "concat_ranges", "open_block_reader", "units_from_entries",
]
