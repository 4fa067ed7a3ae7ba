"""The native streaming loaders: datasets larger than memory, read block by block through each format's own reader.

The C++ core runs an I/O stage (``io_threads`` threads, each calling the format's Python reader once per block,
the GIL held only for that call) ahead of the worker threads that assemble batches; a block is released as soon as
its last sample is written, and a new one is read only while the blocks held stay within ``memory_budget``. So
memory is the blocks in flight plus the batch buffers, whatever the dataset's size.

The sampler is the block scheme of arrayloader-benchmarks (and annbatch): the rows are cut into chunks of
``chunk_size`` contiguous rows, ``chunks_per_block`` chunks are read together and their rows shuffled together, and
the chunk order is shuffled (``shuffle=True``). ``chunk_size=1`` makes every block a random-access ``take`` of
``chunks_per_block`` rows of a global permutation. Ranks take contiguous shares of the epoch's order, so each reads
about ``1/world_size`` of the blocks.

``StreamingImageLoader`` reads the Arrow-backed image formats (``formats/<fmt>.block_reader``);
``StreamingSparseLoader`` reads cell x gene matrices (``sparse/block_readers``). The in-memory loaders
(``NativeImageLoader``, ``NativeSparseLoader``) stay the right choice for data that fits.
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
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
    check_batch_memory,
    check_int,
    resolve_rank,
    worker_share,
)
from loaderbench.loaders.native import (
    DEFAULT_PREFETCH,
    _BatchIterator,
    check_scale,
    transform_options,
    worker_options,
)

DEFAULT_CHUNKS_PER_BLOCK = 4
DEFAULT_MEMORY_BUDGET = 256 * 2**20
MAX_IO_THREADS = 256
# Two reads at once: the formats' readers release the GIL while they read and decode, so a second one overlaps.
DEFAULT_IO_THREADS = 2

# Epochs still running at exit are closed while the interpreter is whole: an I/O thread must not take the GIL
# during finalization. Registered as soon as they exist (an epoch can outlive its iterator, e.g. in a traceback).
_live_epochs: weakref.WeakSet[Any] = weakref.WeakSet()


@atexit.register
def _close_live_epochs() -> None:
    for native_epoch in list(_live_epochs):
        native_epoch.close()


class _ReaderPool:
    """Format readers for the I/O threads: a read takes a free reader (opening one when none is free, so at most one
    per I/O thread) and gives it back. Not thread-local storage: a C++ I/O thread gets a new Python thread state for
    every block it reads, so its thread-locals would not last from one block to the next. Per process: readers hold
    file handles and connections that do not survive a fork (DataLoader workers open their own). ``close()`` closes
    every one."""

    def __init__(self, open_reader: Callable[[], Any], method: str = "read") -> None:
        self._open = open_reader
        self._method = method  # the readers' method a read calls (the sparse readers: read_rows)
        self._lock = threading.Lock()
        self._free: list[Any] = []
        self._opened: list[Any] = []
        self._pid = os.getpid()

    def read(self, rows: np.ndarray) -> Any:
        with self._lock:
            if os.getpid() != self._pid:  # a forked copy: the parent's readers are not ours to use or close
                self._free, self._opened, self._pid = [], [], os.getpid()
            reader = self._free.pop() if self._free else None
        if reader is None:
            reader = self._open()
            with self._lock:
                self._opened.append(reader)
        try:
            return getattr(reader, self._method)(rows)
        finally:
            with self._lock:
                if reader in self._opened:  # not closed meanwhile
                    self._free.append(reader)

    @property
    def opened(self) -> int:
        """Readers opened in this process (at most the I/O threads that read at once)."""
        return len(self._opened)

    def units_read(self) -> int:
        """Read units the open readers have touched, a unit counted once per read that touches it (a unit read for
        two blocks counts twice): the measure of read amplification."""
        with self._lock:
            return sum(int(reader.counters.units) for reader in self._opened)

    def close(self) -> None:
        with self._lock:
            opened, self._opened, self._free = self._opened, [], []
        for reader in opened:
            reader.close()


class _StreamIterator(_BatchIterator):
    """An epoch's iterator that leaves the epoch's block figures with its loader when it ends."""

    def __init__(self, native_epoch: Any, with_indices: bool, loader: _StreamingLoader) -> None:
        super().__init__(native_epoch, with_indices=with_indices)
        self._loader = weakref.ref(loader)

    def close(self) -> None:
        native_epoch = self._epoch
        super().close()
        loader = self._loader()
        if native_epoch is not None and loader is not None and loader._last_epoch is not None \
                and loader._last_epoch() is native_epoch:
            loader._last_stats = dict(native_epoch.stats())


class _StreamingLoader(ForkedWorkersOnly, IterableDataset):
    """What both streaming loaders share: arguments, the block source, epochs, ``len()``."""

    def __init__(
        self,
        *,
        batch_size: int,
        shuffle: bool,
        drop_last: bool,
        seed: int,
        num_threads: int,
        prefetch: int | None,
        rank: int | None,
        world_size: int | None,
        drop_uneven: bool,
        chunk_size: int | None,
        chunks_per_block: int,
        memory_budget: int,
        io_threads: int,
        max_blocks_in_flight: int = 0,
    ) -> None:
        loader = _core.LoaderOptions()
        loader.batch_size = check_int("batch_size", batch_size, 1, INT32_MAX)
        loader.drop_last = bool(drop_last)
        loader.num_threads = check_int("num_threads", num_threads, 1, MAX_THREADS)
        loader.prefetch = DEFAULT_PREFETCH if prefetch is None else check_int("prefetch", prefetch, 0, MAX_PREFETCH)
        sampling = _core.SamplerOptions()
        sampling.seed = check_int("seed", seed, 0, UINT64_MAX)
        sampling.rank, sampling.world_size = resolve_rank(rank, world_size)
        sampling.drop_last = bool(drop_uneven)
        loader.sampler = sampling
        options = _core.StreamingOptions()
        options.loader = loader
        options.shuffle = bool(shuffle)
        if chunk_size is not None:
            chunk_size = check_int("chunk_size", chunk_size, 1, INT64_MAX)
        self._chunk_size = chunk_size  # None: the format's read unit, known once the reader is open
        options.chunks_per_block = check_int("chunks_per_block", chunks_per_block, 1, INT64_MAX)
        options.memory_budget = check_int("memory_budget", memory_budget, 1, INT64_MAX)
        options.io_threads = check_int("io_threads", io_threads, 1, MAX_IO_THREADS)
        options.max_blocks_in_flight = check_int("max_blocks_in_flight", max_blocks_in_flight, 0, INT64_MAX)
        self.options = options
        self._epoch = 0
        self._epoch_fixed = False
        self._source: Any = None
        self._readers: _ReaderPool | None = None
        self._pool: Any = None
        self._last_stats: dict[str, int] = {}
        self._last_epoch: weakref.ReferenceType[Any] | None = None

    def _attach(self, source: Any, readers: _ReaderPool, what: str, unit_starts: np.ndarray) -> None:
        self._source, self._readers = source, readers
        self.unit_starts = np.asarray(unit_starts, dtype=np.int64)
        if self._chunk_size is None:  # each chunk one read unit, as the format cut them (even or not)
            self.options.chunk_starts = self.unit_starts.tolist()
        else:
            self.options.chunk_size = self._chunk_size
        self._batches = _core.streaming_batches_per_epoch(len(source), self.options)
        loader = self.options.loader
        per_rank = len(source) // loader.sampler.world_size
        if not loader.sampler.drop_last and len(source) % loader.sampler.world_size:
            per_rank += 1
        batch_rows = min(loader.batch_size, per_rank) if self._batches else 0
        batch_bytes = batch_rows * source.sample_bytes
        buffers = loader.prefetch + 2  # in flight + handed over + held by the consumer
        check_batch_memory(batch_bytes, buffers, f"{loader.batch_size} {what} of {source.sample_bytes:,} bytes")
        self._pool = _core.BufferPool.create(max(batch_bytes, 1), buffers)

    def _copy_buffers(self) -> int:
        """Block buffers the core keeps (in use or free, for reuse): as many as blocks can be in flight (capped: a
        huge ``max_blocks_in_flight`` is a bound, not a count to keep)."""
        options = self.options
        return min(options.max_blocks_in_flight or options.io_threads + 2, 64)

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        return self._batches

    @property
    def num_samples(self) -> int:
        return len(self._source)

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch the next ``iter()`` runs (as ``DistributedSampler.set_epoch``)."""
        self._epoch = epoch
        self._epoch_fixed = True

    def __iter__(self) -> Iterator[torch.Tensor]:
        return self._iterate(with_indices=False)

    def iter_with_indices(self) -> Iterator[tuple[torch.Tensor, list[int]]]:
        """Like ``iter()``, yielding ``(batch, dataset_rows)``."""
        return self._iterate(with_indices=True)

    def _iterate(self, with_indices: bool) -> _BatchIterator:
        epoch = self._epoch
        if not self._epoch_fixed:
            self._epoch += 1
        # The largest block read so far: this epoch's first reads run in parallel within the budget at once, instead
        # of one read alone until a block's size is known (on short epochs, a whole block read's wait).
        largest = int(self.epoch_stats().get("largest_block_bytes", 0))
        self.options.block_bytes_hint = max(self.options.block_bytes_hint, largest)
        options = self.options
        if worker_share()[1] > 1:  # a DataLoader worker assembles (and reads the blocks of) every N-th batch
            options = _core.StreamingOptions()
            for name in ("shuffle", "chunk_size", "chunk_starts", "chunks_per_block", "memory_budget", "io_threads",
                         "max_blocks_in_flight", "block_bytes_hint"):
                setattr(options, name, getattr(self.options, name))
            options.loader = worker_options(self.options.loader)
        # Threads start here, never in __init__: they would not survive a fork.
        native_epoch = self._source.epoch(self._pool, options, epoch)
        _live_epochs.add(native_epoch)
        self._last_epoch = weakref.ref(native_epoch)
        self._last_stats = {}
        return _StreamIterator(native_epoch, with_indices, self)

    def epoch_stats(self) -> dict[str, int]:
        """Of the last epoch started (so far, or final once it ended): peak bytes of blocks held at once, blocks
        read, peak blocks in flight, the largest block read."""
        native_epoch = self._last_epoch() if self._last_epoch is not None else None
        return dict(native_epoch.stats()) if native_epoch is not None else dict(self._last_stats)

    def units_read(self) -> int:
        """Read units touched by this process's open readers since they opened (see ``_ReaderPool.units_read``);
        ``close()`` starts the count again."""
        return self._readers.units_read() if self._readers is not None else 0

    def close(self) -> None:
        """Close the format readers (a later epoch reopens them)."""
        if self._readers is not None:
            self._readers.close()


