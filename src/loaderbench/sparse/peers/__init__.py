"""Other loaders on the same files, in the configurations their authors recommend and in settings matched to the
native loader's (same chunk x chunks-per-block x batch size and shuffle), every batch dense float32 ``[B, genes]``.

One module per peer: ``torch_dataloader`` (a plain DataLoader over in-memory CSR rows), ``scdataset`` (scDataset over
the backed ``.h5ad``), ``annbatch`` (annbatch in its own Python >= 3.12 interpreter, ``annbatch_runner.py``),
``tiledbsoma_ml`` (``ExperimentDataset`` over a TileDB-SOMA experiment) and ``cellxgene_census`` (the seed's
``ExperimentDataPipe``). A peer that cannot be built raises ``PeerUnavailable`` with the reason; the caller records it
as a row. Peers in ``EXTERNAL_PEERS`` are measured out of process by ``measure.run_external_peer`` (a ``RunSpec`` in,
the same rows as ``measure.run_spec`` out); ``DOCS_CHUNKING`` holds the chunking a peer's documentation recommends.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from loaderbench.sparse.methods import LoaderSettings
from loaderbench.sparse.peers import annbatch as _annbatch
from loaderbench.sparse.peers import tiledbsoma_ml as _tiledbsoma_ml
from loaderbench.sparse.peers._common import PeerUnavailable
from loaderbench.sparse.peers.annbatch import AnnbatchPeer, run_annbatch
from loaderbench.sparse.peers.cellxgene_census import CellxgeneCensusPeer
from loaderbench.sparse.peers.scdataset import BackedCSR, ScDatasetPeer
from loaderbench.sparse.peers.tiledbsoma_ml import TiledbsomaMLPeer
from loaderbench.sparse.peers.torch_dataloader import BlockShuffleSampler, CSRRows, TorchPeer

PEER_CLASSES = {
    "torch": TorchPeer,
    "scdataset": ScDatasetPeer,
    "annbatch": AnnbatchPeer,
    "annbatch_collection": AnnbatchPeer,
    "annbatch_collection_zarrpython": AnnbatchPeer,
    "tiledbsoma_ml": TiledbsomaMLPeer,
    "tiledbsoma_ml_docs": TiledbsomaMLPeer,
    "cellxgene_census": CellxgeneCensusPeer,
}
PEERS = tuple(PEER_CLASSES)
#: peers that run DataLoader worker processes (``num_workers``)
WORKER_PEERS = ("torch", "scdataset", "tiledbsoma_ml", "tiledbsoma_ml_docs", "cellxgene_census")
#: the file each peer reads (the ``format`` column)
PEER_FORMATS = {"torch": "h5ad", "scdataset": "h5ad", "annbatch": "zarr", "annbatch_collection": "annbatch collection",
                "annbatch_collection_zarrpython": "annbatch collection", "tiledbsoma_ml": "soma",
                "tiledbsoma_ml_docs": "soma", "cellxgene_census": "soma"}
#: peers whose documented configuration fixes the chunking: (chunk_size, chunks_per_block)
DOCS_CHUNKING = {
    "annbatch_collection": _annbatch.DOCS_CHUNKING,
    "annbatch_collection_zarrpython": _annbatch.DOCS_CHUNKING,
    "tiledbsoma_ml_docs": _tiledbsoma_ml.DOCS_CHUNKING,
}
#: peers measured in their own interpreter: method -> function(RunSpec) -> rows
EXTERNAL_PEERS = {method: run_annbatch for method in _annbatch.CONFIGS}


def docs_settings(settings: LoaderSettings) -> LoaderSettings:
    """``settings`` with the chunking the peer's documentation fixes (unchanged for any other method)."""
    if settings.method not in DOCS_CHUNKING:
        return settings
    chunk_size, chunks_per_block = DOCS_CHUNKING[settings.method]
    return dataclasses.replace(settings, chunk_size=chunk_size, chunks_per_block=chunks_per_block)


def peer_columns(settings: LoaderSettings) -> dict[str, Any]:
    """Row columns a peer's configuration sets (``format``, ``num_workers``) where ``measure`` does not know it."""
    if settings.method not in PEER_CLASSES:
        return {}
    return {"format": PEER_FORMATS[settings.method],
            "num_workers": settings.num_workers if settings.method in WORKER_PEERS else 0}


__all__ = [
    "DOCS_CHUNKING", "EXTERNAL_PEERS", "PEERS", "PEER_CLASSES", "PEER_FORMATS", "WORKER_PEERS", "AnnbatchPeer",
    "BackedCSR", "BlockShuffleSampler", "CSRRows", "CellxgeneCensusPeer", "PeerUnavailable", "ScDatasetPeer",
    "TiledbsomaMLPeer", "TorchPeer", "docs_settings", "peer_columns",
]
