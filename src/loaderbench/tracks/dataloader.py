"""Track 2: ``torch.utils.data.DataLoader`` throughput per format, batch size and worker count.

Table formats use the seed's pre-loaded dataset, directory formats decode per item. One DataLoader per
configuration; each repeat is one epoch (``iter`` + ``next`` until done), so ``persistent_workers`` keeps its
meaning: without it every repeat starts its workers again. The first batch (``iter()`` + the first ``next()``, which
includes worker start-up) is reported on its own; then ``warmup_batches`` are dropped and up to ``batches`` are
timed, each ``next()`` on its own (the seed timed ``batch.shape`` after the batch had arrived).

Peak memory of the main process plus its workers is sampled around the whole epoch: ``peak_uss_mb`` (the sum of USS,
which leaves out pages shared after fork) and ``peak_pss_mb`` (the sum of PSS: the tree's physical memory, shared
pages counted once, so copy-on-write growth in the workers shows).

Arrow-backed formats also get ``native`` rows, one per batch size x ``native_threads``: the native loader is the
batched iterable itself (as ``DataLoader(loader, batch_size=None)`` would wrap it), timed the same way — ``next()``
on it, the first batch including ``iter()`` (where its C++ threads start). Those rows have ``num_workers`` 0 and
``num_threads`` set; torch rows have ``num_threads`` empty. Neither side shuffles.

Formats with block reads also get the out-of-core rows (``streaming.loaders``), nothing pre-loaded: ``native_streaming``
(the C++ streaming loader, per ``native_threads``) and ``block_torch`` (a block per step through the same reader, per
``num_workers``), both on the same chunk/block settings, each repeat starting from the page-cache state of its row
(``page_cache``: ``cold`` evicts the dataset's pages first).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import pandas as pd
from torch.utils.data import DataLoader, Dataset

from loaderbench import interrupts
from loaderbench.loaders.seed import make_dataset
from loaderbench.memory import PeakMemorySampler
from loaderbench.stats import latency_stats, per_second
from loaderbench.tracks.common import (
    BLOCK_TORCH,
    NATIVE,
    STREAMING,
    Target,
    TrackContext,
    batch_len,
    common_columns,
    effective_pin_memory,
    has_block_reads,
    iter_targets,
    make_block_torch_loader,
    make_native_loader,
    make_streaming_loader,
    page_cache_states,
    runs_native,
    set_page_cache,
    shutdown_loader,
    timed_construct,
)

NAME = "dataloader"


def dataset_loader_name(kind: str) -> str:
    """The seed dataset Tracks 2 and 3 use: the pre-loaded cache for tables, per-item decode for directories."""
    return "preloaded" if kind == "table" else "decode"


def make_loader(
    dataset: Dataset,
    batch_size: int,
    num_workers: int,
    *,
    pin_memory: bool = False,
    persistent_workers: bool = False,
    prefetch_factor: int = 2,
    shuffle: bool = False,
) -> DataLoader:
    """A DataLoader as the seed built it (Track 2: no shuffle; Track 3: shuffled); worker-only options only when
    there are workers."""
    kwargs = {}
    if num_workers > 0:
        kwargs = {"persistent_workers": persistent_workers, "prefetch_factor": prefetch_factor}
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers, pin_memory=pin_memory, **kwargs
    )


def time_epoch(loader: Iterable[Any], warmup_batches: int, max_batches: int) -> dict:
    """Iterate one epoch of ``loader``, timing each ``next()``; returns the first-batch time and the timed ones."""
    batch_ns: list[int] = []
    samples = 0
    first_ns = math.nan
    it = None
    try:
        start = time.perf_counter_ns()
        with interrupts.deferred():  # a DataLoader stopped while starting its workers cannot shut them down
            it = iter(loader)
        try:
            next(it)
            first_ns = time.perf_counter_ns() - start
        except StopIteration:
            return {"first_ns": first_ns, "batch_ns": batch_ns, "samples": 0}
        for _ in range(warmup_batches):
            try:
                next(it)
            except StopIteration:
                return {"first_ns": first_ns, "batch_ns": batch_ns, "samples": 0}
        while len(batch_ns) < max_batches:
            start = time.perf_counter_ns()
            try:
                batch = next(it)
            except StopIteration:
                break
            batch_ns.append(time.perf_counter_ns() - start)
            samples += batch_len(batch)
            del batch
    finally:
        if it is not None and not getattr(loader, "persistent_workers", False):
            shutdown_loader(loader, it)
        del it
    return {"first_ns": first_ns, "batch_ns": batch_ns, "samples": samples}


def run(ctx: TrackContext) -> pd.DataFrame:
    """One row per format x batch size x worker count x repeat."""
    cfg = ctx.config.dataloader
    pin_memory = effective_pin_memory(cfg.pin_memory)
    rows = []
    for target in iter_targets(ctx, f"track {NAME}"):
        loader_name = dataset_loader_name(target.kind)
        ctx.progress(f"[{NAME}] {target.dataset.name} {target.label} loader={loader_name}: building dataset")
        dataset, setup_s = timed_construct(make_dataset, target.module, target.path, loader_name,
                                           column=target.column)
        for batch_size in cfg.batch_sizes:
            for num_workers in cfg.num_workers:
                persistent = cfg.persistent_workers and num_workers > 0
                prefetch = cfg.prefetch_factor if num_workers > 0 else None
                ctx.progress(
                    f"[{NAME}] {target.dataset.name} {target.label} batch_size={batch_size} "
                    f"num_workers={num_workers} ({cfg.repeats} repeats)"
                )
                loader = make_loader(
                    dataset,
                    batch_size,
                    num_workers,
                    pin_memory=pin_memory,
                    persistent_workers=persistent,
                    prefetch_factor=cfg.prefetch_factor,
                )
                try:
                    for repeat in range(cfg.repeats):
                        with PeakMemorySampler() as memory:
                            epoch = time_epoch(loader, cfg.warmup_batches, cfg.batches)
                        rows.append(
                            {
                                **common_columns(target, loader_name, repeat),
                                "batch_size": batch_size,
                                "num_workers": num_workers,
                                "num_threads": None,
                                "pin_memory": pin_memory,
                                "persistent_workers": persistent,
                                "prefetch_factor": prefetch,
                                **epoch_columns(epoch, cfg.warmup_batches, memory, setup_s),
                            }
                        )
                finally:
                    shutdown_loader(loader)
                    del loader
        del dataset
        if runs_native(ctx, target, NAME):
            _run_native(ctx, target, rows)
        if has_block_reads(target) and ctx.config.streaming.loaders:
            _run_streaming(ctx, target, rows)
    return pd.DataFrame(rows)


def epoch_columns(epoch: dict, warmup_batches: int, memory: PeakMemorySampler, setup_s: float) -> dict[str, Any]:
    """The measured columns of one ``time_epoch`` under a ``PeakMemorySampler``."""
    stats = latency_stats(epoch["batch_ns"])
    return {
        "warmup_batches": warmup_batches,
        "batches": len(epoch["batch_ns"]),
        "timed_samples": epoch["samples"],
        "first_batch_ms": epoch["first_ns"] / 1e6,
        "p50_batch_ms": stats["p50_ms"],
        "p95_batch_ms": stats["p95_ms"],
        "mean_batch_ms": stats["mean_ms"],
        "min_batch_ms": stats["min_ms"],
        "max_batch_ms": stats["max_ms"],
        "samples_per_s": per_second(epoch["samples"], sum(epoch["batch_ns"])),
        "peak_uss_mb": memory.peak_mb,
        "peak_pss_mb": memory.peak_pss_mb,
        "setup_s": setup_s,
    }


def _run_native(ctx: TrackContext, target: Target, rows: list[dict[str, Any]]) -> None:
    """The native rows of one target: one loader per batch size x thread count, one epoch per repeat."""
    cfg = ctx.config.dataloader
    for batch_size in cfg.batch_sizes:
        for num_threads in cfg.native_threads:
            ctx.progress(
                f"[{NAME}] {target.dataset.name} {target.label} loader={NATIVE} batch_size={batch_size} "
                f"num_threads={num_threads} ({cfg.repeats} repeats)"
            )
            loader, setup_s = timed_construct(
                make_native_loader,
                target,
                batch_size=batch_size,
                shuffle=False,
                num_threads=num_threads,
                seed=ctx.config.data.seed,
            )
            for repeat in range(cfg.repeats):
                with PeakMemorySampler() as memory:
                    epoch = time_epoch(loader, cfg.warmup_batches, cfg.batches)
                rows.append(
                    {
                        **common_columns(target, NATIVE, repeat),
                        "batch_size": batch_size,
                        "num_workers": 0,
                        "num_threads": num_threads,
                        "pin_memory": False,
                        "persistent_workers": False,
                        "prefetch_factor": None,  # per-worker DataLoader setting; the native loader has none
                        **epoch_columns(epoch, cfg.warmup_batches, memory, setup_s),
                    }
                )
            del loader


def _run_streaming(ctx: TrackContext, target: Target, rows: list[dict[str, Any]]) -> None:
    """The out-of-core rows of one target: each streaming loader x batch size x threads or workers x page-cache
    state, one epoch per repeat, the cache state set before each."""
    cfg, st = ctx.config.dataloader, ctx.config.streaming
    configs = []
    if STREAMING in st.loaders and runs_native(ctx, target, NAME):
        configs += [(STREAMING, b, 0, t) for b in cfg.batch_sizes for t in cfg.native_threads]
    if BLOCK_TORCH in st.loaders:
        configs += [(BLOCK_TORCH, b, w, None) for b in cfg.batch_sizes for w in cfg.num_workers]
    for loader_name, batch_size, num_workers, num_threads in configs:
        for state in page_cache_states(ctx):
            ctx.progress(
                f"[{NAME}] {target.dataset.name} {target.label} loader={loader_name} batch_size={batch_size} "
                + (f"num_threads={num_threads}" if num_threads else f"num_workers={num_workers}")
                + f" page_cache={state} ({cfg.repeats} repeats)"
            )
            if loader_name == STREAMING:
                loader, setup_s = timed_construct(make_streaming_loader, ctx, target, batch_size=batch_size,
                                                  num_threads=num_threads, seed=ctx.config.data.seed)
            else:
                loader, setup_s = timed_construct(make_block_torch_loader, ctx, target, batch_size=batch_size,
                                                  num_workers=num_workers, shuffle=False)
            try:
                for repeat in range(cfg.repeats):
                    cache = set_page_cache(target, state, loader)
                    with PeakMemorySampler() as memory:
                        epoch = time_epoch(loader, cfg.warmup_batches, cfg.batches)
                    rows.append(
                        {
                            **common_columns(target, loader_name, repeat),
                            "batch_size": batch_size,
                            "num_workers": num_workers,
                            "num_threads": num_threads,
                            "pin_memory": False,
                            "persistent_workers": False,
                            "prefetch_factor": 2 if num_workers else None,
                            **cache,
                            **streaming_columns(ctx),
                            **epoch_columns(epoch, cfg.warmup_batches, memory, setup_s),
                        }
                    )
            finally:
                shutdown_loader(loader)
                del loader


def streaming_columns(ctx: TrackContext) -> dict[str, Any]:
    """The block settings of an out-of-core row."""
    st = ctx.config.streaming
    return {"chunk_size": st.chunk_size, "chunks_per_block": st.chunks_per_block,
            "memory_budget_mb": st.memory_budget_mb}
