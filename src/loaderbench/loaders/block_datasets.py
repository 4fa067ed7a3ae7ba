"""Torch datasets that read through a format's block reader, nothing pre-loaded: the baselines of the out-of-core
rows (the native streaming loader's competitors, written as a capable torch user would).

- ``RandomAccessDataset``: Track 1's ``random_access`` loader — each ``__getitem__`` fetches one row through the
  format's own random access (``block_reader(path).read([i])``: a Parquet row group, a Lance ``take``, a DuckDB range
  query...), decodes it from the Arrow buffers and converts it as the seed did.
- ``BlockBatchDataset``: Tracks 2 and 3's ``block_torch`` loader — an ``IterableDataset`` that reads one block of the
  seed's block scheme per step (the same chunks and blocks as the streaming loader), decodes it vectorised, shuffles
  the rows within it and yields float32 ``[B, C, H, W]`` batches; ``DataLoader(ds, batch_size=None,
  num_workers=N)`` gives each worker every N-th block.

Readers are opened lazily in the process that reads (they hold file handles and connections that do not survive a
fork), so both datasets pickle and work with DataLoader workers.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from loaderbench.loaders.seed import Transform, _StoredImageDataset, scale_max
from loaderbench.ome_image import OME_COLUMN, decode_column, to_chw


class _LazyReader:
    """A format's block reader opened on first use in the current process (never shared across a fork)."""

    def __init__(self, format_module: ModuleType | Any, path: Path, column: str | None) -> None:
        self.format_module, self.path, self.column = format_module, Path(path), column
        self._reader: Any = None
        self._pid = -1

    def get(self) -> Any:
        if self._reader is None or self._pid != os.getpid():
            self._reader = self.format_module.block_reader(self.path, column=self.column)
            self._pid = os.getpid()
        return self._reader

    def close(self) -> None:
        if self._reader is not None and self._pid == os.getpid():
            self._reader.close()
        self._reader = None

    def __getstate__(self) -> dict[str, Any]:
        # The module by name: modules do not pickle (spawned DataLoader workers), and a reader never crosses over.
        return {**self.__dict__, "format_module": self.format_module.INFO.name, "_reader": None, "_pid": -1}

    def __setstate__(self, state: dict[str, Any]) -> None:
        from loaderbench.formats import get_format  # noqa: PLC0415

        self.__dict__.update(state)
        if isinstance(self.format_module, str):
            self.format_module = get_format(self.format_module)


class RandomAccessDataset(_StoredImageDataset):
    """One row per ``__getitem__`` through the format's random access; the seed's conversion and transform."""

    def __init__(self, format_module: ModuleType | Any, path: Path | str, transform: Transform | None = None,
                 column: str | None = None) -> None:  # fmt: skip
        self.reader = _LazyReader(format_module, Path(path), column)
        self._length = self.reader.get().num_rows
        self.transform = transform

    def __len__(self) -> int:
        return self._length

    def load_stored(self, idx: int) -> np.ndarray:
        table = self.reader.get().read(np.array([idx], dtype=np.int64))
        return to_chw(decode_column(table[OME_COLUMN])[0])


def chunk_starts(num_rows: int, chunk_size: int | None, unit_starts: np.ndarray) -> np.ndarray:
    """The first row of each chunk of the block scheme: every ``chunk_size`` rows, or (``None``) the format's read
    units as they are, even or not, so that each chunk is exactly one unit read and no unit is read for two blocks."""
    if chunk_size is None:
        return np.asarray(unit_starts, dtype=np.int64)
    return np.arange(0, num_rows, chunk_size, dtype=np.int64)


def block_plan(n: int, starts: np.ndarray, chunks_per_block: int, shuffle: bool, seed: int,
               epoch: int) -> list[np.ndarray]:
    """The seed's block scheme as a list of blocks (row ids in visiting order): chunks of contiguous rows, each from
    one of ``starts`` (ascending, from 0) to the next (the last to ``n``), ``chunks_per_block`` chunks per block;
    shuffled, the chunk order and the rows within each block are permuted (numpy's generator seeded with
    ``(seed, epoch)``)."""
    stops = np.append(starts[1:], n)
    order = np.arange(len(starts))
    rng = np.random.default_rng([seed, epoch])
    if shuffle:
        order = rng.permutation(order)
    blocks = []
    for first in range(0, len(order), chunks_per_block):
        rows = np.concatenate([np.arange(starts[c], stops[c], dtype=np.int64)
                               for c in order[first : first + chunks_per_block]])
        blocks.append(rng.permutation(rows) if shuffle else rows)
    return blocks


