"""``report.html``: one self-contained page (inline CSS, PNGs as base64, no external assets) with the run's
environment, the skipped formats, and per track its plot, a table of medians and what the figures mean.

Other parts of loaderbench add their own sections through ``render_html(out_dir, extra_sections=[(title, html)])``;
they are placed between the tracks and the "how to read" section, inside the ``EXTRA SECTIONS`` comments.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable
from html import escape
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from loaderbench.report.verdict import verdict_blocks
from loaderbench.results import (
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
.scroll { overflow-x: auto; } img.plot { max-width: 100%; height: auto; border: 1px solid #eee; }
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


def medians_table_html(track: str, df: pd.DataFrame) -> str:
    """Medians across repeats, one row per configuration; headline metrics also show their min-max."""
    table = medians(track, df)
    varying, constant = describe_keys(track, table)
    _, info, metrics = split_columns(track, df)
    headline = set(headline_metrics(track, df))
    info = [c for c in info if c not in ("format_label", "format_kind", "height", "width", "n_images")]
    info = [c for c in info if table[c].nunique(dropna=False) > 1 or c in ("overhead_level",) or "shares" in c]
    ordered = [m for m in headline_metrics(track, df)] + [m for m in metrics if m not in headline]
    head = ["format" if k == "format" else k for k in varying] + ["repeats", *info, *ordered]
    html_rows = []
    for _, row in table.iterrows():
        cells = []
        for key in varying:
            value = row.get("format_label") if key == "format" and "format_label" in table.columns else row[key]
            cells.append(f"<td>{_e(param_text(value))}</td>")
        cells.append(f"<td class='num'>{_e(param_text(row['repeats']))}</td>")
        cells += [f"<td>{_e(_info_text(row[c]))}</td>" for c in info]
        for metric in ordered:
            text = _e(format_number(row[metric]))
            if metric in headline and row[f"{metric}_min"] != row[f"{metric}_max"]:
                low, high = format_number(row[f"{metric}_min"]), format_number(row[f"{metric}_max"])
                text += f"<span class='spread'>{_e(low)} – {_e(high)}</span>"
            cells.append(f"<td class='num'>{text}</td>")
        html_rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{_e(h)}</th>" for h in head)
    note = ""
    if constant:
        note = '<p class="note">Same for every row: ' + _e(", ".join(f"{k}={v}" for k, v in constant.items())) + "</p>"
    return f'{note}<div class="scroll"><table><tr>{header}</tr>{"".join(html_rows)}</table></div>'


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


def _interpret_end_to_end(table: pd.DataFrame, varying: list[str]) -> list[str]:
    levels = [data_wait_level(v) for v in table["data_wait_fraction"]]
    lines = [_e("Configurations: " + _level_counts(levels, ("bottleneck", "significant", "not a bottleneck")) + ".")]
    for _, row in table.iterrows():
        fraction = row.get("data_wait_fraction")
        level = data_wait_level(fraction)
        percent = "n/a" if pd.isna(fraction) else f"{fraction * 100:.0f} %"
        lines.append(f"{_e(_row_name(row, varying))}: data wait {_e(percent)} of the step, {_level(level)}.")
    return lines + [_e(line) for line in native_comparison_lines("end_to_end", table)]


def _interpret_conversion(table: pd.DataFrame, varying: list[str]) -> list[str]:
    levels = [overhead_level(v) for v in table["overhead_pct"]]
    lines = [_e("Configurations: " + _level_counts(levels, ("significant", "measurable", "negligible")) + ".")]
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
    return lines + [_e(line) for line in native_comparison_lines("conversion", table)]


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
_INTERPRETERS = {
    "getitem": _interpret_getitem,
    "dataloader": _interpret_dataloader,
    "end_to_end": _interpret_end_to_end,
    "conversion": _interpret_conversion,
    "peers": lambda table, _varying: peer_verdict(table),
}


def _plot_img(out_dir: Path, track: str) -> str:
    return embedded_png(out_dir / "plots" / f"{track}.png", f"{track} plot", "No plot was rendered for this track.")


def _track_section(out_dir: Path, track: str, df: pd.DataFrame) -> str:
    title = TRACKS[track].title if track in TRACKS else track
    head = f'<section id="track-{_e(track)}"><h2>{_e(title)}</h2>'
    if df.empty:
        return head + '<p class="warn">No rows were recorded for this track.</p></section>'
    parts = [head]
    if track in _INTRO:
        parts.append(f'<p class="note">{_INTRO[track]}</p>')
    parts.append(_plot_img(out_dir, track))
    if track in _INTERPRETERS:
        table = medians(track, df)
        varying, _ = describe_keys(track, table)
        lines = _INTERPRETERS[track](table, varying)
        if _ESCAPED_LINES[track]:
            lines = [_e(line) for line in lines]
        if lines:
            parts.append("<h3>What it says</h3><ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>")
    parts.append("<h3>Medians across repeats</h3>")
    parts.append(medians_table_html(track, df))
    parts.append("</section>")
    return "".join(parts)


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
        + "</body></html>\n"
    )
    return atomic_write_bytes(out_dir / REPORT_NAME, page.encode("utf-8"))
