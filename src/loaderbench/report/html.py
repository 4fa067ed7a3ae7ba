"""``report.html``: one self-contained page (inline CSS and JS, SVG figures inlined, PNGs as base64, no external
assets) with the verdict, the run's environment, the skipped formats, and per track its figures (one per question,
from ``plots/<track>.json``), what they say, and a collapsed, sortable table of medians with the best row marked.

Other parts of loaderbench add their own sections through ``render_html(out_dir, extra_sections=[(title, html)])``;
they are placed between the tracks and the "how to read" section, inside the ``EXTRA SECTIONS`` comments.
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
from collections.abc import Callable, Iterable
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loaderbench.report.verdict import verdict_blocks
from loaderbench.results import (
    NATIVE_COMPARISON,
    PAGE_CACHE_NOTE,
    TRACKS,
    atomic_write_bytes,
    data_wait_level,
    describe_keys,
    format_number,
    headline_metrics,
    loader_label,
    medians,
    native_comparison_lines,
    overhead_level,
    param_text,
    peer_verdict,
    read_summary,
    read_track,
    split_columns,
    track_names,
)

REPORT_NAME = "report.html"

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #222; }
main { max-width: 1400px; margin: 0 auto; padding: 1rem 2rem 3rem; }
header { background: #f4f6f8; border-bottom: 1px solid #dde; padding: 1rem 2rem; }
h1 { margin: 0 0 .3rem; font-size: 1.6rem; } h2 { border-bottom: 2px solid #dde; padding-bottom: .2rem; }
.meta { color: #555; font-size: .9rem; } .meta span { margin-right: 1.2rem; }
table { border-collapse: collapse; font-size: .82rem; margin: .5rem 0 1rem; }
th, td { border: 1px solid #dde; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f4f6f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.spread { display: block; color: #888; font-size: .72rem; }
.scroll { overflow-x: auto; max-width: 100%; }
img.plot, svg.plot { display: block; max-width: 100%; height: auto; }
img.plot { border: 1px solid #eee; }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 540px), 1fr)); gap: 1rem 1.2rem;
  margin: .6rem 0 1rem; }
figure.plot { margin: 0; min-width: 0; } figure.plot.wide { grid-column: 1 / -1; }
figcaption { color: #444; font-size: .85rem; margin-top: .3rem; max-width: 75rem; }
details.medians { margin: .4rem 0 1rem; } details.medians > summary, details.lines > summary { cursor: pointer; }
details.medians > summary { font-weight: 600; }
table.sortable th { cursor: pointer; user-select: none; white-space: nowrap; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: .7em; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: .7em; }
tr.best td { background: #eaf6ea; } .best-mark { color: #2e7d32; font-weight: 700; margin-right: .25rem; }
.meta, .note, li, td, figcaption { overflow-wrap: anywhere; }
.warn { background: #fff4e5; border-left: 4px solid #f0a030; padding: .5rem 1rem; }
.ok { background: #eef8ee; border-left: 4px solid #55a868; padding: .5rem 1rem; }
.level-good { color: #2e7d32; font-weight: 600; } .level-mid { color: #b26a00; font-weight: 600; }
.level-bad { color: #c62828; font-weight: 600; }
details pre { background: #f7f7f7; padding: .5rem; overflow-x: auto; font-size: .78rem; }
.note { color: #555; font-size: .88rem; }
"""

_LEVEL_CLASS = {
    "not a bottleneck": "level-good",
    "negligible": "level-good",
    "significant": "level-mid",
    "measurable": "level-mid",
    "bottleneck": "level-bad",
}
# Track 4 "significant" is the worst level there; Track 3 "significant" is the middle one.
_OVERHEAD_CLASS = {"negligible": "level-good", "measurable": "level-mid", "significant": "level-bad"}


def escape_html(value: Any) -> str:
    """``value`` as text safe inside HTML (attributes included)."""
    return escape(str(value), quote=True)


_e = escape_html


