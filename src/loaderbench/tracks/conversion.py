"""Track 4: loading a sample as numpy (stored dtype) vs the conversion to a float32 tensor vs the torch dataset.

The seed's Track 4 "converted" an array that was already float32 (a no-op); here the conversion is the real one,
``torch.from_numpy(arr).to(float32)`` then the division by the dtype's maximum, timed on arrays already loaded.
Table formats use the pre-loaded cache (``loader = "preloaded"``), directory formats decode per item. Also
measured: whether ``from_numpy`` and the converted tensor share the array's memory, and the conversion of whole
batches (``np.stack`` + ``from_numpy`` + convert), the seed's suggested remedy.

``overhead_pct`` is the seed's figure (mean conversion / mean torch ``__getitem__`` x 100) and ``overhead_level`` its
reading; ``overhead_p50_pct`` is the same ratio of medians, less sensitive to the odd slow call. Both are ratios of
separately timed calls, so either can exceed 100 % when the conversion is most of the torch call.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import torch

from loaderbench.loaders.seed import make_dataset, to_float_tensor
from loaderbench.stats import latency_stats, median_ms, overhead_level, per_second
from loaderbench.tracks.common import TrackContext, access_indices, common_columns, iter_targets, timed_construct
from loaderbench.tracks.dataloader import dataset_loader_name

NAME = "conversion"


def _timed(fn, args) -> tuple[list[int], list]:
    """Call ``fn(a)`` for each ``a`` in ``args``, timing each call on its own; returns times and results."""
    times, results = [], []
    for arg in args:
        start = time.perf_counter_ns()
        result = fn(arg)
        times.append(time.perf_counter_ns() - start)
        results.append(result)
    return times, results


def shares_memory(tensor: torch.Tensor, arr: np.ndarray) -> bool:
    """Whether ``tensor`` starts at the same address as ``arr``'s data (a view, not a copy)."""
    return tensor.data_ptr() == arr.__array_interface__["data"][0]


#: at least this many batches are converted, cycling through the loaded arrays, so the median is not one or two values
MIN_CONVERSION_BATCHES = 10


def batch_conversion_ns(arrays: list[np.ndarray], batch_size: int) -> list[int]:
    """Times of ``np.stack`` + ``from_numpy`` + convert over batches of ``batch_size`` loaded arrays (cycled)."""
    n_batches = max(MIN_CONVERSION_BATCHES, -(-len(arrays) // batch_size))
    times = []
    for b in range(n_batches):
        batch = [arrays[(b * batch_size + k) % len(arrays)] for k in range(batch_size)]
        start = time.perf_counter_ns()
        to_float_tensor(np.stack(batch))
        times.append(time.perf_counter_ns() - start)
    return times


def run(ctx: TrackContext) -> pd.DataFrame:
    """One row per format x repeat."""
    cfg = ctx.config.conversion
    seed = ctx.config.data.seed
    rows = []
    for target in iter_targets(ctx):
        loader_name = dataset_loader_name(target.kind)
        ctx.progress(
            f"[{NAME}] {target.dataset.name} {target.label} loader={loader_name} "
            f"({cfg.repeats} x {cfg.samples} samples)"
        )
        ds_torch, setup_s = timed_construct(make_dataset, target.module, target.path, loader_name)
        ds_numpy = ds_torch.numpy_view()
        indices = access_indices("random", len(ds_torch), cfg.samples, seed).tolist()
        warm = [indices[i % len(indices)] for i in range(cfg.warmup)]
        for repeat in range(cfg.repeats):
            for idx in warm:
                to_float_tensor(ds_numpy[idx])
                ds_torch[idx]
            numpy_ns, arrays = _timed(ds_numpy.__getitem__, indices)
            conversion_ns, _ = _timed(to_float_tensor, arrays)
            torch_ns, _ = _timed(ds_torch.__getitem__, indices)
            batch_ns = batch_conversion_ns(arrays, cfg.batch_size)

            sample = arrays[0]
            from_numpy_shares = shares_memory(torch.from_numpy(sample), sample)
            converted_shares = shares_memory(to_float_tensor(sample), sample)

            numpy_stats = latency_stats(numpy_ns)
            conversion_stats = latency_stats(conversion_ns)
            torch_stats = latency_stats(torch_ns)
            overhead = (
                conversion_stats["mean_ms"] / torch_stats["mean_ms"] * 100 if torch_stats["mean_ms"] > 0 else math.nan
            )
            overhead_p50 = (
                conversion_stats["p50_ms"] / torch_stats["p50_ms"] * 100 if torch_stats["p50_ms"] > 0 else math.nan
            )
            batch_ms = median_ms(batch_ns)
            rows.append(
                {
                    **common_columns(target, loader_name, repeat),
                    "stored_dtype": str(sample.dtype),
                    "samples": len(indices),
                    "warmup": len(warm),
                    "numpy_p50_ms": numpy_stats["p50_ms"],
                    "numpy_p95_ms": numpy_stats["p95_ms"],
                    "numpy_p99_ms": numpy_stats["p99_ms"],
                    "numpy_mean_ms": numpy_stats["mean_ms"],
                    "conversion_p50_ms": conversion_stats["p50_ms"],
                    "conversion_p95_ms": conversion_stats["p95_ms"],
                    "conversion_mean_ms": conversion_stats["mean_ms"],
                    "torch_p50_ms": torch_stats["p50_ms"],
                    "torch_p95_ms": torch_stats["p95_ms"],
                    "torch_p99_ms": torch_stats["p99_ms"],
                    "torch_mean_ms": torch_stats["mean_ms"],
                    "overhead_pct": overhead,
                    "overhead_level": overhead_level(overhead),
                    "overhead_p50_pct": overhead_p50,
                    "from_numpy_shares_memory": from_numpy_shares,
                    "converted_shares_memory": converted_shares,
                    "batch_size": cfg.batch_size,
                    "batch_conversion_ms": batch_ms,
                    "batch_conversion_per_sample_ms": batch_ms / cfg.batch_size,
                    "numpy_samples_per_s": per_second(len(numpy_ns), sum(numpy_ns)),
                    "torch_samples_per_s": per_second(len(torch_ns), sum(torch_ns)),
                    "setup_s": setup_s,
                }
            )
        del ds_torch, ds_numpy
    return pd.DataFrame(rows)
