"""The seed's conversion methods and the native loader, as epoch iterators of dense float32 ``[B, genes]`` batches.

``np.array`` and ``scipy.csr`` do what cellxgene-census' ``ExperimentDataPipe`` did for the seed: per block (the
rows of ``chunks_per_block`` chunks of ``chunk_size`` contiguous cells, permuted together), read the block's entries
from the COO Parquet (row group by row group, as a SOMA chunk read), then

- ``np.array``: arrow table -> numpy columns -> a dense ``[block, genes]`` array filled by scatter, batches are
  slices of it;
- ``scipy.csr``: arrow table -> ``scipy.sparse.csr_matrix`` of the block, each batch sliced and densified.

A batch may span two blocks (the seed's pipe filled a batch from the next chunk). ``native`` is
``NativeSparseLoader`` over a CSR copy of the whole matrix with ``chunk_size = block / C``, ``chunks_per_block = C``;
``native_streaming`` is ``StreamingSparseLoader`` over the COO Parquet: the same block scheme, each block's cells read
from the row groups holding them on the core's I/O threads, memory bounded by the blocks in flight.
Every iterator yields ``(batch, cell ids)``; the ids are ``None`` unless asked for (they cost a copy per batch).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch

from loaderbench.sparse.blocks import SHUFFLES, BlockSpec, block_groups, runs
from loaderbench.sparse.sources import CooParquet

SEED_METHODS = ("np.array", "scipy.csr")
NATIVE_METHODS = ("native", "native_streaming")  # loaderbench's own: C++ threads (num_threads)
METHODS = (*SEED_METHODS, *NATIVE_METHODS)

Batch = tuple[torch.Tensor, np.ndarray | None]


@dataclass(frozen=True)
class LoaderSettings:
    """One loader configuration (everything but the data)."""

    method: str
    chunk_size: int
    chunks_per_block: int
    batch_size: int = 1024
    shuffle: str = "block"
    seed: int = 0
    num_threads: int = 1  # native: C++ threads
    prefetch: int | None = None  # native: batches assembled ahead (None: the loader's default; 0: on demand)
    num_workers: int = 0  # torch / scDataset: DataLoader worker processes
    drop_last: bool = False
    rank: int = 0  # native only
    world_size: int = 1

    @property
    def spec(self) -> BlockSpec:
        return BlockSpec(self.chunk_size, self.chunks_per_block)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self, n_rows: int) -> None:
        if self.shuffle not in SHUFFLES:
            raise ValueError(f"shuffle must be one of {SHUFFLES}, got {self.shuffle!r}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be >= 1, got {self.batch_size}")
        self.spec.check_fits(n_rows)


class SeedMethodLoader:
    """``np.array`` / ``scipy.csr`` over the COO Parquet, one block read at a time."""

    def __init__(self, coo: CooParquet, settings: LoaderSettings) -> None:
        if settings.method not in SEED_METHODS:
            raise ValueError(f"method must be one of {SEED_METHODS}, got {settings.method!r}")
        settings.check(coo.n_obs)
        self.coo = coo
        self.settings = settings
        self._position = np.empty(coo.n_obs, dtype=np.int64)

    def _read_block(self, ids: np.ndarray) -> np.ndarray | sp.csr_matrix:
        coo = self.coo
        starts, stops = runs(np.sort(ids))
        table = coo.read_runs(starts, stops)
        self._position[ids] = np.arange(len(ids))
        cells, genes, values = (column.to_numpy() for column in table.columns)
        rows = self._position[cells]
        if self.settings.method == "np.array":
            dense = np.zeros((len(ids), coo.n_vars), dtype=np.float32)
            dense[rows, genes] = values
            return dense
        return sp.csr_matrix((values.astype(np.float32, copy=False), (rows, genes)), shape=(len(ids), coo.n_vars))

    def epoch(self, epoch: int = 0, with_indices: bool = False) -> Iterator[Batch]:
        s = self.settings
        size = s.batch_size
        parts: list[np.ndarray] = []
        part_ids: list[np.ndarray] = []
        held = 0

        def dense(block: np.ndarray | sp.csr_matrix, start: int, stop: int) -> np.ndarray:
            piece = block[start:stop]
            return piece if isinstance(piece, np.ndarray) else piece.toarray()

        def emit(arrays: list[np.ndarray], ids: list[np.ndarray]) -> Batch:
            batch = arrays[0] if len(arrays) == 1 else np.concatenate(arrays)
            return torch.from_numpy(batch), (np.concatenate(ids) if with_indices else None)

        for ids in block_groups(self.coo.n_obs, s.spec, s.shuffle, s.seed, epoch):
            block = self._read_block(ids)
            at = 0
            if held:
                take = min(size - held, len(ids))
                parts.append(dense(block, 0, take))
                part_ids.append(ids[:take])
                held += take
                at = take
                if held == size:
                    yield emit(parts, part_ids)
                    parts, part_ids, held = [], [], 0
            while at + size <= len(ids):
                yield emit([dense(block, at, at + size)], [ids[at : at + size]])
                at += size
            if at < len(ids):
                parts.append(dense(block, at, len(ids)))
                part_ids.append(ids[at:])
                held += len(ids) - at
        if held and not s.drop_last:
            yield emit(parts, part_ids)

    def __len__(self) -> int:
        n, size = self.coo.n_obs, self.settings.batch_size
        return n // size if self.settings.drop_last else -(-n // size)


class NativeMethodLoader:
    """``NativeSparseLoader`` (C++ block shuffle, gather and densify on its own threads)."""

    def __init__(self, matrix: Any, settings: LoaderSettings) -> None:
        from loaderbench.loaders.native_sparse import NativeSparseLoader  # noqa: PLC0415 - needs the compiled core

        settings.check(int(matrix.shape[0]))
        self.settings = settings
        self.loader = NativeSparseLoader(
            matrix, batch_size=settings.batch_size, shuffle=settings.shuffle, chunk_size=settings.chunk_size,
            chunks_per_block=settings.chunks_per_block, seed=settings.seed, num_threads=settings.num_threads,
            prefetch=settings.prefetch,
            rank=settings.rank, world_size=settings.world_size, drop_last=settings.drop_last, output="dense",
        )

    def epoch(self, epoch: int = 0, with_indices: bool = False) -> Iterator[Batch]:
        self.loader.set_epoch(epoch)
        # `del` after each yield: a suspended generator holding the last batch would keep its pooled buffer (a
        # whole [B, genes] float32 array) alive while the loader assembles the next one.
        if with_indices:
            for batch, ids in self.loader.iter_with_indices():
                yield batch, np.asarray(ids, dtype=np.int64)
                del batch
        else:
            for batch in self.loader:
                yield batch, None
                del batch

    def __len__(self) -> int:
        return len(self.loader)


class StreamingMethodLoader(NativeMethodLoader):
    """``StreamingSparseLoader`` over the COO Parquet (blocks read as the seed's methods read them, but on the
    core's I/O threads, densified on its worker threads; the whole matrix is never held)."""

    def __init__(self, path: Any, n_obs: int, settings: LoaderSettings) -> None:
        from loaderbench.loaders.streaming import StreamingSparseLoader  # noqa: PLC0415 - needs the compiled core

        settings.check(n_obs)
        if settings.shuffle == "random":
            raise ValueError("native_streaming reads blocks: shuffle must be 'block' or 'none' (chunk_size=1 gives "
                             "a global permutation served block by block)")
        self.settings = settings
        self.loader = StreamingSparseLoader(
            path, "parquet", batch_size=settings.batch_size, shuffle=settings.shuffle == "block",
            chunk_size=settings.chunk_size, chunks_per_block=settings.chunks_per_block, seed=settings.seed,
            num_threads=settings.num_threads, prefetch=settings.prefetch, rank=settings.rank,
            world_size=settings.world_size, drop_last=settings.drop_last,
        )
