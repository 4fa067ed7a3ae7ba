"""Peer: WebDataset, the documented way - ``webdataset.ShardWriter`` writes the images as ``.npy`` members of tar
shards once; ``WebDataset(urls, shardshuffle=...).shuffle(buffer).decode().to_tuple("npy").batched(B)`` read through
``WebLoader(batch_size=None, num_workers=w)`` (batching inside the workers, as its docs recommend).

One epoch is every sample once: shards are split among DataLoader workers by ``split_by_worker`` (before the shard
shuffle), and there are at least as many shards as workers, so no worker reads a shard twice or sits empty.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from loaderbench.loaders.peers.workload import source_stamp

NAME = "webdataset"
DISTRIBUTIONS = ("webdataset",)
DOCS = ("ShardWriter writes each image as .npy in tar shards (~1,000 samples / 100 MB each); "
        "WebDataset(urls, shardshuffle=100).shuffle(1000).decode().to_tuple('npy').batched(B) + "
        "WebLoader(batch_size=None, num_workers=w) as its README shows; batches divided by the dtype max in the loop")

#: the shard limits its docs suggest (ShardWriter maxcount / maxsize)
_SHARD_SAMPLES = 1000
_SHARD_BYTES = 100e6
#: the documented shuffle: shard buffer 100, sample buffer 1,000 (README "shardshuffle=100 ... .shuffle(1000)")
_DOCUMENTED_SHARD_SHUFFLE = 100
_DOCUMENTED_BUFFER = 1000


def unavailable() -> str | None:
    """None when ``webdataset`` imports here, else why not."""
    if importlib.util.find_spec("webdataset") is None:
        return "webdataset is not installed (scripts/setup_image_peers.sh installs it)"
    try:
        import webdataset  # noqa: F401, PLC0415 - the top-level package, not this module (imports are absolute)
    except Exception as error:  # noqa: BLE001 - any import failure is the reason the row reports
        return f"import webdataset failed: {type(error).__name__}: {error}".splitlines()[0]
    return None


def variants(workload: Any) -> dict[str, dict]:
    """``documented``: README settings with the most workers offered. ``tuned``: see below."""
    workers = max(workload.num_workers)
    return {
        "documented": {"num_workers": workers, "buffer": _DOCUMENTED_BUFFER,
                       "shardshuffle": _DOCUMENTED_SHARD_SHUFFLE},
        # Persistent workers skip starting the worker processes every epoch (a large share of a sub-second epoch of
        # small images), and with them detshuffle (its seed + epoch shard shuffle) gives a new shard order each
        # epoch, where the documented one repeats its order.
        "tuned": {"num_workers": workers, "buffer": _DOCUMENTED_BUFFER, "shardshuffle": _DOCUMENTED_SHARD_SHUFFLE,
                  "persistent_workers": True, "detshuffle": True},
    }


def shuffle_note(settings: dict) -> str:
    order = ("a new shard order each epoch (detshuffle: seed + epoch)" if settings.get("detshuffle")
             else "the same shard order every epoch (its shard shuffle reseeds with the dataset's fixed seed)")
    return (f"not a full permutation: shard order shuffled within each worker's shards (buffer of "
            f"{settings['shardshuffle']} shards), {order}, then a shuffle buffer of {settings['buffer']} samples "
            "(fresh each epoch): a sample moves at most about the buffer size from its shard's place")


def _shards_dir(workload: Any, cache: Path) -> Path:
    return Path(cache) / workload.name / "shards"


def _shard_urls(workload: Any, cache: Path) -> list[str]:
    return sorted(str(path) for path in _shards_dir(workload, cache).glob("shard-*.tar"))


def prepare(workload: Any, cache: Path) -> None:
    """Write the Parquet rows as tar shards under ``cache`` (skipped when shards of the same source exist)."""
    import pyarrow.parquet as pq  # noqa: PLC0415
    import webdataset as wds  # noqa: PLC0415

    from loaderbench.ome_image import OME_COLUMN, decode_column  # noqa: PLC0415

    shards = _shards_dir(workload, cache)
    stamp_file = shards.parent / "source.json"
    # at least one shard per worker, so that split_by_worker gives every worker a shard
    per_shard = min(_SHARD_SAMPLES, math.ceil(workload.n / max(1, *workload.num_workers)))
    stamp = {**source_stamp(workload), "samples_per_shard": per_shard}  # other workers: other shards
    if stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp and _shard_urls(workload, cache):
        return
    shutil.rmtree(shards.parent, ignore_errors=True)
    shards.mkdir(parents=True)
    row = 0
    with wds.ShardWriter(str(shards / "shard-%06d.tar"), maxcount=per_shard, maxsize=_SHARD_BYTES,
                         verbose=0) as writer:
        for batch in pq.ParquetFile(workload.parquet).iter_batches(batch_size=1024, columns=[OME_COLUMN]):
            for image in decode_column(batch.column(OME_COLUMN))[:, :, 0]:
                writer.write({"__key__": f"{row:010d}", "npy": np.ascontiguousarray(image)})
                row += 1
    if row != workload.n:
        raise ValueError(f"{workload.parquet} holds {row} rows, the workload says {workload.n}")
    stamp_file.write_text(json.dumps(stamp))


class ScaledBatches:
    """One epoch per ``iter()``: WebDataset's uint8/uint16 batches as float32 in [0, 1]."""

    def __init__(self, loader: Any, scale: float) -> None:
        self.loader, self.scale = loader, scale

    def __iter__(self) -> Iterator[Any]:
        for (images,) in self.loader:
            yield images.float().div_(self.scale)


def build_loader(workload: Any, cache: Path, settings: dict) -> ScaledBatches:
    import webdataset as wds  # noqa: PLC0415

    shuffle = workload.shuffle
    dataset = wds.WebDataset(_shard_urls(workload, cache), shardshuffle=settings["shardshuffle"] if shuffle else False,
                             detshuffle=settings.get("detshuffle", False), nodesplitter=wds.split_by_node,
                             workersplitter=wds.split_by_worker, seed=workload.seed)
    if shuffle:
        dataset = dataset.shuffle(settings["buffer"])
    dataset = dataset.decode().to_tuple("npy").batched(workload.batch_size, partial=True)
    persistent = settings.get("persistent_workers", False) and settings["num_workers"] > 0
    loader = wds.WebLoader(dataset, batch_size=None, num_workers=settings["num_workers"],
                           persistent_workers=persistent)
    return ScaledBatches(loader, workload.scale)


USER_CODE = (build_loader, ScaledBatches)


def holds_dataset(settings: dict) -> bool:
    """Whether the loader holds the whole dataset in memory after its build. No: every epoch reads the tar shards
    from disk."""
    return False
