"""``loaderbench sparse read-chunks``: the seed's four chunk readers x shuffle strategy x chunk size.

The cells are cut into chunks of ``chunk_size`` ids; shuffle ``none`` keeps them in order, ``intra-chunk`` (the
seed's ``-s``) permutes the ids inside each chunk (every chunk reads the same cells, in another order), ``global``
(``-ss``) permutes all ids first (every chunk reads cells from everywhere). For each chunk, each reader fetches the
chunk's entries:

- ``read_table``: the chunk as one Arrow table (Parquet: ``pyarrow.parquet.read_table`` with an ``isin`` filter,
  row groups pruned by their statistics; SOMA: ``X.read(coords).tables()``);
- ``read_blockwise_table``: the row groups holding the chunk's cells, read once each, cells re-indexed to their
  position in the chunk (SOMA: ``.blockwise(axis=0).tables()``);
- ``read_blockwise_scipy_coo`` / ``read_blockwise_scipy_csr``: the same, as ``scipy.sparse`` COO / CSR
  (SOMA: ``.blockwise(axis=0).scipy(compress=False|True)``).

The elapsed time of each reader over all chunks is printed and recorded (``sparse_read_chunks.parquet``). Every
reader must read the same number of entries (checked, as the seed did).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from loaderbench.progress import Progress
from loaderbench.progress import task as progress_task
from loaderbench.sparse.blocks import BlockSpecError, runs
from loaderbench.sparse.datagen import SparseDataset
from loaderbench.sparse.sources import DIM0, CooParquet

READERS = ("read_table", "read_blockwise_table", "read_blockwise_scipy_coo", "read_blockwise_scipy_csr")
SHUFFLES = {0: "none", 1: "intra-chunk", 2: "global"}
FLAGS = {0: "", 1: "-s", 2: "-ss"}
DEFAULT_CHUNK_SIZE = 10_000  # the seed's --soma-chunk default

Reader = Callable[[np.ndarray], int]


def chunk_ids(n_obs: int, chunk_size: int, shuffle: int, seed: int = 0) -> list[np.ndarray]:
    """The cell ids of each chunk under the seed's shuffle levels (0 none, 1 intra-chunk, 2 global)."""
    if chunk_size < 1:
        raise BlockSpecError(f"chunk size must be >= 1, got {chunk_size}")
    if chunk_size > n_obs:
        raise BlockSpecError(f"chunk size {chunk_size} is larger than the data ({n_obs} rows)")
    ids = np.arange(n_obs, dtype=np.int64)
    rng = np.random.default_rng(seed)
    if shuffle == 2:
        ids = rng.permutation(ids)
    chunks = [ids[i : i + chunk_size] for i in range(0, n_obs, chunk_size)]
    if shuffle == 1:
        chunks = [rng.permutation(chunk) for chunk in chunks]
    return chunks


class ParquetReaders:
    """The four readers over the COO Parquet."""

    def __init__(self, coo: CooParquet) -> None:
        self.coo = coo
        self._position = np.empty(coo.n_obs, dtype=np.int64)

    def read_table(self, ids: np.ndarray) -> int:
        table = pq.read_table(self.coo.path, filters=pc.field(DIM0).isin(pa.array(ids)))
        return table.num_rows

    def _blockwise(self, ids: np.ndarray) -> pa.Table:
        starts, stops = runs(np.sort(ids))
        table = self.coo.read_runs(starts, stops)
        self._position[ids] = np.arange(len(ids))
        local = self._position[table.column(DIM0).to_numpy()]
        return table.set_column(0, DIM0, pa.array(local))

    def _scipy(self, ids: np.ndarray) -> sp.coo_matrix:
        table = self._blockwise(ids)
        rows, cols, values = (column.to_numpy() for column in table.columns)
        return sp.coo_matrix((values, (rows, cols)), shape=(len(ids), self.coo.n_vars))

    def read_blockwise_table(self, ids: np.ndarray) -> int:
        return self._blockwise(ids).num_rows

    def read_blockwise_scipy_coo(self, ids: np.ndarray) -> int:
        return self._scipy(ids).nnz

    def read_blockwise_scipy_csr(self, ids: np.ndarray) -> int:
        return self._scipy(ids).tocsr().nnz


class SomaReaders:
    """The seed's readers, verbatim in spirit, over a TileDB-SOMA ``SparseNDArray``."""

    def __init__(self, path: Path, n_vars: int) -> None:
        import tiledbsoma  # noqa: PLC0415

        self.array = tiledbsoma.SparseNDArray.open(str(path))
        self.var_slice = slice(0, n_vars - 1)  # SOMA slices are inclusive

    def close(self) -> None:
        self.array.close()

    def _blockwise(self, ids: np.ndarray) -> Any:
        return self.array.read(coords=(ids, self.var_slice)).blockwise(axis=0, size=len(ids), eager=False)

    def read_table(self, ids: np.ndarray) -> int:
        return sum(t.num_rows for t in self.array.read(coords=(ids, self.var_slice)).tables())

    # Each blockwise iterator is run to its end (one block, as size = the chunk): an iterator abandoned after
    # next() leaves TileDB's eager=False read-ahead behind, and memory grew without bound over the runs.
    def read_blockwise_table(self, ids: np.ndarray) -> int:
        return sum(table.num_rows for table, _ in self._blockwise(ids).tables())

    def read_blockwise_scipy_coo(self, ids: np.ndarray) -> int:
        return sum(matrix.nnz for matrix, _ in self._blockwise(ids).scipy(compress=False))

    def read_blockwise_scipy_csr(self, ids: np.ndarray) -> int:
        return sum(matrix.nnz for matrix, _ in self._blockwise(ids).scipy(compress=True))


