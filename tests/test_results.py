"""Results files: atomic writes, per-configuration medians, summary.json."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import loaderbench
from loaderbench import results
from loaderbench.results import (
    aggregate,
    atomic_write_bytes,
    collect_environment,
    data_wait_level,
    format_number,
    medians,
    overhead_level,
    read_summary,
    read_track,
    write_summary,
    write_track,
)


def _getitem_rows() -> pd.DataFrame:
    """Two formats x (naive, native) x 3 repeats with known p50 values; one extra unknown column of each kind."""
    rows = []
    p50 = {("parquet", "naive"): [3.0, 1.0, 2.0], ("parquet", "native"): [0.3, 0.1, 0.5], ("lance", "naive"): [7, 9, 8]}
    for (fmt, loader), values in p50.items():
        for rep, value in enumerate(values):
            rows.append(
                {
                    "format": fmt,
                    "format_label": fmt.title(),
                    "format_kind": "table",
                    "loader": loader,
                    "dataset": "synthetic-100x100",
                    "image_size": "100x100",
                    "height": 100,
                    "width": 100,
                    "channels": 1,
                    "dtype": "uint8",
                    "n_images": 10,
                    "repeat": rep,
                    "access": "random",
                    "transform": "none",
                    "samples": 5,
                    "warmup": 1,
                    "p50_ms": float(value),
                    "samples_per_s": 1000.0 / value,
                    "num_threads": 4.0 if loader == "native" else np.nan,  # a later loader's parameter
                    "queue_wait_ms": float(rep),  # a later metric (unit suffix)
                }
            )
    return pd.DataFrame(rows)


def _tmp_files(directory: Path) -> list[Path]:
    return [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_atomic_write_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert _tmp_files(target.parent) == []
    assert target.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_atomic_write_failure_keeps_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    df = _getitem_rows()
    path = write_track(tmp_path, "getitem", df)
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        write_track(tmp_path, "getitem", df.iloc[:1])
    with pytest.raises(OSError, match="disk full"):
        write_summary(tmp_path, {}, {}, {}, {}, [])
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert len(read_track(tmp_path, "getitem")) == len(df)
    assert not (tmp_path / "summary.json").exists()
    assert _tmp_files(tmp_path) == []


def test_track_roundtrip_and_missing(tmp_path: Path) -> None:
    df = _getitem_rows()
    path = write_track(tmp_path, "getitem", df)
    assert path == tmp_path / "getitem.parquet"
    pd.testing.assert_frame_equal(read_track(tmp_path, "getitem"), df, check_dtype=False)
    assert read_track(tmp_path, "dataloader") is None
    write_track(tmp_path, "conversion", pd.DataFrame())
    assert read_track(tmp_path, "conversion").empty


def test_medians_known_values_and_extra_columns() -> None:
    table = medians("getitem", _getitem_rows())
    assert list(zip(table["format"], table["loader"], strict=True)) == [
        ("parquet", "naive"),
        ("parquet", "native"),
        ("lance", "naive"),
    ]
    row = table.iloc[0]
    assert (row["p50_ms"], row["p50_ms_min"], row["p50_ms_max"], row["repeats"]) == (2.0, 1.0, 3.0, 3)
    assert table.iloc[1]["p50_ms"] == pytest.approx(0.3)
    assert table.iloc[2]["p50_ms"] == 8.0
    assert table.iloc[0]["samples_per_s"] == pytest.approx(500.0)
    # Unknown unit-suffixed column is a metric; unknown parameter is a key (NaN for baselines).
    assert table.iloc[0]["queue_wait_ms"] == 1.0
    assert math.isnan(table.iloc[0]["num_threads"]) and table.iloc[1]["num_threads"] == 4.0
    keys, info, metrics = results.split_columns("getitem", _getitem_rows())
    assert "num_threads" in keys and "queue_wait_ms" in metrics and "repeat" not in keys + info + metrics


def test_loader_label() -> None:
    assert results.loader_label("native", 2.0) == "native ×2 threads"
    assert results.loader_label("native", 1) == "native ×1 thread"
    assert results.loader_label("preloaded", np.nan) == "preloaded" == results.loader_label("preloaded")


def test_native_vs_best_baseline_factors() -> None:
    out = results.native_vs_baselines("getitem", medians("getitem", _getitem_rows()))
    # parquet: native p50 0.3 ms against naive 2.0 ms; lance has no native row
    assert out[["image_size", "label", "metric", "configurations"]].values.tolist() == [
        ["100x100", "native ×4 threads", "p50_ms", 1]
    ]
    assert out["median"].item() == pytest.approx(2.0 / 0.3)
    # throughput: the best torch worker count is the baseline, whatever num_workers the native rows have
    rows = [("preloaded", 0, np.nan, 100.0), ("preloaded", 2, np.nan, 400.0), ("native", 0, 1.0, 800.0),
            ("native", 0, 2.0, 1200.0)]  # fmt: skip
    df = pd.DataFrame(
        [{"format": "parquet", "image_size": "8x8", "loader": loader, "batch_size": 4, "num_workers": workers,
          "num_threads": threads, "repeat": 0, "samples_per_s": rate} for loader, workers, threads, rate in rows]
    )  # fmt: skip
    out = results.native_vs_baselines("dataloader", medians("dataloader", df))
    assert dict(zip(out["label"], out["median"], strict=True)) == {"native ×1 thread": 2.0, "native ×2 threads": 3.0}
    assert results.native_vs_baselines("dataloader", medians("dataloader", df[df["loader"] != "native"])).empty
    lines = results.native_comparison_lines("dataloader", medians("dataloader", df))
    assert len(lines) == 2 and lines[1].startswith("8x8: native ×2 threads vs the best baseline")
    assert "3.00x median" in lines[1]


def test_medians_do_not_merge_different_parameters() -> None:
    df = pd.concat([_getitem_rows().assign(access="random"), _getitem_rows().assign(access="sequential", p50_ms=50.0)])
    table = medians("getitem", df)
    assert len(table) == 6
    assert set(table[table["access"] == "sequential"]["p50_ms"]) == {50.0}


def test_aggregate_headline_only() -> None:
    agg = aggregate("getitem", _getitem_rows())
    assert agg["headline_metrics"] == ["p50_ms", "samples_per_s"]
    first = agg["configurations"][0]
    assert first["p50_ms"] == {"median": 2.0, "min": 1.0, "max": 3.0}
    assert first["repeats"] == 3 and first["format_label"] == "Parquet"
    assert "queue_wait_ms" not in first
    assert first["num_threads"] is None  # NaN becomes null
    native = [c for c in agg["configurations"] if c["loader"] == "native"]
    assert len(native) == 1 and native[0]["num_threads"] == 4.0
    json.dumps(agg, allow_nan=False)


@pytest.mark.parametrize(
    ("track", "columns"),
    [
        ("dataloader", ["samples_per_s", "p50_batch_ms", "first_batch_ms", "peak_pss_mb"]),
        ("end_to_end", ["step_p50_ms", "data_wait_fraction", "images_per_s"]),
        ("conversion", ["overhead_pct", "numpy_p50_ms", "conversion_p50_ms", "torch_p50_ms"]),
    ],
)
def test_aggregate_headlines_per_track(track: str, columns: list[str]) -> None:
    df = pd.DataFrame(
        {"format": "parquet", "loader": ["naive", "naive", "naive"], "repeat": [0, 1, 2], "batch_size": 4}
        | {c: [1.0, 5.0, 2.0] for c in columns}
        | {"extra_unknown": ["x", "x", "x"]}
    )
    agg = aggregate(track, df)
    assert agg["headline_metrics"] == columns
    assert len(agg["configurations"]) == 1
    for column in columns:
        assert agg["configurations"][0][column] == {"median": 2.0, "min": 1.0, "max": 5.0}


def test_aggregate_empty_and_unknown_track() -> None:
    empty = aggregate("getitem", _getitem_rows().iloc[0:0])
    assert empty["configurations"] == [] and empty["rows_total"] == 0
    assert aggregate("dataloader", pd.DataFrame())["configurations"] == []
    other = aggregate("sparse", pd.DataFrame({"format": ["a", "a"], "loader": "x", "read_ms": [1.0, 3.0]}))
    assert other["configurations"][0]["read_ms"] == {"median": 2.0, "min": 1.0, "max": 3.0}


def test_summary_json(tmp_path: Path) -> None:
    config = {"preset": "quick", "data": {"n_images": 10, "sizes": [[100, 100]]}, "getitem": {"repeats": 3}}
    skipped = {"vortex": "Vortex: cannot import vortex"}
    path = write_summary(
        tmp_path, config, {"getitem": _getitem_rows()}, skipped, {"getitem": 1.25}, [{"name": "synthetic"}]
    )
    assert path == tmp_path / "summary.json"
    summary = json.loads(path.read_text())
    assert summary == read_summary(tmp_path)
    assert set(summary) >= {
        "loaderbench_version",
        "created",
        "config",
        "environment",
        "datasets",
        "skipped_formats",
        "track_seconds",
        "tracks",
    }
    assert summary["loaderbench_version"] == loaderbench.__version__
    assert summary["config"] == config
    assert summary["skipped_formats"] == skipped
    assert summary["track_seconds"] == {"getitem": 1.25}
    assert summary["tracks"]["getitem"]["configurations"][0]["p50_ms"]["median"] == 2.0
    env = summary["environment"]
    assert env["versions"]["pandas"] == pd.__version__
    assert env["hardware"]["cpu_model"] and env["hardware"]["logical_cores"] >= 1
    assert "warm page cache" in env["page_cache"]
    assert read_summary(tmp_path / "nothing") is None


def test_collect_environment_versions() -> None:
    env = collect_environment()
    versions = env["versions"]
    for key in ("python", "loaderbench", "numpy", "pyarrow", "pandas", "torch", "duckdb", "lance", "vortex"):
        assert key in versions
    for key in ("zarr", "ome-zarr", "tifffile", "ome-arrow", "matplotlib", "psutil"):
        assert key in versions
    assert versions["numpy"] == np.__version__
    hw = env["hardware"]
    for key in ("cpu_model", "logical_cores", "physical_cores", "memory_total_bytes", "os", "kernel", "platform"):
        assert key in hw
    assert hw["memory_total_bytes"] is None or hw["memory_total_bytes"] > 0
    assert "torch_num_threads" in env["threads"]
    assert "available" in env["native_core"]


def test_missing_distribution_is_null(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(results._DISTRIBUTIONS, "ghost", "no-such-distribution-xyz")
    assert collect_environment()["versions"]["ghost"] is None


def test_levels_follow_the_seeds() -> None:
    assert [data_wait_level(f) for f in (0.0, 0.29, 0.3, 0.5, 0.51)] == [
        "not a bottleneck",
        "not a bottleneck",
        "significant",
        "significant",
        "bottleneck",
    ]
    assert [overhead_level(p) for p in (0.0, 9.9, 10.0, 30.0, 30.1)] == [
        "negligible",
        "negligible",
        "measurable",
        "measurable",
        "significant",
    ]
    assert data_wait_level(float("nan")) == "unknown"


def test_format_number() -> None:
    assert [format_number(v) for v in (12345.6, 123.4, 12.34, 1.234, 0.01234, 0, None, float("nan"), 7, True)] == [
        "12,346",
        "123",
        "12.3",
        "1.23",
        "0.0123",
        "0",
        "-",
        "-",
        "7",
        "yes",
    ]
