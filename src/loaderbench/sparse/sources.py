"""Reading a cell x gene matrix from the files the benchmark uses, with the checks a user's own file needs.

- ``CooParquet``: SOMA-like COO Parquet (``soma_dim_0`` cell, ``soma_dim_1`` gene, ``soma_data`` value), sorted by
  cell. Opening it reads ``soma_dim_0`` once, row group by row group, to learn where each cell's entries lie (the
  index SOMA keeps for itself); rows of chosen cells are then read row group by row group, as a SOMA chunk read does.
- ``H5adCSR``: the CSR ``X`` of an AnnData ``.h5ad`` (read with h5py, validated).

Both hand their entries out as a ``CsrStream`` (cell-major ``indices``/``data`` pieces plus the global ``indptr``), the
form every writer in ``datagen`` consumes.
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import scipy.sparse as sp

from loaderbench.formats import one_line

DIM0, DIM1, DATA = "soma_dim_0", "soma_dim_1", "soma_data"
COLUMNS = (DIM0, DIM1, DATA)
#: Parquet key-value metadata with the matrix shape (``{"n_obs": ..., "n_vars": ...}``)
SHAPE_KEY = b"loaderbench.sparse.shape"
_STREAM_ROWS = 1 << 22


class SparseInputError(ValueError):
    """A sparse input file that cannot be used as it is; the message names the file and the problem."""


@dataclass
class CsrStream:
    """A matrix as cell-major pieces: ``pieces()`` yields ``(indices int32, data float32)`` covering entries
    ``0 .. nnz`` in order; ``indptr`` (``n_obs + 1``) says which entries belong to which cell."""

    n_obs: int
    n_vars: int
    indptr: np.ndarray
    pieces: Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])


def rows_for_range(indptr: np.ndarray, start: int, stop: int) -> np.ndarray:
    """The cell (row) of every entry in ``[start, stop)`` of a CSR matrix with ``indptr``."""
    if stop <= start:
        return np.empty(0, dtype=np.int64)
    first = int(np.searchsorted(indptr, start, side="right")) - 1
    last = int(np.searchsorted(indptr, stop, side="left"))
    counts = np.diff(np.clip(indptr[first : last + 1], start, stop))
    return np.repeat(np.arange(first, first + len(counts), dtype=np.int64), counts)


def _shape_metadata(schema: pa.Schema) -> dict[str, int]:
    raw = (schema.metadata or {}).get(SHAPE_KEY)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
        return {k: int(value[k]) for k in ("n_obs", "n_vars") if k in value}
    except (ValueError, TypeError, KeyError):
        return {}


class CooParquet:
    """A SOMA-like COO Parquet file, checked and indexed by cell.

    ``n_obs``/``n_vars`` come from the arguments (``--n-cells``/``--n-genes``), else the file's shape metadata
    (written by ``datagen``), else the largest index + 1: cells from the pass over ``soma_dim_0`` that indexes the
    file, genes from the footer's statistics or, when a row group has none, a pass over ``soma_dim_1`` (a
    TileDB-SOMA export has no shape metadata). ``shape_from`` says where each came from. Raises
    ``SparseInputError`` naming the file when a column is missing or of the wrong type, the rows are not sorted by
    cell, or an index is negative or outside the shape.
    """

    def __init__(self, path: str | Path, n_obs: int | None = None, n_vars: int | None = None,
                 check_genes: bool = True) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SparseInputError(f"{self.path}: no such file")
        try:
            self._file = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise SparseInputError(f"{self.path}: not a readable Parquet file ({exc})") from exc
        schema = self._file.schema_arrow
        self._check_schema(schema)
        shape = _shape_metadata(schema)
        meta = self._file.metadata
        sizes = np.array([meta.row_group(i).num_rows for i in range(meta.num_row_groups)], dtype=np.int64)
        self.row_group_offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        self.nnz = int(self.row_group_offsets[-1])
        self.shape_from: dict[str, str] = {}
        known: dict[str, int | None] = {}
        for key, given, flag in (("n_obs", n_obs, "--n-cells"), ("n_vars", n_vars, "--n-genes")):
            if given is not None:
                known[key], self.shape_from[key] = int(given), f"from {flag}"
            elif key in shape:
                known[key], self.shape_from[key] = shape[key], "from the shape metadata"
            else:
                known[key] = None
        counts, max_obs, max_var = self._scan(known["n_obs"], known["n_vars"], check_genes)
        if known["n_obs"] is None:
            self.shape_from["n_obs"] = f"max {DIM0} + 1"
        if known["n_vars"] is None and not check_genes:
            max_var, how = self._max_gene()
            self.shape_from["n_vars"] = f"max {DIM1} + 1, from {how}"
        elif known["n_vars"] is None:
            self.shape_from["n_vars"] = f"max {DIM1} + 1, from a pass over {DIM1}"
        self.n_obs = int(known["n_obs"] if known["n_obs"] is not None else max_obs + 1)
        self.n_vars = int(known["n_vars"] if known["n_vars"] is not None else max_var + 1)
        if len(counts) < self.n_obs:
            counts = np.concatenate((counts, np.zeros(self.n_obs - len(counts), dtype=np.int64)))
        self.indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)

    def shape_note(self) -> str:
        """How the shape was found, when any of it was inferred ("" when both were given or in the metadata)."""
        if all(not how.startswith("max") for how in self.shape_from.values()):
            return ""
        return (f"no shape metadata: {self.n_obs:,} cells ({self.shape_from['n_obs']}), {self.n_vars:,} genes "
                f"({self.shape_from['n_vars']}); pass --n-cells/--n-genes if the matrix is larger (empty trailing "
                "cells or unused last genes)")

    def _max_gene(self) -> tuple[int, str]:
        """The largest gene index: from the footer's column statistics when every row group has them, else read."""
        meta = self._file.metadata
        column = self._file.schema_arrow.get_field_index(DIM1)
        highs = []
        for group in range(meta.num_row_groups):
            if meta.row_group(group).num_rows == 0:
                continue
            stats = meta.row_group(group).column(column).statistics
            if stats is None or not stats.has_min_max:
                break
            if stats.min < 0:
                raise SparseInputError(f"{self.path}: {DIM1} (gene index) {stats.min} is outside [0, n_vars)")
            highs.append(int(stats.max))
        else:
            return max(highs, default=-1), "the footer statistics"
        high = -1
        for group in range(meta.num_row_groups):
            genes = self._file.read_row_group(group, columns=[DIM1]).column(0).to_numpy()
            if genes.size:
                low = int(genes.min())
                if low < 0:
                    raise SparseInputError(f"{self.path}: {DIM1} (gene index) {low} is outside [0, n_vars)")
                high = max(high, int(genes.max()))
        return high, f"a pass over {DIM1} (the footer has no statistics)"

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_obs, self.n_vars

    @property
    def num_row_groups(self) -> int:
        return len(self.row_group_offsets) - 1

    def _check_schema(self, schema: pa.Schema) -> None:
        missing = [c for c in COLUMNS if c not in schema.names]
        if missing:
            raise SparseInputError(
                f"{self.path}: missing column(s) {', '.join(missing)} (a SOMA-like COO table has "
                f"{', '.join(COLUMNS)}; found {', '.join(schema.names) or 'none'})"
            )
        for name in (DIM0, DIM1):
            if not pa.types.is_integer(schema.field(name).type):
                raise SparseInputError(f"{self.path}: column {name} must be integers, got {schema.field(name).type}")
        value_type = schema.field(DATA).type
        if not (pa.types.is_floating(value_type) or pa.types.is_integer(value_type)):
            raise SparseInputError(f"{self.path}: column {DATA} must be numeric, got {value_type}")

    def _scan(self, n_obs: int | None, n_vars: int | None, check_genes: bool) -> tuple[np.ndarray, int, int]:
        """Per-cell entry counts, checking order and ranges, one row group at a time."""
        counts = np.zeros(0, dtype=np.int64)
        previous, max_obs, max_var = -1, -1, -1
        columns = [DIM0, DIM1] if check_genes else [DIM0]
        for group in range(self.num_row_groups):
            table = self._file.read_row_group(group, columns=columns)
            if table.column(DIM0).null_count or (check_genes and table.column(DIM1).null_count):
                raise SparseInputError(f"{self.path}: row group {group} has null indices")
            if self._null_values(group):
                raise SparseInputError(f"{self.path}: row group {group} has null {DATA} values")
            cells = table.column(DIM0).to_numpy()
            if cells.size == 0:
                continue
            if cells[0] < previous or (cells.size > 1 and np.any(np.diff(cells) < 0)):
                raise SparseInputError(f"{self.path}: rows must be sorted by {DIM0} (cell); row group {group} is not")
            if cells[0] < 0:
                raise SparseInputError(f"{self.path}: {DIM0} (cell index) {int(cells[0])} is negative")
            previous = max_obs = int(cells[-1])
            if n_obs is not None and max_obs >= n_obs:
                raise SparseInputError(f"{self.path}: {DIM0} (cell index) {max_obs} is outside [0, {n_obs})")
            if check_genes:
                genes = table.column(DIM1).to_numpy()
                low, high = int(genes.min()), int(genes.max())
                if low < 0 or (n_vars is not None and high >= n_vars):
                    bad = low if low < 0 else high
                    bound = n_vars if n_vars is not None else "n_vars"
                    raise SparseInputError(f"{self.path}: {DIM1} (gene index) {bad} is outside [0, {bound})")
                max_var = max(max_var, high)
            group_counts = np.bincount(cells, minlength=max_obs + 1)
            if len(counts) < len(group_counts):
                counts = np.concatenate((counts, np.zeros(len(group_counts) - len(counts), dtype=np.int64)))
            counts[: len(group_counts)] += group_counts
        return counts, max_obs, max_var

    def _null_values(self, group: int) -> int:
        """Nulls in the value column of one row group: from the footer's statistics, else by reading the column."""
        row_group = self._file.metadata.row_group(group)
        for i in range(row_group.num_columns):
            column = row_group.column(i)
            if column.path_in_schema == DATA:
                stats = column.statistics
                if stats is not None and stats.has_null_count:
                    return int(stats.null_count)
                break
        return int(self._file.read_row_group(group, columns=[DATA]).column(0).null_count)

    def read_row_group(self, group: int) -> pa.Table:
        return self._file.read_row_group(group, columns=list(COLUMNS))

    def read_runs(self, starts: np.ndarray, stops: np.ndarray) -> pa.Table:
        """The entries of cells ``[starts[i], stops[i])`` (in that order), reading each needed row group once."""
        lo = self.indptr[starts]
        hi = self.indptr[stops]
        keep = hi > lo
        lo, hi = lo[keep], hi[keep]
        if lo.size == 0:
            return self._file.schema_arrow.empty_table().select(list(COLUMNS))  # no entries
        offsets = self.row_group_offsets
        first = np.searchsorted(offsets, lo, side="right") - 1
        last = np.searchsorted(offsets, hi - 1, side="right") - 1
        needed = np.unique(np.concatenate([np.arange(f, g + 1) for f, g in zip(first, last, strict=True)]))
        groups = {int(g): self.read_row_group(int(g)) for g in needed}
        if lo.size > 256:  # many short runs (random order): one gather per row group
            positions = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
            owner = np.searchsorted(offsets, positions, side="right") - 1
            pieces = []
            bounds = np.flatnonzero(np.diff(owner)) + 1
            for seg in np.split(np.arange(positions.size), bounds):
                g = int(owner[seg[0]])
                pieces.append(groups[g].take(pa.array(positions[seg] - offsets[g])))
            return pa.concat_tables(pieces)
        pieces = []
        for a, b, f, g in zip(lo, hi, first, last, strict=True):
            for group in range(int(f), int(g) + 1):
                s = max(int(a), int(offsets[group])) - int(offsets[group])
                e = min(int(b), int(offsets[group + 1])) - int(offsets[group])
                pieces.append(groups[group].slice(s, e - s))
        return pa.concat_tables(pieces)

    def batches(self, rows: int = _STREAM_ROWS) -> Iterator[pa.RecordBatch]:
        """The whole file as record batches (``soma_data`` as float32), in file order."""
        for batch in self._file.iter_batches(batch_size=rows, columns=list(COLUMNS)):
            if batch.schema.field(DATA).type != pa.float32():
                batch = batch.set_column(2, DATA, batch.column(2).cast(pa.float32()))
            yield batch

    def reader(self) -> pa.RecordBatchReader:
        """A streaming reader over the whole file (for the native core: no full table in memory)."""
        arrow = self._file.schema_arrow
        schema = pa.schema([arrow.field(DIM0), arrow.field(DIM1), pa.field(DATA, pa.float32())])
        return pa.RecordBatchReader.from_batches(schema, self.batches())

    def stream(self) -> CsrStream:
        def pieces() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for batch in self.batches():
                yield (batch.column(1).to_numpy().astype(np.int32, copy=False),
                       batch.column(2).to_numpy().astype(np.float32, copy=False))

        return CsrStream(self.n_obs, self.n_vars, self.indptr, pieces)

    def to_scipy_csr(self) -> sp.csr_matrix:
        """The whole matrix as scipy CSR (float32 values, int32 gene indices)."""
        return stream_to_csr(self.stream())

    def native_matrix(self) -> Any:
        """The whole matrix as the native core's ``SparseMatrix``, built from a streaming reader."""
        from loaderbench import _core  # noqa: PLC0415 - the compiled core is only needed for the native method

        return _core.SparseMatrix.from_arrow(self.reader(), n_rows=self.n_obs, n_cols=self.n_vars, nnz_hint=self.nnz)


