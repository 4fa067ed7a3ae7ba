"""Peer: Meta's SPDL, the documented way - a ``spdl.pipeline`` built with ``PipelineBuilder``: a source of shuffled
index batches (its ``DistributedRandomSampler``, reshuffled each epoch), a thread-pool stage that fetches and decodes
a batch, a stage that collates it into a float32 tensor, and a sink buffer.

SPDL has no storage format of its own: its docs put the loading and decoding in pipeline stages, fed by a
lightweight source of keys. Here the keys are row indices of the OME-Arrow table held in memory (read once, Arrow
buffers): ``documented`` decodes each batch's rows from Arrow inside the pipeline; ``tuned`` decodes the whole column
once when the loader is built (as the expert baseline does), so the stages only gather and convert. One pipeline per
epoch, started and stopped by ``auto_stop`` (also when an epoch is abandoned), so no thread outlives an epoch.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

NAME = "spdl"
DISTRIBUTIONS = ("spdl", "spdl-core", "spdl-io")
DOCS = ("PipelineBuilder().add_source(index batches from DistributedRandomSampler).pipe(fetch+decode, concurrency=2)"
        ".pipe(collate to float32).add_sink(3).build(num_threads=2), one pipeline per epoch under auto_stop(); "
        "SPDL has no format of its own, so it reads the OME-Arrow Parquet table into memory")

#: SPDL's default sink buffer (PipelineBuilder.add_sink(buffer_size=3))
_SINK_BUFFER = 3


def unavailable() -> str | None:
    """None when ``spdl.pipeline`` imports here, else why not."""
    if importlib.util.find_spec("spdl") is None:
        return "spdl is not installed (scripts/setup_image_peers.sh installs it)"
    try:
        import spdl.pipeline  # noqa: F401, PLC0415 - the top-level package, not this module (imports are absolute)
        import spdl.source  # noqa: F401, PLC0415
    except Exception as error:  # noqa: BLE001 - any import failure is the reason the row reports
        return f"import spdl.pipeline failed: {type(error).__name__}: {error}".splitlines()[0]
    return None


def variants(workload: Any) -> dict[str, dict]:
    """``documented``: decode per batch in the pipeline, concurrency 2. ``tuned``: see below."""
    return {
        "documented": {"decode": "per_batch", "concurrency": 2, "num_threads": 2},
        # Decoding once up front takes the per-batch Arrow take + decode out of every epoch; the stage left (a gather
        # and a float conversion, torch ops that release the GIL) runs two batches at once on the two threads.
        "tuned": {"decode": "up_front", "concurrency": 2, "num_threads": 2},
    }


def shuffle_note(settings: dict) -> str:
    # DistributedRandomSampler permutes all rows each epoch (seed + epoch); batches finishing out of order with
    # concurrency > 1 only reorder whole batches of that permutation, which is still a full permutation
    return ""


def prepare(workload: Any, cache: Path) -> None:
    """Nothing to convert: SPDL loads from the source's own format (the Parquet file)."""


class SpdlEpochs:
    """One SPDL pipeline per ``iter()`` (one epoch): float32 ``[B, C, H, W]`` batches in [0, 1]."""

    def __init__(self, workload: Any, settings: dict) -> None:
        import pyarrow.parquet as pq  # noqa: PLC0415
        import torch  # noqa: PLC0415

        from loaderbench.loaders.peers.workload import stored_images  # noqa: PLC0415
        from loaderbench.ome_image import OME_COLUMN  # noqa: PLC0415

        self.workload, self.settings, self.epoch = workload, settings, 0
        if settings["decode"] == "up_front":
            self.pixels = torch.from_numpy(stored_images(workload))
        else:
            # one chunk: a take from a chunked nested column concatenates its chunks first, on every batch
            self.table = pq.read_table(workload.parquet, columns=[OME_COLUMN]).combine_chunks()

    def index_batches(self) -> Iterator[np.ndarray]:
        """The source: this epoch's row indices in batches (shuffled with seed + epoch when the workload shuffles)."""
        from spdl.source import DistributedRandomSampler  # noqa: PLC0415

        n, batch = self.workload.n, self.workload.batch_size
        if self.workload.shuffle:
            sampler = DistributedRandomSampler(n, rank=0, world_size=1)
            sampler.shuffle(seed=self.workload.seed + self.epoch)
            order = np.fromiter(sampler, dtype=np.int64, count=n)
        else:
            order = np.arange(n, dtype=np.int64)
        for start in range(0, n, batch):
            yield order[start : start + batch]

    def fetch(self, rows: np.ndarray) -> Any:
        """Stage 1: the stored pixels of ``rows``, ``(b, C, H, W)`` uint8/uint16."""
        import torch  # noqa: PLC0415

        from loaderbench.ome_image import OME_COLUMN, decode_column  # noqa: PLC0415

        if self.settings["decode"] == "up_front":
            return self.pixels.index_select(0, torch.from_numpy(rows))
        return torch.from_numpy(decode_column(self.table.take(rows).column(OME_COLUMN))[:, :, 0])

    def collate(self, pixels: Any) -> Any:
        """Stage 2: float32 in [0, 1]."""
        return pixels.float().div_(self.workload.scale)

    def __iter__(self) -> Iterator[Any]:
        from spdl.pipeline import PipelineBuilder  # noqa: PLC0415

        concurrency = self.settings["concurrency"]
        # unshuffled epochs keep the input order (the exactness check); shuffled ones take batches as they finish
        order = "completion" if self.workload.shuffle else "input"
        pipeline = (
            PipelineBuilder()
            .add_source(self.index_batches())
            .pipe(self.fetch, concurrency=concurrency, output_order=order)
            .pipe(self.collate, concurrency=concurrency, output_order=order)
            .add_sink(_SINK_BUFFER)
            .build(num_threads=self.settings["num_threads"])
        )
        self.epoch += 1
        with pipeline.auto_stop():
            yield from pipeline.get_iterator()


def build_loader(workload: Any, cache: Path, settings: dict) -> SpdlEpochs:
    return SpdlEpochs(workload, settings)


USER_CODE = (build_loader, SpdlEpochs)


def holds_dataset(settings: dict) -> bool:
    """Whether the loader holds the whole dataset in memory after its build. Both variants read the whole table
    (``per_batch``) or every decoded image (``up_front``) at build."""
    return True
