"""``torch``: a plain ``torch.utils.data.DataLoader`` over a ``Dataset`` of dense rows of an in-memory scipy CSR
(read from the ``.h5ad``); a ``Sampler`` gives the block-shuffle order (chunks of ``chunk_size`` cells,
``chunks_per_block`` chunks permuted together); ``num_workers`` processes, persistent across epochs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from loaderbench.sparse.blocks import epoch_order
from loaderbench.sparse.methods import Batch, LoaderSettings
from loaderbench.sparse.peers._common import dataset_path
from loaderbench.sparse.sources import H5adCSR


class CSRRows(Dataset):
    """Dense float32 rows of an in-memory CSR matrix (the arrays are shared with forked workers, not copied)."""

    def __init__(self, indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_vars: int) -> None:
        self.indptr, self.indices, self.data, self.n_vars = indptr, indices, data, n_vars

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, row: int) -> torch.Tensor:
        start, stop = self.indptr[row], self.indptr[row + 1]
        dense = np.zeros(self.n_vars, dtype=np.float32)
        dense[self.indices[start:stop]] = self.data[start:stop]
        return torch.from_numpy(dense)


class BlockShuffleSampler(Sampler[int]):
    """The seed's block-shuffle order as a torch ``Sampler``; the epoch advances on every ``__iter__``."""

    def __init__(self, n_rows: int, settings: LoaderSettings) -> None:
        self.n_rows = n_rows
        self.settings = settings
        self.epoch = 0

    def order(self, epoch: int) -> np.ndarray:
        s = self.settings
        return epoch_order(self.n_rows, s.spec, s.shuffle, s.seed, epoch)

    def __iter__(self) -> Iterator[int]:
        order = self.order(self.epoch)
        return iter(order.tolist())

    def __len__(self) -> int:
        return self.n_rows


class TorchPeer:
    """Plain ``DataLoader`` over ``CSRRows`` with a block-shuffle sampler."""

    def __init__(self, paths: dict[str, Path], settings: LoaderSettings) -> None:
        csr = H5adCSR(dataset_path(paths, "h5ad", "torch")).to_scipy_csr()
        settings.check(csr.shape[0])
        self.settings = settings
        self.sampler = BlockShuffleSampler(csr.shape[0], settings)
        dataset = CSRRows(csr.indptr, csr.indices, csr.data, csr.shape[1])
        workers = settings.num_workers
        self.loader = DataLoader(dataset, batch_size=settings.batch_size, sampler=self.sampler, num_workers=workers,
                                 drop_last=settings.drop_last, persistent_workers=workers > 0)

    def epoch(self, epoch: int = 0, with_indices: bool = False) -> Iterator[Batch]:
        self.sampler.epoch = epoch
        order = self.sampler.order(epoch) if with_indices else None
        size = self.settings.batch_size
        for k, batch in enumerate(self.loader):
            yield batch, (order[k * size : k * size + len(batch)] if order is not None else None)
            del batch  # as for every loader here: do not hold the last batch while the next is made

    def __len__(self) -> int:
        return len(self.loader)
