"""``scdataset``: ``scDataset`` over the backed AnnData CSR ``X`` of the ``.h5ad`` (``anndata.io.sparse_dataset``),
``BlockShuffling(block_size=chunk_size)`` and ``fetch_factor = block / batch`` so that one fetch is one block of
``chunks_per_block`` chunks, shuffled together as the seed's blocks are; wrapped in ``DataLoader(batch_size=None,
num_workers=w, prefetch_factor=fetch_factor + 1)`` as its README recommends; each batch densified to float32."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader

from loaderbench.sparse.methods import Batch, LoaderSettings
from loaderbench.sparse.peers._common import dataset_path, dense_float32_tensor, require


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


class ScDatasetPeer:
    """``scDataset`` with ``BlockShuffling`` over the backed ``.h5ad``."""

    def __init__(self, paths: dict[str, Path], settings: LoaderSettings) -> None:
        require("scdataset", " (pip install --no-deps scdataset)")
        require("anndata", " (scDataset reads the .h5ad through anndata's backed CSR)")
        from scdataset import BlockShuffling, Streaming, scDataset  # noqa: PLC0415

        collection = BackedCSR(dataset_path(paths, "h5ad", "scdataset"))
        settings.check(len(collection))
        self.settings = settings
        fetch_factor = max(1, settings.spec.block_size // settings.batch_size)
        if settings.shuffle == "none":
            strategy = Streaming()
        else:
            strategy = BlockShuffling(block_size=settings.chunk_size if settings.shuffle == "block" else 1)
        self.fetch_factor = fetch_factor
        self.dataset = scDataset(collection, strategy, batch_size=settings.batch_size, fetch_factor=fetch_factor,
                                 drop_last=settings.drop_last, batch_transform=dense_float32_tensor,
                                 seed=settings.seed)
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
