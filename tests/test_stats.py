"""stats.py (latency statistics) and memory.py (USS of the process tree)."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import subprocess
import sys

import numpy as np
import pytest

from loaderbench.memory import PeakMemorySampler, process_tree_memory_mb, process_tree_pss_mb, process_tree_uss_mb
from loaderbench.stats import latency_stats, median_ms, ns_to_ms, overhead_level, per_second


def test_latency_stats_known_values():
    stats = latency_stats([1_000_000, 2_000_000, 3_000_000, 4_000_000, 5_000_000])
    assert stats["mean_ms"] == pytest.approx(3.0)
    assert stats["std_ms"] == pytest.approx(math.sqrt(2.0))
    assert stats["min_ms"] == pytest.approx(1.0)
    assert stats["max_ms"] == pytest.approx(5.0)
    assert stats["p50_ms"] == pytest.approx(3.0)
    assert stats["p95_ms"] == pytest.approx(4.8)  # linear: 1 + 0.95 * 4
    assert stats["p99_ms"] == pytest.approx(4.96)


def test_latency_stats_unsorted_and_single():
    assert latency_stats([3_000, 1_000, 2_000])["p50_ms"] == pytest.approx(0.002)
    single = latency_stats([250_000])
    assert all(v == pytest.approx(0.25) for k, v in single.items() if k != "std_ms")
    assert single["std_ms"] == 0.0


def test_latency_stats_empty_is_nan():
    stats = latency_stats([])
    assert set(stats) == {"mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms", "p95_ms", "p99_ms"}
    assert all(math.isnan(v) for v in stats.values())


def test_helpers():
    np.testing.assert_allclose(ns_to_ms([1_500_000, 0]), [1.5, 0.0])
    assert per_second(10, 2_000_000_000) == pytest.approx(5.0)
    assert math.isnan(per_second(10, 0))
    assert median_ms([1_000_000, 9_000_000, 2_000_000]) == pytest.approx(2.0)
    assert math.isnan(median_ms([]))


@pytest.mark.parametrize(
    ("pct", "level"),
    [
        (0.0, "low"),
        (9.99, "low"),
        (10.0, "moderate"),
        (29.9, "moderate"),
        (30.0, "moderate"),
        (30.01, "high"),
        (250.0, "high"),
        (math.nan, "unknown"),
    ],
)
def test_overhead_level(pct, level):
    assert overhead_level(pct) == level


# --- memory ---


def test_pss_of_a_forked_tree_counts_shared_pages_once():
    """After fork the parent's pages are shared: tree USS drops, tree PSS stays (within what the child touches)."""
    ctx = mp.get_context("fork")
    started, allocate, ready, release = (ctx.Event() for _ in range(4))
    uss_alone, pss_alone = process_tree_memory_mb()
    child = ctx.Process(target=_hold_memory, args=(started, allocate, ready, release))
    child.start()
    try:
        assert started.wait(10)
        uss_tree, pss_tree = process_tree_memory_mb()
    finally:
        allocate.set()
        release.set()
        child.join(10)
    assert uss_tree < uss_alone - 20
    assert pss_tree == pytest.approx(pss_alone, rel=0.25)


_SEES_AN_ALLOCATION = """
import json, time
import numpy as np
from loaderbench.memory import PeakMemorySampler
with PeakMemorySampler(interval_s=0.01) as sampler:
    block = np.ones(80 * 1024 * 1024, dtype=np.uint8)  # 80 MiB, touched
    time.sleep(0.1)
    del block
print(json.dumps([sampler.samples, sampler.start_mb, sampler.peak_mb, sampler.start_pss_mb, sampler.peak_pss_mb]))
"""


def test_sampler_sees_an_allocation():
    # In a fresh interpreter: the sampler watches the process tree, and in the test process DataLoader workers of
    # earlier tests could exit during the window and hide the allocation (CI saw +20 MiB for 80, twice).
    done = subprocess.run([sys.executable, "-c", _SEES_AN_ALLOCATION], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    samples, start_mb, peak_mb, start_pss_mb, peak_pss_mb = json.loads(done.stdout.strip().splitlines()[-1])
    assert samples >= 3
    assert peak_mb >= start_mb + 60
    assert peak_pss_mb >= start_pss_mb + 60


def _hold_memory(started, allocate, ready, release) -> None:
    started.set()
    allocate.wait(10)
    block = bytearray(b"\x01") * (64 * 1024 * 1024)  # 64 MiB private to the child
    ready.set()
    release.wait(10)
    del block


def test_process_tree_counts_children():
    ctx = mp.get_context("fork")
    started, allocate, ready, release = (ctx.Event() for _ in range(4))
    child = ctx.Process(target=_hold_memory, args=(started, allocate, ready, release))
    child.start()
    try:
        assert started.wait(10)
        # after fork, pages shared by parent and child count in neither USS: the baseline is taken with the child up
        before, before_pss = process_tree_memory_mb()
        with PeakMemorySampler() as sampler:
            allocate.set()
            assert ready.wait(10)
            during = process_tree_uss_mb()
            during_pss = process_tree_pss_mb()
    finally:
        allocate.set()
        release.set()
        child.join(10)
    assert during >= before + 50 and during_pss >= before_pss + 50
    assert sampler.peak_mb >= before + 50 and sampler.peak_pss_mb >= before_pss + 50
    assert child.exitcode == 0


def test_sampling_a_process_that_exits_is_not_an_error():
    import subprocess
    import sys

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    with PeakMemorySampler(interval_s=0.01, pid=child.pid) as sampler:
        child.wait(10)
    assert sampler.peak_mb > 0  # sampled while it lived
    assert process_tree_memory_mb(child.pid) == (0.0, 0.0)  # and gone now
