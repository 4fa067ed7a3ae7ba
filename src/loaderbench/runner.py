"""``loaderbench run``: data → tracks → results → report, one finished track at a time.

Each track's parquet and the summary are rewritten after every track, so an interrupted run keeps every
track that finished.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.config import IMAGE_TRACKS, Config, dataset_plans
from loaderbench.datagen import DatasetFiles, ensure_dataset, open_input, size_text
from loaderbench.progress import Progress

#: The seed's Track 4 interpretation levels, printed with the result.
OVERHEAD_ADVICE = {
    "low": "conversion is negligible: I/O and decoding dominate, optimise data loading",
    "moderate": "conversion is measurable: batched conversion may help, acceptable for most workloads",
    "high": "conversion is significant: keep data in torch, convert zero-copy or in batches",
}


@dataclass
class RunOutcome:
    out_dir: Path
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    track_seconds: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0


def prepare_datasets(cfg: Config, progress: Progress, with_generated: bool) -> list[DatasetFiles]:
    """The user's inputs, and generated data (cached by config hash) unless only inputs were asked for."""
    if not set(cfg.tracks) & set(IMAGE_TRACKS):
        return []  # only tracks with their own data (sparse): no image data to prepare
    datasets = [open_input(spec, cfg.column or None) for spec in cfg.inputs]
    for dataset in datasets:
        column = f", column {dataset.column}" if dataset.column else ""
        progress(f"input {dataset.name}: {dataset.n_images} images {dataset.image_size} {dataset.dtype}{column}")
    if with_generated or not cfg.inputs:
        for plan in dataset_plans(cfg):
            (height, width), data = plan.size, plan.data
            progress(f"data: {data.n_images} images {size_text(height, width, data.depth)} {data.dtype} "
                     f"(seed {data.seed})")
            datasets.append(ensure_dataset(data, plan.size, plan.formats, Path(cfg.data_dir), progress))
    return datasets


def _dataset_record(dataset: DatasetFiles) -> dict[str, Any]:
    return {
        "name": dataset.name,
        "source": dataset.source,
        "root": str(dataset.root),
        "height": dataset.height,
        "width": dataset.width,
        "depth": dataset.depth,
        "channels": dataset.channels,
        "dtype": dataset.dtype,
        "n_images": dataset.n_images,
        "column": dataset.column,
        "formats": {name: str(path) for name, path in dataset.paths.items()},
        "layouts": dataset.layouts,
    }


def _skipped(datasets: list[DatasetFiles], requested: list[str]) -> dict[str, str]:
    skipped: dict[str, str] = {}
    for dataset in datasets:
        for name, reason in dataset.skipped.items():
            if name in requested:
                key = name if len(datasets) == 1 else f"{name} ({dataset.name})"
                skipped[key] = reason
    return skipped


def run_benchmark(cfg: Config, progress: Progress, with_generated: bool = False) -> RunOutcome:
    """Run every configured track and write ``<track>.parquet``, ``summary.json``, plots and ``report.html``."""
    from loaderbench import results  # noqa: PLC0415 - keep `loaderbench --help` fast
    from loaderbench.report import render_report  # noqa: PLC0415
    from loaderbench.tracks import TRACKS, TrackContext  # noqa: PLC0415

    start = time.perf_counter()
    out_dir = Path(cfg.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    datasets = prepare_datasets(cfg, progress, with_generated)
    outcome = RunOutcome(out_dir=out_dir, skipped=_skipped(datasets, cfg.formats))
    for name, reason in outcome.skipped.items():
        progress(f"skipped {name}: {reason}")
    context = TrackContext(config=cfg, datasets=datasets, progress=progress)
    records = [_dataset_record(d) for d in datasets]
    for track in cfg.tracks:
        progress(f"track {track}: start")
        t0 = time.perf_counter()
        frame = TRACKS[track](context)
        outcome.track_seconds[track] = round(time.perf_counter() - t0, 3)
        outcome.frames[track] = frame
        results.write_track(out_dir, track, frame)
        results.write_summary(out_dir, cfg.to_dict(), outcome.frames, outcome.skipped, outcome.track_seconds, records)
        progress(f"track {track}: {len(frame)} rows in {outcome.track_seconds[track]:.1f}s")
    progress("report: plots and report.html")
    render_report(out_dir)
    outcome.total_seconds = time.perf_counter() - start
    return outcome


def conversion_advice(frame: pd.DataFrame) -> list[str]:
    """One line per format: Track 4's median overhead and the seed's interpretation of its level."""
    if frame is None or frame.empty or "overhead_pct" not in frame:
        return []
    lines = []
    keys = [k for k in ("image_size", "format_label", "loader") if k in frame]
    for key, group in frame.groupby(keys, sort=False):
        pct = float(group["overhead_pct"].median())
        level = "low" if pct < 10 else "moderate" if pct <= 30 else "high"
        label = " / ".join(str(k) for k in (key if isinstance(key, tuple) else (key,)))
        lines.append(f"  {label}: conversion overhead {pct:.1f}% ({level}) - {OVERHEAD_ADVICE[level]}")
    return lines
