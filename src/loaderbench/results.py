"""Results on disk: one Parquet file per track, ``summary.json``, and the per-configuration medians everything
else (plots, HTML, terminal, ``compare``) is drawn from.

Every write is atomic (a temp file in the same directory, then ``os.replace``), so an interrupted run keeps every
track it finished and never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import io
import json
import math
import os
import platform
import tempfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

SUMMARY_NAME = "summary.json"
PAGE_CACHE_NOTE = "warm page cache: data generated or read earlier in the same run"

# Columns that identify a configuration in every track (a group of rows that differ only by ``repeat``).
COMMON_KEYS = ("dataset", "image_size", "format", "loader")
# Columns that describe a configuration but follow from its keys; carried along with the first value of a group.
COMMON_INFO = ("format_label", "format_kind", "height", "width", "depth", "channels", "dtype", "n_images")
# Suffixes that mark a column as a measured metric (units in the name); used for columns this module does not know.
METRIC_SUFFIXES = ("_ms", "_s", "_mb", "_gb", "_bytes", "_pct", "_fraction", "_per_s", "_ratio")
# Metrics where a larger value is better; every other metric is a time, a fraction or a memory size.
HIGHER_IS_BETTER = ("samples_per_s", "images_per_s", "numpy_samples_per_s", "torch_samples_per_s")
# Known order for formats and loaders in tables and plots; unknown values follow, sorted.
LOADER_ORDER = ("naive", "preloaded", "decode", "native")
NATIVE = "native"
# How a loader runs in parallel (torch workers, native threads): the native loader is compared with the best baseline
# of the same format and settings whatever these are.
PARALLELISM_KEYS = ("num_workers", "num_threads", "prefetch_factor", "pin_memory", "persistent_workers")
# Per track, the metric the native loader is compared on against the baselines, and whether higher is better.
NATIVE_COMPARISON = {
    "getitem": ("p50_ms", False),
    "dataloader": ("samples_per_s", True),
    "end_to_end": ("images_per_s", True),
    "conversion": ("torch_p50_ms", False),
}
FORMAT_ORDER = ("parquet", "parquet_duckdb", "lance", "vortex", "duckdb", "tiff", "ome_zarr", "arrow_ipc")


@dataclass(frozen=True)
class TrackSpec:
    """What a track's rows mean: its parameters, its metrics, and the few headline metrics people look at."""

    title: str
    keys: tuple[str, ...]  # track parameters, beyond ``COMMON_KEYS``
    info: tuple[str, ...]  # constant per configuration (sample counts etc.), not metrics
    metrics: tuple[str, ...]  # every measured column, in display order
    headline: tuple[str, ...]  # the subset for summary.json, the terminal and ``compare``


TRACKS: dict[str, TrackSpec] = {
    "getitem": TrackSpec(
        title="Track 1: Dataset __getitem__ latency",
        keys=("access", "transform"),
        info=("samples", "warmup"),
        metrics=("p50_ms", "p95_ms", "p99_ms", "mean_ms", "std_ms", "min_ms", "max_ms", "samples_per_s", "setup_s"),
        headline=("p50_ms", "samples_per_s"),
    ),
    "dataloader": TrackSpec(
        title="Track 2: DataLoader throughput",
        keys=("batch_size", "num_workers", "num_threads", "pin_memory", "persistent_workers", "prefetch_factor"),
        info=("batches", "warmup_batches", "timed_samples"),
        metrics=(
            "samples_per_s",
            "p50_batch_ms",
            "p95_batch_ms",
            "mean_batch_ms",
            "min_batch_ms",
            "max_batch_ms",
            "first_batch_ms",
            "peak_uss_mb",
            "peak_pss_mb",
            "setup_s",
        ),
        headline=("samples_per_s", "p50_batch_ms", "first_batch_ms", "peak_pss_mb"),
    ),
    "end_to_end": TrackSpec(
        title="Track 3: end-to-end model loop",
        keys=("mode", "batch_size", "num_workers", "num_threads"),
        info=("model", "steps", "warmup_steps", "images"),
        metrics=(
            "step_p50_ms",
            "step_p95_ms",
            "step_mean_ms",
            "data_wait_p50_ms",
            "data_wait_p95_ms",
            "compute_p50_ms",
            "data_wait_fraction",
            "images_per_s",
            "setup_s",
        ),
        headline=("step_p50_ms", "data_wait_fraction", "images_per_s"),
    ),
    "conversion": TrackSpec(
        title="Track 4: numpy load vs torch conversion",
        keys=("batch_size",),
        info=(
            "stored_dtype",
            "samples",
            "warmup",
            "overhead_level",
            "from_numpy_shares_memory",
            "converted_shares_memory",
        ),
        metrics=(
            "numpy_p50_ms",
            "numpy_p95_ms",
            "numpy_p99_ms",
            "numpy_mean_ms",
            "conversion_p50_ms",
            "conversion_p95_ms",
            "conversion_mean_ms",
            "torch_p50_ms",
            "torch_p95_ms",
            "torch_p99_ms",
            "torch_mean_ms",
            "overhead_pct",
            "batch_conversion_ms",
            "batch_conversion_per_sample_ms",
            "numpy_samples_per_s",
            "torch_samples_per_s",
            "setup_s",
        ),
        headline=("overhead_pct", "numpy_p50_ms", "conversion_p50_ms", "torch_p50_ms"),
    ),
    "peers": TrackSpec(
        title="Peers: the loaders users could pick instead",
        keys=("variant", "workload", "page_cache", "batch_size"),
        info=("epochs", "shuffle", "status", "reason", "user_code_lines", "shuffle_note", "settings", "versions",
              "fastest"),
        metrics=("samples_per_s", "first_batch_ms", "prepare_s", "peak_uss_mb", "peak_pss_mb"),
        headline=("samples_per_s", "first_batch_ms", "peak_uss_mb"),
    ),
}


