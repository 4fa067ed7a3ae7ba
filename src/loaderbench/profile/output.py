"""What ``loaderbench profile`` leaves behind, every file written atomically:

- ``profile_stages.parquet`` — loop x scope x stage: per-sample ms, share, Amdahl ceiling (:func:`stages_table`);
- ``profile_ab.parquet`` — the A/B experiments, predicted vs observed (:func:`ab_table`);
- ``profile_au.parquet`` — accelerator utilisation per loader setting and for cached batches (:func:`au_table`);
- ``plots/profile.png``; ``profile_summary.json`` — options, data, decoders, AU, recommendations, environment.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.profile.analysis import ab_table, au_table, recommendations, stages_table, times
from loaderbench.profile.plots import plot_profile
from loaderbench.profile.records import ProfileRun
from loaderbench.results import (
    PAGE_CACHE_NOTE,
    collect_environment,
    format_number,
    write_json,
    write_track,
)

STAGES, AB, AU = "profile_stages", "profile_ab", "profile_au"
SUMMARY = "profile_summary.json"
#: stated tolerance: with num_workers=0 the named stages must explain at least this part of the measured step time
COVERAGE_TOLERANCE = 0.10


@dataclass
class ProfileResults:
    """The tables, recommendations and files of one profile."""

    out_dir: Path
    stages: pd.DataFrame
    ab: pd.DataFrame
    au: pd.DataFrame
    recommendations: list[str]
    summary: dict[str, Any]
    files: list[Path]
    seconds: float


def _summary(run: ProfileRun, stages: pd.DataFrame, au: pd.DataFrame, lines: list[str]) -> dict[str, Any]:
    environment = collect_environment()
    environment["versions"].update({f"decoder:{k}": v["library"] for k, v in run.decoders.items()})
    serial = stages[(stages["mode"] == "serial") & ~stages["cached"].astype(bool)]
    coverage = float(serial["coverage_min"].min()) if not serial.empty else math.nan
    best = au[~au["cached"].astype(bool)].sort_values("au_pct", ascending=False).iloc[0]
    cached = au[au["cached"].astype(bool)].iloc[0]
    data = run.data
    return {
        "created": _dt.datetime.now(_dt.UTC).astimezone().isoformat(timespec="seconds"),
        "config": run.options.as_dict(),
        "data": {
            "root": str(data.root),
            "spec": data.spec.__dict__,
            "image_mb": data.image_bytes / 2**20,
            "map_mb": data.map_bytes / 2**20,
            "generate_s": data.generate_s,
            "page_cache": PAGE_CACHE_NOTE,
        },
        "decoders": run.decoders,
        "loops": {role: run.loops[role].spec.__dict__ | {"seconds": run.loops[role].seconds} for role in run.loops},
        "coverage": {
            "min_serial": coverage,
            "tolerance": COVERAGE_TOLERANCE,
            "statement": "with num_workers=0 the named stages explain at least "
            f"{(1 - COVERAGE_TOLERANCE) * 100:.0f} % of the measured step time; the rest is loader_overhead + other",
            "within_tolerance": bool(coverage >= 1 - COVERAGE_TOLERANCE),
        },
        "au": {
            "compute_ms": run.options.compute_ms,
            "threshold_pct": run.options.au_threshold_pct,
            "best_config": best["config"],
            "best_au_pct": best["au_pct"],
            "meets_threshold": bool(best["meets_threshold"]),
            "headroom_au_pct": cached["au_pct"],
            "headroom_samples_per_s": cached["samples_per_s"],
            "definition": "AU = total compute time / wall time, excluding the first step (DLIO / MLPerf Storage)",
        },
        "notes": run.notes,
        "recommendations": lines,
        "usable_cores": run.usable_cores,
        "seconds": run.seconds,
        "environment": environment,
    }


def write_outputs(
    run: ProfileRun, out_dir: str | Path, progress: Callable[[str], None] | None = None
) -> ProfileResults:
    """Build the tables and recommendations of ``run`` and write every file into ``out_dir``."""
    start = time.perf_counter()
    out = Path(out_dir)
    stages, ab, au = stages_table(run), ab_table(run), au_table(run)
    lines = recommendations(run, stages, ab, au)
    files = [write_track(out, STAGES, stages), write_track(out, AB, ab), write_track(out, AU, au)]
    options = run.options
    subtitle = (
        f"{options.n_images} {options.image_format.upper()} {options.height}x{options.width} -> "
        f"{options.resize}², batch {options.batch_size}, {options.model} model, {options.repeats} x "
        f"{options.steps} steps, {run.usable_cores} usable cores"
    )
    files.append(plot_profile(out, stages, ab, au, subtitle))
    summary = _summary(run, stages, au, lines)
    files.append(write_json(out / SUMMARY, summary))
    if progress is not None:
        progress(f"[profile] wrote {len(files)} files to {out} in {time.perf_counter() - start:.1f}s")
    return ProfileResults(out, stages, ab, au, lines, summary, files, run.seconds + time.perf_counter() - start)


def _cell(value: Any) -> str:
    return format_number(value) if not isinstance(value, str) else value


def terminal_text(results: ProfileResults) -> str:
    """The stage shares of the serial baseline and with workers, the A/B table, AU, and the recommendations."""
    parts = []
    stages = results.stages
    for role in ("base", "par_base"):
        table = stages[stages["role"] == role]
        if table.empty:
            continue
        parts.append(f"Stage shares: {table['config'].iloc[0]} ({table['compute'].iloc[0]}, {table['mode'].iloc[0]})")
        parts.append(f"  {'stage':<16}{'scope':<8}{'ms/sample':>10}{'ms/batch':>10}{'share':>8}{'ceiling':>9}")
        for _, row in table.iterrows():
            parts.append(
                f"  {row['stage']:<16}{row['scope']:<8}{_cell(row['per_sample_mean_ms']):>10}"
                f"{_cell(row['per_batch_ms']):>10}{row['share'] * 100:>7.1f}%{times(row['amdahl_ceiling']):>9}"
            )
    parts.append("A/B (speedup over the baseline; predicted by Amdahl from this run's shares)")
    parts.append(
        f"  {'experiment':<10}{'variant':<16}{'w':>3}{'samples/s':>11}{'predicted':>11}{'observed':>10}{'ceiling':>9}"
    )
    for _, row in results.ab.iterrows():
        if not row["available"]:
            parts.append(f"  {row['experiment']:<10}{row['variant']:<16}  not measured: {row['reason']}")
            continue
        parts.append(
            f"  {row['experiment']:<10}{row['variant']:<16}{int(row['num_workers']):>3}"
            f"{_cell(row['samples_per_s']):>11}{times(row['predicted_speedup']):>11}"
            f"{times(row['observed_speedup']):>10}{times(row['amdahl_ceiling']):>9}"
        )
    parts.append("Recommendations")
    parts += [f"  - {line}" for line in results.recommendations]
    return "\n".join(parts)