def load_native_matrix(path: str | Path, n_obs: int | None = None, n_vars: int | None = None) -> Any:
    """The whole COO Parquet file as the native core's ``SparseMatrix``, holding nothing else afterwards.

    The file's reader is dropped before Arrow's pool is asked to return freed memory: while a ``ParquetFile`` that
    has been read lives, pyarrow's mimalloc pool keeps its pages (about 110 MiB on the quick data, half the matrix
    itself), and ``release_unused`` gives them back only once it is gone."""
    coo = CooParquet(path, n_obs, n_vars, check_genes=False)
    matrix = coo.native_matrix()
    del coo
    pa.default_memory_pool().release_unused()
    return matrix


def stream_to_csr(stream: CsrStream) -> sp.csr_matrix:
    """A ``CsrStream`` gathered into one scipy CSR matrix."""
    indices = np.empty(stream.nnz, dtype=np.int32)
    data = np.empty(stream.nnz, dtype=np.float32)
    at = 0
    for idx, values in stream.pieces():
        indices[at : at + len(idx)] = idx
        data[at : at + len(idx)] = values
        at += len(idx)
    return sp.csr_matrix((data, indices, stream.indptr.copy()), shape=(stream.n_obs, stream.n_vars))


def matrix_name(matrix: str) -> str:
    """``--matrix`` in one spelling: ``X``, ``raw.X`` (also ``raw``, ``raw/X``) or ``layers/NAME``."""
    text = matrix.strip()
    if text == "X":
        return "X"
    if text in ("raw", "raw.X", "raw/X"):
        return "raw.X"
    for prefix in ("layers/", "layers."):
        if text.startswith(prefix) and len(text) > len(prefix):
            return "layers/" + text[len(prefix):]
    raise SparseInputError(f"--matrix {matrix!r}: name X, raw.X or layers/NAME")


