"""The verdict: what a user came to the report to learn, per dataset, before any plot or table.

For each dataset: the fastest format x loader of each track with its figure, how that compares with the seed's
approach (its naive / pre-loaded / per-item decode loaders) on the same settings and with the strongest peer (the
``peers`` track), how much of the end-to-end step waits for data, the memory the fastest loader took, and what to
do about it; then one line with the machine, the versions and the page-cache state. ``verdict_blocks`` gives them per
dataset (``report.html`` opens with them), ``verdict_lines`` as text (the terminal prints them last).
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.results import (
    NATIVE,
    data_wait_level,
    format_number,
    loader_label,
    medians,
    peer_label,
    read_summary,
    read_track,
)

#: terminal width of the verdict's wrapped lines
WIDTH = 116
#: the seed's own loading approaches (everything else is loaderbench's or a peer's)
SEED_LOADERS = ("naive", "preloaded", "decode")


def _name(row: pd.Series, *keys: str) -> str:
    label = row.get("format_label")
    label = row.get("format") if label is None or pd.isna(label) else label
    settings = [f"{k.replace('_', ' ')} {format_number(row[k])}" for k in keys if k in row and not pd.isna(row[k])]
    return f"{label} / {loader_label(row.get('loader'), row.get('num_threads'))}" + (
        f" ({', '.join(settings)})" if settings else "")


def _best(table: pd.DataFrame, metric: str, higher: bool) -> pd.Series | None:
    values = table[metric].dropna() if metric in table else pd.Series(dtype=float)
    if values.empty:
        return None
    return table.loc[values.idxmax() if higher else values.idxmin()]


def _same_settings(table: pd.DataFrame, row: pd.Series, keys: tuple[str, ...]) -> pd.DataFrame:
    mask = pd.Series(True, index=table.index)
    for key in keys:
        if key in table and key in row and not pd.isna(row[key]):
            mask &= table[key] == row[key]
    return table[mask]


def _seed_ratio(table: pd.DataFrame, best: pd.Series, metric: str, higher: bool, keys: tuple[str, ...]) -> str:
    """``, 3.2x the seed's best (pre-loaded on Lance)`` on the same settings, or ``""``."""
    if best["loader"] in SEED_LOADERS:
        return " - the seed's own approach"
    seed = _same_settings(table[table["loader"].isin(SEED_LOADERS)], best, keys)
    rival = _best(seed, metric, higher)
    if rival is None:
        return ""
    ratio = best[metric] / rival[metric] if higher else rival[metric] / best[metric]
    return f", {ratio:.2f}x the seed's best on the same settings ({_name(rival)})"


def _getitem(table: pd.DataFrame) -> list[str]:
    best = _best(table, "p50_ms", higher=False)
    if best is None:
        return []
    keys = ("access", "transform")
    return [f"Track 1, one __getitem__: fastest {_name(best, *keys)} at {format_number(best['p50_ms'])} ms p50"
            + _seed_ratio(table, best, "p50_ms", False, keys) + "."]


def _dataloader(table: pd.DataFrame) -> tuple[list[str], pd.Series | None]:
    best = _best(table, "samples_per_s", higher=True)
    if best is None:
        return [], None
    keys = ("batch_size",)
    line = (f"Track 2, batches: fastest {_name(best, 'batch_size', 'num_workers')} at "
            f"{format_number(best['samples_per_s'])} samples/s" + _seed_ratio(table, best, "samples_per_s", True, keys))
    if "peak_pss_mb" in best and not pd.isna(best["peak_pss_mb"]):
        line += f"; peak memory {format_number(best['peak_pss_mb'])} MiB PSS (workers included)"
    return [line + "."], best


def _peers(peers: pd.DataFrame) -> list[str]:
    lines = []
    states = peers["page_cache"] if "page_cache" in peers.columns else pd.Series("warm", index=peers.index)
    for state in dict.fromkeys(states):  # warm and cold are compared apart: cold runs only the streaming loaders
        part = peers[states == state]
        ran = part[(part["status"] == "ok") & part["samples_per_s"].notna()]
        native, others = ran[ran["loader"] == NATIVE], ran[ran["loader"] != NATIVE]
        if native.empty or others.empty:
            continue
        mine, rival = native.loc[native["samples_per_s"].idxmax()], others.loc[others["samples_per_s"].idxmax()]
        cache = ", page cache cold" if state == "cold" else ""
        lines.append(f"Peers (batch {format_number(mine['batch_size'])}{cache}): native "
                     f"{format_number(mine['samples_per_s'])} samples/s is "
                     f"{mine['samples_per_s'] / rival['samples_per_s']:.2f}x the strongest other loader, "
                     f"{peer_label(rival)} ({format_number(rival['samples_per_s'])} samples/s).")
    return lines