class BlockBatchDataset(IterableDataset):
    """Batches read a block at a time through the format's reader (see the module docstring); ``chunk_size=None``
    makes each chunk one of the format's read units, as for the streaming loader.

    Each block is read as its sorted rows (the reader's natural access), decoded in one vectorised step
    (``decode_column``), converted to float32 in [0, 1] by the stored dtype's maximum, put in the block's shuffled
    order, and cut into batches; a batch may span two blocks of the same worker. ``transform`` (optional) is applied
    to each whole batch (torch ops on ``[B, C, H, W]``).
    """

    def __init__(
        self,
        format_module: ModuleType | Any,
        path: Path | str,
        *,
        batch_size: int,
        chunk_size: int | None,
        chunks_per_block: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool = False,
        transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
        column: str | None = None,
    ) -> None:
        self.reader = _LazyReader(format_module, Path(path), column)
        reader = self.reader.get()
        self.num_rows = reader.num_rows
        self.chunk_starts = chunk_starts(self.num_rows, chunk_size, reader.unit_starts)
        self.batch_size, self.chunks_per_block = batch_size, chunks_per_block
        self.shuffle, self.seed, self.drop_last, self.transform = shuffle, seed, drop_last, transform
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        """Batches per epoch (without workers; with N workers each may end with a partial batch of its own)."""
        full, rest = divmod(self.num_rows, self.batch_size)
        return full + (rest > 0 and not self.drop_last)

    def __iter__(self) -> Iterator[torch.Tensor]:
        info = get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        blocks = block_plan(self.num_rows, self.chunk_starts, self.chunks_per_block, self.shuffle, self.seed,
                            self.epoch)
        reader = self.reader.get()
        carry: torch.Tensor | None = None
        for rows in blocks[worker::workers]:
            order = np.argsort(rows, kind="stable")
            table = reader.read(rows[order])
            stored = to_chw_batch(decode_column(table[OME_COLUMN]))
            block = torch.from_numpy(stored).to(torch.float32).div_(scale_max(stored.dtype))
            inverse = np.empty_like(order)
            inverse[order] = np.arange(len(order))
            block = block[torch.from_numpy(inverse)]  # back to the block's shuffled order
            if carry is not None:
                block = torch.cat([carry, block])
                carry = None
            for start in range(0, len(block), self.batch_size):
                batch = block[start : start + self.batch_size]
                if len(batch) < self.batch_size:
                    carry = batch
                    break
                yield self.transform(batch) if self.transform is not None else batch
        if carry is not None and not self.drop_last:
            yield self.transform(carry) if self.transform is not None else carry


def to_chw_batch(images_nczyx: np.ndarray) -> np.ndarray:
    """``(N, C, Z, H, W)`` with a singleton Z dropped: ``(N, C, H, W)``; volumes stay 5-D."""
    return images_nczyx[:, :, 0] if images_nczyx.shape[2] == 1 else images_nczyx


def _normalize(batch: torch.Tensor) -> torch.Tensor:
    return batch.sub_(0.5).div_(0.5)


def _augment(batch: torch.Tensor) -> torch.Tensor:
    flip = torch.rand(len(batch)) < 0.5
    batch[flip] = batch[flip].flip(-1)
    return _normalize(batch)


def batch_transform(name: str) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """Track 1's transforms for whole ``[B, C, H, W]`` batches, vectorised (module functions: they pickle into
    spawned workers): ``none``; ``normalize`` (mean and std 0.5, as ``Normalize((0.5,), (0.5,))``); ``augment`` (a
    random horizontal flip per sample, then normalize)."""
    transforms = {"none": None, "normalize": _normalize, "augment": _augment}
    if name not in transforms:
        raise ValueError(f"unknown transform {name!r} (choose from none, normalize, augment)")
    return transforms[name]


def block_dataloader(dataset: BlockBatchDataset, num_workers: int) -> Any:
    """``DataLoader(dataset, batch_size=None, num_workers=...)`` as a torch user would build it: 2 batches prefetched
    per worker; for a format whose library does not survive a fork (Lance), spawned workers kept for the loader's
    life (a spawn costs an interpreter start-up per worker, so once, not per epoch)."""
    from torch.utils.data import DataLoader  # noqa: PLC0415

    kwargs: dict[str, Any] = {}
    if num_workers:
        kwargs["prefetch_factor"] = 2
        if not dataset.reader.format_module.INFO.fork_safe:
            kwargs.update(multiprocessing_context="spawn", persistent_workers=True)
    return DataLoader(dataset, batch_size=None, num_workers=num_workers, **kwargs)


def close_readers(loader: Any) -> None:
    """Close the format readers a loader keeps open (a streaming loader, a ``DataLoader`` over a block dataset, or
    the dataset itself); they reopen on the next read. Before evicting a dataset's pages: a file a reader keeps
    memory-mapped keeps its pages in the cache."""
    for owner in (loader, getattr(loader, "dataset", None)):
        for closer in (getattr(owner, "close", None), getattr(getattr(owner, "reader", None), "close", None)):
            if callable(closer):
                closer()