def _attr(element: Any, name: str) -> str:
    value = element.attrs.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def _h5_key(handle: Any, matrix: str) -> str | None:
    """Where ``matrix`` lies in the HDF5 file: anndata >= 0.7 writes ``raw/X``, older versions ``raw.X``."""
    keys = {"raw.X": ("raw/X", "raw.X")}.get(matrix, (matrix,))
    return next((key for key in keys if key in handle), None)


def _csr_matrices(handle: Any) -> list[str]:
    """The names (as ``--matrix`` takes them) of the CSR matrices an ``.h5ad`` holds."""
    import h5py  # noqa: PLC0415

    names = ["X", "raw.X"] + [f"layers/{k}" for k in (handle["layers"] if "layers" in handle else {})]
    found = []
    for name in names:
        key = _h5_key(handle, name)
        element = handle[key] if key else None
        if isinstance(element, h5py.Group) and (_attr(element, "encoding-type") == "csr_matrix"
                                                or _attr(element, "h5sparse_format") == "csr"):
            found.append(name)
    return found


def row_blocks(indptr: np.ndarray, entries: int = _STREAM_ROWS) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` cell ranges of about ``entries`` entries each (at least one cell), covering every cell."""
    n_obs = len(indptr) - 1
    start = 0
    while start < n_obs:
        stop = int(np.searchsorted(indptr, indptr[start] + entries, side="right")) - 1
        stop = min(max(stop, start + 1), n_obs)
        yield start, stop
        start = stop


class H5adCSR:
    """A CSR matrix of an ``.h5ad`` file, validated (``SparseInputError`` naming the file otherwise).

    ``matrix`` is ``X`` (default), ``raw.X`` or ``layers/NAME``. A CSR matrix in anndata's current encoding
    (``encoding-type`` attributes, anndata >= 0.7) is read with h5py; a file written by an older anndata, which has
    no encoding attributes, is read through ``anndata.read_h5ad`` (backed, so the matrix is not loaded whole), as
    ``reader`` says. A dense or CSC matrix is refused, naming the CSR matrices the file has.
    """

    def __init__(self, path: str | Path, matrix: str = "X") -> None:
        import h5py  # noqa: PLC0415 - optional until an .h5ad is used

        self.path = Path(path)
        self.matrix = matrix_name(matrix)
        if not self.path.is_file():
            raise SparseInputError(f"{self.path}: no such file")
        try:
            handle = h5py.File(self.path, "r")
        except OSError as exc:
            raise SparseInputError(f"{self.path}: not a readable HDF5/.h5ad file ({exc})") from exc
        with handle:
            key = _h5_key(handle, self.matrix)
            if key is None:
                raise SparseInputError(f"{self.path}: no {self.matrix} matrix{self._others(handle)}")
            x = handle[key]
            encoding = _attr(x, "encoding-type")
            if isinstance(x, h5py.Group) and encoding == "csr_matrix":
                self.reader = "h5py"
                self._key = key
                self._read_index(x)
            elif not encoding and isinstance(x, h5py.Group) and _attr(x, "h5sparse_format") == "csr":
                self.reader = "anndata"  # anndata < 0.7: no encoding attributes; anndata still reads it
                self._key = key
            else:
                if isinstance(x, h5py.Dataset):
                    kind = f"a dense {' x '.join(map(str, x.shape))} array"
                else:
                    kind = f"encoding {encoding or _attr(x, 'h5sparse_format') or 'none'!r}"
                raise SparseInputError(f"{self.path}: {self.matrix} must be a CSR sparse matrix (cells x genes), "
                                       f"found {kind}{self._others(handle)}")
        if self.reader == "anndata":
            with self._anndata_matrix() as opened:
                self.n_obs, self.n_vars = (int(v) for v in opened.shape)
                in_memory = isinstance(opened, sp.csr_matrix)
                self.indptr = np.asarray(opened.indptr if in_memory else opened.group["indptr"][...], dtype=np.int64)
                self._check_index(len(opened.indices) if in_memory else opened.group["indices"].shape[0])
        for idx, _ in self.stream().pieces():
            if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= self.n_vars):
                bad = int(idx.min()) if int(idx.min()) < 0 else int(idx.max())
                raise SparseInputError(f"{self.path}: {self.matrix}/indices (gene index) {bad} is outside "
                                       f"[0, {self.n_vars})")

    def _others(self, handle: Any) -> str:
        others = [name for name in _csr_matrices(handle) if name != self.matrix]
        return f"; this file has a CSR matrix in {', '.join(others)}: pass --matrix {others[0]}" if others else ""

    def _read_index(self, x: Any) -> None:
        for name in ("data", "indices", "indptr"):
            if name not in x:
                raise SparseInputError(f"{self.path}: {self.matrix} has no {name!r} array")
        self.n_obs, self.n_vars = (int(v) for v in x.attrs["shape"])
        self.indptr = x["indptr"][...].astype(np.int64)
        if x["indices"].shape != x["data"].shape:
            raise SparseInputError(f"{self.path}: {self.matrix}/indices and {self.matrix}/data differ in length")
        self._check_index(x["indices"].shape[0])

    def _check_index(self, entries: int) -> None:
        indptr = self.indptr
        if len(indptr) != self.n_obs + 1 or indptr[0] != 0 or np.any(np.diff(indptr) < 0):
            raise SparseInputError(f"{self.path}: {self.matrix}/indptr is not a valid CSR index for {self.n_obs} cells")
        if int(indptr[-1]) != entries:
            raise SparseInputError(f"{self.path}: {self.matrix}/indices, data and indptr do not agree in length")

    @contextlib.contextmanager
    def _anndata_matrix(self) -> Iterator[Any]:
        """The matrix through ``anndata.read_h5ad(backed="r")``: a backed CSR dataset (or a scipy CSR for layers,
        which anndata loads); the file is closed on exit."""
        import anndata as ad  # noqa: PLC0415

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # anndata's notes on the old encoding are not the user's to act on
            try:
                adata = ad.read_h5ad(self.path, backed="r")
            except Exception as exc:  # anndata raises many types on a file it cannot read
                raise SparseInputError(f"{self.path}: anndata.read_h5ad cannot read it ({one_line(exc)})") from exc
        try:
            if self.matrix == "X":
                matrix = adata.X
            elif self.matrix == "raw.X":
                matrix = adata.raw.X if adata.raw is not None else None
            else:
                matrix = adata.layers[self.matrix.split("/", 1)[1]]
            fmt = getattr(matrix, "format", "csr" if isinstance(matrix, sp.csr_matrix) else "")
            if matrix is None or fmt != "csr" or not hasattr(matrix, "shape"):
                raise SparseInputError(f"{self.path}: anndata reads {self.matrix} as {type(matrix).__name__}, "
                                       "not a CSR sparse matrix")
            yield matrix
        finally:
            if adata.file is not None:
                adata.file.close()

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def stream(self) -> CsrStream:
        path, key, indptr = self.path, self._key, self.indptr

        def from_h5py() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            import h5py  # noqa: PLC0415

            with h5py.File(path, "r") as handle:
                x = handle[key]
                total = x["indices"].shape[0]
                for start in range(0, total, _STREAM_ROWS):
                    stop = min(total, start + _STREAM_ROWS)
                    yield (x["indices"][start:stop].astype(np.int32, copy=False),
                           x["data"][start:stop].astype(np.float32, copy=False))

        def from_anndata() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            with self._anndata_matrix() as matrix:
                for start, stop in row_blocks(indptr):
                    rows = matrix[start:stop]  # anndata's own reader: a scipy CSR of these cells
                    yield rows.indices.astype(np.int32, copy=False), rows.data.astype(np.float32, copy=False)

        return CsrStream(self.n_obs, self.n_vars, indptr, from_h5py if self.reader == "h5py" else from_anndata)

    def check_order(self) -> int:
        """How many cells list their genes out of order (TileDB-SOMA's writer sorts them); ``SparseInputError``
        naming the cell and the gene when a cell lists a gene twice (the loaders would disagree on its value)."""
        return entry_order(self.stream(), f"{self.path}: {self.matrix}")

    def to_scipy_csr(self) -> sp.csr_matrix:
        return stream_to_csr(self.stream())


def entry_order(stream: CsrStream, where: str) -> int:
    """Cells of ``stream`` whose gene indices are not increasing (counted once each); ``SparseInputError`` starting
    with ``where`` at the first cell that lists a gene twice. One linear pass; a sort only where order breaks."""
    unsorted = np.zeros(stream.n_obs, dtype=bool)
    at = 0
    previous: tuple[int, int] | None = None  # the last (cell, gene) of the previous piece: a cell may span two
    for idx, _ in stream.pieces():
        n = len(idx)
        if not n:
            continue
        rows = rows_for_range(stream.indptr, at, at + n)
        genes = idx.astype(np.int64)
        if previous is not None:
            rows, genes = np.concatenate(([previous[0]], rows)), np.concatenate(([previous[1]], genes))
        breaks = np.flatnonzero((rows[1:] == rows[:-1]) & (genes[1:] <= genes[:-1]))
        if breaks.size:
            unsorted[rows[breaks]] = True
            order = np.lexsort((genes, rows))
            twice = np.flatnonzero((np.diff(rows[order]) == 0) & (np.diff(genes[order]) == 0))
            if twice.size:
                cell, gene = int(rows[order][twice[0]]), int(genes[order][twice[0]])
                raise SparseInputError(f"{where}: cell {cell} lists gene {gene} twice (duplicate entries): sum them "
                                       "first (e.g. adata.X.sum_duplicates(), then write the file again)")
        previous = (int(rows[-1]), int(genes[-1]))
        at += n
    return int(unsorted.sum())
