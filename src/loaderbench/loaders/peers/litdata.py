"""Peer: Lightning's LitData, the documented way - ``litdata.optimize`` the images into its binary chunks once, then
``StreamingDataset(shuffle=True)`` + ``StreamingDataLoader(batch_size, num_workers)``.

LitData declares ``torchvision`` as a requirement but imports without it; ``scripts/setup_image_peers.sh`` installs it
with ``--no-deps`` beside the CPU torch. Every cache LitData keeps (the optimizer's scratch folders, the streaming
cache) lives under the peer's cache folder, never in ``~``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from loaderbench.loaders.peers.workload import source_stamp
from loaderbench.start_method import call_keeping_start_method

NAME = "litdata"
DISTRIBUTIONS = ("litdata",)
DOCS = ("litdata.optimize(fn, inputs, output_dir, chunk_bytes='64MB') writes each image as a numpy uint8/uint16 "
        "array into chunks; StreamingDataset(dir, shuffle=True) + StreamingDataLoader(batch_size, num_workers) reads "
        "them as its README shows; batches are divided by the dtype max in the training loop")

#: LitData's documented default chunk size (README FAQ "What chunk_bytes should I use?")
CHUNK_BYTES = "64MB"
#: rows one ``optimize`` input reads from the Parquet file (the fn yields them one sample at a time)
_ROWS_PER_INPUT = 1024
#: the optimizer's worker processes (it spawns them): a one-off conversion, two keep it short on small machines
_OPTIMIZE_WORKERS = 2


def unavailable() -> str | None:
    """None when ``litdata`` imports here, else why not."""
    if importlib.util.find_spec("litdata") is None:
        return "litdata is not installed (scripts/setup_image_peers.sh installs it)"
    try:
        import litdata  # noqa: F401, PLC0415 - the top-level package, not this module (imports are absolute)
    except Exception as error:  # noqa: BLE001 - any import failure is the reason the row reports
        return f"import litdata failed: {type(error).__name__}: {error}".splitlines()[0]
    return None


def variants(workload: Any) -> dict[str, dict]:
    """``documented``: the README's loader (shuffle, workers > 0, its defaults otherwise). ``tuned``: see below."""
    workers = max(workload.num_workers)
    return {
        "documented": {"num_workers": workers},
        # Persistent workers (a DataLoader option it forwards) skip starting the worker processes every epoch, a large
        # share of a sub-second epoch of small images; LitData still reshuffles each epoch (checked: a new order).
        # Measured on 2 busy cores, 8,192 x 100x100: at least as fast as documented in every round, often 1.3-3x.
        "tuned": {"num_workers": workers, "persistent_workers": True},
    }


def shuffle_note(settings: dict) -> str:
    return ("chunk-level shuffle: each epoch permutes the chunk order (chunks of up to "
            f"{CHUNK_BYTES}) and the items inside each chunk (in blocks of its item_shuffle_window, default 256); "
            "a batch draws from one or two chunks, not from the whole dataset")


def _use_cache_folders(cache: Path) -> None:
    """Point LitData's scratch and cache folders (environment variables it reads) into ``cache``."""
    os.environ["DATA_OPTIMIZER_CACHE_FOLDER"] = str(cache / "optimizer_chunks")
    os.environ["DATA_OPTIMIZER_DATA_CACHE_FOLDER"] = str(cache / "optimizer_data")
    os.environ["LITDATA_CACHE_DIR"] = str(cache / "streaming_cache")


def _chunks_dir(workload: Any, cache: Path) -> Path:
    return cache / workload.name / "chunks"


def image_samples(rows: tuple[str, int, int]) -> Iterator[dict[str, np.ndarray]]:
    """``optimize``'s fn: the images of Parquet rows ``[start, stop)``, one sample ``{"image": (C, H, W)}`` each."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.dataset as ds  # noqa: PLC0415

    from loaderbench.ome_image import OME_COLUMN, decode_column  # noqa: PLC0415

    parquet, start, stop = rows
    table = ds.dataset(parquet, format="parquet").take(pa.array(np.arange(start, stop)), columns=[OME_COLUMN])
    for image in decode_column(table.column(OME_COLUMN))[:, :, 0]:
        yield {"image": np.ascontiguousarray(image)}


def prepare(workload: Any, cache: Path) -> None:
    """Convert the Parquet rows into LitData chunks under ``cache`` (skipped when a copy of the same source exists)."""
    import litdata  # noqa: PLC0415

    cache = Path(cache)
    _use_cache_folders(cache)
    output = _chunks_dir(workload, cache)
    stamp_file = output.parent / "source.json"
    stamp = source_stamp(workload)
    if (output / "index.json").exists() and stamp_file.exists() and json.loads(stamp_file.read_text()) == stamp:
        return
    shutil.rmtree(output.parent, ignore_errors=True)
    output.parent.mkdir(parents=True)
    inputs = [(str(workload.parquet), start, min(start + _ROWS_PER_INPUT, workload.n))
              for start in range(0, workload.n, _ROWS_PER_INPUT)]
    # optimize spawns its workers by forcing the process-wide start method, which must not outlive the conversion
    call_keeping_start_method(litdata.optimize, fn=image_samples, inputs=inputs, output_dir=str(output),
                              chunk_bytes=CHUNK_BYTES, num_workers=min(_OPTIMIZE_WORKERS, len(inputs)),
                              keep_data_ordered=True, verbose=False)
    stamp_file.write_text(json.dumps(stamp))


class ScaledBatches:
    """One epoch per ``iter()``: LitData's uint8/uint16 batches as float32 in [0, 1]."""

    def __init__(self, loader: Any, scale: float) -> None:
        self.loader, self.scale = loader, scale

    def __iter__(self) -> Iterator[Any]:
        for batch in self.loader:
            yield batch["image"].float().div_(self.scale)


def build_loader(workload: Any, cache: Path, settings: dict) -> ScaledBatches:
    import litdata  # noqa: PLC0415

    cache = Path(cache)
    _use_cache_folders(cache)
    optional = {"batch_decode": settings["batch_decode"]} if "batch_decode" in settings else {}
    dataset = litdata.StreamingDataset(str(_chunks_dir(workload, cache)), cache_dir=str(cache / "streaming_cache"),
                                       shuffle=workload.shuffle, seed=workload.seed, drop_last=False, **optional)
    persistent = settings.get("persistent_workers", False) and settings["num_workers"] > 0
    loader = litdata.StreamingDataLoader(dataset, batch_size=workload.batch_size, num_workers=settings["num_workers"],
                                         persistent_workers=persistent)
    return ScaledBatches(loader, workload.scale)


USER_CODE = (build_loader, ScaledBatches)


def holds_dataset(settings: dict) -> bool:
    """Whether the loader holds the whole dataset in memory after its build. No: every chunk is read from its
    file on disk as the epoch reaches it."""
    return False
