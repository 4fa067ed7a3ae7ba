"""Latency statistics over per-item timings, and the small figures derived from them.

Times come in as integer nanoseconds from ``time.perf_counter_ns()``; figures go out in milliseconds (``*_ms``)
or per second (``*_per_s``). Percentiles are numpy's default (linear interpolation).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NS_PER_MS = 1e6
NS_PER_S = 1e9

#: the seed's Track 4 levels: below LOW is "low", up to HIGH is "moderate", above is "high" (percent)
OVERHEAD_LOW_PCT = 10.0
OVERHEAD_HIGH_PCT = 30.0


def ns_to_ms(times_ns: Sequence[int] | np.ndarray) -> np.ndarray:
    """Nanoseconds to milliseconds as float64."""
    return np.asarray(times_ns, dtype=np.float64) / NS_PER_MS


def latency_stats(times_ns: Sequence[int] | np.ndarray) -> dict[str, float]:
    """mean/std/min/max/p50/p95/p99 in ms of per-item times; every value NaN when there are no times.

    ``std_ms`` is the population standard deviation (numpy's default, ``ddof=0``).
    """
    ms = ns_to_ms(times_ns)
    keys = ("mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms")
    if ms.size == 0:
        return dict.fromkeys(keys, math.nan)
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {
        "mean_ms": float(ms.mean()),
        "std_ms": float(ms.std()),
        "min_ms": float(ms.min()),
        "max_ms": float(ms.max()),
        "p50_ms": float(p50),
        "p95_ms": float(p95),
        "p99_ms": float(p99),
    }


def per_second(count: float, total_ns: float) -> float:
    """``count`` items over ``total_ns`` nanoseconds, as items per second (NaN when no time was measured)."""
    if total_ns <= 0:
        return math.nan
    return count * NS_PER_S / total_ns


def median_ms(times_ns: Sequence[int] | np.ndarray) -> float:
    """The median of ``times_ns`` in ms (NaN when empty)."""
    ms = ns_to_ms(times_ns)
    return float(np.median(ms)) if ms.size else math.nan


def overhead_level(overhead_pct: float) -> str:
    """The seed's reading of a conversion overhead: ``low`` (<10 %), ``moderate`` (10-30 %), ``high`` (>30 %)."""
    if math.isnan(overhead_pct):
        return "unknown"
    if overhead_pct < OVERHEAD_LOW_PCT:
        return "low"
    if overhead_pct <= OVERHEAD_HIGH_PCT:
        return "moderate"
    return "high"
