"""What every storage format module provides.

A format module (one file per format in this package) defines ``INFO`` and these functions:

- ``write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]`` — store the dataset
  at ``path`` (a file or a directory the module creates), consuming ``data.batches()`` once, record batch by record
  batch (never the whole dataset in memory), under ``atomic_output`` (no half-written dataset under the final name).
  ``rows_per_unit`` is the natural read unit the user asks for (rows per Parquet row group, Lance fragment, Arrow
  record batch, ...; ``None``: about ``TARGET_UNIT_BYTES`` of Arrow data, see ``default_rows_per_unit``). It returns
  what it actually used, for the manifest: ``{"read_unit": "row group", "rows_per_unit": 1024}``.
- table formats (``INFO.kind == "table"``): ``read_table(path, column=None) -> pa.Table`` — the whole table through
  the format's own library, checked by ``check_table``: the image column (``column``, else ``ome_image``, else the
  one OME-Arrow struct column) named ``ome_image``, beside ``row_id`` when the file has one (its result has
  ``__arrow_c_stream__``, which the native core consumes).
- formats with ``INFO.block_reads``: ``block_reader(path, column=None) -> BlockReader`` — reads of a sorted set of
  rows (or of whole read units) through the format's own library, projected to what the native loader needs (see
  ``BlockReader``).
- directory formats may define ``item_shape(item: Path) -> tuple[tuple[int, ...], str]`` — one item's ``(C, H, W)``
  and dtype from its metadata, without decoding pixels (checking that every item has one size).
- directory formats (``INFO.kind == "directory"``): ``item_paths(path) -> list[Path]`` (in row order) and
  ``read_item(item: Path) -> np.ndarray`` — one image ``(C, H, W)`` in its stored dtype, decoded per call.
- ``looks_like(path: Path) -> bool`` — whether an existing path is a dataset of this format (for ``--input``).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa

from loaderbench.ome_image import OME_COLUMN

#: the pixel fields an OME-Arrow struct may carry (the native importer reads either)
PIXEL_FIELDS = ("chunks", "planes")
#: what a default read unit holds: big enough that a block read is worth a call into a library (DESIGN: blocks of at
#: least about a megabyte), small enough that a streaming loader holds a few of them, and that a Parquet row group
#: (held in memory while it is written) stays small
TARGET_UNIT_BYTES = 32 * 2**20


class FormatError(ValueError):
    """A dataset path that this format cannot read (names the file and the problem)."""


class FormatUnavailable(RuntimeError):
    """The library a format needs cannot be imported here."""


def one_line(exc: BaseException) -> str:
    """An exception as one short line: its type and its message, without native backtraces."""
    text = str(exc)
    for marker in ("Backtrace:", "Stack backtrace:"):  # Rust libraries (Vortex, Lance) append native frames
        text = text.split(marker, 1)[0]
    text = " ".join(text.split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def library_errors(path: Path, what: str) -> Iterator[None]:
    """Turn any exception a library raises while reading ``path`` into a one-line ``FormatError``.

    Rust libraries (Lance, Vortex) report a panic as ``pyo3_runtime.PanicException``, a ``BaseException``: it is
    caught too, so a damaged file never ends the process. ``KeyboardInterrupt`` and ``SystemExit`` pass through.
    """
    try:
        yield
    except FormatError:
        raise
    except (KeyboardInterrupt, SystemExit, GeneratorExit):
        raise
    except BaseException as exc:  # libraries raise many types; the user needs one clear line
        raise FormatError(f"{path}: cannot read as {what}: {one_line(exc)}") from exc


@dataclass(frozen=True)
class FormatInfo:
    """A format's name, where its data lives, and what it can give (DESIGN §2: "a format declares what it can
    give"): the whole Arrow table (``kind == "table"``), block reads with its natural unit (``block_reads``,
    ``read_unit``), cheap random access to one row (``random_access``), or one item per file (``kind ==
    "directory"``)."""

    name: str  # registry key, as used on the CLI: "parquet_duckdb"
    label: str  # for plots and tables: "Parquet (DuckDB)"
    kind: Literal["table", "directory"]
    filename: str  # what ``write`` creates inside the dataset folder: "images.parquet", "tiff/"
    requires: tuple[str, ...]  # importable modules it needs
    #: the module has ``block_reader(path, column=None) -> BlockReader``
    block_reads: bool = False
    #: the natural read unit: "row group", "fragment", "record batch", "split", "file", ...
    read_unit: str = ""
    #: reading one row costs at most one read unit (a row group, a fragment's page, a file), never the whole dataset
    random_access: bool = False
    #: ``write`` can be told how many rows each read unit holds (``rows_per_unit``); the others pick their own
    unit_chosen_by_writer: bool = False
    #: one block reader's ``read`` may run on several threads at once, in parallel (the others serialise them with a
    #: lock: open one reader per thread to read in parallel)
    concurrent_reads: bool = False
    #: ``block_reader(..., copy_rows=False)`` returns views into a memory-mapped file instead of owned copies: for a
    #: caller that copies every block out itself at once (the streaming loader does), which the default copy would
    #: only double
    block_views: bool = False
    #: the library works in a process forked after it was used (Lance's runtime does not: DataLoader workers that
    #: read it must be spawned)
    fork_safe: bool = True

    @property
    def whole_table(self) -> bool:
        """``read_table`` gives the whole dataset as one Arrow table."""
        return self.kind == "table"

    @property
    def items_per_file(self) -> bool:
        """One image per file or store, read by ``read_item`` (or the native core) one at a time."""
        return self.kind == "directory"

    def unavailable_reason(self) -> str | None:
        """``None`` when every required module imports, else a one-line reason."""
        for module in self.requires:
            try:
                importlib.import_module(module)
            except Exception as exc:  # noqa: BLE001 - any import failure makes the format unavailable
                return f"{self.label}: cannot import {module} ({type(exc).__name__}: {exc})"
        return None


# --------------------------------------------------------------------------------------------- writing: the stream


@dataclass(frozen=True)
class ImageStream:
    """A dataset to write, record batch by record batch (never whole in memory).

    ``batches()`` returns a *fresh* iterator per call; each item is a record batch of the table (``schema``:
    ``row_id`` int64 and ``ome_image``, the OME-Arrow struct) and the same rows' pixels as ``(n, C, H, W)``, or
    ``(n, C, Z, H, W)`` for volumes (which the directory formats write; ``None`` for a stream meant only for table
    formats). Table formats ignore the arrays; directory formats ignore the record batches.
    """

    schema: pa.Schema
    num_rows: int
    batches: Callable[[], Iterator[tuple[pa.RecordBatch, np.ndarray | None]]]

    @classmethod
    def from_table(cls, table: pa.Table, images: np.ndarray | None = None, batch_rows: int = 4096) -> ImageStream:
        """A stream over an in-memory table (and its pixels), in record batches of at most ``batch_rows`` rows
        (zero-copy slices of the table's chunks)."""
        if not isinstance(table, pa.Table):
            raise TypeError(f"ImageStream.from_table needs a pyarrow Table, got {type(table).__name__}")
        if images is not None and len(images) != table.num_rows:
            raise ValueError(f"{len(images)} images for a table of {table.num_rows} rows")
        batch_rows = check_rows_per_unit(batch_rows, "batch_rows")

        def batches() -> Iterator[tuple[pa.RecordBatch, np.ndarray | None]]:
            start = 0
            for batch in table.to_batches(max_chunksize=batch_rows):
                if batch.num_rows:
                    stop = start + batch.num_rows
                    yield batch, None if images is None else images[start:stop]
                    start = stop

        return cls(schema=table.schema, num_rows=table.num_rows, batches=batches)

    @classmethod
    def from_images(cls, images: np.ndarray, batch_rows: int = 4096) -> ImageStream:
        """A stream of pixels only (for the directory formats): its record batches hold just ``row_id``."""
        if images.ndim not in (4, 5):
            raise ValueError(f"images must be (N, C, H, W) or (N, C, Z, H, W), got shape {images.shape}")
        batch_rows = check_rows_per_unit(batch_rows, "batch_rows")
        schema = pa.schema([pa.field("row_id", pa.int64())])

        def batches() -> Iterator[tuple[pa.RecordBatch, np.ndarray | None]]:
            for start in range(0, len(images), batch_rows):
                chunk = images[start : start + batch_rows]
                ids = pa.array(np.arange(start, start + len(chunk), dtype=np.int64))
                yield pa.record_batch([ids], schema=schema), chunk

        return cls(schema=schema, num_rows=len(images), batches=batches)

    def images(self) -> Iterator[np.ndarray]:
        """Every image ``(C, H, W)`` (``(C, Z, H, W)`` for volumes) in row order (one pass over ``batches()``);
        ``ValueError`` when the stream carries no pixels."""
        for _batch, pixels in self.batches():
            if pixels is None:
                raise ValueError("this stream carries no pixel arrays (the directory formats need them)")
            yield from pixels


def check_rows_per_unit(value: Any, name: str = "rows_per_unit") -> int:
    """``value`` as a positive int, or ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def default_rows_per_unit(batch: pa.RecordBatch, target_bytes: int = TARGET_UNIT_BYTES) -> int:
    """Rows in a read unit of about ``target_bytes`` of in-memory Arrow data, from ``batch``'s bytes per row (at
    least 1 row). 32 MiB is about 800 images of 100x100 as ome-arrow stores them (planes and chunks, uint16)."""
    if batch.num_rows == 0:
        return 1
    per_row = max(1.0, batch.nbytes / batch.num_rows)
    return max(1, int(target_bytes // per_row))


# ----------------------------------------------------------------------------------------------- reading: blocks


@dataclass
class ReadCounters:
    """What a block reader has done since it was opened (or ``reset``)."""

    reads: int = 0  # read() calls that returned rows
    units: int = 0  # read units holding an asked row, summed over reads (the cost model: rows + units touched)
    storage_calls: int = 0  # calls into the format's library (row-group reads, queries, takes)
    rows: int = 0  # rows returned

    def reset(self) -> None:
        for item in fields(self):
            setattr(self, item.name, 0)


def check_rows(rows: Any, num_rows: int, where: Path | str) -> np.ndarray:
    """``rows`` as a 1-D int64 array, or ``ValueError`` when it is not sorted, unique and in ``[0, num_rows)``."""
    array = np.asarray(rows)
    if array.ndim != 1:
        raise ValueError(f"rows must be a 1-D array of row positions, got shape {array.shape}")
    if array.size == 0:
        return np.empty(0, dtype=np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"rows must be integer row positions, got dtype {array.dtype}")
    if array.dtype == np.uint64 and int(array.max()) > np.iinfo(np.int64).max:
        raise ValueError(f"row {int(array.max())} is out of range [0, {num_rows}) of {where}")
    array = array.astype(np.int64, copy=False)
    steps = np.diff(array)
    if np.any(steps <= 0):
        at = int(np.flatnonzero(steps <= 0)[0])
        raise ValueError(f"rows must be sorted and unique: rows[{at}] = {array[at]}, rows[{at + 1}] = {array[at + 1]}")
    if array[0] < 0 or array[-1] >= num_rows:
        bad = int(array[0]) if array[0] < 0 else int(array[-1])
        raise ValueError(f"row {bad} is out of range [0, {num_rows}) of {where}")
    return array


def struct_fields(data_type: pa.DataType) -> dict[str, pa.DataType]:
    """A struct type's fields by name, leaving out fields of the null type (an absent field, to the native core)."""
    return {f.name: f.type for f in data_type if not pa.types.is_null(f.type)}