def _end_to_end(table: pd.DataFrame) -> tuple[list[str], float | None]:
    best = _best(table, "images_per_s", higher=True)
    if best is None:
        return [], None
    fraction = best.get("data_wait_fraction")
    level = data_wait_level(fraction)
    percent = "n/a" if fraction is None or pd.isna(fraction) else f"{fraction * 100:.0f} %"
    line = (f"Track 3, model loop: fastest {_name(best, 'batch_size', 'num_workers')} at "
            f"{format_number(best['images_per_s'])} images/s; it waits for data {percent} of the step ({level})")
    seed = table[table["loader"].isin(SEED_LOADERS)]
    slow = _best(seed, "images_per_s", higher=True)
    if slow is not None and slow is not best and not pd.isna(slow.get("data_wait_fraction")):
        line += f", the seed's best {slow['data_wait_fraction'] * 100:.0f} % ({_name(slow)})"
    return [line + "."], None if fraction is None or pd.isna(fraction) else float(fraction)


def _advice(best_loader: pd.Series | None, wait: float | None) -> list[str]:
    if best_loader is None:
        return []
    use = f"Use {_name(best_loader, 'batch_size', 'num_workers')}"
    if wait is None:
        return [use + "."]
    if wait < 0.3:
        return [use + "; the model loop is compute-bound with it: a faster loader will not shorten the step much, "
                "a larger model or batch will show where the limit moves."]
    return [use + "; the step still waits for data: more loader threads, data pre-loaded into memory or a faster "
            "format are where the time is (loaderbench profile breaks the step down)."]


def _machine(summary: dict[str, Any]) -> str:
    env = summary.get("environment") or {}
    hw, versions = env.get("hardware") or {}, env.get("versions") or {}
    libraries = ", ".join(f"{k} {versions[k]}" for k in ("python", "torch", "pyarrow", "numpy") if versions.get(k))
    memory = f", {hw['memory_total_gb']} GB" if hw.get("memory_total_gb") else ""
    return (f"Machine: {hw.get('cpu_model', '?')}, {hw.get('usable_cores', '?')} usable cores{memory}, "
            f"{hw.get('os', '?')}; {libraries}; {env.get('page_cache', 'page cache state not recorded')}.")


def verdict_blocks(out_dir: str | os.PathLike[str]) -> tuple[list[tuple[str, list[str]]], str]:
    """``([(dataset, lines), ...], machine line)`` for the results in ``out_dir`` (no blocks when none)."""
    out_dir = Path(out_dir)
    tables = {}
    for track in ("getitem", "dataloader", "end_to_end", "peers"):
        df = read_track(out_dir, track)
        if df is not None and not df.empty and "dataset" in df:
            tables[track] = medians(track, df)
    datasets = list(dict.fromkeys(d for t in tables.values() for d in t["dataset"].dropna()))
    blocks = []
    for dataset in datasets:
        part = {track: t[t["dataset"] == dataset] for track, t in tables.items()}
        lines = _getitem(part["getitem"]) if "getitem" in part else []
        best_loader = None
        if "dataloader" in part:
            found, best_loader = _dataloader(part["dataloader"])
            lines += found
        if "peers" in part:
            lines += _peers(part["peers"])
        wait = None
        if "end_to_end" in part:
            found, wait = _end_to_end(part["end_to_end"])
            lines += found
        lines += _advice(best_loader, wait)
        if lines:
            blocks.append((str(dataset), lines))
    return blocks, _machine(read_summary(out_dir) or {})


def verdict_lines(out_dir: str | os.PathLike[str]) -> list[str]:
    """The verdict as text: a title, each dataset's lines, the machine line (empty when there are no results)."""
    blocks, machine = verdict_blocks(out_dir)
    if not blocks:
        return []
    lines = ["== Verdict =="]
    for dataset, found in blocks:
        lines.append(f"{dataset}:")
        for line in found:
            lines += textwrap.wrap(line, WIDTH, initial_indent="   - ", subsequent_indent="     ")
    return [*lines, *textwrap.wrap(machine, WIDTH)]
