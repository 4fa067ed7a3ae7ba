"""Fixed-width text tables for the terminal: the run summary and ``loaderbench compare``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.report.verdict import verdict_lines
from loaderbench.results import (
    TRACKS,
    describe_keys,
    format_number,
    headline_metrics,
    medians,
    native_comparison_lines,
    param_text,
    peer_label,
    peer_verdict,
    read_summary,
    read_track,
    track_names,
)
from loaderbench.sections import terminal_parts
from loaderbench.seed_figures import is_seed_run, seed_comparison_lines


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], numeric: Sequence[bool] = ()) -> str:
    """Columns padded to their widest cell; numeric columns right-aligned; a dashed rule under the header."""
    numeric = list(numeric) + [False] * (len(headers) - len(numeric))
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(cells, widths, numeric, strict=True))

    out = [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in rows]
    return "\n".join(s.rstrip() for s in out)


def track_table(track: str, df: pd.DataFrame) -> str:
    """One track's medians across repeats: format, loader, varying parameters, headline metrics."""
    table = medians(track, df)
    varying, constant = describe_keys(track, table)
    metrics = headline_metrics(track, df)
    headers = [*varying, *metrics]
    rows = [[param_text(r[k]) for k in varying] + [format_number(r[m]) for m in metrics] for _, r in table.iterrows()]
    repeats = sorted({int(v) for v in table["repeats"]}) if "repeats" in table.columns else []
    title = f"== {TRACKS[track].title if track in TRACKS else track} [{track}] =="
    notes = [f"medians across {'/'.join(map(str, repeats))} repeats"] if repeats else []
    if constant:
        notes.append(", ".join(f"{k}={v}" for k, v in constant.items()))
    body = text_table(headers, rows, [False] * len(varying) + [True] * len(metrics))
    native = [f"   {line}" for line in native_comparison_lines(track, table)]
    return "\n".join([title, *(f"   {n}" for n in notes), body, *native])


def peers_table(df: pd.DataFrame) -> str:
    """The peer table: per dataset, every peer x variant with its throughput, start-up, memory and code size, the
    fastest marked with ``*``; then the verdict lines (native vs the strongest other, reasons for missing peers)."""
    table = medians("peers", df)
    headers = ["dataset", "peer / variant", "status", "samples/s", "first batch ms", "peak USS MB", "peak PSS MB",
               "user code lines", ""]
    rows = []
    for _, r in table.iterrows():
        lines = r.get("user_code_lines")
        dataset = f"{r['dataset']} (cold)" if r.get("page_cache") == "cold" else str(r["dataset"])
        rows.append([dataset, peer_label(r), str(r["status"]), format_number(r["samples_per_s"]),
                     format_number(r["first_batch_ms"]), format_number(r["peak_uss_mb"]),
                     format_number(r["peak_pss_mb"]), "-" if pd.isna(lines) else str(int(lines)),
                     "* fastest" if bool(r.get("fastest")) else ""])
    title = f"== {TRACKS['peers'].title} [peers] =="
    note = "   medians over timed epochs; peak memory of the whole process tree (workers included)"
    body = text_table(headers, rows, [False, False, False, True, True, True, True, True, False])
    return "\n".join([title, note, body, *(f"   {line}" for line in peer_verdict(table))])


def summary_table(out_dir: str | os.PathLike[str]) -> str:
    """The run at a glance: per track a compact table of headline medians, then the skipped formats."""
    out_dir = Path(out_dir)
    summary = read_summary(out_dir) or {}
    parts: list[str] = []
    for track in track_names(out_dir):
        df = read_track(out_dir, track)
        if df is None:
            continue
        if df.empty:
            parts.append(f"== {TRACKS[track].title if track in TRACKS else track} [{track}] ==\n   no rows recorded")
        else:
            parts.append(peers_table(df) if track == "peers" else track_table(track, df))
    parts += terminal_parts(out_dir)
    if is_seed_run(summary.get("config") or {}):
        seed_lines = seed_comparison_lines(read_track(out_dir, "getitem"), read_track(out_dir, "end_to_end"))
        if seed_lines:
            parts.append("\n".join(seed_lines))
    if not parts:
        parts.append(f"no results in {out_dir}")
    skipped: dict[str, Any] = summary.get("skipped_formats") or {}
    if skipped:
        parts.append("Skipped formats:\n" + "\n".join(f"  {name}: {reason}" for name, reason in skipped.items()))
    verdict = verdict_lines(out_dir)
    if verdict:
        parts.append("\n".join(verdict))
    report = out_dir / "report.html"
    if report.is_file():
        parts.append(f"Report: {report}")
    return "\n\n".join(parts) + "\n"


def _change(row: pd.Series) -> str:
    """``within spread`` when the runs' repeat ranges overlap, else whether B is better or worse."""
    ratio = row["ratio"]
    if ratio is None or pd.isna(ratio):
        return "-"
    if bool(row.get("within_spread", False)):
        return "within spread"
    return "better" if (ratio > 1) == bool(row["higher_is_better"]) else "worse"


def compare_table(df: pd.DataFrame) -> str:
    """``compare``'s result as text: per track, the configuration, metric, both medians and ratio b/a."""
    if df.empty:
        return "nothing to compare: no configuration appears in both runs\n"
    parts = []
    for track, part in df.groupby("track", sort=False):
        headers = ["format", "loader", "image_size", "params", "metric", "a", "b", "b/a", ""]
        rows = [
            [
                str(r["format"]),
                str(r["loader"]),
                str(r["image_size"]),
                str(r["params"]),
                str(r["metric"]),
                format_number(r["a"]),
                format_number(r["b"]),
                "-" if pd.isna(r["ratio"]) else f"{r['ratio']:.2f}",
                _change(r),
            ]
            for _, r in part.iterrows()
        ]
        title = f"== {TRACKS[track].title if track in TRACKS else track} [{track}]: run b / run a =="
        parts.append(title + "\n" + text_table(headers, rows, [False] * 5 + [True] * 3 + [False]))
    return "\n\n".join(parts) + "\n"
