"""The seed's published figures, to print beside a ``--preset seed`` run's own.

The OME-Arrow PyTorch benchmark published its results only as charts: ``images/pytorch_benchmark_track{1,3}.png``
on branch ``copilot/add-pytorch-benchmark`` of WayScience/ome-arrow-benchmarks, committed in a71b90a (2026-02-04)
with the ``src/benchmarks/pytorch_benchmark.py`` of that commit: the naive ``.as_py()`` dataset (pre-loading came
one commit later, with no new charts), 1,000 random 100x100 uint8 images, on the seed author's machine. The values
below were read off those bar charts by eye (about 2 % of each axis' range); they are the seed's figures, not ours,
and absolute times depend on the machine. (Its Track 2 chart timed ``batch.shape`` after each batch was yielded,
a bug, so none of its figures is comparable and none is listed.)
"""

from __future__ import annotations

import pandas as pd

SOURCE = (
    "WayScience/ome-arrow-benchmarks@a71b90a images/pytorch_benchmark_track1.png and track3.png "
    "(naive .as_py() dataset; read off the charts)"
)

#: Track 1: p95 ``__getitem__`` latency (ms), mean over transforms and repeats, per format and access pattern
TRACK1_P95_MS = {
    ("duckdb", "random"): 5.80, ("duckdb", "sequential"): 5.77,
    ("lance", "random"): 5.86, ("lance", "sequential"): 5.82,
    ("ome_zarr", "random"): 2.58, ("ome_zarr", "sequential"): 2.53,
    ("parquet", "random"): 5.75, ("parquet", "sequential"): 5.80,
    ("parquet_duckdb", "random"): 5.76, ("parquet_duckdb", "sequential"): 5.78,
    ("tiff", "random"): 0.33, ("tiff", "sequential"): 0.33,
}  # fmt: skip

#: Track 3: step time p50 (ms) and data-wait fraction, mean over repeats (batch 16, 2 workers, shuffled, Normalize)
TRACK3 = {
    "duckdb": (85.2, 0.344),
    "lance": (78.6, 0.381),
    "parquet": (73.7, 0.372),
    "parquet_duckdb": (81.8, 0.371),
}

DIRECTORY_FORMATS = ("tiff", "ome_zarr")

#: the seed dataset these figures belong to; a run on other images gets no comparison
SEED_DATA = {"n_images": 1000, "sizes": [[100, 100]], "dtype": "uint8", "channels": 1, "seed": 42}


def is_seed_run(config: dict) -> bool:
    """Whether a run's config (``summary.json``'s) generated the seed's images."""
    data = config.get("data", {})
    return all(data.get(key) == value for key, value in SEED_DATA.items())


def seed_comparison_lines(getitem: pd.DataFrame | None, end_to_end: pd.DataFrame | None) -> list[str]:
    """Our medians beside the seed's published figures: Track 1 naive p95 and Track 3 step / data wait."""
    lines = [f"Beside the seed's published figures ({SOURCE}); ours measured on this machine:"]
    if getitem is not None and not getitem.empty:
        for (fmt, access), seed_p95 in TRACK1_P95_MS.items():
            loader = "decode" if fmt in DIRECTORY_FORMATS else "naive"  # what the seed's dataset did per format
            rows = getitem[(getitem["format"] == fmt) & (getitem["access"] == access) & (getitem["loader"] == loader)]
            if rows.empty:
                continue
            ours = float(rows.groupby("transform")["p95_ms"].median().mean())  # as the chart: mean over transforms
            lines.append(f"  Track 1 {fmt} {loader} {access}: p95 {ours:.3f} ms (seed's: {seed_p95:.2f} ms, "
                         f"ours/seed's {ours / seed_p95:.2f})")
    if end_to_end is not None and not end_to_end.empty:
        for fmt, (seed_step, seed_wait) in TRACK3.items():
            rows = end_to_end[(end_to_end["format"] == fmt) & (end_to_end["loader"] != "native")]
            if rows.empty:
                continue
            for loader, part in rows.groupby("loader"):
                step, wait = float(part["step_p50_ms"].median()), float(part["data_wait_fraction"].median())
                lines.append(f"  Track 3 {fmt} {loader}: step p50 {step:.1f} ms (seed's: {seed_step:.1f} ms), "
                             f"data wait {wait:.1%} (seed's: {seed_wait:.1%})")
    return lines if len(lines) > 1 else []
