"""tiledbsoma-ml (the maintained successor of cellxgene-census' ``ExperimentDataPipe``) over the same cells.

``tiledbsoma_ml.ExperimentDataset(query, layer_name="raw", batch_size, shuffle, shuffle_chunk_size, io_batch_size,
seed)`` wrapped in ``tiledbsoma_ml.experiment_dataloader(ds, num_workers=w)`` (its documented use; workers are spawned
processes, persistent across epochs here as for the other peers), over a TileDB-SOMA ``Experiment`` whose
``ms["RNA"].X["raw"]`` is the ``SparseNDArray`` that ``sparse generate`` writes (``cells.soma``, referenced, not copied;
``ensure_experiment`` adds ``obs`` and ``var``). Two configurations:

- ``tiledbsoma_ml``: matched settings: ``shuffle_chunk_size = chunk_size``, ``io_batch_size = chunk_size x
  chunks_per_block`` (shuffled chunks grouped into an IO batch and shuffled row-wise: the block shuffle);
- ``tiledbsoma_ml_docs``: its defaults, ``shuffle_chunk_size=64``, ``io_batch_size=65536`` (``DOCS_CHUNKING``).

Batches are dense float32 numpy ``[B, genes]`` (``return_sparse_X=False``, its default), wrapped as tensors without
a copy; ``obs`` (``soma_joinid``, its default column) gives each row's cell id. tiledbsoma-ml 0.1.0 serves the same
order every epoch: its shuffles use ``seed`` alone (drawn once when ``None``), whatever ``set_epoch`` was given.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loaderbench.sparse.methods import Batch, LoaderSettings
from loaderbench.sparse.peers._common import PeerUnavailable, dataloader_keeping_start_method, dataset_path, require

EXPERIMENT_NAME = "cells.soma-experiment"
MEASUREMENT = "RNA"
LAYER = "raw"
#: tiledbsoma_ml 0.1.0's DEFAULT_SHUFFLE_CHUNK_SIZE and DEFAULT_IO_BATCH_SIZE (64 x 1024 = 2**16), as a block spec
DOCS_CHUNKING = (64, 1024)
_INSTALL = " (pip install --no-deps tiledbsoma-ml==0.1.0 numba llvmlite: scripts/setup_sparse_peers.sh)"


def _experiment_matches(uri: Path, array_uri: str, shape: tuple[int, int]) -> bool:
    import tiledbsoma  # noqa: PLC0415

    try:
        with tiledbsoma.Experiment.open(str(uri)) as exp:
            layer = exp.ms[MEASUREMENT].X[LAYER]
            return (Path(layer.uri.removeprefix("file://")).resolve() == Path(array_uri).resolve()
                    and exp.obs.count == shape[0] and exp.ms[MEASUREMENT].var.count == shape[1])
    except Exception:  # noqa: BLE001 - anything unreadable is rebuilt
        return False


def ensure_experiment(paths: dict[str, Any], peer: str = "tiledbsoma_ml") -> Path:
    """A TileDB-SOMA ``Experiment`` beside ``cells.soma`` whose ``ms["RNA"].X["raw"]`` is that array (by absolute
    URI), with ``obs`` (``soma_joinid``, ``obs_id``) and ``var`` (``soma_joinid``, ``var_id``); written once,
    atomically, and rebuilt if it no longer matches the array."""
    require("tiledbsoma", " (scripts/setup.sh installs tiledbsoma 2.3.0)")
    import pyarrow as pa  # noqa: PLC0415
    import tiledbsoma  # noqa: PLC0415

    from loaderbench.formats import atomic_output  # noqa: PLC0415

    array_path = dataset_path(paths, "soma", peer).resolve()
    with tiledbsoma.SparseNDArray.open(str(array_path)) as array:
        n_obs, n_vars = (int(v) for v in array.shape)
    target = array_path.parent / EXPERIMENT_NAME
    if _experiment_matches(target, str(array_path), (n_obs, n_vars)):
        return target
    def add_ids(parent: Any, name: str, prefix: str, n: int) -> None:
        schema = pa.schema([("soma_joinid", pa.int64()), (f"{name}_id", pa.large_string())])
        frame = parent.add_new_dataframe(name, schema=schema, index_column_names=["soma_joinid"],
                                         domain=[(0, max(0, n - 1))])
        ids = np.arange(n, dtype=np.int64)
        frame.write(pa.table({"soma_joinid": ids,
                              f"{name}_id": pa.array([f"{prefix}{i}" for i in ids], pa.large_string())}))

    with atomic_output(target) as tmp, tiledbsoma.Experiment.create(str(tmp)) as exp:
        add_ids(exp, "obs", "cell_", n_obs)
        rna = exp.add_new_collection("ms").add_new_collection(MEASUREMENT, tiledbsoma.Measurement)
        add_ids(rna, "var", "gene_", n_vars)
        with tiledbsoma.SparseNDArray.open(str(array_path)) as array:
            rna.add_new_collection("X").set(LAYER, array, use_relative_uri=False)
    return target


class TiledbsomaMLPeer:
    """``ExperimentDataset`` + ``experiment_dataloader``; ``tiledbsoma_ml_docs`` takes the library's defaults."""

    def __init__(self, paths: dict[str, Path], settings: LoaderSettings) -> None:
        require("tiledbsoma_ml", _INSTALL)
        try:
            import tiledbsoma  # noqa: PLC0415
            from tiledbsoma_ml import ExperimentDataset, experiment_dataloader  # noqa: PLC0415
            from tiledbsoma_ml.dataset import DEFAULT_IO_BATCH_SIZE, DEFAULT_SHUFFLE_CHUNK_SIZE  # noqa: PLC0415
        except ImportError as exc:  # numba, llvmlite or attrs missing or built for another numpy
            raise PeerUnavailable(f"tiledbsoma_ml cannot be imported: {exc}") from exc
        uri = ensure_experiment(paths, settings.method)
        self.experiment = tiledbsoma.Experiment.open(str(uri))
        self.query = self.experiment.axis_query(measurement_name=MEASUREMENT)
        settings.check(self.query.n_obs)
        self.settings = settings
        if settings.method == "tiledbsoma_ml_docs":
            shuffle_chunk_size, io_batch_size = DEFAULT_SHUFFLE_CHUNK_SIZE, DEFAULT_IO_BATCH_SIZE
        else:
            shuffle_chunk_size = settings.chunk_size if settings.shuffle == "block" else 1
            io_batch_size = settings.spec.block_size
        self.dataset = ExperimentDataset(self.query, layer_name=LAYER, batch_size=settings.batch_size,
                                         io_batch_size=io_batch_size, shuffle=settings.shuffle != "none",
                                         shuffle_chunk_size=shuffle_chunk_size, seed=settings.seed)
        workers = settings.num_workers
        self.loader = dataloader_keeping_start_method(experiment_dataloader, self.dataset, num_workers=workers,
                                                      persistent_workers=workers > 0)

    def epoch(self, epoch: int = 0, with_indices: bool = False) -> Iterator[Batch]:
        self.dataset.set_epoch(epoch)  # takes effect in this process; persistent workers advance their own epoch
        for x, obs in self.loader:
            ids = obs["soma_joinid"].to_numpy() if with_indices else None
            yield torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), ids
            del x, obs

    def __len__(self) -> int:
        return len(self.dataset)

    def __del__(self) -> None:
        for handle in (getattr(self, "query", None), getattr(self, "experiment", None)):
            if handle is not None:
                handle.close()
