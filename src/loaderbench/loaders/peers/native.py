"""loaderbench's own native loader as a peer: the table read into memory with pyarrow, batches assembled by the C++
core on its own threads (``NativeImageLoader``); on cold workloads also the streaming loader
(``StreamingImageLoader``), which reads the Parquet file's row groups a block at a time and holds only the blocks in
flight."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loaderbench.loaders.peers.workload import ImageWorkload

NAME = "native"
DISTRIBUTIONS = ("loaderbench",)
DOCS = ("NativeImageLoader(pq.read_table(path), batch_size=B, shuffle=True, seed=S, num_threads=cores): each iter() "
        "is the next epoch; float32 in [0, 1] by default (dtype=torch.float32, scale=True); preload=True decodes "
        "every image once")


def unavailable() -> str | None:
    try:
        from loaderbench import _core  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"the native module loaderbench._core is not built: {exc}"
    return None


def variants(workload: ImageWorkload) -> dict[str, dict[str, Any]]:
    cores = os.cpu_count() or 1
    # Documented: one thread per core, two batches ahead (the loader's defaults but for the thread count).
    # Tuned: batches assembled on demand by all threads into one reused buffer (prefetch 0), which stays in cache
    # (620k vs 423k samples/s for prefetch 2 in an interleaved A/B on a quiet machine: 8,192 x 1x100x100 uint8,
    # batch 256, 2 threads, 5 rounds), from images decoded once (preload: decompressed, and uint8 stored widened
    # to uint16 narrowed back, so an epoch reads a byte a pixel, as the expert's uint8 copy does).
    found = {"documented": {"num_threads": cores, "prefetch": 2, "preload": False},
             "tuned": {"num_threads": cores, "prefetch": 0, "preload": True}}
    if workload.page_cache == "cold":
        from loaderbench.loaders.streaming import DEFAULT_CHUNKS_PER_BLOCK  # noqa: PLC0415

        # the streaming loader at its defaults: chunks of one row group, 4 read and shuffled together, 2 I/O threads
        found["streaming"] = {"num_threads": cores, "prefetch": 2, "streaming": True,
                              "chunks_per_block": DEFAULT_CHUNKS_PER_BLOCK}
    return found


def prepare(workload: ImageWorkload, cache: Path) -> None:
    """Nothing to convert: the loader reads the OME-Arrow table itself."""


def build_loader(workload: ImageWorkload, cache: Path, settings: dict[str, Any]) -> Any:
    import pyarrow.parquet as pq  # noqa: PLC0415

    from loaderbench.loaders.native import NativeImageLoader  # noqa: PLC0415

    if settings.get("streaming"):
        from loaderbench.loaders.streaming import StreamingImageLoader  # noqa: PLC0415

        return StreamingImageLoader(workload.parquet, batch_size=workload.batch_size, shuffle=workload.shuffle,
                                    seed=workload.seed, num_threads=settings["num_threads"],
                                    prefetch=settings["prefetch"], chunks_per_block=settings["chunks_per_block"],
                                    rank=0, world_size=1)
    table = pq.read_table(workload.parquet)
    return NativeImageLoader(table, batch_size=workload.batch_size, shuffle=workload.shuffle, seed=workload.seed,
                             num_threads=settings["num_threads"], prefetch=settings["prefetch"],
                             preload=settings["preload"])


def shuffle_note(settings: dict[str, Any]) -> str:
    if settings.get("streaming"):
        return (f"block shuffle (arrayloader-benchmarks' scheme): row groups in a random order, "
                f"{settings['chunks_per_block']} at a time read and their rows shuffled together; not one "
                "permutation of all rows")
    return ""


def holds_dataset(settings: dict[str, Any]) -> bool:
    """Whether the loader holds the whole dataset in memory after its build: the in-memory loader does (the table
    read whole), the streaming one holds the blocks in flight."""
    return not settings.get("streaming", False)
