"""cellxgene-census' ``ExperimentDataPipe``: the loader arrayloader-benchmarks (the seed) measured.

``cellxgene_census.experimental.ml.ExperimentDataPipe(experiment, measurement_name="RNA", X_name="raw", batch_size,
shuffle, seed, soma_chunk_size=chunk_size, shuffle_chunk_count=chunks_per_block)`` (as the seed ran it: chunks of
``soma_chunk_size`` contiguous cells, ``shuffle_chunk_count`` of them concatenated and shuffled together) wrapped in
its ``experiment_dataloader(pipe, num_workers=w)``, over the same TileDB-SOMA experiment as ``tiledbsoma_ml``.

The class lives in cellxgene-census <= 1.17.0 (1.18.0 removed ``experimental.ml`` in favour of tiledbsoma-ml) and
needs torchdata < 0.10 (DataPipes) and scikit-learn (its label encoders); ``scripts/setup_sparse_peers.sh`` installs
cellxgene-census 1.17.0 and torchdata 0.9.0 with ``--no-deps``. Where it cannot be imported the reason is the row.
"""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np

from loaderbench.formats import one_line
from loaderbench.sparse.methods import Batch, LoaderSettings
from loaderbench.sparse.peers._common import PeerUnavailable, dataloader_keeping_start_method, require
from loaderbench.sparse.peers.tiledbsoma_ml import LAYER, MEASUREMENT, ensure_experiment

_INSTALL = " (pip install --no-deps cellxgene-census==1.17.0 torchdata==0.9.0: scripts/setup_sparse_peers.sh)"


def import_datapipe() -> tuple[Any, Any]:
    """``(ExperimentDataPipe, experiment_dataloader)`` or ``PeerUnavailable`` with the measured reason."""
    require("cellxgene_census", _INSTALL)
    try:
        installed = version("cellxgene-census")
    except PackageNotFoundError:
        installed = "?"
    try:
        from cellxgene_census.experimental.ml import ExperimentDataPipe, experiment_dataloader  # noqa: PLC0415
    except ModuleNotFoundError as exc:
        if exc.name == "cellxgene_census.experimental.ml":
            raise PeerUnavailable(f"cellxgene-census {installed} has no experimental.ml.ExperimentDataPipe (removed "
                                  "after 1.17.0; its successor is tiledbsoma_ml.ExperimentDataset)") from exc
        raise PeerUnavailable(f"cellxgene_census.experimental.ml ({installed}) cannot be imported: "
                              f"{one_line(exc)}") from exc
    except ImportError as exc:
        raise PeerUnavailable(f"cellxgene_census.experimental.ml ({installed}) cannot be imported: "
                              f"{one_line(exc)}") from exc
    return ExperimentDataPipe, experiment_dataloader


class CellxgeneCensusPeer:
    """``ExperimentDataPipe`` + its ``experiment_dataloader``, chunking matched to the block spec (the seed's use)."""

    def __init__(self, paths: dict[str, Path], settings: LoaderSettings) -> None:
        pipe_class, self._dataloader = import_datapipe()
        import tiledbsoma  # noqa: PLC0415

        self.uri = ensure_experiment(paths, "cellxgene_census")
        self.experiment = tiledbsoma.Experiment.open(str(self.uri))
        settings.check(self.experiment.obs.count)
        self.settings = settings
        self._pipe_class = pipe_class
        self.pipe = self._make_pipe(())
        self.loader = self._make_loader(self.pipe)
        self._with_ids: tuple[Any, Any] | None = None

    def _make_pipe(self, obs_columns: tuple[str, ...]) -> Any:
        s = self.settings
        return self._pipe_class(
            self.experiment, measurement_name=MEASUREMENT, X_name=LAYER, obs_column_names=obs_columns,
            batch_size=s.batch_size, shuffle=s.shuffle != "none", seed=s.seed,
            soma_chunk_size=1 if s.shuffle == "random" else s.chunk_size,
            shuffle_chunk_count=s.chunks_per_block if s.shuffle != "none" else None)

    def _make_loader(self, pipe: Any) -> Any:
        workers = self.settings.num_workers
        return dataloader_keeping_start_method(self._dataloader, pipe, num_workers=workers,
                                               persistent_workers=workers > 0)

    def epoch(self, epoch: int = 0, with_indices: bool = False) -> Iterator[Batch]:
        # Timed epochs read no obs column (the pipe's default); a check asks for ids, which a second pipe carries
        # (its obs tensor holds soma_joinid label-encoded: the pipe's own encoder decodes it).
        loader = self.loader
        if with_indices:
            if self._with_ids is None:
                pipe = self._make_pipe(("soma_joinid",))
                self._with_ids = (pipe, self._make_loader(pipe))
            loader = self._with_ids[1]
        decode = self._with_ids[0].obs_encoders["soma_joinid"].inverse_transform if with_indices else None
        for x, obs in loader:
            ids = None
            if decode is not None:
                codes = obs.numpy().reshape(len(x), -1)[:, 0]
                ids = np.asarray(decode(codes), dtype=np.int64)
            yield x, ids
            del x, obs

    def __len__(self) -> int:
        return len(self.pipe)

    def __del__(self) -> None:
        experiment = getattr(self, "experiment", None)
        if experiment is not None:
            experiment.close()