class StreamingImageLoader(_StreamingLoader):
    """Batches ``[B, C, H, W]`` (``[B, C, Z, H, W]`` for volumes) of an OME-Arrow dataset on disk, read block by
    block through its format's own reader (Parquet row groups, Lance ``take``, Vortex, DuckDB range queries, Arrow IPC
    record batches), never whole.

    Arguments as ``NativeImageLoader`` (torch's names; conversion and augmentation alike, except that ``scale`` is
    ``True``, ``False`` or a maximum value: the modes that read the whole dataset do not stream; images of different
    sizes need a ``crop_size``, with ``pad_if_needed`` for those smaller than it), plus the block scheme
    (``chunk_size``; by default each chunk is one of the format's read units, as the file cut them, even or not, so
    that a chunk is one unit read and no unit is read for two blocks; ``chunks_per_block``), ``memory_budget``
    (bytes of blocks held at once; at least one block is always allowed), ``io_threads`` (blocks read at once) and
    ``max_blocks_in_flight`` (blocks read and not yet released; 0 = ``io_threads + 2``, which keeps every I/O thread
    busy while bounding how far reads run ahead). ``shuffle=True`` shuffles chunks and the rows within each block;
    every row comes exactly once per epoch. With ``DataLoader(num_workers=N)`` each worker reads and assembles every
    N-th batch; the loader's own threads are usually the better use of the cores.

    A format whose reads are views into a memory-mapped file (Arrow IPC) has each block copied out as soon as it is
    read, so that a file truncated under the loader cannot fault a block it holds; the copy goes into buffers the
    loader keeps for the next blocks (at most as many as blocks can be in flight), and uint16 pixels declared uint8
    are narrowed to uint8 on the way, as ``preload`` does.
    """

    def __init__(
        self,
        source: str | Path,
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        num_threads: int = 1,
        prefetch: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        drop_uneven: bool = False,
        chunk_size: int | None = None,
        chunks_per_block: int = DEFAULT_CHUNKS_PER_BLOCK,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        io_threads: int = DEFAULT_IO_THREADS,
        max_blocks_in_flight: int = 0,
        dtype: torch.dtype = torch.float32,
        scale: bool | float = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        random_hflip: bool = False,
        random_vflip: bool = False,
        crop_size: int | tuple[int, int] | None = None,
        random_crop: bool = True,
        pad_if_needed: bool = False,
        column: str | None = None,
        format: str | None = None,  # noqa: A002 - the dataset's format name, as on the CLI
        max_sample_bytes: int = _core.DEFAULT_MAX_SAMPLE_BYTES,
    ) -> None:
        super().__init__(batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                         num_threads=num_threads, prefetch=prefetch, rank=rank, world_size=world_size,
                         drop_uneven=drop_uneven, chunk_size=chunk_size, chunks_per_block=chunks_per_block,
                         memory_budget=memory_budget, io_threads=io_threads,
                         max_blocks_in_flight=max_blocks_in_flight)
        if dtype is None:
            raise ValueError("the streaming loader converts every sample (dtype=None views need the data in memory)")
        check_scale(scale)
        if isinstance(scale, str):
            raise ValueError(f"scale={scale!r} needs the whole dataset in memory; the streaming loader takes True, "
                             "False or the maximum value (e.g. 4095 for 12-bit data)")
        self.transform = transform_options(dtype, scale is not False, mean, std, random_hflip, random_vflip,
                                           crop_size, random_crop, self.options.loader.sampler.seed, pad_if_needed)
        self.transform.max_value = 0.0 if isinstance(scale, bool) else float(scale)
        max_sample_bytes = check_int("max_sample_bytes", max_sample_bytes, 1, INT64_MAX)
        path, module = block_format(source, format)
        self.path, self.format = path, module.INFO.name
        # A reader that can hand out views into a mapped file does, and the core copies each block's pixels out as
        # soon as it is read, into buffers it recycles (a fresh copy per block faulted in new pages: epochs stalled).
        # Other readers' blocks are their library's own allocations, which a copy would only add to (measured).
        views = {"copy_rows": False} if module.INFO.block_views else {}
        with module.block_reader(path, column=column, **views) as probe:
            rows, self.unit_name, units = probe.num_rows, probe.unit_name, probe.unit_starts
        readers = _ReaderPool(probe.reopen)  # the I/O threads' readers share what the probe parsed
        source_ = _core.BlockSource.images(readers.read, rows, self.transform, max_sample_bytes,
                                           copy_buffers=self._copy_buffers() if views else 0)
        self._attach(source_, readers, "images", units)


