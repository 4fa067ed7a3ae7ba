"""The native sparse loader: a cell x gene matrix held as CSR by the C++ core, block-shuffled, densified into
float32 ``[B, genes]`` batches on the core's threads (GIL released), or handed out as torch sparse CSR batches.

Block shuffle as in arrayloader-benchmarks: the rows are cut into chunks of ``chunk_size`` contiguous rows; the
rows of ``chunks_per_block`` chunks (one "block") are shuffled together, and block order is shuffled too.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset

from loaderbench import _core
from loaderbench.loaders.arguments import (
    INT32_MAX,
    INT64_MAX,
    MAX_PREFETCH,
    MAX_THREADS,
    UINT64_MAX,
    ForkedWorkersOnly,
    check_int,
    resolve_rank,
    worker_share,
)
from loaderbench.loaders.native import DEFAULT_PREFETCH, _BatchIterator, make_pool, worker_options

SHUFFLES = ("none", "block", "random")


def to_sparse_matrix(source: Any, n_cols: int = 0, max_cells: int = _core.DEFAULT_MAX_CELLS) -> _core.SparseMatrix:
    """A core ``SparseMatrix`` from a SOMA-like COO Arrow source, a scipy sparse matrix, or an existing one.

    Gene indices are int32 in the core: a matrix with 2^31 or more genes is refused, never silently cast."""
    n_cols = check_int("n_cols", n_cols, 0, INT32_MAX)
    max_cells = check_int("max_cells", max_cells, 1, INT64_MAX)
    if isinstance(source, _core.SparseMatrix):
        return source
    if hasattr(source, "__arrow_c_stream__"):
        return _core.SparseMatrix.from_arrow(source, n_cols=n_cols, max_cells=max_cells)
    if hasattr(source, "tocsr"):
        csr = source.tocsr()
        if csr.shape[1] > INT32_MAX:
            raise ValueError(f"the matrix has {csr.shape[1]:,} genes; the native sparse loader stores gene indices "
                             f"as int32 (at most {INT32_MAX:,})")
        if csr.shape[0] > max_cells:
            raise ValueError(f"the matrix has {csr.shape[0]:,} cells, above max_cells={max_cells:,}")
        if csr.nnz:
            low, high = int(csr.indices.min()), int(csr.indices.max())
            if low < 0 or high >= csr.shape[1] or high > INT32_MAX:
                bad = low if low < 0 else high
                raise ValueError(f"gene index {bad:,} out of range (n_genes={csr.shape[1]:,}; the native sparse "
                                 "loader stores gene indices as int32)")
        return _core.SparseMatrix.from_csr(
            np.ascontiguousarray(csr.indptr, dtype=np.int64),
            np.ascontiguousarray(csr.indices, dtype=np.int32),
            np.ascontiguousarray(csr.data, dtype=np.float32),
            int(csr.shape[1]),
        )
    raise TypeError(f"expected a COO Arrow table, a scipy sparse matrix or a SparseMatrix, got {type(source).__name__}")


class NativeSparseLoader(ForkedWorkersOnly, IterableDataset):
    """Batches of cells: dense float32 ``[B, n_genes]`` (``output="dense"``) or ``torch.sparse_csr_tensor``.

    ``shuffle``: ``"none"``, ``"block"`` (``chunk_size`` rows per chunk, ``chunks_per_block`` chunks shuffled
    together) or ``"random"``. Every cell exactly once per epoch; the same ``seed`` gives the same order whatever
    ``num_threads``. ``rank``/``world_size``, ``drop_uneven``, ``drop_last`` and DataLoader workers behave as in
    ``NativeImageLoader`` (defaults from ``torch.distributed`` or ``RANK``/``WORLD_SIZE``; each worker takes every
    N-th batch).
    """

    def __init__(
        self,
        source: Any,
        *,
        batch_size: int = 1024,
        shuffle: str = "block",
        chunk_size: int = 1,
        chunks_per_block: int = 1,
        seed: int = 0,
        num_threads: int = 1,
        prefetch: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        drop_last: bool = False,
        drop_uneven: bool = False,
        output: str = "dense",
        n_cols: int = 0,
        max_cells: int = _core.DEFAULT_MAX_CELLS,
    ) -> None:
        batch_size = check_int("batch_size", batch_size, 1, INT32_MAX)
        chunk_size = check_int("chunk_size", chunk_size, 1, INT64_MAX)
        chunks_per_block = check_int("chunks_per_block", chunks_per_block, 1, INT64_MAX)
        seed = check_int("seed", seed, 0, UINT64_MAX)
        num_threads = check_int("num_threads", num_threads, 1, MAX_THREADS)
        prefetch = DEFAULT_PREFETCH if prefetch is None else check_int("prefetch", prefetch, 0, MAX_PREFETCH)
        rank, world_size = resolve_rank(rank, world_size)
        if shuffle not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {SHUFFLES}, got {shuffle!r}")
        if output not in ("dense", "csr"):
            raise ValueError(f"output must be 'dense' or 'csr', got {output!r}")
        self.matrix = to_sparse_matrix(source, n_cols, max_cells)
        self.output = output
        sampler = _core.SamplerOptions()
        sampler.kind = {"none": _core.SamplerKind.sequential, "block": _core.SamplerKind.block,
                        "random": _core.SamplerKind.random}[shuffle]
        sampler.seed = seed
        sampler.block_size = chunk_size
        sampler.buffer_blocks = chunks_per_block
        sampler.rank = rank
        sampler.world_size = world_size
        sampler.drop_last = drop_uneven
        options = _core.LoaderOptions()
        options.batch_size = batch_size
        options.drop_last = drop_last
        options.num_threads = num_threads
        options.prefetch = prefetch
        options.sampler = sampler
        self.options = options
        self._rows = self.matrix.dense_rows()
        self._batches = self._rows.batches_per_epoch(options)  # validates the options
        self._pool = make_pool(self._rows, options, "cells") if output == "dense" else None
        self._epoch = 0
        self._epoch_fixed = False

    def __len__(self) -> int:
        return self._batches

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.matrix.shape)

    def set_epoch(self, epoch: int) -> None:
        self._epoch = epoch
        self._epoch_fixed = True

    def _next_epoch(self) -> int:
        epoch = self._epoch
        if not self._epoch_fixed:
            self._epoch += 1
        return epoch

    def __iter__(self) -> Iterator[torch.Tensor]:
        # An iterator object, not a generator: a suspended generator would keep the last batch (and its pooled
        # buffer) alive while the next one is assembled.
        if self.output == "csr":
            return (batch for batch, _ in self._csr_batches(self._next_epoch()))
        return _BatchIterator(self._rows.epoch(self._pool, worker_options(self.options), self._next_epoch()),
                              with_indices=False)

    def iter_with_indices(self) -> Iterator[tuple[torch.Tensor, list[int]]]:
        """Batches with the cell indices they hold."""
        epoch = self._next_epoch()
        if self.output == "csr":
            return self._csr_batches(epoch)
        return _BatchIterator(self._rows.epoch(self._pool, worker_options(self.options), epoch), with_indices=True)

    def _csr_batches(self, epoch: int) -> Iterator[tuple[torch.Tensor, list[int]]]:
        order = _core.epoch_indices(self.matrix.shape[0], self.options.sampler, epoch)
        size = self.options.batch_size
        stop = len(order) - len(order) % size if self.options.drop_last else len(order)
        n_genes = self.matrix.shape[1]
        worker, workers = worker_share()
        for start in range(worker * size, stop, size * workers):  # this DataLoader worker's share of the batches
            rows = order[start : start + size]
            crow, col, values = self.matrix.gather_csr(rows)
            with torch.sparse.check_sparse_tensor_invariants(False), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                yield torch.sparse_csr_tensor(crow, col, values, (len(rows), n_genes)), rows
