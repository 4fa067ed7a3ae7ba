"""Other loaders on the same files, in the configurations their authors recommend, with the same shuffle quality.

- ``torch``: a plain ``torch.utils.data.DataLoader`` over a ``Dataset`` of dense rows of an in-memory scipy CSR
  (read from the ``.h5ad``); a ``Sampler`` gives the block-shuffle order (chunks of ``chunk_size`` cells,
  ``chunks_per_block`` chunks permuted together); ``num_workers`` processes, persistent across epochs.
- ``scdataset``: ``scDataset`` over the backed AnnData CSR ``X`` of the ``.h5ad`` (``anndata.io.sparse_dataset``),
  ``BlockShuffling(block_size=chunk_size)`` and ``fetch_factor = block / batch`` so that one fetch is one block of
  ``chunks_per_block`` chunks, shuffled together as the seed's blocks are; wrapped in ``DataLoader(batch_size=None,
  num_workers=w, prefetch_factor=fetch_factor + 1)`` as its README recommends; each batch densified to float32.
- ``annbatch``: ``annbatch.Loader(chunk_size, preload_nchunks=chunks_per_block, batch_size, shuffle=True)`` over the
  sharded Zarr store (``cells.zarr``), CPU only, sparse batches densified. annbatch needs Python >= 3.12.

A peer that cannot be built raises ``PeerUnavailable`` with the reason; the caller records it as a row.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from loaderbench.sparse.blocks import epoch_order
from loaderbench.sparse.methods import Batch, LoaderSettings
from loaderbench.sparse.sources import H5adCSR

PEERS = ("torch", "scdataset", "annbatch")


class PeerUnavailable(RuntimeError):
    """A peer that cannot run here; the message is the reason."""


def _require(module: str, why: str = "") -> None:
    if importlib.util.find_spec(module) is None:
        raise PeerUnavailable(f"{module} is not installed{why}")


def _path(paths: dict[str, Path], name: str, peer: str) -> Path:
    if name not in paths:
        raise PeerUnavailable(f"{peer} needs the {name} file, which was not written for this dataset")
    return paths[name]


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
        csr = H5adCSR(_path(paths, "h5ad", "torch")).to_scipy_csr()
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


class BackedCSR:
    """The ``.h5ad``'s ``X`` as anndata's backed CSR dataset, reopened in each process (h5py handles do not
    survive ``fork``); ``collection[sorted indices]`` gives a scipy CSR, as scDataset expects."""

    def __init__(self, path: Path) -> None:
        import h5py  # noqa: PLC0415

        self.path = path
        with h5py.File(path, "r") as handle:
            self.shape = tuple(int(v) for v in handle["X"].attrs["shape"])
        self._pid: int | None = None
        self._matrix: Any = None
        self._file: Any = None

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> Any:
        if self._pid != os.getpid():
            import anndata as ad  # noqa: PLC0415
            import h5py  # noqa: PLC0415

            self._file = h5py.File(self.path, "r")
            self._matrix = ad.io.sparse_dataset(self._file["X"])
            self._pid = os.getpid()
        return self._matrix[index]

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "shape": self.shape, "_pid": None, "_matrix": None, "_file": None}


def _dense_tensor(batch: Any) -> torch.Tensor:
    return torch.from_numpy(np.asarray(batch.toarray(), dtype=np.float32))


class ScDatasetPeer:
    """``scDataset`` with ``BlockShuffling`` over the backed ``.h5ad``."""

    def __init__(self, paths: dict[str, Path], settings: LoaderSettings) -> None:
        _require("scdataset", " (pip install --no-deps scdataset)")
        _require("anndata", " (scDataset reads the .h5ad through anndata's backed CSR)")
        from scdataset import BlockShuffling, Streaming, scDataset  # noqa: PLC0415

        collection = BackedCSR(_path(paths, "h5ad", "scdataset"))
        settings.check(len(collection))
        self.settings = settings
        fetch_factor = max(1, settings.spec.block_size // settings.batch_size)
        if settings.shuffle == "none":
            strategy = Streaming()
        else:
            strategy = BlockShuffling(block_size=settings.chunk_size if settings.shuffle == "block" else 1)
        self.fetch_factor = fetch_factor
        self.dataset = scDataset(collection, strategy, batch_size=settings.batch_size, fetch_factor=fetch_factor,
                                 drop_last=settings.drop_last, batch_transform=_dense_tensor, seed=settings.seed)
        workers = settings.num_workers
        self.loader = DataLoader(self.dataset, batch_size=None, num_workers=workers,
                                 prefetch_factor=fetch_factor + 1 if workers else None,
                                 persistent_workers=workers > 0)

    def epoch(self, epoch: int = 0, with_indices: bool = False) -> Iterator[Batch]:
        # scDataset advances its own epoch on every pass (seed + 1000 * epoch); ``epoch`` is not needed here.
        for batch in self.loader:
            yield batch, None
            del batch

    def __len__(self) -> int:
        return len(self.dataset)


class AnnbatchPeer:
    """``annbatch.Loader`` over the sharded Zarr store (CPU, sparse batches densified)."""

    def __init__(self, paths: dict[str, Path], settings: LoaderSettings) -> None:
        if importlib.util.find_spec("annbatch") is None:
            raise PeerUnavailable(
                "annbatch is not installed: every annbatch release (0.0.1 to 0.3.1) requires Python >= 3.12, this "
                f"is Python {platform.python_version()}"
            )
        import anndata as ad  # noqa: PLC0415
        import zarr  # noqa: PLC0415
        from annbatch import Loader  # noqa: PLC0415

        group = zarr.open_group(_path(paths, "zarr", "annbatch"), mode="r")
        settings.check(int(group["X"].attrs["shape"][0]))
        self.settings = settings
        shuffle = settings.shuffle != "none"
        self.loader = Loader(
            chunk_size=settings.chunk_size if settings.shuffle == "block" else 1,
            preload_nchunks=settings.chunks_per_block, batch_size=settings.batch_size, shuffle=shuffle,
            rng=np.random.default_rng(settings.seed) if shuffle else None, drop_last=settings.drop_last,
            preload_to_gpu=False, to_torch=True,
        ).add_dataset(ad.io.sparse_dataset(group["X"]))

    def epoch(self, epoch: int = 0, with_indices: bool = False) -> Iterator[Batch]:
        for item in self.loader:
            batch = item["X"] if isinstance(item, dict) else (item[0] if isinstance(item, tuple) else item)
            if batch.layout != torch.strided:
                batch = batch.to_dense()
            yield batch, None
            del batch, item

    def __len__(self) -> int:
        return len(self.loader)


PEER_CLASSES = {"torch": TorchPeer, "scdataset": ScDatasetPeer, "annbatch": AnnbatchPeer}
