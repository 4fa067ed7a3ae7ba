"""Track 4: loading a sample as numpy (stored dtype) vs the conversion to a float32 tensor vs the torch dataset.

The seed's Track 4 "converted" an array that was already float32 (a no-op); here the conversion is the real one,
``torch.from_numpy(arr).to(float32)`` then the division by the dtype's maximum, timed on arrays already loaded.
Table formats use the pre-loaded cache (``loader = "preloaded"``), directory formats decode per item. Also
measured: whether ``from_numpy`` and the converted tensor share the array's memory, and the conversion of whole
batches (``np.stack`` + ``from_numpy`` + convert), the seed's suggested remedy.

``overhead_pct`` is the seed's figure (mean conversion / mean torch ``__getitem__`` x 100) and ``overhead_level`` its
reading; ``overhead_p50_pct`` is the same ratio of medians, less sensitive to the odd slow call. Both are ratios of
separately timed calls, so either can exceed 100 % when the conversion is most of the torch call.

Arrow-backed formats also get a ``native`` row, the same three figures for the native loader: the "numpy load" is
its zero-copy view of the stored pixels (``NativeImageLoader(..., dtype=None)[i]``, a tensor over the Arrow buffer;
ome-arrow stores uint8 images widened to uint16, so ``stored_dtype`` is the view's), the conversion is
``view.to(float32)`` divided by the *declared* dtype's maximum, and the total is ``loader[i]`` (load and convert in
C++). ``from_numpy_shares_memory`` says whether the view lies in the Arrow buffers; the batch figure is
``torch.stack`` of views + the same conversion.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from loaderbench.loaders.seed import make_dataset, scale_max, to_float_tensor
from loaderbench.stats import latency_stats, median_ms, overhead_level, per_second
from loaderbench.tracks.common import (
    NATIVE,
    Target,
    TrackContext,
    access_indices,
    common_columns,
    iter_targets,
    make_native_loader,
    runs_native,
    timed_construct,
)
from loaderbench.tracks.dataloader import dataset_loader_name

NAME = "conversion"


def _timed(fn, args) -> list[int]:
    """Time ``fn(a)`` for each ``a`` in ``args`` on its own, as Track 1 times ``__getitem__``: each result is dropped
    before the next call (keeping every result alive changes the allocator's state, and with it the timing)."""
    times = []
    for arg in args:
        start = time.perf_counter_ns()
        fn(arg)
        times.append(time.perf_counter_ns() - start)
    return times


def shares_memory(tensor: torch.Tensor, arr: np.ndarray) -> bool:
    """Whether ``tensor`` starts at the same address as ``arr``'s data (a view, not a copy)."""
    return tensor.data_ptr() == arr.__array_interface__["data"][0]


#: at least this many batches are converted, cycling through the loaded arrays, so the median is not one or two values
MIN_CONVERSION_BATCHES = 10


def _stack_and_convert(arrays: list[np.ndarray]) -> torch.Tensor:
    return to_float_tensor(np.stack(arrays))


def batch_conversion_ns(
    arrays: list[Any], batch_size: int, convert: Callable[[list[Any]], torch.Tensor] = _stack_and_convert
) -> list[int]:
    """Times of ``convert`` (default ``np.stack`` + ``from_numpy`` + convert) over batches of ``batch_size`` loaded
    arrays (cycled)."""
    n_batches = max(MIN_CONVERSION_BATCHES, -(-len(arrays) // batch_size))
    times = []
    for b in range(n_batches):
        batch = [arrays[(b * batch_size + k) % len(arrays)] for k in range(batch_size)]
        start = time.perf_counter_ns()
        convert(batch)
        times.append(time.perf_counter_ns() - start)
    return times


def view_converter(scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The native row's conversion of a stored-dtype view: ``to(float32)``, divided by ``scale`` unless 1 (a float32
    view converts to itself, and dividing in place would write into the Arrow buffer)."""

    def convert(view: torch.Tensor) -> torch.Tensor:
        tensor = view.to(torch.float32)
        return tensor.div_(scale) if scale != 1.0 else tensor

    return convert


def in_arrow_buffers(tensor: torch.Tensor, table: pa.Table) -> bool:
    """Whether ``tensor``'s data lies inside one of ``table``'s buffers (a zero-copy view, not a copy)."""
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    for column in table.columns:
        for chunk in column.chunks:
            for buffer in chunk.buffers():
                if buffer is not None and buffer.address <= start and end <= buffer.address + buffer.size:
                    return True
    return False


def view_shares_memory(view_loader: Any, row: int, table: pa.Table) -> bool:
    """The native view of ``row`` is zero-copy: it lies in the Arrow buffers, and two views of it (both alive) start
    at the same address."""
    first, second = view_loader[row], view_loader[row]
    return in_arrow_buffers(first, table) and first.data_ptr() == second.data_ptr()


def _figures(numpy_ns: list[int], conversion_ns: list[int], torch_ns: list[int]) -> dict[str, Any]:
    """The per-sample latency columns of one repeat, and the overhead the conversion adds."""
    numpy_stats = latency_stats(numpy_ns)
    conversion_stats = latency_stats(conversion_ns)
    torch_stats = latency_stats(torch_ns)
    overhead = conversion_stats["mean_ms"] / torch_stats["mean_ms"] * 100 if torch_stats["mean_ms"] > 0 else math.nan
    overhead_p50 = conversion_stats["p50_ms"] / torch_stats["p50_ms"] * 100 if torch_stats["p50_ms"] > 0 else math.nan
    return {
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
    }


def _run_native(ctx: TrackContext, target: Target, rows: list[dict[str, Any]]) -> None:
    """The native row of one target: view, conversion of the view, and ``loader[i]``."""
    cfg = ctx.config.conversion
    seed = ctx.config.data.seed
    ctx.progress(
        f"[{NAME}] {target.dataset.name} {target.label} loader={NATIVE} ({cfg.repeats} x {cfg.samples} samples)"
    )

    def build() -> tuple[pa.Table | None, Any]:
        # A directory format is read by the core itself, file by file (no table; its images are never contiguous).
        table = target.read_table() if target.kind == "table" else None
        return table, make_native_loader(target, source=table, seed=seed)

    (table, loader), setup_s = timed_construct(build)
    summary = loader.dataset.summary()
    scale = scale_max(summary["declared_dtype"])
    if summary["contiguous_rows"] == summary["rows"]:
        # The numpy side is a zero-copy view of the stored pixels.
        load_kind = "view"
        view_loader = make_native_loader(target, source=table, seed=seed, dtype=None)
        convert = view_converter(scale)
    else:
        # Chunked or compressed images have no zero-copy view: the "numpy load" is their decode in C++ to unscaled
        # float32, the conversion the division by the declared dtype's maximum.
        load_kind = "decode"
        view_loader = make_native_loader(target, source=table, seed=seed, scale=False)

        def convert(decoded: torch.Tensor) -> torch.Tensor:
            return decoded.div(scale)

    indices = access_indices("random", loader.num_samples, cfg.samples, seed).tolist()
    warm = [indices[i % len(indices)] for i in range(cfg.warmup)]
    for repeat in range(cfg.repeats):
        for idx in warm:
            convert(view_loader[idx])
            loader[idx]
        numpy_ns = _timed(view_loader.__getitem__, indices)
        views = [view_loader[idx] for idx in indices]  # the conversion's inputs, loaded outside its timing
        conversion_ns = _timed(convert, views)
        torch_ns = _timed(loader.__getitem__, indices)
        batch_ns = batch_conversion_ns(views, cfg.batch_size, lambda batch: convert(torch.stack(batch)))
        sample = views[0]
        figures = _figures(numpy_ns, conversion_ns, torch_ns)
        rows.append(
            {
                **common_columns(target, NATIVE, repeat),
                "stored_dtype": summary["stored_dtype"],
                "numpy_load": load_kind,
                "samples": len(indices),
                "warmup": len(warm),
                **figures,
                "from_numpy_shares_memory": load_kind == "view" and view_shares_memory(view_loader, indices[0], table),
                "converted_shares_memory": convert(sample).data_ptr() == sample.data_ptr(),
                **_batch_columns(cfg.batch_size, batch_ns),
                "numpy_samples_per_s": per_second(len(numpy_ns), sum(numpy_ns)),
                "torch_samples_per_s": per_second(len(torch_ns), sum(torch_ns)),
                "setup_s": setup_s,
            }
        )
        del views, sample
    del loader, view_loader, table


def _batch_columns(batch_size: int, batch_ns: list[int]) -> dict[str, Any]:
    batch_ms = median_ms(batch_ns)
    return {
        "batch_size": batch_size,
        "batch_conversion_ms": batch_ms,
        "batch_conversion_per_sample_ms": batch_ms / batch_size,
    }


def run(ctx: TrackContext) -> pd.DataFrame:
    """One row per format x loader x repeat."""
    cfg = ctx.config.conversion
    seed = ctx.config.data.seed
    rows = []
    for target in iter_targets(ctx, f"track {NAME}"):
        loader_name = dataset_loader_name(target.kind)
        ctx.progress(
            f"[{NAME}] {target.dataset.name} {target.label} loader={loader_name} "
            f"({cfg.repeats} x {cfg.samples} samples)"
        )
        ds_torch, setup_s = timed_construct(make_dataset, target.module, target.path, loader_name,
                                            column=target.column)
        ds_numpy = ds_torch.numpy_view()
        indices = access_indices("random", len(ds_torch), cfg.samples, seed).tolist()
        warm = [indices[i % len(indices)] for i in range(cfg.warmup)]
        for repeat in range(cfg.repeats):
            for idx in warm:
                to_float_tensor(ds_numpy[idx])
                ds_torch[idx]
            numpy_ns = _timed(ds_numpy.__getitem__, indices)
            arrays = [ds_numpy[idx] for idx in indices]  # the conversion's inputs, loaded outside its timing
            conversion_ns = _timed(to_float_tensor, arrays)
            torch_ns = _timed(ds_torch.__getitem__, indices)
            batch_ns = batch_conversion_ns(arrays, cfg.batch_size)

            sample = arrays[0]
            from_numpy_shares = shares_memory(torch.from_numpy(sample), sample)
            converted_shares = shares_memory(to_float_tensor(sample), sample)

            figures = _figures(numpy_ns, conversion_ns, torch_ns)
            rows.append(
                {
                    **common_columns(target, loader_name, repeat),
                    "stored_dtype": str(sample.dtype),
                    "numpy_load": "decode" if target.kind == "directory" else "cache copy",
                    "samples": len(indices),
                    "warmup": len(warm),
                    **figures,
                    "from_numpy_shares_memory": from_numpy_shares,
                    "converted_shares_memory": converted_shares,
                    **_batch_columns(cfg.batch_size, batch_ns),
                    "numpy_samples_per_s": per_second(len(numpy_ns), sum(numpy_ns)),
                    "torch_samples_per_s": per_second(len(torch_ns), sum(torch_ns)),
                    "setup_s": setup_s,
                }
            )
        del ds_torch, ds_numpy
        if runs_native(ctx, target, NAME):
            _run_native(ctx, target, rows)
    return pd.DataFrame(rows)