# ----------------------------------------------------------------------------------------------- atomic writes


def _file_mode(path: Path) -> int:
    """The existing file's permissions, else 0666 minus the process umask."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        pass
    umask = 0o022
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                umask = int(line.split()[1], 8)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a partial one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); give it the mode a plain open() would have.
        os.fchmod(fd, _file_mode(path))
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    return path


def track_path(out_dir: str | os.PathLike[str], track: str) -> Path:
    """Where a track's rows live: ``out_dir/<track>.parquet``."""
    return Path(out_dir) / f"{track}.parquet"


def write_track(out_dir: str | os.PathLike[str], track: str, df: pd.DataFrame) -> Path:
    """Store a track's rows (one per configuration x repeat) as ``out_dir/<track>.parquet``, atomically."""
    buffer = io.BytesIO()
    df.reset_index(drop=True).to_parquet(buffer, index=False)
    return atomic_write_bytes(track_path(out_dir, track), buffer.getvalue())


def read_track(out_dir: str | os.PathLike[str], track: str) -> pd.DataFrame | None:
    """A track's rows, or ``None`` when the track was not run (no file)."""
    import pyarrow.fs  # noqa: PLC0415 - pandas imports it anyway on its parquet path

    path = track_path(out_dir, track)
    if not path.is_file():
        return None
    # Read by path through Arrow's own file system, not the Python file object pandas opens by default: Arrow frees
    # that object's buffers on its I/O threads after read_table returns, and when that runs while the interpreter
    # exits, taking the GIL ends the thread inside a noexcept destructor and the process aborts ("terminate called
    # without an active exception", apache/arrow#34314, #33975): about 1 exit in 10 right after the read.
    return pd.read_parquet(path, filesystem=pyarrow.fs.LocalFileSystem())


def track_names(out_dir: str | os.PathLike[str]) -> list[str]:
    """The image tracks, then any other ``<name>.parquet`` found (a later loader's track), minus those a registered
    section provider lays out itself (``loaderbench.sections``)."""
    from loaderbench.sections import own_file_prefixes  # noqa: PLC0415

    own = own_file_prefixes()
    extra = sorted(p.stem for p in Path(out_dir).glob("*.parquet")
                   if p.stem not in TRACKS and not (own and p.stem.startswith(own)))
    return [*TRACKS, *extra]


# ----------------------------------------------------------------------------------------------- environment


def _dist_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


# Report key -> distribution name (what ``pip`` calls it).
_DISTRIBUTIONS = {
    "numpy": "numpy",
    "pyarrow": "pyarrow",
    "pandas": "pandas",
    "torch": "torch",
    "duckdb": "duckdb",
    "lance": "pylance",
    "vortex": "vortex-data",
    "zarr": "zarr",
    "ome-zarr": "ome-zarr",
    "tifffile": "tifffile",
    "ome-arrow": "ome-arrow",
    "matplotlib": "matplotlib",
    "psutil": "psutil",
}