def _backends(dataset: SparseDataset, backends: list[str]) -> tuple[dict[str, Any], dict[str, str]]:
    available: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if "parquet" in backends:
        coo = CooParquet(dataset.paths["parquet"], dataset.n_obs, dataset.n_vars, check_genes=False)
        available["parquet"] = ParquetReaders(coo)
    if "tiledbsoma" in backends:
        if "soma" in dataset.paths:
            available["tiledbsoma"] = SomaReaders(dataset.paths["soma"], dataset.n_vars)
        else:
            skipped["tiledbsoma"] = dataset.skipped.get("soma", "no TileDB-SOMA copy of this dataset")
    return available, skipped


def run_read_chunks(
    dataset: SparseDataset,
    chunk_sizes: list[int],
    shuffles: list[int],
    backends: list[str] | None = None,
    repeats: int = 1,
    seed: int = 0,
    progress: Progress | None = None,
    echo: Callable[[str], None] = print,
) -> pd.DataFrame:
    """Time every reader x shuffle x chunk size x backend; prints the seed's ``<reader> elapsed: 1.23s`` lines."""
    progress = progress or Progress(quiet=True)
    for size in chunk_sizes:
        chunk_ids(dataset.n_obs, size, 0)  # validates every chunk size before any work
    readers, skipped = _backends(dataset, backends or ["parquet", "tiledbsoma"])
    rows: list[dict[str, Any]] = []
    for backend, reason in skipped.items():
        echo(f"{backend}: skipped ({reason})")
        rows.append({"dataset": dataset.name, "format": backend, "loader": "", "status": "unavailable",
                     "reason": reason})
    total = len(readers) * len(chunk_sizes) * len(shuffles)
    try:
        with progress_task(progress, "sparse read-chunks", total, "sweeps") as done:
            for backend, impl in readers.items():
                for size in chunk_sizes:
                    for level in shuffles:
                        chunks = chunk_ids(dataset.n_obs, size, level, seed)
                        echo(f"{backend}, chunk size {size}, shuffle {SHUFFLES[level]} "
                             f"({FLAGS[level] or 'no flag'}):")
                        for repeat in range(repeats):
                            rows += _time_readers(dataset, backend, impl, chunks, size, level, repeat, echo)
                        progress(f"read-chunks: {backend} chunk {size} shuffle {SHUFFLES[level]} done")
                        done.advance()
    finally:
        for impl in readers.values():
            if hasattr(impl, "close"):
                impl.close()
    return pd.DataFrame(rows)


def _time_readers(dataset: SparseDataset, backend: str, impl: Any, chunks: list[np.ndarray], size: int, level: int,
                  repeat: int, echo: Callable[[str], None]) -> list[dict[str, Any]]:
    rows = []
    expected = None
    for name in READERS:
        read: Reader = getattr(impl, name)
        start = time.perf_counter_ns()
        total = sum(read(ids) for ids in chunks)
        elapsed = (time.perf_counter_ns() - start) / 1e9
        if expected is not None and total != expected:
            raise RuntimeError(f"{backend} {name} read {total} entries, the previous reader {expected}")
        expected = total
        echo(f"  {name} elapsed: {elapsed:.2f}s")
        rows.append({
            "dataset": dataset.name, "format": backend, "loader": name, "reader": name,
            "shuffle": SHUFFLES[level], "shuffle_flag": FLAGS[level], "chunk_size": size, "chunks": len(chunks),
            "repeat": repeat, "entries": total, "elapsed_s": elapsed, "entries_per_s": total / elapsed if elapsed else
            float("nan"), "n_obs": dataset.n_obs, "n_vars": dataset.n_vars, "host": socket.gethostname(),
            "status": "ok", "reason": "",
        })
    return rows


def summary_table(df: pd.DataFrame) -> str:
    """Median elapsed seconds: one row per backend x chunk size x reader, one column per shuffle strategy."""
    ok = df[df["status"] == "ok"] if "status" in df else df
    # A backend that could not run is a line with its reason, never left out silently.
    missing = [f"{row['format']}: not run ({row['reason']})" for _, row in df.iterrows()
               if row.get("status", "ok") != "ok"] if "status" in df else []
    if ok.empty:
        return "\n".join(["(no read-chunks figures)", *missing])
    ok = ok.astype({"chunk_size": int})
    table = ok.pivot_table(index=["format", "chunk_size", "reader"], columns="shuffle", values="elapsed_s",
                           aggfunc="median")
    order = [s for s in SHUFFLES.values() if s in table.columns]
    table = table[order].reindex(READERS, level="reader")
    return "\n".join([table.map(lambda v: f"{v:.2f}s").to_string(), *missing])
