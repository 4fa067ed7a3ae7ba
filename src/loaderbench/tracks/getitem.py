"""Track 1: the latency of one ``Dataset.__getitem__`` call, per format, loader, access pattern and transform.

The dataset is built once per format x loader (its construction time, e.g. the pre-load, is ``setup_s``); each
repeat warms up on the first ``warmup`` indices, then times every ``dataset[i]`` on its own with
``perf_counter_ns``.

Arrow-backed formats also get a ``native`` row: ``loader[i]`` of the native loader, with the transform given as its
own options (``native_transform_options``), so one loader is built per transform (``setup_s`` is that
construction: reading the table and validating it, no pre-load).

Formats with block reads also get a ``random_access`` row (in ``getitem.loaders``): each call fetches one row
through the format's own random access (a Parquet row group, a Lance ``take``, a DuckDB range query, ...), nothing
pre-loaded — the "read one random row" that format comparisons measure — per page-cache state (``cold`` evicts
the dataset's pages before every repeat).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pandas as pd
import torch

from loaderbench.loaders.seed import loaders_for, make_dataset
from loaderbench.loaders.transforms import make_transform
from loaderbench.stats import latency_stats, per_second
from loaderbench.tracks.common import (
    NATIVE,
    RANDOM_ACCESS,
    Target,
    TrackContext,
    access_indices,
    common_columns,
    has_block_reads,
    iter_targets,
    make_native_loader,
    page_cache_states,
    runs_native,
    set_page_cache,
    timed_construct,
)

NAME = "getitem"


def native_transform_options(name: str, crop_size: int = 0) -> dict[str, Any]:
    """The native loader's options for a Track 1 transform: ``none`` = float32 in [0, 1], ``normalize`` = mean and
    std 0.5, ``augment`` = a random horizontal flip then mean/std 0.5 (and a random ``crop_size`` crop when > 0),
    as the baselines'."""
    if name == "none":
        return {}
    if name == "normalize":
        return {"mean": [0.5], "std": [0.5]}
    if name == "augment":  # the seed's RandomHorizontalFlip + Normalize (+ the optional random crop)
        return {"random_hflip": True, "mean": [0.5], "std": [0.5], "crop_size": crop_size or None}
    raise ValueError(f"unknown transform {name!r} (choose from none, normalize, augment)")


def time_calls(get: Callable[[int], Any], indices: list[int], warm: list[int]) -> list[int]:
    """Call ``get`` on the ``warm`` indices, then time each call on ``indices`` on its own (ns)."""
    for idx in warm:
        get(idx)
    times = []
    for idx in indices:
        start = time.perf_counter_ns()
        get(idx)
        times.append(time.perf_counter_ns() - start)
    return times


def _row(target: Target, loader: str, repeat: int, access: str, transform: str, times: list[int], warm: list[int],
         setup_s: float) -> dict[str, Any]:  # fmt: skip
    return {
        **common_columns(target, loader, repeat),
        "access": access,
        "transform": transform,
        "samples": len(times),
        "warmup": len(warm),
        **latency_stats(times),
        "samples_per_s": per_second(len(times), sum(times)),
        "setup_s": setup_s,
    }


def _run_native(ctx: TrackContext, target: Target, rows: list[dict[str, Any]]) -> None:
    """The native rows of one target: a loader per transform (one alive at a time), every access pattern."""
    cfg = ctx.config.getitem
    seed = ctx.config.data.seed
    for transform_name in cfg.transforms:
        ctx.progress(
            f"[{NAME}] {target.dataset.name} {target.label} loader={NATIVE} transform={transform_name} "
            f"({cfg.repeats} x {cfg.samples} samples per access pattern)"
        )
        options = native_transform_options(transform_name, cfg.crop_size)
        loader, setup_s = timed_construct(make_native_loader, target, seed=seed, **options)
        for access in cfg.access:
            indices = access_indices(access, loader.num_samples, cfg.samples, seed).tolist()
            warm = [indices[i % len(indices)] for i in range(cfg.warmup)]
            for repeat in range(cfg.repeats):
                # draws depend on (seed, row, epoch 0) only: every repeat gets the same augmentations
                times = time_calls(loader.__getitem__, indices, warm)
                rows.append(_row(target, NATIVE, repeat, access, transform_name, times, warm, setup_s))
        del loader