def _core_build_info() -> dict[str, Any] | None:
    """What the native core says about its build (``build_info()`` or ``__version__``); ``None`` if not built."""
    try:
        from loaderbench import _core  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - a missing or broken extension is reported, not fatal
        return {"available": False, "error": f"{type(exc).__name__}: {exc}"}
    info: dict[str, Any] = {"available": True}
    build_info = getattr(_core, "build_info", None)
    if callable(build_info):
        try:
            value = build_info()
            info.update(value if isinstance(value, dict) else {"build_info": str(value)})
        except Exception as exc:  # noqa: BLE001
            info["error"] = f"build_info() failed: {type(exc).__name__}: {exc}"
    version = getattr(_core, "__version__", None)
    if version is not None:
        info.setdefault("version", str(version))
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "processor\t: ")) and ":" in line:
                value = line.split(":", 1)[1].strip()
                if value and not value.isdigit():
                    return value
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _os_name() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.system()


def _cpu_quota() -> float | None:
    """CPUs allowed by a cgroup v2 quota (containers), ``None`` when unlimited or unknown."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else round(int(quota) / int(period), 2)
    except (OSError, ValueError):
        return None


def collect_environment() -> dict[str, Any]:
    """Everything that produced a figure besides the config: library versions, hardware, threads, cache state."""
    import loaderbench

    versions: dict[str, Any] = {"python": platform.python_version(), "loaderbench": loaderbench.__version__}
    versions.update({key: _dist_version(dist) for key, dist in _DISTRIBUTIONS.items()})

    hardware: dict[str, Any] = {
        "cpu_model": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": None,
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cgroup_cpu_quota": _cpu_quota(),
        "memory_total_bytes": None,
        "os": _os_name(),
        "kernel": platform.release(),
        "machine": platform.machine(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(Exception):  # psutil is optional for the record
        import psutil

        hardware["physical_cores"] = psutil.cpu_count(logical=False)
        hardware["memory_total_bytes"] = int(psutil.virtual_memory().total)
    if hardware["memory_total_bytes"]:
        hardware["memory_total_gb"] = round(hardware["memory_total_bytes"] / 2**30, 1)

    threads: dict[str, Any] = {"torch_num_threads": None, "torch_num_interop_threads": None}
    with contextlib.suppress(Exception):
        import torch

        threads["torch_num_threads"] = torch.get_num_threads()
        threads["torch_num_interop_threads"] = torch.get_num_interop_threads()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        threads[var] = os.environ.get(var)

    return {
        "versions": versions,
        "native_core": _core_build_info(),
        "hardware": hardware,
        "threads": threads,
        "page_cache": PAGE_CACHE_NOTE,
    }


# ----------------------------------------------------------------------------------------------- aggregation


def _spec(track: str) -> TrackSpec:
    return TRACKS.get(track, TrackSpec(title=track, keys=(), info=(), metrics=(), headline=()))


def _is_metric_name(column: str) -> bool:
    return column.endswith(METRIC_SUFFIXES)


def split_columns(track: str, df: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """``(keys, info, metrics)`` present in ``df``.

    Known columns follow ``TRACKS``. A column this module does not know (a later loader's extra parameter, say) is a
    metric when it is numeric and its name ends in a unit suffix (``_ms``, ``_per_s``, ...), otherwise a key, so
    configurations that differ in it are never merged.
    """
    spec = _spec(track)
    known_keys = [*COMMON_KEYS, *spec.keys]
    known_info = [*COMMON_INFO, *spec.info]
    keys = [c for c in known_keys if c in df.columns]
    info = [c for c in known_info if c in df.columns]
    metrics = [c for c in spec.metrics if c in df.columns]
    for column in df.columns:
        if column == "repeat" or column in keys or column in info or column in metrics:
            continue
        if _is_metric_name(column) and pd.api.types.is_numeric_dtype(df[column]) and df[column].dtype != bool:
            metrics.append(column)
        else:
            keys.append(column)
    return keys, info, metrics


def headline_metrics(track: str, df: pd.DataFrame) -> list[str]:
    """The track's headline metrics present in ``df`` (all metrics for a track this module does not know)."""
    spec = _spec(track)
    if track in TRACKS:
        return [m for m in spec.headline if m in df.columns]
    return split_columns(track, df)[2]


def _rank(values: pd.Series, order: tuple[str, ...] = ()) -> pd.Series:
    """Integer sort rank: the position in ``order``, then unknown values alphabetically."""
    known = {name: i for i, name in enumerate(order)}
    unknown = sorted({str(v) for v in values if v not in known})
    rank = {v: len(order) + i for i, v in enumerate(unknown)}
    return values.map(lambda v: known[v] if v in known else rank[str(v)])


def _size_rank(values: pd.Series) -> pd.Series:
    """``"HxW"`` (or volumes' ``"ZxHxW"``) strings ranked by pixel count (unparsable ones last)."""

    def area(value: Any) -> int:
        try:
            return math.prod(int(v) for v in str(value).lower().split("x"))
        except ValueError:
            return 2**62

    return values.map(area)


def sort_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Rows in display order: image size, format (registry order), loader (baselines first), then parameters."""
    if df.empty:
        return df.reset_index(drop=True)
    ranks = {}
    if "image_size" in df.columns:
        ranks["_size"] = _size_rank(df["image_size"])
    if "dataset" in df.columns:
        ranks["_dataset"] = _rank(df["dataset"])
    if "format" in df.columns:
        ranks["_format"] = _rank(df["format"], FORMAT_ORDER)
    if "loader" in df.columns:
        ranks["_loader"] = _rank(df["loader"], LOADER_ORDER)
    order = ("access", "transform", "mode", "batch_size", "num_workers", "num_threads", "repeat")
    params = [c for c in order if c in df.columns]
    keyed = df.assign(**ranks)
    keyed = keyed.sort_values(by=[*ranks, *params], kind="stable", na_position="last")
    return keyed.drop(columns=list(ranks)).reset_index(drop=True)


def peer_label(row: pd.Series | dict[str, Any]) -> str:
    """A ``peers`` row's name: ``peer / variant`` (the variant left out when a peer has none)."""
    variant = row.get("variant") or ""
    return f"{row['loader']} / {variant}" if variant else str(row["loader"])


def peer_groups(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """A ``peers`` table split by dataset and page-cache state: ``(label, rows)``, the label the dataset's name,
    with "(cold page cache)" on cold rows (tables written before the column existed are warm)."""
    if "page_cache" not in table.columns:
        return [(str(name), part) for name, part in table.groupby("dataset", sort=False)]
    return [(f"{name} (cold page cache)" if state == "cold" else str(name), part)
            for (name, state), part in table.groupby(["dataset", "page_cache"], sort=False)]


def peer_verdict(table: pd.DataFrame) -> list[str]:
    """Per dataset (and page-cache state, when cold was measured) of a ``peers`` medians table: the fastest peer,
    the native loader against the best other, and every peer that did not run with its reason."""
    lines: list[str] = []
    for dataset, part in peer_groups(table):
        ran = part[(part["status"] == "ok") & part["samples_per_s"].notna()]
        if ran.empty:
            lines.append(f"{dataset}: no peer ran.")
        else:
            best = ran.loc[ran["samples_per_s"].idxmax()]
            lines.append(f"{dataset}: fastest {peer_label(best)} at {best['samples_per_s']:,.0f} samples/s.")
            native, others = ran[ran["loader"] == NATIVE], ran[ran["loader"] != NATIVE]
            if not native.empty and not others.empty:
                mine = native.loc[native["samples_per_s"].idxmax()]
                rival = others.loc[others["samples_per_s"].idxmax()]
                ratio = mine["samples_per_s"] / rival["samples_per_s"]
                lines.append(f"{dataset}: native ({peer_label(mine)}) is {ratio:.2f}x the strongest other loader, "
                             f"{peer_label(rival)} ({rival['samples_per_s']:,.0f} samples/s).")
        for _, row in part[part["status"] != "ok"].iterrows():
            lines.append(f"{dataset}: {peer_label(row)} {row['status']}: {row['reason']}")
    return lines


def medians(track: str, df: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: its keys, info columns, ``repeats``, and for every metric the median across
    repeats plus ``<metric>_min`` and ``<metric>_max``. Empty in, empty out."""
    keys, info, metrics = split_columns(track, df)
    if df.empty or not keys:
        return pd.DataFrame(columns=[*keys, *info, "repeats", *metrics])
    numeric = df.assign(**{m: pd.to_numeric(df[m], errors="coerce") for m in metrics})
    grouped = numeric.groupby(keys, dropna=False, sort=False)
    parts = [grouped[info].first()] if info else []
    parts.append(grouped.size().rename("repeats"))
    for metric in metrics:
        stats = grouped[metric].agg(["median", "min", "max"])
        parts.append(stats.rename(columns={"median": metric, "min": f"{metric}_min", "max": f"{metric}_max"}))
    out = pd.concat(parts, axis=1)
    return sort_rows(out.reset_index())


def _json_value(value: Any) -> Any:
    """Plain JSON types: numpy scalars unwrapped, NaN/inf as ``None``."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def aggregate(track: str, df: pd.DataFrame) -> dict[str, Any]:
    """A track's entry in summary.json: per configuration, the median and min/max across repeats of its headline
    metrics."""
    keys, info, _ = split_columns(track, df)
    headline = headline_metrics(track, df)
    table = medians(track, df)
    rows = []
    for record in table.to_dict(orient="records"):
        row: dict[str, Any] = {c: _json_value(record[c]) for c in (*keys, *info)}
        row["repeats"] = _json_value(record["repeats"])
        for metric in headline:
            row[metric] = {
                "median": _json_value(record[metric]),
                "min": _json_value(record[f"{metric}_min"]),
                "max": _json_value(record[f"{metric}_max"]),
            }
        rows.append(row)
    return {
        "title": _spec(track).title,
        "rows_total": len(df),
        "key_columns": keys,
        "headline_metrics": headline,
        "configurations": rows,
    }


# ----------------------------------------------------------------------------------------------- summary.json


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return _json_value(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (Path, os.PathLike)):
        return os.fspath(value)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if isinstance(value, (set, tuple)):
        return list(value)
    return str(value)


def _clean(value: Any) -> Any:
    """Recursively replace NaN/inf (not valid JSON) by ``None``."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return _json_value(value)


def write_json(path: str | os.PathLike[str], data: Any) -> Path:
    """``data`` as indented JSON at ``path``, atomically; NaN/inf become ``null``, numpy values and paths plain."""
    text = json.dumps(_clean(data), indent=2, default=_json_default, allow_nan=False)
    return atomic_write_bytes(Path(path), (text + "\n").encode())


def write_summary(
    out_dir: str | os.PathLike[str],
    config: dict[str, Any],
    tracks: dict[str, pd.DataFrame],
    skipped: dict[str, str],
    timings: dict[str, float],
    datasets: list[dict[str, Any]],
) -> Path:
    """Write ``out_dir/summary.json`` (atomically): config, environment, datasets, skipped formats with reasons,
    seconds per track, and per-track aggregates."""
    import loaderbench

    summary = {
        "loaderbench_version": loaderbench.__version__,
        "created": _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds"),
        "config": config,
        "environment": collect_environment(),
        "datasets": datasets,
        "skipped_formats": dict(skipped),
        "track_seconds": dict(timings),
        "tracks": {name: aggregate(name, df) for name, df in tracks.items() if df is not None},
    }
    return write_json(Path(out_dir) / SUMMARY_NAME, summary)


def read_summary(out_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The run's summary.json, or ``None`` when there is none."""
    path = Path(out_dir) / SUMMARY_NAME
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not a loaderbench summary (invalid JSON: {exc}); re-run, or delete it") from None
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: not a loaderbench summary (expected a JSON object)")
    return summary


# ----------------------------------------------------------------------------------------------- text helpers


def format_number(value: Any) -> str:
    """A number for people: three significant digits, thousands separators for big ones, '-' for missing."""
    if value is None or value is pd.NA:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    if not math.isfinite(number):
        return "-"
    magnitude = abs(number)
    if magnitude >= 1000:
        return f"{number:,.0f}"
    if magnitude == 0:
        return "0"
    if magnitude >= 100:
        return f"{number:.0f}"
    if magnitude >= 10:
        return f"{number:.1f}"
    if magnitude >= 1:
        return f"{number:.2f}"
    return f"{number:.3g}"


def data_wait_level(fraction: float) -> str:
    """The seed's reading of Track 3's data-wait fraction (0..1): < 30 % not a bottleneck, 30-50 % significant,
    > 50 % bottleneck."""
    if fraction is None or not math.isfinite(fraction):
        return "unknown"
    percent = fraction * 100
    if percent < 30:
        return "not a bottleneck"
    return "significant" if percent <= 50 else "bottleneck"


def overhead_level(percent: float) -> str:
    """The seed's reading of Track 4's conversion overhead (%): < 10 negligible (low), 10-30 measurable (moderate),
    > 30 significant (high)."""
    if percent is None or not math.isfinite(percent):
        return "unknown"
    if percent < 10:
        return "negligible"
    return "measurable" if percent <= 30 else "significant"


def param_text(value: Any) -> str:
    """A parameter value for tables: whole floats as ints (a NaN-holed int column), missing as '-'."""
    value = _json_value(value)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def describe_keys(track: str, table: pd.DataFrame) -> tuple[list[str], dict[str, str]]:
    """Which parameters to show as columns: ``(varying, constant)``. ``format`` and ``loader`` always vary (they
    are the point); a parameter with one value in the whole table is reported once as a constant instead."""
    derived = {"repeats"} | {c for c in table.columns if c.endswith(("_min", "_max")) and c[:-4] in table.columns}
    keys = [c for c in split_columns(track, table)[0] if c not in derived]
    varying: list[str] = []
    constant: dict[str, str] = {}
    for key in keys:
        if key in ("format", "loader") or table[key].nunique(dropna=False) > 1:
            varying.append(key)
        elif not table.empty:
            constant[key] = param_text(table[key].iloc[0])
    if "image_size" in varying and "dataset" in varying:
        # The generated datasets are named after their size; show the dataset only when it adds something.
        if table.groupby("image_size", dropna=False)["dataset"].nunique(dropna=False).max() == 1:
            varying.remove("dataset")
    return varying, constant


# ----------------------------------------------------------------------------------------------- native vs baselines


def loader_label(loader: Any, num_threads: Any = None) -> str:
    """A loader as people read it: ``native ×2 threads`` when it has a thread count, else its name."""
    threads = _json_value(num_threads)
    if threads is None or (isinstance(threads, float) and math.isnan(threads)):
        return str(loader)
    count = int(threads)
    return f"{loader} ×{count} thread{'' if count == 1 else 's'}"


def native_vs_baselines(track: str, table: pd.DataFrame) -> pd.DataFrame:
    """How many times better each native configuration is than the best baseline of the same format and settings
    (any worker count: ``PARALLELISM_KEYS`` are not matched), on the track's ``NATIVE_COMPARISON`` metric.

    ``table`` is ``medians(track, df)``. One row per image size and native label (``native ×2 threads``): columns
    ``image_size``, ``label``, ``metric``, ``median``, ``min``, ``max``, ``configurations`` (factors above 1 mean
    the native loader is faster). Empty when there are no native rows or nothing to compare them with.
    """
    columns = ["image_size", "label", "metric", "median", "min", "max", "configurations"]
    if track not in NATIVE_COMPARISON or "loader" not in table.columns or not (table["loader"] == NATIVE).any():
        return pd.DataFrame(columns=columns)
    metric, higher = NATIVE_COMPARISON[track]
    if metric not in table.columns:
        return pd.DataFrame(columns=columns)
    varying, _ = describe_keys(track, table)
    same = [k for k in varying if k != "loader" and k not in PARALLELISM_KEYS]
    baselines = table[(table["loader"] != NATIVE) & table[metric].notna() & (table[metric] > 0)]
    factors: dict[tuple[str, str], list[float]] = {}
    for _, row in table[table["loader"] == NATIVE].iterrows():
        value = row[metric]
        if pd.isna(value) or value <= 0:
            continue
        mask = pd.Series(True, index=baselines.index)
        for key in same:
            mask &= (baselines[key] == row[key]) | (baselines[key].isna() & pd.isna(row[key]))
        candidates = baselines.loc[mask, metric]
        if candidates.empty:
            continue
        best = candidates.max() if higher else candidates.min()
        factor = value / best if higher else best / value
        label = loader_label(NATIVE, row.get("num_threads"))
        factors.setdefault((str(row.get("image_size", "")), label), []).append(float(factor))
    rows = [
        {
            "image_size": size,
            "label": label,
            "metric": metric,
            "median": float(np.median(values)),
            "min": float(min(values)),
            "max": float(max(values)),
            "configurations": len(values),
        }
        for (size, label), values in factors.items()
    ]
    return pd.DataFrame(rows, columns=columns)


def native_comparison_lines(track: str, table: pd.DataFrame) -> list[str]:
    """``native_vs_baselines`` as sentences, one per image size and native label."""
    lines = []
    for _, r in native_vs_baselines(track, table).iterrows():
        size = f"{r['image_size']}: " if r["image_size"] else ""
        workers = ", any worker count" if track in ("dataloader", "end_to_end") else ""
        lines.append(
            f"{size}{r['label']} vs the best baseline of the same format and settings ({r['metric']}{workers}): "
            f"{r['median']:.2f}x median, {r['min']:.2f}x to {r['max']:.2f}x over {r['configurations']} "
            f"configurations (above 1x: native faster)."
        )
    return lines