def pixel_field(image_type: pa.DataType, chunks_on_first_row: Callable[[], int], where: Path) -> str:
    """Which pixel field of an OME-Arrow struct a block read projects: ``chunks`` when the type has it and row 0
    holds at least one chunk (asked of ``chunks_on_first_row`` only when the type has ``planes`` as well), else
    ``planes``. Reading one of them, not both, halves what ome-arrow's default layout costs to read."""
    present = struct_fields(image_type)
    if "chunks" in present and "planes" in present:
        return "chunks" if chunks_on_first_row() > 0 else "planes"
    for name in PIXEL_FIELDS:
        if name in present:
            return name
    raise FormatError(f"{where}: the image column has neither chunks nor planes")


def first_list_length(array: pa.Array | pa.ChunkedArray) -> int:
    """The length of the first (list) value of ``array``; 0 when it is null or ``array`` is empty."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if len(array) == 0 or array.is_null().to_pylist()[0]:
        return 0
    offsets = array.offsets
    return int(offsets[1].as_py()) - int(offsets[0].as_py())


def project_image(struct: pa.Array, names: tuple[str, ...]) -> pa.StructArray:
    """The struct array ``struct`` with only the fields ``names`` (zero-copy; nulls kept)."""
    children = [struct.field(name) for name in names]  # sliced to the struct's own offset and length
    mask = struct.is_null() if struct.null_count else None
    return pa.StructArray.from_arrays(children, names=list(names), mask=mask)


def take_local(table: pa.Table, local: np.ndarray) -> pa.Table:
    """Rows ``local`` (sorted, unique) of ``table``: a zero-copy slice when they are one contiguous run."""
    if len(local) == 0:
        return table.slice(0, 0)
    first, last = int(local[0]), int(local[-1])
    if last - first + 1 == len(local):
        return table.slice(first, len(local))
    return table.take(pa.array(local, pa.int64()))


def _identity(path: Path) -> tuple[int, ...]:
    """What says a dataset is still the one a reader opened: device and inode, and for a file its size and
    modification time (a directory's contents are checked by the library that reads them)."""
    info = os.stat(path)
    if path.is_dir():
        return (info.st_dev, info.st_ino)
    return (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)


#: readers open in this process, and (in a forked child) the parent's readers, kept so they are never destroyed here
_open_readers: weakref.WeakSet[BlockReader] = weakref.WeakSet()
_inherited_readers: list[BlockReader] = []


def _after_fork_in_child() -> None:
    """A forked child holds copies of its parent's readers, whose libraries' threads did not come along: destroying
    one (a DuckDB connection joins its scheduler's threads) would hang the child. Each is kept alive for the child's
    life and marked unusable; a reader is opened again in the child (DataLoader workers, streaming I/O threads)."""
    for reader in list(_open_readers):
        reader._pid = -1
        _inherited_readers.append(reader)
    _open_readers.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class BlockReader(ABC):
    """Block reads of one Arrow-backed dataset: its rows, its natural read unit, ``read(rows) -> pa.Table``.

    - ``num_rows``; ``unit_name`` (the format's natural read unit: "row group", "fragment", ...); ``unit_starts``
      (int64, the first row of each unit, ascending, from 0).
    - ``read(rows)``: ``rows`` sorted, unique int64 positions in file order (``read_table``'s order whenever the
      file is stored sorted by ``row_id``, as every dataset loaderbench writes is). It returns exactly those rows, in
      that order, as a ``pa.Table`` (``__arrow_c_stream__``) of one column ``ome_image``: a struct of
      ``pixels_meta`` and one pixel field (``pixel_field``: ``chunks``, else ``planes``), read through the format's
      own library. A read costs the rows asked for plus the read units holding them, never the whole file.
      ``read_unit(k)`` reads unit ``k`` whole.
    - errors: bad ``rows`` (unsorted, repeated, out of range) raise ``ValueError``; a missing, truncated or corrupt
      file, or one deleted or replaced since the reader opened it, raises ``FormatError`` (one line naming the
      path), at open or at the read that meets it. A reader of a dataset without rows cannot be opened.
    - threads: ``read`` may be called from any thread (the intended use: one background thread reading while the
      main thread does other work). Where the format's library takes parallel calls on one handle
      (``concurrent_reads``, also in ``INFO``: Arrow IPC, Lance, Vortex), reads on several threads run in parallel;
      elsewhere (pyarrow's ``ParquetFile``, a DuckDB connection) one reader serialises them with a lock, and parallel
      reads need one reader per thread.
    - ``reopen()`` opens another reader of the same dataset (one per thread that reads in parallel), sharing what
      this one parsed and the file cannot change while unchanged (Parquet's footer); it works on a closed reader.
    - ``close()`` (also on leaving a ``with`` block) releases file handles and connections; a closed reader's
      ``read`` raises ``ValueError``.
    - processes: a reader belongs to the process that opened it. In a forked child (a DataLoader worker) the
      parent's readers raise ``ValueError`` and are never closed or destroyed there (their libraries' threads are
      not in the child); open a new reader in the child.
    """

    #: the format this reader reads; a subclass that sets it gets the three attributes below from it
    info: ClassVar[FormatInfo | None] = None
    unit_name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    #: ``read`` may run on several threads at once on this one reader (the library takes parallel calls)
    concurrent_reads: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        info = cls.__dict__.get("info")
        if info is not None:
            cls.unit_name, cls.label, cls.concurrent_reads = info.read_unit, info.label, info.concurrent_reads

    path: Path
    num_rows: int
    unit_starts: np.ndarray
    column: str  # the image column as named in the file
    pixel_field: str  # "chunks" or "planes"

    def __init__(self, path: str | Path, column: str | None = None) -> None:
        self.path = Path(path)
        self.counters = ReadCounters()
        self._pid = os.getpid()
        self._state_lock = threading.Lock()  # counters, the closed flag
        # the library's handle: one read at a time unless the library takes parallel calls on one handle
        self._read_lock: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext() if self.concurrent_reads else threading.Lock()
        )
        self._closed = False
        self._empty: pa.Table | None = None
        if not self.path.exists():
            raise FormatError(f"{self.path}: no such file or directory")
        self._opened_as = _identity(self.path)
        try:
            with library_errors(self.path, self.label):
                num_rows, unit_starts = self._open(column)
        except BaseException:
            self._release_quietly()
            raise
        self._set_layout(num_rows, unit_starts)
        _open_readers.add(self)

    # -- what a format implements

    @abstractmethod
    def _open(self, column: str | None) -> tuple[int, np.ndarray]:
        """Open the dataset, set ``column`` and ``pixel_field``; return the number of rows and the unit starts."""

    @abstractmethod
    def _read(self, rows: np.ndarray) -> pa.Table:
        """The ``ome_image`` table of checked, non-empty ``rows``."""

    def _release(self) -> None:  # noqa: B027 - a reader with nothing to release need not override it
        """Close the library's handles."""

    # -- shared

    @property
    def num_units(self) -> int:
        return len(self.unit_starts)

    @property
    def fields(self) -> tuple[str, str]:
        """The fields of the ``ome_image`` struct that ``read`` returns."""
        return ("pixels_meta", self.pixel_field)

    def unit_range(self, unit: int) -> tuple[int, int]:
        """The rows ``[start, stop)`` of unit ``unit``."""
        if not 0 <= unit < self.num_units:
            raise IndexError(f"unit {unit} out of range: {self.path} has {self.num_units} units ({self.unit_name})")
        stop = int(self.unit_starts[unit + 1]) if unit + 1 < self.num_units else self.num_rows
        return int(self.unit_starts[unit]), stop

    def unit_of(self, rows: np.ndarray) -> np.ndarray:
        """The unit holding each of ``rows``."""
        return np.searchsorted(self.unit_starts, np.asarray(rows, dtype=np.int64), side="right") - 1

    def read(self, rows: Any) -> pa.Table:
        """Rows ``rows`` (sorted, unique positions) as a one-column ``ome_image`` table (see the class docstring)."""
        rows = check_rows(rows, self.num_rows, self.path)
        self._check_process()
        with self._read_lock:
            if self._closed:
                raise ValueError(f"{self.path}: the block reader is closed")
            self._check_unchanged()
            if rows.size == 0:
                return self._empty_table()
            with library_errors(self.path, self.label):
                table = self._read(rows)
        if table.num_rows != rows.size:
            raise FormatError(f"{self.path}: asked {self.label} for {rows.size} rows, got {table.num_rows} "
                              "(damaged file?)")
        with self._state_lock:
            if self._empty is None:
                self._empty = table.slice(0, 0)
            self.counters.reads += 1
            self.counters.rows += rows.size
            self.counters.units += int(np.count_nonzero(np.diff(self.unit_of(rows)))) + 1
        return table

    def reopen(self) -> BlockReader:
        """A new reader of the same dataset and column (e.g. one per I/O thread), which shares what this one parsed
        and cannot change while the file is unchanged (Parquet's footer: tens of MB for thousands of row groups).
        This reader may be closed."""
        return type(self)(self.path, self.column, **self._reopen_options())

    def _reopen_options(self) -> dict[str, Any]:
        """The constructor's keyword arguments for ``reopen``."""
        return {}

    def count_calls(self, calls: int = 1) -> None:
        """Count calls into the format's library (``counters.storage_calls``)."""
        with self._state_lock:
            self.counters.storage_calls += calls

    def read_unit(self, unit: int) -> pa.Table:
        """Unit ``unit`` whole."""
        start, stop = self.unit_range(unit)
        return self.read(np.arange(start, stop, dtype=np.int64))

    def close(self) -> None:
        if self._pid != os.getpid():  # a parent's reader in a forked child: its library cannot be closed here
            self._closed = True
            return
        with self._state_lock:
            if self._closed:
                return
            self._closed = True
        with self._read_lock:  # after the read in progress, if any
            self._release_quietly()
        _open_readers.discard(self)

    def __enter__(self) -> BlockReader:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({str(self.path)!r}, {self.num_rows} rows, {self.num_units} units "
                f"({self.unit_name}), ome_image.{self.pixel_field})")

    def _set_layout(self, num_rows: int, unit_starts: Any) -> None:
        starts = np.asarray(unit_starts, dtype=np.int64)
        try:
            if num_rows <= 0:
                raise FormatError(f"{self.path}: the table has no rows")
            if starts.ndim != 1 or starts.size == 0 or starts[0] != 0 or np.any(np.diff(starts) <= 0) \
                    or starts[-1] >= num_rows:
                raise FormatError(f"{self.path}: {self.label} reports {self.unit_name} boundaries that do not cut "
                                  f"{num_rows} rows")
        except FormatError:
            self._release_quietly()
            raise
        self.num_rows = int(num_rows)
        starts.setflags(write=False)
        self.unit_starts = starts

    def _check_process(self) -> None:
        if self._pid != os.getpid():
            raise ValueError(f"{self.path}: this block reader was opened by the parent of this forked process; open "
                             "a new one here (a reader's library threads do not survive a fork)")

    def _check_unchanged(self) -> None:
        try:
            now = _identity(self.path)
        except OSError as exc:
            raise FormatError(f"{self.path}: deleted since the block reader opened it ({one_line(exc)})") from exc
        if now != self._opened_as:
            raise FormatError(f"{self.path}: changed on disk since the block reader opened it (open a new reader)")

    def _empty_table(self) -> pa.Table:
        if self._empty is None:
            with library_errors(self.path, self.label):
                self._empty = self._read(np.zeros(1, dtype=np.int64)).slice(0, 0)
        return self._empty

    def _release_quietly(self) -> None:
        with contextlib.suppress(Exception):
            self._release()


def image_table(struct: pa.Array | pa.ChunkedArray) -> pa.Table:
    """A block read's result: one column ``ome_image``."""
    return pa.table({OME_COLUMN: struct})