def html_table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A scrollable table: ``header`` texts are escaped here; ``rows`` hold finished ``<td>`` cells."""
    head = "".join(f"<th>{escape_html(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f'<div class="scroll"><table><tr>{head}</tr>{body}</table></div>'


def embedded_png(png: Path, alt: str, missing: str) -> str:
    """``png`` inline as base64 (the report stays one file), or the ``missing`` note when it was not rendered."""
    if not png.is_file():
        return f'<p class="note">{escape_html(missing)}</p>'
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f'<img class="plot" alt="{escape_html(alt)}" src="data:image/png;base64,{data}">'


# What an SVG of ours never holds; one that does (a results directory from elsewhere) is not inlined.
_UNSAFE_SVG = re.compile(r"<\s*(script|foreignObject|iframe|object|embed)\b|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


def inline_svg(svg: Path, alt: str, missing: str) -> str:
    """``svg`` inlined into the page (text stays text, the report stays one file), without its XML prologue and
    metadata, labelled ``alt``; the ``missing`` note when it was not rendered or holds active content."""
    try:
        text = svg.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return f'<p class="note">{escape_html(missing)}</p>'
    start = text.find("<svg")
    if start < 0 or _UNSAFE_SVG.search(text):
        return f'<p class="note">{escape_html(missing)}</p>'
    body = re.sub(r"<metadata>.*?</metadata>", "", text[start:], flags=re.DOTALL)
    label = escape_html(alt)
    return body.replace("<svg", f'<svg class="plot" role="img" aria-label="{label}"', 1)


def _level(text: str, css: str | None = None) -> str:
    return f'<span class="{css or _LEVEL_CLASS.get(text, "")}">{_e(text)}</span>'


def _row_name(row: pd.Series, varying: list[str]) -> str:
    """'Parquet (pyarrow) / naive [100x100, access=random]' or 'Parquet (pyarrow) / native ×2 threads [...]' from a
    medians row; parameters that do not apply to the row (empty) are left out."""
    label = row.get("format_label")
    label = row.get("format") if label is None or pd.isna(label) else label
    shown = [k for k in varying if k not in ("format", "loader", "num_threads") and not pd.isna(row[k])]
    extras = [param_text(row[k]) if k == "image_size" else f"{k}={param_text(row[k])}" for k in shown]
    loader = loader_label(row.get("loader"), row.get("num_threads"))
    return f"{label} / {loader}" + (f" [{', '.join(extras)}]" if extras else "")


# ----------------------------------------------------------------------------------------------- pieces


def _header(summary: dict[str, Any], out_dir: Path) -> str:
    env = summary.get("environment") or {}
    versions = env.get("versions") or {}
    hw = env.get("hardware") or {}
    threads = env.get("threads") or {}
    memory = hw.get("memory_total_gb")
    cores = f"{hw.get('usable_cores', '?')} usable / {hw.get('logical_cores', '?')} logical"
    if hw.get("physical_cores"):
        cores += f" / {hw['physical_cores']} physical"
    facts = [
        ("created", summary.get("created", "unknown")),
        ("loaderbench", summary.get("loaderbench_version", versions.get("loaderbench", "?"))),
        ("results", out_dir.resolve()),
        ("CPU", hw.get("cpu_model", "unknown")),
        ("cores", cores),
        ("memory", f"{memory} GiB" if memory else "unknown"),
        ("OS", f"{hw.get('os', '?')}, kernel {hw.get('kernel', '?')}"),
        ("torch threads", threads.get("torch_num_threads", "?")),
    ]
    meta = "".join(f"<span><b>{_e(k)}</b> {_e(v)}</span>" for k, v in facts)
    version_text = ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None)
    missing = [k for k, v in versions.items() if v is None]
    if missing:
        version_text += f" (not installed: {', '.join(missing)})"
    core = env.get("native_core")
    core_text = ""
    if isinstance(core, dict):
        details = ", ".join(f"{k}={v}" for k, v in core.items() if k != "available")
        state = "built" if core.get("available") else "not available"
        core_text = f"<br><b>native core</b> {state}" + (f" ({_e(details)})" if details else "")
    return (
        "<header><h1>loaderbench report</h1>"
        f'<div class="meta">{meta}</div>'
        f'<div class="meta"><b>versions</b> {_e(version_text)}{core_text}<br>'
        f"<b>page cache</b> {_e(env.get('page_cache', PAGE_CACHE_NOTE))}</div></header>"
    )


def _skipped_section(summary: dict[str, Any]) -> str:
    skipped = summary.get("skipped_formats") or {}
    if not skipped:
        body = '<p class="ok">No format was skipped: every requested format was measured.</p>'
    else:
        rows = "".join(f"<tr><td>{_e(name)}</td><td>{_e(reason)}</td></tr>" for name, reason in skipped.items())
        body = (
            f'<div class="warn"><p>{len(skipped)} format(s) were <b>not measured</b> in this run:</p>'
            f"<table><tr><th>format</th><th>reason</th></tr>{rows}</table></div>"
        )
    return f'<section id="skipped-formats"><h2>Skipped formats</h2>{body}</section>'


def _verdict_section(out_dir: Path) -> str:
    """The verdict (``report.verdict``): per dataset what to use and why, then the machine; first on the page."""
    blocks, machine = verdict_blocks(out_dir)
    if not blocks:
        return ""
    parts = ['<section id="verdict"><h2>Verdict</h2>']
    for dataset, lines in blocks:
        items = "".join(f"<li>{_e(line)}</li>" for line in lines)
        parts.append(f"<h3>{_e(dataset)}</h3><ul>{items}</ul>")
    parts.append(f'<p class="note">{_e(machine)}</p></section>')
    return "".join(parts)


def _run_section(summary: dict[str, Any]) -> str:
    parts = []
    timings = summary.get("track_seconds") or {}
    if timings:
        rows = "".join(f"<tr><td>{_e(t)}</td><td class='num'>{format_number(s)}</td></tr>" for t, s in timings.items())
        parts.append(f"<table><tr><th>track</th><th>seconds</th></tr>{rows}</table>")
    datasets = summary.get("datasets") or []
    if datasets:
        frame = pd.DataFrame(datasets)
        parts.append('<div class="scroll">' + frame.to_html(index=False, border=0, na_rep="-", escape=True) + "</div>")
    blocks = [
        ("configuration", summary.get("config")),
        ("environment (versions, hardware, threads)", summary.get("environment")),
    ]
    for title, value in blocks:
        if value is not None:
            text = json.dumps(value, indent=2, default=str)
            parts.append(f"<details><summary>{_e(title)}</summary><pre>{_e(text)}</pre></details>")
    if not parts:
        parts.append('<p class="note">No summary.json in this directory: configuration and environment unknown.</p>')
    return '<section id="run"><h2>Run</h2>' + "".join(parts) + "</section>"


def _info_text(value: Any) -> str:
    return format_number(value) if isinstance(value, (bool, np.bool_)) else param_text(value)


# Per track, the metric whose best row is marked in the medians table and whether higher is better: the metric the
# native loader is compared on (the peers: their throughput).
BEST_METRIC = {**NATIVE_COMPARISON, "peers": ("samples_per_s", True)}


def _sort_value(value: Any) -> str:
    """What a sortable cell sorts by (``data-v``): the number itself (not its rounded text), or the text."""
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return repr(number) if math.isfinite(number) else ""
    text = param_text(value)
    return "" if text == "-" else text


def best_rows(track: str, table: pd.DataFrame) -> tuple[set[Any], str]:
    """The index of the best row of each image size (dataset where there is no size) on the track's
    ``BEST_METRIC``, and a sentence saying what "best" means; empty when the track has none."""
    if track not in BEST_METRIC or table.empty:
        return set(), ""
    metric, higher = BEST_METRIC[track]
    if metric not in table.columns:
        return set(), ""
    by = next((c for c in ("image_size", "dataset") if c in table.columns and table[c].notna().all()), None)
    groups = [part for _, part in table.groupby(by, sort=False)] if by else [table]
    best = set()
    for part in groups:
        values = pd.to_numeric(part[metric], errors="coerce").dropna()
        if track == "peers" and "status" in part.columns:
            values = values[part.loc[values.index, "status"] == "ok"]
        if not values.empty:
            best.add(values.idxmax() if higher else values.idxmin())
    per = f" per {by.replace('_', ' ')}" if by and table[by].nunique() > 1 else ""
    return best, f"★ best {metric} ({'highest' if higher else 'lowest'}){per}"


def medians_table_html(track: str, df: pd.DataFrame) -> str:
    """Medians across repeats, one row per configuration, collapsed under a summary line; headline metrics also
    show their min-max; sortable by clicking a column header; the best row (``best_rows``) marked."""
    table = medians(track, df)
    varying, constant = describe_keys(track, table)
    _, info, metrics = split_columns(track, df)
    headline = set(headline_metrics(track, df))
    info = [c for c in info if c not in ("format_label", "format_kind", "height", "width", "depth", "n_images")]
    info = [c for c in info if table[c].nunique(dropna=False) > 1 or c in ("overhead_level",) or "shares" in c]
    ordered = [m for m in headline_metrics(track, df)] + [m for m in metrics if m not in headline]
    head = ["format" if k == "format" else k for k in varying] + ["repeats", *info, *ordered]
    best, best_text = best_rows(track, table)
    html_rows = []
    best_mark = f'<span class="best-mark" title="{_e(best_text)}">★</span>'
    for index, row in table.iterrows():
        cells = []
        for position, key in enumerate(varying):
            value = row.get("format_label") if key == "format" and "format_label" in table.columns else row[key]
            mark = best_mark if position == 0 and index in best else ""
            cells.append(f'<td data-v="{_e(_sort_value(value))}">{mark}{_e(param_text(value))}</td>')
        repeats = row["repeats"]
        cells.append(f'<td class="num" data-v="{_e(_sort_value(repeats))}">{_e(param_text(repeats))}</td>')
        cells += [f'<td data-v="{_e(_sort_value(row[c]))}">{_e(_info_text(row[c]))}</td>' for c in info]
        for metric in ordered:
            text = _e(format_number(row[metric]))
            if metric in headline and row[f"{metric}_min"] != row[f"{metric}_max"]:
                low, high = format_number(row[f"{metric}_min"]), format_number(row[f"{metric}_max"])
                text += f"<span class='spread'>{_e(low)} – {_e(high)}</span>"
            cells.append(f'<td class="num" data-v="{_e(_sort_value(row[metric]))}">{text}</td>')
        css = ' class="best"' if index in best else ""
        html_rows.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    header = "".join(f'<th tabindex="0" title="sort by {_e(h)}">{_e(h)}</th>' for h in head)
    notes = []
    if constant:
        notes.append("Same for every row: " + ", ".join(f"{k}={v}" for k, v in constant.items()) + ".")
    notes.append("Click a column header to sort." + (f" {best_text}." if best_text else ""))
    note = '<p class="note">' + _e(" ".join(notes)) + "</p>"
    summary = f"Medians across repeats: {len(table)} configuration{'s' if len(table) != 1 else ''}"
    return (
        f'<details class="medians"><summary>{_e(summary)}</summary>{note}<div class="scroll">'
        f'<table class="sortable"><thead><tr>{header}</tr></thead><tbody>{"".join(html_rows)}</tbody></table>'
        "</div></details>"
    )


# ----------------------------------------------------------------------------------------------- interpretation


def _best_by(table: pd.DataFrame, metric: str, higher: bool) -> pd.Series | None:
    values = table[metric].dropna()
    if values.empty:
        return None
    return table.loc[values.idxmax() if higher else values.idxmin()]


def _level_counts(levels: list[str], order: tuple[str, ...]) -> str:
    counts = pd.Series(levels).value_counts()
    return ", ".join(f"{int(counts[name])} {name}" for name in order if name in counts.index)


def _interpret_getitem(table: pd.DataFrame, varying: list[str]) -> list[str]:
    lines = []
    sizes = table["image_size"].unique() if "image_size" in table.columns else [None]
    for size in sizes:
        part = table if size is None else table[table["image_size"] == size]
        if "transform" in part.columns and (part["transform"] == "none").any():
            part = part[part["transform"] == "none"]
        fast = _best_by(part, "p50_ms", higher=False)
        slow = _best_by(part, "p50_ms", higher=True)
        if fast is None or slow is None:
            continue
        ratio = slow["p50_ms"] / fast["p50_ms"] if fast["p50_ms"] else float("nan")
        lines.append(
            f"{size or 'all sizes'}: fastest {_row_name(fast, varying)} at {format_number(fast['p50_ms'])} ms p50; "
            f"slowest {_row_name(slow, varying)} at {format_number(slow['p50_ms'])} ms ({ratio:.1f}x slower)."
        )
    return lines + native_comparison_lines("getitem", table)


def _interpret_dataloader(table: pd.DataFrame, varying: list[str]) -> list[str]:
    lines = []
    best = _best_by(table, "samples_per_s", higher=True)
    if best is not None:
        rate = format_number(best["samples_per_s"])
        lines.append(f"Highest throughput: {_row_name(best, varying)} at {rate} samples/s.")
    torch_rows = table[table["loader"] != "native"] if "loader" in table.columns else table
    if {"num_workers", "loader", "format"} <= set(table.columns) and torch_rows["num_workers"].nunique() > 1:
        low, high = torch_rows["num_workers"].min(), torch_rows["num_workers"].max()
        others = [k for k in varying if k not in ("num_workers", "prefetch_factor", "num_threads")]
        a = torch_rows[torch_rows["num_workers"] == low].set_index(others)["samples_per_s"]
        b = torch_rows[torch_rows["num_workers"] == high].set_index(others)["samples_per_s"]
        gain = (b / a).dropna()
        if not gain.empty:
            by_loader = gain.groupby(level="loader").median()
            text = ", ".join(f"{loader} {value:.2f}x" for loader, value in by_loader.items())
            lines.append(
                f"Throughput with num_workers={param_text(high)} relative to num_workers={param_text(low)} "
                f"(median over the other settings; below 1x the workers cost more than they bring): {text}."
            )
    if "first_batch_ms" in table.columns:
        slowest = _best_by(table, "first_batch_ms", higher=True)
        if slowest is not None:
            lines.append(
                f"Slowest start-up (first batch): {_row_name(slowest, varying)} at "
                f"{format_number(slowest['first_batch_ms'])} ms."
            )
    return lines + native_comparison_lines("dataloader", table)


def _interpret_end_to_end(table: pd.DataFrame, varying: list[str]) -> tuple[list[str], list[str]]:
    levels = [data_wait_level(v) for v in table["data_wait_fraction"]]
    counts = [_e("Configurations: " + _level_counts(levels, ("bottleneck", "significant", "not a bottleneck")) + ".")]
    lines = []
    for _, row in table.iterrows():
        fraction = row.get("data_wait_fraction")
        level = data_wait_level(fraction)
        percent = "n/a" if pd.isna(fraction) else f"{fraction * 100:.0f} %"
        lines.append(f"{_e(_row_name(row, varying))}: data wait {_e(percent)} of the step, {_level(level)}.")
    return counts + [_e(line) for line in native_comparison_lines("end_to_end", table)], lines


def _interpret_conversion(table: pd.DataFrame, varying: list[str]) -> tuple[list[str], list[str]]:
    levels = [overhead_level(v) for v in table["overhead_pct"]]
    counts = [_e("Configurations: " + _level_counts(levels, ("significant", "measurable", "negligible")) + ".")]
    lines = []
    for _, row in table.iterrows():
        pct = row.get("overhead_pct")
        level = overhead_level(pct)
        memory = []
        if "from_numpy_shares_memory" in row.index and not pd.isna(row["from_numpy_shares_memory"]):
            source = "view shares the Arrow buffer" if row.get("loader") == "native" else "from_numpy shares memory"
            memory.append(f"{source}: {format_number(bool(row['from_numpy_shares_memory']))}")
        if "converted_shares_memory" in row.index and not pd.isna(row["converted_shares_memory"]):
            memory.append(f"converted tensor shares memory: {format_number(bool(row['converted_shares_memory']))}")
        pct_text = "n/a" if pd.isna(pct) else f"{pct:.1f} %"
        lines.append(
            f"{_e(_row_name(row, varying))}: conversion overhead {_e(pct_text)}, "
            f"{_level(level, _OVERHEAD_CLASS.get(level))}" + (f" ({_e('; '.join(memory))})" if memory else "") + "."
        )
    return counts + [_e(line) for line in native_comparison_lines("conversion", table)], lines


_INTRO = {
    "getitem": "Time of one <code>Dataset.__getitem__</code> call, per sample, after warm-up.",
    "dataloader": (
        "Time of <code>next()</code> on the DataLoader iterator; the first batch (worker start-up) is reported "
        "separately. Peak memory is the unique set size of the main process and its workers. Native rows time "
        "<code>next()</code> on the native loader itself (in-process, <code>num_workers</code> 0, "
        "<code>num_threads</code> C++ threads started by <code>iter()</code>)."
    ),
    "end_to_end": (
        "A <code>SimpleEmbeddingModel</code> step fed by the DataLoader. Data-wait levels (seed): "
        + _level("not a bottleneck")
        + " below 30 %, "
        + _level("significant")
        + " 30–50 %, "
        + _level("bottleneck")
        + " above 50 %."
    ),
    "conversion": (
        "Per-sample numpy load, the conversion to a torch tensor from the stored dtype, and both together "
        "(native rows: a zero-copy view of the Arrow buffer, its conversion, and the loader's converted sample). "
        "Overhead = mean conversion / mean total. Levels (seed): "
        + _level("negligible", "level-good")
        + " below 10 %, "
        + _level("measurable", "level-mid")
        + " 10–30 %, "
        + _level("significant", "level-bad")
        + " above 30 %."
    ),
    "peers": (
        "The loaders a PyTorch user could pick instead, each peer x variant in a fresh process on the same Parquet "
        "file, with the same batch size, shuffle and output (float32 [B, C, H, W] in [0, 1]). Throughput is the median "
        "over timed epochs after a warm-up epoch; peak memory counts the whole process tree (DataLoader workers "
        "included); user code lines are counted from each peer module's loader-building code."
    ),
}
_ESCAPED_LINES = {"getitem": True, "dataloader": True, "end_to_end": False, "conversion": False, "peers": True}
# Each gives ``(lines, per_configuration)``: the lines are shown, the per-configuration ones collapsed under them.
_INTERPRETERS: dict[str, Callable[[pd.DataFrame, list[str]], tuple[list[str], list[str]]]] = {
    "getitem": lambda table, varying: (_interpret_getitem(table, varying), []),
    "dataloader": lambda table, varying: (_interpret_dataloader(table, varying), []),
    "end_to_end": _interpret_end_to_end,
    "conversion": _interpret_conversion,
    "peers": lambda table, _varying: (peer_verdict(table), []),
}


def _read_manifest(out_dir: Path, track: str) -> dict[str, Any] | None:
    """``plots/<track>.json`` as ``report.plots.plot_track`` writes it (read here without importing matplotlib)."""
    try:
        manifest = json.loads((out_dir / "plots" / f"{track}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) and isinstance(manifest.get("figures"), list) else None


def _figures_html(out_dir: Path, track: str) -> str:
    """The track's figures, inlined, each with its question and caption; two half-width figures share a row."""
    manifest = _read_manifest(out_dir, track)
    if manifest is None or not manifest["figures"]:
        return '<p class="note">No plot was rendered for this track.</p>'
    parts = []
    if manifest.get("footnote"):
        parts.append(f'<p class="note">Figures: {_e(manifest["footnote"])}</p>')
    parts.append('<div class="figures">')
    for entry in manifest["figures"]:
        question = str(entry.get("question", track))
        name = Path(str(entry.get("file", ""))).name  # a bare file name: never a path out of plots/
        image = inline_svg(out_dir / "plots" / name, question, f"The figure {name} was not rendered.")
        css = "plot wide" if entry.get("wide") else "plot"
        caption = f"<b>{_e(question)}</b> {_e(entry.get('caption', ''))}"
        parts.append(f'<figure class="{css}" id="fig-{_e(track)}-{_e(entry.get("slug", ""))}">{image}'
                     f"<figcaption>{caption}</figcaption></figure>")
    parts.append("</div>")
    return "".join(parts)


