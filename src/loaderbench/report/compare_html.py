"""``loaderbench compare A B`` as a page: per track and configuration, both runs' medians with their spread over
repeats, the ratio B/A, and whether the difference is within that spread (the ranges overlap: noise, not a change)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from loaderbench.report.html import CSS, html_table
from loaderbench.report.html import escape_html as _e
from loaderbench.results import TRACKS, atomic_write_bytes, format_number


def verdict_of(row: pd.Series) -> tuple[str, str]:
    """(text, css class): ``within spread`` when the repeat ranges overlap, else ``better`` / ``worse`` for B."""
    ratio = row["ratio"]
    if pd.isna(ratio):
        return "-", ""
    if bool(row["within_spread"]):
        return "within spread", "level-mid"
    better = (ratio > 1) == bool(row["higher_is_better"])
    return ("B better", "level-good") if better else ("B worse", "level-bad")


def _cell(text: str, numeric: bool = False, css: str = "") -> str:
    classes = " ".join(c for c in ("num" if numeric else "", css) if c)
    return f'<td class="{classes}">{text}</td>' if classes else f"<td>{text}</td>"


def _range(low: float, high: float) -> str:
    return f"{format_number(low)} – {format_number(high)}"


def render_compare_html(table: pd.DataFrame, dir_a: str | os.PathLike[str], dir_b: str | os.PathLike[str],
                        path: str | os.PathLike[str]) -> Path:
    """Write the comparison page to ``path`` (atomically) and return it; ``table`` is ``report.compare``'s."""
    sections = []
    for track, part in table.groupby("track", sort=False):
        changed = part[~part["within_spread"].astype(bool)]
        rows = []
        for _, r in part.iterrows():
            text, css = verdict_of(r)
            rows.append([_cell(_e(r["format_label"])), _cell(_e(r["loader"])), _cell(_e(r["image_size"])),
                         _cell(_e(r["params"])), _cell(_e(r["metric"])), _cell(format_number(r["a"]), True),
                         _cell(_range(r["a_min"], r["a_max"]), True), _cell(format_number(r["b"]), True),
                         _cell(_range(r["b_min"], r["b_max"]), True),
                         _cell("-" if pd.isna(r["ratio"]) else f"{r['ratio']:.2f}", True), _cell(_e(text), css=css)])
        title = TRACKS[track].title if track in TRACKS else track
        summary = (f"{len(part)} comparisons, {len(changed)} outside the spread of the repeats "
                   f"({(~changed['ratio'].isna()).sum()} with a ratio)")
        header = ["format", "loader", "size", "parameters", "metric", "A median", "A min – max", "B median",
                  "B min – max", "B / A", ""]
        sections.append(f'<section id="compare-{_e(track)}"><h2>{_e(title)}</h2><p class="note">{_e(summary)}</p>'
                        + html_table(header, rows) + "</section>")
    body = "".join(sections) or '<p class="warn">No configuration appears in both runs.</p>'
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>loaderbench compare</title><style>{CSS}</style></head><body>"
        f"<header><h1>loaderbench compare</h1><p class=\"meta\"><span>A: {_e(Path(dir_a).resolve())}</span>"
        f"<span>B: {_e(Path(dir_b).resolve())}</span></p></header><main>"
        '<p class="note">Medians across repeats; "within spread" when the two runs\' min–max ranges over their '
        "repeats overlap, so the difference is within the noise of the measurement.</p>"
        f"{body}</main></body></html>\n"
    )
    return atomic_write_bytes(Path(path), page.encode("utf-8"))
