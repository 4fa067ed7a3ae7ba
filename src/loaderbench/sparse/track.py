"""``loaderbench run --tracks sparse``: a compact default of the sparse benchmark.

Two block specs x (np.array, scipy.csr, native, torch, scDataset, annbatch), three whole epochs each (first batch
included), each configuration in a fresh process; plus one read-chunks pass (three shuffle strategies, Parquet and
TileDB-SOMA when installed), written to ``sparse_read_chunks.parquet``. Returns the epoch rows (the runner stores
them as ``sparse.parquet``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.progress import Progress
from loaderbench.results import write_track
from loaderbench.sparse import READ_CHUNKS_TRACK
from loaderbench.sparse.blocks import parse_block_specs
from loaderbench.sparse.data_loader import expand_settings, run_data_loader
from loaderbench.sparse.datagen import prepare_sparse_dataset
from loaderbench.sparse.measure import ALL_LOADERS
from loaderbench.sparse.read_chunks import DEFAULT_CHUNK_SIZE, run_read_chunks

NAME = "sparse"
TRACK_BLOCK_SPECS = {"quick": ["16x512", "16x1024"], "full": ["64x1024", "64x2048"]}
TRACK_EPOCHS = 3


def run_sparse_track(out_dir: str | os.PathLike[str], preset: str = "quick", progress: Progress | None = None,
                     data_dir: str | os.PathLike[str] = "data", input_path: str | None = None) -> pd.DataFrame:
    """Run the compact sparse benchmark; writes ``sparse_read_chunks.parquet`` and returns the epoch rows."""
    progress = progress or Progress(quiet=True)
    dataset = prepare_sparse_dataset(preset, data_dir, input_path, progress=progress)
    chunks = run_read_chunks(dataset, [min(DEFAULT_CHUNK_SIZE, dataset.n_obs)], [0, 1, 2], repeats=1,
                             progress=progress, echo=lambda _line: None)
    write_track(Path(out_dir), READ_CHUNKS_TRACK, chunks)
    specs = parse_block_specs(TRACK_BLOCK_SPECS.get(preset, TRACK_BLOCK_SPECS["quick"]))
    specs = [s for s in specs if s.chunk_size <= dataset.n_obs] or parse_block_specs([str(dataset.n_obs)])
    settings = expand_settings(specs, list(ALL_LOADERS), batch_size=1024, threads=[2], workers=[0, 2])
    # Whole epochs timed (first batch included): with few batches per epoch, leaving out the first batch would leave
    # out the block read that the seed's methods do at its start.
    return run_data_loader(dataset, settings, epochs=TRACK_EPOCHS, include_first_batch=True, progress=progress,
                           echo=lambda _line: None)


def run(ctx: Any) -> pd.DataFrame:
    """The ``tracks.TRACKS`` entry: ``run_sparse_track`` with the run's results dir, preset, data dir and progress."""
    cfg = ctx.config
    return run_sparse_track(cfg.out, cfg.preset, ctx.progress, data_dir=cfg.data_dir)