def block_format(source: str | Path, format_name: str | None) -> tuple[Path, Any]:
    """The path and format module of a dataset the streaming loader can read (one with block reads)."""
    from loaderbench.loaders.native import _path_format  # noqa: PLC0415

    if not isinstance(source, (str, Path)):
        raise TypeError(f"the streaming loader reads a dataset path, got {type(source).__name__}")
    path, module = _path_format(source, format_name)
    if not getattr(module, "block_reader", None):
        raise ValueError(f"{path}: {module.INFO.label} has no block reads (the streaming loader reads the "
                         "Arrow-backed formats; TIFF and OME-Zarr directories are read per file by NativeImageLoader)")
    return path, module


class StreamingSparseLoader(_StreamingLoader):
    """Dense float32 ``[B, genes]`` batches of a cell x gene matrix on disk (``form``: ``parquet`` COO, ``h5ad``,
    ``zarr``, ``soma`` for a TileDB-SOMA array or experiment), read block by block: the cells of each block are read
    through the store's own library (as CSR rows, ``SparseBlockReader.read_rows``) and densified on the core's
    threads. Arguments as ``StreamingImageLoader`` (the block scheme is the seed's)."""

    def __init__(
        self,
        source: str | Path,
        form: str,
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        num_threads: int = 1,
        prefetch: int | None = None,
        rank: int | None = None,
        world_size: int | None = None,
        drop_uneven: bool = False,
        chunk_size: int | None = None,
        chunks_per_block: int = DEFAULT_CHUNKS_PER_BLOCK,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
        io_threads: int = DEFAULT_IO_THREADS,
        max_blocks_in_flight: int = 0,
    ) -> None:
        super().__init__(batch_size=batch_size, shuffle=shuffle, drop_last=drop_last, seed=seed,
                         num_threads=num_threads, prefetch=prefetch, rank=rank, world_size=world_size,
                         drop_uneven=drop_uneven, chunk_size=chunk_size, chunks_per_block=chunks_per_block,
                         memory_budget=memory_budget, io_threads=io_threads,
                         max_blocks_in_flight=max_blocks_in_flight)
        from loaderbench.sparse.block_readers import open_block_reader  # noqa: PLC0415

        path = self.path = Path(source)
        self.form = form
        # The opener must not capture self: the core holds it, and a cycle through C++ is never collected.
        readers = _ReaderPool(lambda: open_block_reader(form, path), method="read_rows")
        with open_block_reader(form, path) as probe:
            rows, genes, self.unit_name, units = probe.num_rows, probe.num_cols, probe.unit_name, probe.unit_starts
        self.n_genes = genes
        source_ = _core.BlockSource.sparse(readers.read, rows, genes)  # CSR rows: see SparseBlockReader.read_rows
        self._attach(source_, readers, "cells", units)
