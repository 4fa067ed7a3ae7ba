"""The benchmark tracks: one module per track, each with ``NAME`` and ``run(ctx) -> pandas.DataFrame``.

Track 1 ``getitem`` (``Dataset.__getitem__`` latency), Track 2 ``dataloader`` (DataLoader throughput and memory),
Track 3 ``end_to_end`` (data loading feeding a model), Track 4 ``conversion`` (numpy vs the torch conversion);
only when named: ``peers`` (the other loaders users could pick, each in a fresh process) and ``sparse`` (cells x genes,
in ``loaderbench.sparse``).
Rows are tidy: one per configuration x repeat, starting with the columns of ``common_columns``.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from loaderbench.sparse import track as sparse_track
from loaderbench.tracks import conversion, dataloader, end_to_end, getitem, peers
from loaderbench.tracks.common import TrackContext, common_columns, iter_targets

TRACKS: dict[str, Callable[[TrackContext], pd.DataFrame]] = {
    getitem.NAME: getitem.run,
    dataloader.NAME: dataloader.run,
    end_to_end.NAME: end_to_end.run,
    conversion.NAME: conversion.run,
    peers.NAME: peers.run,
    sparse_track.NAME: sparse_track.run,
}

__all__ = ["TRACKS", "TrackContext", "common_columns", "iter_targets"]
