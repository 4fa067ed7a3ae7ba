"""Track 1 beside the seed's own script, run on the same machine: are our baselines the seed's, step for step?

The seed's ``src/benchmarks/pytorch_benchmark.py`` (WayScience/ome-arrow-benchmarks, branch
``copilot/add-pytorch-benchmark``, the pre-loading version) needs torchvision, which cannot be installed beside
this project's CPU torch; run it in a virtual environment of its own and save its Track 1 frame, e.g.
``df = seed.run_track1(); df.to_parquet("seed_track1.parquet")`` after its ``generate_test_data`` /
``write_test_data``. Then run ``loaderbench run --preset seed --tracks getitem --out DIR`` and:

    python benchmarks/compare_with_seed.py SEED_TRACK1.parquet DIR/getitem.parquet

It prints, per format x access x transform the seed measured, the median over repeats of our ``preloaded``
rows' p50 (and, for the directory formats, our ``decode`` rows) beside the seed's, and their ratio; the last line
is JSON with the range of ratios. Both sides must have run on the same machine, one after the other.
"""

from __future__ import annotations

import argparse
import json
import sys

import pandas as pd

#: the seed's format names -> ours
SEED_FORMATS = {
    "Parquet": "parquet",
    "Parquet (DuckDB)": "parquet_duckdb",
    "Lance": "lance",
    "DuckDB": "duckdb",
    "Vortex": "vortex",
    "TIFF": "tiff",
    "OME-Zarr": "ome_zarr",
}


def compare(seed: pd.DataFrame, ours: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration both measured: seed and our p50 (ms, median over repeats) and ours / seed's."""
    seed = seed.assign(format=seed["format"].map(SEED_FORMATS), p50_ms=seed["p50"] * 1000.0)
    seed = seed.groupby(["format", "access_pattern", "transform"], as_index=False)["p50_ms"].median()
    loader = ours["format"].map(lambda f: "decode" if f in ("tiff", "ome_zarr") else "preloaded")
    ours = ours[ours["loader"] == loader]
    ours = ours.groupby(["format", "access", "transform"], as_index=False)["p50_ms"].median()
    joined = seed.merge(ours, left_on=["format", "access_pattern", "transform"],
                        right_on=["format", "access", "transform"], suffixes=("_seed", "_ours"))
    joined["ours_over_seed"] = joined["p50_ms_ours"] / joined["p50_ms_seed"]
    return joined[["format", "access_pattern", "transform", "p50_ms_seed", "p50_ms_ours", "ours_over_seed"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("seed_track1", help="the seed script's Track 1 results (parquet)")
    parser.add_argument("ours", help="our getitem.parquet from `loaderbench run --preset seed`")
    args = parser.parse_args(argv)
    table = compare(pd.read_parquet(args.seed_track1), pd.read_parquet(args.ours))
    if table.empty:
        print("no configuration measured by both", file=sys.stderr)
        return 1
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    ratios = table["ours_over_seed"]
    print(json.dumps({"configs": len(table), "ratio_min": round(float(ratios.min()), 3),
                      "ratio_median": round(float(ratios.median()), 3), "ratio_max": round(float(ratios.max()), 3),
                      "within_1_5x": int(((ratios <= 1.5) & (ratios >= 1 / 1.5)).sum())}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