def _track_section(out_dir: Path, track: str, df: pd.DataFrame) -> str:
    title = TRACKS[track].title if track in TRACKS else track
    head = f'<section id="track-{_e(track)}"><h2>{_e(title)}</h2>'
    if df.empty:
        return head + '<p class="warn">No rows were recorded for this track.</p></section>'
    parts = [head]
    if track in _INTRO:
        parts.append(f'<p class="note">{_INTRO[track]}</p>')
    parts.append(_figures_html(out_dir, track))
    if track in _INTERPRETERS:
        table = medians(track, df)
        varying, _ = describe_keys(track, table)
        lines, per_configuration = _INTERPRETERS[track](table, varying)
        if _ESCAPED_LINES[track]:
            lines, per_configuration = [_e(x) for x in lines], [_e(x) for x in per_configuration]
        if lines or per_configuration:
            parts.append("<h3>What it says</h3><ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>")
        if per_configuration:
            items = "".join(f"<li>{line}</li>" for line in per_configuration)
            parts.append(f'<details class="lines"><summary>Per configuration ({len(per_configuration)})</summary>'
                         f"<ul>{items}</ul></details>")
    parts.append(medians_table_html(track, df))
    parts.append("</section>")
    return "".join(parts)


# Sorting the medians tables by a click (or Enter) on a header: by each cell's data-v (the raw number, or the text);
# empty cells stay last either way. No external file: the report is one page.
SORT_SCRIPT = """
(function () {
  function key(row, i) {
    var c = row.cells[i]; var v = c.getAttribute("data-v"); return v === null ? c.textContent.trim() : v;
  }
  function compare(a, b) {
    if (a === "" || b === "") { return (a === "") - (b === ""); }
    var x = Number(a), y = Number(b);
    if (!isNaN(x) && !isNaN(y)) { return x - y; }
    return a.localeCompare(b, undefined, {numeric: true});
  }
  function sort(th) {
    var table = th.closest("table"), body = table.tBodies[0], i = th.cellIndex;
    var up = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", up ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r, s) {
      var a = key(r, i), b = key(s, i);
      if (a === "" || b === "") { return compare(a, b); }
      return up ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.addEventListener("click", function (e) {
    var th = e.target.closest && e.target.closest("table.sortable thead th"); if (th) { sort(th); }
  });
  document.addEventListener("keydown", function (e) {
    var th = e.key === "Enter" && e.target.closest && e.target.closest("table.sortable thead th");
    if (th) { e.preventDefault(); sort(th); }
  });
})();
"""


