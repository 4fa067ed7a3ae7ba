"""The code a user writes to build and iterate each sparse loader, for the ``user_code_lines`` column: the loader
class's ``__init__`` and ``epoch`` (building it and turning its batches into dense float32 tensors) and the helpers
they need; for annbatch, the runner's loader building (and the pre-shuffled collection its docs have users write);
for the seed's methods, their whole class (the seed's code). One-off conversions of the data (the TileDB-SOMA
experiment, the sharded Zarr) count no more than an image peer's ``prepare`` does. Counted by
``loaderbench.code_lines``, as for the image peers."""

from __future__ import annotations

from functools import cache
from typing import Any

from loaderbench.code_lines import object_lines
from loaderbench.sparse.methods import NativeMethodLoader, SeedMethodLoader, StreamingMethodLoader
from loaderbench.sparse.peers import annbatch_runner
from loaderbench.sparse.peers.cellxgene_census import CellxgeneCensusPeer
from loaderbench.sparse.peers.scdataset import BackedCSR, ScDatasetPeer
from loaderbench.sparse.peers.tiledbsoma_ml import TiledbsomaMLPeer
from loaderbench.sparse.peers.torch_dataloader import BlockShuffleSampler, CSRRows, TorchPeer

_ANNBATCH = (annbatch_runner.build_loader, annbatch_runner.dense_float32)
USER_CODE: dict[str, tuple[Any, ...]] = {
    "np.array": (SeedMethodLoader,),
    "scipy.csr": (SeedMethodLoader,),
    "native": (NativeMethodLoader.__init__, NativeMethodLoader.epoch),
    "native_streaming": (StreamingMethodLoader.__init__, NativeMethodLoader.epoch),
    "torch": (CSRRows, BlockShuffleSampler, TorchPeer.__init__, TorchPeer.epoch),
    "scdataset": (BackedCSR, ScDatasetPeer.__init__, ScDatasetPeer.epoch),
    "annbatch": _ANNBATCH,
    "annbatch_collection": (*_ANNBATCH, annbatch_runner.prepare_collection),
    "annbatch_collection_zarrpython": (*_ANNBATCH, annbatch_runner.prepare_collection),
    "tiledbsoma_ml": (TiledbsomaMLPeer.__init__, TiledbsomaMLPeer.epoch),
    "tiledbsoma_ml_docs": (TiledbsomaMLPeer.__init__, TiledbsomaMLPeer.epoch),
    "cellxgene_census": (CellxgeneCensusPeer.__init__, CellxgeneCensusPeer.epoch),
}


@cache
def user_code_lines(method: str) -> int | None:
    """Lines of code a user writes for ``method`` (``None`` for a method without an entry)."""
    objects = USER_CODE.get(method)
    return object_lines(objects) if objects else None
