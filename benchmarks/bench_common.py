"""What the benchmark scripts share: progress lines, spreads of repeated figures, epoch timing, faulting a table in,
target entries and the closing JSON line (DESIGN.md §5: warm-up excluded, >= 3 repeats, median and spread).

The scripts run as ``python benchmarks/<name>.py``, so this folder is on ``sys.path`` and ``import bench_common``
works from each of them.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from loaderbench import page_cache
from loaderbench.ome_image import OME_COLUMN


def say(message: str) -> None:
    """A progress line, flushed at once (the JSON line comes last)."""
    print(message, flush=True)


def spread(values: list[float]) -> dict[str, float]:
    """Median, min, max, p5, p95 and count of repeated figures."""
    arr = np.asarray(values, dtype=np.float64)
    return {
        "median": float(np.median(arr)),
        "min": float(arr.min()),
        "max": float(arr.max()),
        "p5": float(np.percentile(arr, 5)),
        "p95": float(np.percentile(arr, 95)),
        "n": int(arr.size),
    }


def time_epochs(
    make_iter: Callable[[], Iterable[Any]],
    epochs: int,
    n_samples: int,
    before_epoch: Callable[[], str] | None = None,
    warmup: bool = True,
) -> dict[str, Any]:
    """Wall time of full epochs (one warm-up epoch first, excluded, unless ``warmup=False``); samples/s per epoch,
    median and spread over ``epochs``. ``before_epoch`` runs before each timed epoch, outside the timing (say, to
    evict the dataset's pages), and returns the state it left, recorded per epoch as ``page_cache``."""

    def one_epoch() -> tuple[float, int]:
        seen = 0
        start = time.perf_counter_ns()
        for batch in make_iter():
            seen += batch.shape[0]
        return (time.perf_counter_ns() - start) / 1e9, seen

    result: dict[str, Any] = {}
    if warmup:
        warm_s, warm_seen = one_epoch()
        if warm_seen != n_samples:
            raise RuntimeError(f"an epoch yielded {warm_seen} samples, expected {n_samples}")
        result["warmup_epoch_s"] = warm_s
    seconds, states = [], []
    for _ in range(epochs):
        if before_epoch is not None:
            states.append(before_epoch())
        took, seen = one_epoch()
        if seen != n_samples:
            raise RuntimeError(f"an epoch yielded {seen} samples, expected {n_samples}")
        seconds.append(took)
    rates = [n_samples / s for s in seconds]
    result.update(
        {"epoch_s": seconds, "samples_per_s": spread(rates), "samples_per_s_median": statistics.median(rates)}
    )
    if before_epoch is not None:
        result["page_cache"] = states
    return result


def fault_in(table: pa.Table, column: str = OME_COLUMN) -> int:
    """Touch every page of ``column``'s buffers (children included), so that timings start from a table resident in
    memory; returns the bytes touched."""
    total = 0
    for chunk in table.column(column).chunks:
        for buf in chunk.buffers():
            if buf is not None and buf.size:
                np.frombuffer(buf, dtype=np.uint8)[::4096].sum(dtype=np.int64)
                total += buf.size
    return total


def cold_read_bandwidth(path: Path) -> float:
    """Bytes per second reading every file of ``path`` once with plain buffered reads, cache evicted first: the
    disk's own sequential read bandwidth, to which a cold loader's bytes per second compare."""
    page_cache.evict(path)
    files = page_cache.dataset_files(path)
    start = time.perf_counter()
    total = 0
    for file in files:
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 20):
                total += len(chunk)
    return total / (time.perf_counter() - start)


def bytes_on_disk(path: Path) -> int:
    """Bytes of every file of ``path`` (a file, or every file under a directory)."""
    return sum(f.stat().st_size for f in page_cache.dataset_files(path))


def target_entry(value: float | None, goal: float) -> dict[str, Any]:
    """``{"value", "target", "met"}`` for a higher-is-better ratio (``met`` is False when there is no value)."""
    return {"value": value, "target": goal, "met": value is not None and bool(value >= goal)}


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where the platform has none): a busy machine shows here."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def finish(result: dict[str, Any], out: Path | None, name: str) -> None:
    """Print the targets, save the JSON under ``out/<name>.json`` (optional) and print it as the last stdout line."""
    say(
        "targets: "
        + ", ".join(
            f"{k} {'-' if v['value'] is None else format(v['value'], '.3g')} (>= {v['target']:g}) "
            f"{'met' if v['met'] else 'NOT met'}"
            for k, v in result["targets"].items()
        )
    )
    line = json.dumps(result, default=float)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        saved = out / f"{name}.json"
        saved.write_text(json.dumps(result, indent=2, default=float) + "\n")
        say(f"saved {saved}")
    print(line, flush=True)