HOW_TO_READ = """
<section id="how-to-read"><h2>How to read this report</h2><ul>
<li>Every figure is the <b>median across repeats</b> of one configuration; bars and table cells show the
min–max across repeats where they differ. Percentiles (p50/p95/p99) are over per-sample or per-batch times
within a repeat.</li>
<li>Times are wall-clock (<code>perf_counter_ns</code>) around the call that produces the sample or batch;
warm-up is excluded and the first DataLoader batch is reported on its own.</li>
<li>Data files are read with a <b>warm page cache</b> (generated or read earlier in the same run): the figures show
decoding and loader cost, not cold disk reads.</li>
<li>Absolute times depend on the machine; compare formats and loaders as <b>ratios</b> within one run
(<code>loaderbench compare DIR_A DIR_B</code> gives ratios between runs on the same data).</li>
<li>Loaders: <i>naive</i> converts each item from Arrow on every access (the seed's first version), <i>preloaded</i>
decodes everything once into a cache, <i>decode</i> reads directory formats (TIFF, OME-Zarr) per item, and
<i>native</i> is loaderbench's C++ loader reading Arrow buffers in place.</li>
<li>Skipped formats are listed at the top with the reason; a format is never silently missing.</li>
</ul></section>
"""


def render_html(out_dir: str | os.PathLike[str], extra_sections: Iterable[tuple[str, str]] = ()) -> Path:
    """Write ``out_dir/report.html`` (atomically) and return its path.

    ``extra_sections`` are ``(title, html)`` pairs appended after the tracks: the title is escaped, the html is
    inserted as given (the caller escapes its own data).
    """
    out_dir = Path(out_dir)
    summary = read_summary(out_dir) or {}
    body = [_header(summary, out_dir), "<main>", _verdict_section(out_dir), _skipped_section(summary),
            _run_section(summary)]
    names = track_names(out_dir)
    for track in names:
        df = read_track(out_dir, track)
        if df is not None:
            body.append(_track_section(out_dir, track, df))
    extra_sections = list(extra_sections)
    if not extra_sections and not any(read_track(out_dir, t) is not None for t in names):
        body.append('<p class="warn">No track results in this directory.</p>')
    body.append("<!-- EXTRA SECTIONS: begin -->")
    for index, (title, html) in enumerate(extra_sections):
        body.append(f'<section class="extra" id="extra-{index}"><h2>{_e(title)}</h2>{html}</section>')
    body.append("<!-- EXTRA SECTIONS: end -->")
    body += [HOW_TO_READ, "</main>"]
    created = summary.get("created", "")
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>loaderbench report {_e(created)}</title><style>{CSS}</style></head><body>"
        + "\n".join(body)
        + f"<script>{SORT_SCRIPT}</script></body></html>\n"
    )
    return atomic_write_bytes(out_dir / REPORT_NAME, page.encode("utf-8"))