def _run_random_access(ctx: TrackContext, target: Target, rows: list[dict[str, Any]]) -> None:
    """One row per call through the format's random access, per access pattern x transform x page-cache state."""
    from loaderbench.loaders.block_datasets import RandomAccessDataset  # noqa: PLC0415

    cfg = ctx.config.getitem
    seed = ctx.config.data.seed
    dataset, setup_s = timed_construct(RandomAccessDataset, target.module, target.path, column=target.column)
    try:
        for access, transform_name, state in itertools.product(cfg.access, cfg.transforms, page_cache_states(ctx)):
            ctx.progress(f"[{NAME}] {target.dataset.name} {target.label} loader={RANDOM_ACCESS} access={access} "
                         f"transform={transform_name} page_cache={state} ({cfg.repeats} x {cfg.samples} samples)")
            indices = access_indices(access, len(dataset), cfg.samples, seed).tolist()
            # cold: no warm-up (it would bring back the pages of the rows it reads)
            warm = [] if state == "cold" else [indices[i % len(indices)] for i in range(cfg.warmup)]
            for repeat in range(cfg.repeats):
                torch.manual_seed(seed)
                dataset.transform = make_transform(transform_name, crop_size=cfg.crop_size,
                                                   volume=target.dataset.is_volume)
                cache = set_page_cache(target, state, dataset)
                times = time_calls(dataset.__getitem__, indices, warm)
                rows.append({**_row(target, RANDOM_ACCESS, repeat, access, transform_name, times, warm, setup_s),
                             **cache})
    finally:
        dataset.reader.close()


def run(ctx: TrackContext) -> pd.DataFrame:
    """One row per format x loader x access x transform x repeat."""
    cfg = ctx.config.getitem
    seed = ctx.config.data.seed
    rows: list[dict[str, Any]] = []
    for target in iter_targets(ctx, f"track {NAME}"):
        loaders = cfg.loaders if target.kind == "table" else list(loaders_for(target.module))
        for loader in loaders:
            if loader == RANDOM_ACCESS:
                continue
            ctx.progress(f"[{NAME}] {target.dataset.name} {target.label} loader={loader}: building dataset")
            dataset, setup_s = timed_construct(make_dataset, target.module, target.path, loader,
                                               column=target.column)
            for access in cfg.access:
                indices = access_indices(access, len(dataset), cfg.samples, seed).tolist()
                warm = [indices[i % len(indices)] for i in range(cfg.warmup)]
                for transform_name in cfg.transforms:
                    ctx.progress(
                        f"[{NAME}] {target.dataset.name} {target.label} loader={loader} access={access} "
                        f"transform={transform_name} ({cfg.repeats} x {cfg.samples} samples)"
                    )
                    for repeat in range(cfg.repeats):
                        # torchvision's transforms draw from torch's generator: seeded per repeat, every repeat
                        # draws the same augmentations
                        torch.manual_seed(seed)
                        dataset.transform = make_transform(transform_name, crop_size=cfg.crop_size,
                                                           volume=target.dataset.is_volume)
                        times = time_calls(dataset.__getitem__, indices, warm)
                        rows.append(_row(target, loader, repeat, access, transform_name, times, warm, setup_s))
            dataset.transform = None
            del dataset
        if runs_native(ctx, target, NAME):
            _run_native(ctx, target, rows)
        if RANDOM_ACCESS in cfg.loaders and has_block_reads(target):
            _run_random_access(ctx, target, rows)
    return pd.DataFrame(rows)
