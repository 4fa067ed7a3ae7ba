"""Per track, one figure per question, sized to be read at the report's page width.

Each track's plotter returns a few ``PlotFigure`` (Track 1: latency per sample, throughput, transform overhead;
Track 2: throughput vs worker count, start-up, peak memory; ...), each at most two panels a row. They are written as
``plots/<track>-<slug>.svg`` (vector, text kept as text; the report inlines them), the track's first figure also as a
high-DPI ``plots/<track>.png`` (for a README or a chat), and ``plots/<track>.json`` lists the figures with their
questions and captions for the report.

Encodings are fixed across every figure: one colour per *format* (``FORMAT_COLORS``), one marker (lines) and one
hatch (bars) per *loader* (``LOADER_MARKERS``, ``LOADER_HATCHES``); names not listed get a stable fallback from a hash
of the name, so a format or loader looks the same in every plot and every run. Every bar or point is the median across
repeats with a min-max error bar. Figures are built on ``matplotlib.figure.Figure`` (no pyplot); the fonts and SVG
settings are applied with ``matplotlib.rc_context`` only while a track is drawn and saved.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from loaderbench.results import (
    COMMON_KEYS,
    NATIVE,
    TRACKS,
    atomic_write_bytes,
    loader_label,
    medians,
    param_text,
    peer_groups,
    peer_label,
    read_summary,
    read_track,
    split_columns,
)

# One colour per format (colour-blind-safe hues first), the same in every figure.
FORMAT_COLORS = {
    "parquet": "#0072B2",
    "parquet_duckdb": "#56B4E9",
    "lance": "#E69F00",
    "vortex": "#CC79A7",
    "duckdb": "#8C6D1F",
    "tiff": "#D55E00",
    "ome_zarr": "#009E73",
    "arrow_ipc": "#6A3D9A",
}
_SPARE_COLORS = ("#4D4D4D", "#1B9E77", "#A6761D", "#E7298A", "#66A61E", "#7570B3", "#B2182B", "#2166AC")
# One marker (line plots) and one hatch (bar plots) per loader, the same in every figure.
LOADER_MARKERS = {"naive": "o", "preloaded": "s", "decode": "^", "native": "D"}
LOADER_HATCHES = {"naive": "//", "preloaded": "", "decode": "..", "native": "xx"}
_SPARE_MARKERS = ("v", "P", "X", "*", "h", "<", ">", "p")
_SPARE_HATCHES = ("\\\\", "--", "++", "oo", "||", "**", "OO", "-\\")
# A loader's variants (native ×1 / ×2 threads) share its marker and differ in line style.
_VARIANT_LINESTYLES = ("-", "--", ":", "-.")
_EDGE = "#222222"
# The seeds' thresholds (docs of Tracks 3 and 4): (upper bound in %, reading, band colour) per level.
_GOOD, _MID, _BAD = "#2ca02c", "#ff9900", "#d62728"
DATA_WAIT_LEVELS = ((30.0, "not a bottleneck", _GOOD), (50.0, "significant", _MID), (None, "bottleneck", _BAD))
OVERHEAD_LEVELS = ((10.0, "negligible", _GOOD), (30.0, "measurable", _MID), (None, "significant", _BAD))

# A wide figure (two panels a row) is 12 in = 1,152 CSS px: the report's content width at a 1,280 px window, so SVG
# text is shown at its own size (10 pt = 13 px). A one-panel figure is half of that and sits beside another.
WIDE_IN = 12.0
HALF_IN = 6.1
PANEL_ROW_IN = 3.7
HEADLINE_PNG_DPI = 200
_STYLE = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 9.5,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "figure.titlesize": 11,
    "hatch.linewidth": 0.7,
    "svg.fonttype": "none",  # text as text: sharp at any zoom, searchable in the page
}


@dataclass
class PlotFigure:
    """One question's figure: ``slug`` names its file, ``question`` heads it, ``caption`` says what is plotted and
    what the error bars are; ``wide`` when it has two panels a row (else it is half the page width)."""

    slug: str
    question: str
    caption: str
    figure: Figure
    wide: bool


def _stable_pick(name: Any, choices: Sequence[Any]) -> Any:
    """The same choice for the same name in every process (``hash()`` is salted per process; crc32 is not)."""
    return choices[zlib.crc32(str(name).encode("utf-8")) % len(choices)]


def format_color(fmt: Any) -> str:
    """The colour of format ``fmt`` (its registry name) in every figure."""
    return FORMAT_COLORS.get(str(fmt)) or _stable_pick(fmt, _SPARE_COLORS)


def loader_marker(loader: Any) -> str:
    """The marker of ``loader`` in every line plot."""
    return LOADER_MARKERS.get(str(loader)) or _stable_pick(loader, _SPARE_MARKERS)


def loader_hatch(loader: Any) -> str:
    """The hatch of ``loader`` in every bar plot."""
    hatch = LOADER_HATCHES.get(str(loader))
    return hatch if hatch is not None else _stable_pick(loader, _SPARE_HATCHES)


def _unique(values: pd.Series) -> list[Any]:
    """Distinct values in order of appearance (the medians table is already in display order)."""
    return list(dict.fromkeys(values.tolist()))


def _label(row: pd.Series | dict[str, Any]) -> str:
    label = row.get("format_label")
    if label is None or (isinstance(label, float) and math.isnan(label)):
        label = row.get("format", "?")
    return str(label)


def _with_labels(table: pd.DataFrame) -> pd.DataFrame:
    """``_group``: the format label (the x groups); ``_series``: the loader with its thread count when it has one."""
    threads = table["num_threads"] if "num_threads" in table.columns else pd.Series(math.nan, index=table.index)
    loaders = table["loader"] if "loader" in table.columns else pd.Series("?", index=table.index)
    return table.assign(
        _group=[_label(r) for _, r in table.iterrows()],
        _series=[loader_label(a, b) for a, b in zip(loaders, threads, strict=True)],
    )


class _Styles:
    """Colours, hatches and markers of one table's formats and loader series, from the fixed mappings."""

    def __init__(self, table: pd.DataFrame) -> None:
        self.groups = _unique(table["_group"])
        formats = table.drop_duplicates("_group").set_index("_group")
        self.color = {g: format_color(formats.loc[g, "format"] if "format" in formats.columns else g)
                      for g in self.groups}
        rows = table.drop_duplicates("_series")
        # baselines first, then each loader's variants in thread-count order
        threads = rows["num_threads"] if "num_threads" in rows.columns else pd.Series(math.nan, index=rows.index)
        order = sorted(zip(rows["_series"], rows["loader"], threads, strict=True),
                       key=lambda r: (str(r[1]) == NATIVE, -1 if pd.isna(r[2]) else float(r[2])))
        self.series = [name for name, _, _ in order]
        self.loader = {name: loader for name, loader, _ in order}
        self.variant = {name: [n for n, lo, _ in order if lo == loader].index(name) for name, loader, _ in order}

    def hatch(self, series: Any) -> str:
        base = loader_hatch(self.loader.get(series, series))
        k = self.variant.get(series, 0)
        if k == 0:
            return base
        return base * (k + 1) if base else _SPARE_HATCHES[(k - 1) % len(_SPARE_HATCHES)]

    def linestyle(self, series: Any) -> str:
        return _VARIANT_LINESTYLES[self.variant.get(series, 0) % len(_VARIANT_LINESTYLES)]

    def marker(self, series: Any) -> str:
        return loader_marker(self.loader.get(series, series))

    def format_handles(self) -> list[Any]:
        return [Patch(facecolor=self.color[g], edgecolor="none", label=g) for g in self.groups]

    def bar_handles(self) -> list[Any]:
        """Formats (colour) then loaders (hatch)."""
        return self.format_handles() + [
            Patch(facecolor="white", edgecolor=_EDGE, hatch=self.hatch(s), linewidth=0.6, label=str(s))
            for s in self.series
        ]

    def line_handles(self) -> list[Any]:
        """Formats (colour) then loaders (marker and line style)."""
        return self.format_handles() + [
            Line2D([], [], color="#333333", linestyle=self.linestyle(s), marker=self.marker(s), label=str(s))
            for s in self.series
        ]


def pick_common(table: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, str]:
    """Keep the most frequent value of each parameter that varies (a panel shows one setting); say which.

    Missing values mean "not applicable" (``prefetch_factor`` without workers) and are kept."""
    notes = []
    for column in columns:
        if column not in table.columns:
            continue
        values = table[column].dropna()
        if values.nunique() > 1:
            value = values.mode().iloc[0]
            table = table[(table[column] == value) | table[column].isna()]
            notes.append(f"{column}={param_text(value)}")
    return table, ", ".join(notes)


def one_setting(track: str, table: pd.DataFrame, df: pd.DataFrame, shown: Sequence[str]) -> tuple[pd.DataFrame, str]:
    """Per loader, the most frequent value of every parameter the figure does not show (``pick_common``), so that
    two bars or points never stand for different settings at one place (page cache cold and warm, say); per loader
    because some parameters go with the loader (``numpy_load``: a cache copy or a view). Says what was picked."""
    hidden = [k for k in split_columns(track, df)[0] if k not in {*COMMON_KEYS, *shown} and k in table.columns]
    if not hidden or "loader" not in table.columns:
        return table, ""
    parts, notes = [], []
    for loader, part in table.groupby("loader", sort=False):
        picked, note = pick_common(part, hidden)
        parts.append(picked)
        if note:
            notes.append(f"{loader}: {note}")
    kept = pd.concat(parts).index
    return table[table.index.isin(kept)], ("one setting each, " + "; ".join(notes)) if notes else ""


def _errors(table: pd.DataFrame, metric: str, scale: float = 1.0) -> np.ndarray:
    med = table[metric].to_numpy(dtype=float) * scale
    low = table.get(f"{metric}_min", table[metric]).to_numpy(dtype=float) * scale
    high = table.get(f"{metric}_max", table[metric]).to_numpy(dtype=float) * scale
    err = np.vstack([med - low, high - med])
    return np.nan_to_num(np.clip(err, 0, None))


def _eq(table: pd.DataFrame, column: str | None, value: Any) -> pd.Series:
    if column is None:
        return pd.Series(True, index=table.index)
    if isinstance(value, float) and math.isnan(value):
        return table[column].isna()
    return table[column] == value


def _bar_offsets(table: pd.DataFrame, groups: Sequence[str], series: Sequence[Any]) -> tuple[dict, float]:
    """Per group, the x of each series' bar present there, centred: a format with one loader gets one centred bar
    rather than a gap for every loader it does not have; and the bar width."""
    present = {g: [s for s in series if not table[(table["_group"] == g) & (table["_series"] == s)].empty]
               for g in groups}
    width = 0.8 / max([len(v) for v in present.values()] + [1])
    offsets = {(g, s): i + (j - (len(p) - 1) / 2) * width
               for i, (g, p) in enumerate(present.items()) for j, s in enumerate(p)}
    return offsets, width


def _group_axis(ax: Axes, groups: Sequence[str]) -> None:
    slanted = len(groups) > 3
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=25 if slanted else 0, ha="right" if slanted else "center")
    ax.set_xlim(-0.6, len(groups) - 0.4)


def grouped_bars(
    ax: Axes,
    table: pd.DataFrame,
    metric: str,
    styles: _Styles,
    *,
    log: bool = False,
    scale: float = 1.0,
    annotate: Callable[[float], str] | None = None,
) -> None:
    """Bars of ``metric`` (median, min-max error bars): formats (``table._group``, coloured) on the x axis, one bar
    per loader series (hatched) within each."""
    groups = styles.groups
    offsets, width = _bar_offsets(table, groups, styles.series)
    for series in styles.series:
        sub = table[(table["_series"] == series) & table[metric].notna()]
        if log:
            sub = sub[sub[metric] > 0]
        if sub.empty:
            continue
        heights = sub[metric].to_numpy(dtype=float) * scale
        bars = ax.bar(
            [offsets[(g, series)] for g in sub["_group"]],
            heights,
            width=width * 0.92,
            color=[styles.color[g] for g in sub["_group"]],
            hatch=styles.hatch(series),
            edgecolor=_EDGE,
            linewidth=0.5,
            yerr=_errors(sub, metric, scale),
            capsize=2,
            error_kw={"elinewidth": 0.9, "ecolor": "#111111"},
        )
        if annotate is not None:
            for bar, value in zip(bars, heights, strict=True):
                ax.annotate(annotate(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 3),
                            textcoords="offset points", ha="center", va="bottom", fontsize=8)
    _group_axis(ax, [g for g in groups])
    if log:
        _log_y(ax)
    ax.grid(axis="y", alpha=0.3, which="both" if log else "major")
    ax.set_axisbelow(True)


def stacked_bars(ax: Axes, table: pd.DataFrame, parts: tuple[str, str], total: str, styles: _Styles) -> None:
    """Per format x loader series: ``parts[0]`` solid, ``parts[1]`` stacked on it in a light shade of the same
    colour, and a black tick at ``total`` with its min-max (the p50 of the sum is not the sum of the p50s)."""
    offsets, width = _bar_offsets(table, styles.groups, styles.series)
    for series in styles.series:
        sub = table[table["_series"] == series]
        if sub.empty:
            continue
        x = [offsets[(g, series)] for g in sub["_group"]]
        colors = [styles.color[g] for g in sub["_group"]]
        first = np.nan_to_num(sub[parts[0]].to_numpy(dtype=float))
        second = np.nan_to_num(sub[parts[1]].to_numpy(dtype=float))
        hatch = styles.hatch(series)
        ax.bar(x, first, width=width * 0.92, color=colors, hatch=hatch, edgecolor=_EDGE, linewidth=0.5)
        ax.bar(x, second, bottom=first, width=width * 0.92, color=colors, alpha=0.35, hatch=hatch, edgecolor=_EDGE,
               linewidth=0.5)
        ax.errorbar(x, sub[total].to_numpy(dtype=float), yerr=_errors(sub, total), fmt="_", color="black",
                    markersize=10, capsize=2, elinewidth=0.9)
    _group_axis(ax, styles.groups)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)


def _stack_handles(solid: str, light: str, total: str) -> list[Any]:
    """Legend entries of ``stacked_bars``: what the solid part, the light part and the tick are."""
    return [
        Patch(facecolor="#777777", edgecolor=_EDGE, linewidth=0.5, label=f"{solid} (solid)"),
        Patch(facecolor="#777777", alpha=0.35, edgecolor=_EDGE, linewidth=0.5, label=f"{light} (light)"),
        Line2D([], [], color="black", marker="_", linestyle="", markersize=10, label=f"{total} (min-max)"),
    ]


def _line_panel(ax: Axes, table: pd.DataFrame, metric: str, x: str, styles: _Styles, log: bool) -> None:
    """One line per format (colour) x loader series (marker, line style). A native series measured at one ``x``
    only (in-process: ``num_workers`` 0) is its point plus a thin level line across the panel, so it reads as the
    level the worker counts are compared with."""
    x_values = sorted(table[x].dropna().unique())
    for (group, series), sub in table.groupby(["_group", "_series"], sort=False, dropna=False):
        sub = sub.sort_values(x)
        sub = sub[sub[metric].notna() & ((sub[metric] > 0) if log else True)]
        if sub.empty:
            continue
        style = {"color": styles.color[group], "linestyle": styles.linestyle(series)}
        ax.errorbar(sub[x].to_numpy(dtype=float), sub[metric].to_numpy(dtype=float), yerr=_errors(sub, metric),
                    marker=styles.marker(series), markersize=5, linewidth=1.4, capsize=2, **style)
        if (sub["loader"] == NATIVE).all() and sub[x].nunique() == 1 and len(x_values) > 1:
            ax.hlines(sub[metric].iloc[0], x_values[0], x_values[-1], linewidth=1.0, alpha=0.6, **style)
    ax.set_xticks(x_values)
    ax.set_xlabel(x)
    if log:
        _log_y(ax)
    ax.grid(alpha=0.3, which="both" if log else "major")


def _log_y(ax: Axes) -> None:
    """Log y axis; call after plotting. Over a wide range only decades are labelled (minor labels crowd the axis)."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if low > 0 and high / low > 30:  # under ~1.5 decades the minor labels are the only ones: keep them
        ax.yaxis.set_minor_formatter(NullFormatter())


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=10, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _level_bands(ax: Axes, levels: Sequence[tuple[float | None, str, str]], top: float) -> None:
    """The seeds' reading of a percentage as faint bands with dashed borders and their names at the right edge."""
    ax.set_ylim(0, top)
    low = 0.0
    for bound, name, color in levels:
        high = top if bound is None else bound
        ax.axhspan(low, high, color=color, alpha=0.07, zorder=0)
        if bound is not None:
            ax.axhline(bound, color="#555555", linestyle="--", linewidth=0.8, zorder=1)
        if bound is None:
            label = f"> {low:g} %: {name}"
        else:
            label = f"< {bound:g} %: {name}" if low == 0 else f"{low:g}-{bound:g} %: {name}"
        ax.text(0.995, min(high, top) - 0.01 * top, label, transform=ax.get_yaxis_transform(), ha="right", va="top",
                fontsize=8, color="#444444", zorder=5,
                bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1})
        low = high


def footnote(track: str, summary: dict[str, Any] | None, df: pd.DataFrame) -> str:
    """The config essentials of a track's figures: images, sizes, dtype, repeats, preset, machine."""
    parts = []
    config = (summary or {}).get("config") or {}
    data = config.get("data") or {}
    n_images = data.get("n_images")
    if n_images is None and "n_images" in df.columns:
        n_images = ", ".join(str(v) for v in _unique(df["n_images"]))
    if n_images is not None:
        parts.append(f"n_images={n_images}")
    if "image_size" in df.columns:
        parts.append("sizes " + ", ".join(str(v) for v in _unique(df["image_size"])))
    elif data.get("sizes"):
        parts.append("sizes " + ", ".join(f"{h}x{w}" for h, w in data["sizes"]))
    dtype = data.get("dtype") or (", ".join(map(str, _unique(df["dtype"]))) if "dtype" in df.columns else None)
    if dtype:
        parts.append(f"dtype {dtype}")
    repeats = (config.get(track) or {}).get("repeats")
    if repeats is None and "repeat" in df.columns:
        repeats = df["repeat"].nunique()
    if repeats is not None:
        parts.append(f"repeats={repeats} (median, min-max bars)")
    if config.get("preset"):
        parts.append(f"preset {config['preset']}")
    hardware = ((summary or {}).get("environment") or {}).get("hardware") or {}
    if hardware.get("cpu_model"):
        parts.append(f"{hardware['cpu_model']}, {hardware.get('usable_cores') or hardware.get('logical_cores')} cores")
    if (summary or {}).get("created"):
        parts.append(str(summary["created"]))
    return " · ".join(parts)


def spread_note(table: pd.DataFrame, unit: str = "repeats") -> str:
    """'median across 3 repeats; error bars: min-max over repeats' from a medians table's ``repeats``."""
    counts = sorted({int(n) for n in table["repeats"].dropna()}) if "repeats" in table.columns else []
    if not counts:
        across = f"median across {unit}"
    elif len(counts) == 1:
        across = f"median across {counts[0]} {unit}"
    else:
        across = f"median across {counts[0]}-{counts[-1]} {unit}"
    return f"{across}; error bars: min-max over {unit}"


# ----------------------------------------------------------------------------------------------- figure layout


@dataclass
class _Panel:
    title: str
    draw: Callable[[Axes], None]


def _figure(slug: str, question: str, caption: str, panels: list[_Panel], handles: list[Any],
            row_height: float = PANEL_ROW_IN) -> PlotFigure:
    """A figure of ``panels``, at most two a row (one panel: half the page width), its legend under them."""
    n_cols = 1 if len(panels) <= 1 else 2
    n_rows = max(1, math.ceil(len(panels) / n_cols))
    width = WIDE_IN if n_cols == 2 else HALF_IN
    legend_columns = _legend_columns(handles, width)
    legend_rows = math.ceil(len(handles) / legend_columns) if handles else 0
    fig = Figure(figsize=(width, 0.7 + row_height * n_rows + 0.25 * legend_rows), layout="constrained")
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel().tolist()
    for ax, panel in zip(axes, panels, strict=False):
        panel.draw(ax)
        ax.set_title(panel.title)
    for ax in axes[len(panels):]:
        ax.set_visible(False)
    fig.suptitle(question, fontweight="bold")
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=legend_columns, frameon=False)
    return PlotFigure(slug, question, caption, fig, wide=n_cols == 2)


def _legend_columns(handles: list[Any], width_in: float) -> int:
    """As many legend columns as fit the figure's width, judged from the longest label (9 pt: ~0.07 in a
    character, plus the key and the gap)."""
    longest = max((len(str(h.get_label())) for h in handles), default=1)
    fits = int(0.95 * width_in // (0.6 + 0.068 * longest))
    return max(1, min(len(handles), fits))


def _sizes(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``(prefix, rows)`` per image size (per dataset where several share a size): one panel each; the prefix names
    it when there are several."""
    column = "image_size"
    if "dataset" in table.columns and (column not in table.columns
                                       or table["dataset"].nunique() > table[column].nunique()):
        column = "dataset"
    if column not in table.columns or table[column].nunique() <= 1:
        return [("", table)]
    return [(f"{value}: ", table[table[column] == value]) for value in _unique(table[column])]


def _caption(what: str, table: pd.DataFrame, note: str = "", unit: str = "repeats") -> str:
    """'What is plotted. Median across N repeats; error bars: min-max over repeats. Settings shown.'"""
    shown = f"Shown: {note}" if note else ""
    sentences = [part[0].upper() + part[1:] for part in (what, spread_note(table, unit), shown) if part]
    return ". ".join(sentences) + "."


# ----------------------------------------------------------------------------------------------- per track


def _figures_getitem(table: pd.DataFrame, df: pd.DataFrame) -> list[PlotFigure]:
    table, picked = one_setting("getitem", table, df, ("access", "transform"))
    table = _with_labels(table)
    styles = _Styles(table)
    transforms = _unique(table["transform"]) if "transform" in table.columns else [None]
    base = "none" if "none" in transforms else transforms[0]
    plain = table[_eq(table, "transform" if base is not None else None, base)]
    accesses = _unique(plain["access"]) if "access" in plain.columns else [None]
    note = ", ".join(filter(None, [f"transform={base}" if base is not None else "", picked]))

    def by_access(metric: str, label: str) -> list[_Panel]:
        panels = []
        for prefix, part in _sizes(plain):
            for access in accesses:
                sub = part[_eq(part, "access" if access is not None else None, access)]

                def draw(ax: Axes, sub: pd.DataFrame = sub) -> None:
                    grouped_bars(ax, sub, metric, styles, log=True)
                    ax.set_ylabel(label)

                panels.append(_Panel(f"{prefix}{access} access" if access is not None else prefix.rstrip(": "), draw))
        return panels

    figures = [
        _figure("latency", "Track 1: how long does one __getitem__ take?",
                _caption("p50 latency per sample (ms, log scale) of Dataset.__getitem__, per format (colour) and "
                         "loader (hatch), one panel per access pattern", plain, note),
                by_access("p50_ms", "p50 latency per sample (ms, log)"), styles.bar_handles()),
        _figure("throughput", "Track 1: how many samples per second?",
                _caption("samples/s of Dataset.__getitem__ (log scale; higher is better), per format (colour) and "
                         "loader (hatch), one panel per access pattern", plain, note),
                by_access("samples_per_s", "samples/s (log)"), styles.bar_handles()),
    ]
    overhead = transform_overhead(df)
    if not overhead.empty:
        overhead = _with_labels(overhead)
        panels = []
        for prefix, part in _sizes(overhead):
            for transform in _unique(part["transform"]):
                sub = part[part["transform"] == transform]

                def draw(ax: Axes, sub: pd.DataFrame = sub) -> None:
                    grouped_bars(ax, sub, "added_ms", styles)
                    ax.axhline(0, color="#444444", linewidth=0.8)
                    ax.set_ylabel("added p50 latency (ms)")

                panels.append(_Panel(f"{prefix}{transform} vs {base}", draw))
        what = (f"p50 latency added by each transform over transform={base} (ms), matched per format, loader, access "
                "pattern and repeat")
        n_repeats = df["repeat"].nunique() if "repeat" in df.columns else "the"
        n_access = f" x {df['access'].nunique()} access patterns" if "access" in df.columns else ""
        caption = (f"{what}. Median across {n_repeats} repeats{n_access}; error bars: min-max over repeats and "
                   "access patterns.")
        figures.append(_figure("transform-overhead", "Track 1: what does a transform add?", caption, panels,
                               styles.bar_handles()))
    return figures


def transform_overhead(df: pd.DataFrame) -> pd.DataFrame:
    """Added p50 of each transform over ``none``, matched per format/loader/access/repeat, then the median and
    min-max across repeats and access patterns. Empty when there is nothing to compare."""
    if not {"transform", "p50_ms"} <= set(df.columns) or df["transform"].nunique() < 2:
        return pd.DataFrame()
    transforms = _unique(df["transform"])
    base = "none" if "none" in transforms else transforms[0]
    match = [c for c in ("dataset", "image_size", "format", "loader", "access", "repeat") if c in df.columns]
    baseline = df[df["transform"] == base][[*match, "p50_ms"]].rename(columns={"p50_ms": "_base"})
    other = df[df["transform"] != base].merge(baseline, on=match, how="inner")
    other = other.assign(added_ms=other["p50_ms"] - other["_base"])
    keys = [c for c in ("dataset", "image_size", "format", "format_label", "loader", "transform") if c in df.columns]
    grouped = other.groupby(keys, sort=False, dropna=False)["added_ms"]
    out = grouped.agg(["median", "min", "max"]).reset_index()
    return out.rename(columns={"median": "added_ms", "min": "added_ms_min", "max": "added_ms_max"})


def _figures_dataloader(table: pd.DataFrame, df: pd.DataFrame) -> list[PlotFigure]:
    # The DataLoader settings are picked per loader: the native rows have none of them and are all kept.
    native = table["loader"] == NATIVE
    table, note = one_setting("dataloader", table, df, ("batch_size", "num_workers", "num_threads"))
    table = _with_labels(table)
    if native.any():
        note = ", ".join(filter(None, [note, "native runs in-process (num_workers 0): its level is drawn across"]))
    styles = _Styles(table)
    batch_sizes = sorted(table["batch_size"].dropna().unique()) if "batch_size" in table.columns else [None]
    largest = batch_sizes[-1]
    biggest = table[_eq(table, "batch_size" if largest is not None else None, largest)]

    def line_panels(source: pd.DataFrame, metric: str, label: str, log: bool, per_batch: bool) -> list[_Panel]:
        panels = []
        for prefix, part in _sizes(source):
            for batch in batch_sizes if per_batch else [largest]:
                sub = part[_eq(part, "batch_size" if batch is not None else None, batch)]

                def draw(ax: Axes, sub: pd.DataFrame = sub) -> None:
                    if sub[metric].notna().any():
                        _line_panel(ax, sub, metric, "num_workers", styles, log=log)
                        ax.set_ylabel(label)
                    else:
                        _no_data(ax, f"no {metric} figures")

                panels.append(_Panel(f"{prefix}batch_size={param_text(batch)}", draw))
        return panels

    figures = [
        _figure("throughput", "Track 2: how many samples per second does the DataLoader deliver?",
                _caption("samples/s (log scale; higher is better) against num_workers, per format (colour) and loader "
                         "(marker), one panel per batch size", table, note),
                line_panels(table, "samples_per_s", "samples/s (log)", True, True), styles.line_handles()),
        _figure("first-batch", "Track 2: how long until the first batch?",
                _caption(f"time to the first batch (ms, log scale; worker start-up) against num_workers at "
                         f"batch_size={param_text(largest)}", biggest, note),
                line_panels(table, "first_batch_ms", "first batch (ms, log)", True, False), styles.line_handles()),
    ]
    # PSS, not USS: after fork the parent's pages are shared and drop out of every process's USS, so a USS sum
    # undercounts; PSS counts each shared page once across the tree.
    memory = "peak_pss_mb" if "peak_pss_mb" in table.columns else "peak_uss_mb"
    if memory in table.columns and table[memory].notna().any():
        kind = memory.split("_")[1].upper()
        figures.append(_figure(
            "memory", "Track 2: how much memory does it take?",
            _caption(f"peak {kind} of the main process and its workers (MB) against num_workers at "
                     f"batch_size={param_text(largest)}", biggest, note),
            line_panels(table, memory, f"peak {kind} incl. workers (MB)", False, False), styles.line_handles()))
    return figures


def _figures_end_to_end(table: pd.DataFrame, df: pd.DataFrame) -> list[PlotFigure]:
    # num_workers is picked per loader: the native row runs in-process (0) whatever the torch rows use.
    table, note = one_setting("end_to_end", table, df, ("num_threads",))
    table = _with_labels(table)
    styles = _Styles(table)

    def panels(draw_one: Callable[[Axes, pd.DataFrame], None]) -> list[_Panel]:
        return [_Panel(prefix.rstrip(": "), lambda ax, part=part: draw_one(ax, part)) for prefix, part in _sizes(table)]

    def steps(ax: Axes, part: pd.DataFrame) -> None:
        stacked_bars(ax, part, ("data_wait_p50_ms", "compute_p50_ms"), "step_p50_ms", styles)
        ax.set_ylabel("per step, p50 (ms)")

    def wait(ax: Axes, part: pd.DataFrame) -> None:
        grouped_bars(ax, part, "data_wait_fraction", styles, scale=100.0)
        _level_bands(ax, DATA_WAIT_LEVELS, top=100.0)
        ax.set_ylabel("data wait fraction (%)")

    def speed(ax: Axes, part: pd.DataFrame) -> None:
        grouped_bars(ax, part, "images_per_s", styles, log=True)
        ax.set_ylabel("images/s (log)")

    return [
        _figure("step-time", "Track 3: where does a training step's time go?",
                _caption("p50 per step (ms): data wait (solid) + compute (light) per format (colour) and loader "
                         "(hatch); the black tick is the step's own p50 (not the sum of the two)", table, note),
                panels(steps), styles.bar_handles() + _stack_handles("data wait", "compute", "step p50")),
        _figure("data-wait", "Track 3: how long does the model wait for data?",
                _caption("share of the step spent waiting for the next batch (%), with the seed's levels as bands",
                         table, note),
                panels(wait), styles.bar_handles()),
        _figure("throughput", "Track 3: how many images per second end to end?",
                _caption("images/s through the model loop (log scale; higher is better)", table, note),
                panels(speed), styles.bar_handles()),
    ]


def _percent_label(value: float) -> str:
    return f"{value:.0f}%" if abs(value) >= 10 else f"{value:.1f}%"


# Track 4's parts of loading a sample, side by side (their p50s do not add up: each is timed on its own): how each
# is drawn in its format's colour, and its name.
_COMPONENTS = (
    ("numpy_p50_ms", "solid", "numpy load"),
    ("conversion_p50_ms", "light", "conversion to torch"),
    ("torch_p50_ms", "outline", "load + convert"),
)


def component_bars(ax: Axes, table: pd.DataFrame, styles: _Styles, log: bool = True) -> None:
    """Per format, one bar per ``_COMPONENTS`` entry (median, min-max error bar) in the format's colour: solid,
    light or outlined; hatched by loader."""
    components = [c for c in _COMPONENTS if c[0] in table.columns]
    width = 0.8 / max(len(components) * max(table["_series"].nunique(), 1), 1)
    for index, group in enumerate(styles.groups):
        rows = table[table["_group"] == group]
        slots = [(series, c) for series in styles.series if (rows["_series"] == series).any() for c in components]
        for j, (series, (metric, look, _)) in enumerate(slots):
            row = rows[rows["_series"] == series]
            value = row[metric].to_numpy(dtype=float)
            if not np.isfinite(value).all() or (log and (value <= 0).any()):
                continue
            color = styles.color[group]
            fill = {"solid": color, "light": to_rgba(color, 0.35), "outline": "white"}[look]
            ax.bar(index + (j - (len(slots) - 1) / 2) * width, value, width=width * 0.92, color=fill,
                   hatch=styles.hatch(series), edgecolor=color if look == "outline" else _EDGE,
                   linewidth=1.6 if look == "outline" else 0.5, yerr=_errors(row, metric), capsize=2,
                   error_kw={"elinewidth": 0.9, "ecolor": "#111111"})
    _group_axis(ax, styles.groups)
    if log:
        _log_y(ax)
    ax.grid(axis="y", alpha=0.3, which="both" if log else "major")
    ax.set_axisbelow(True)


def _component_handles() -> list[Any]:
    looks = {"solid": {"facecolor": "#777777"}, "light": {"facecolor": (0.47, 0.47, 0.47, 0.35)},
             "outline": {"facecolor": "white", "edgecolor": "#777777", "linewidth": 1.6}}
    return [Patch(label=label, **{"edgecolor": _EDGE, "linewidth": 0.5, **looks[look]}) for _, look, label in
            _COMPONENTS]


def _figures_conversion(table: pd.DataFrame, df: pd.DataFrame) -> list[PlotFigure]:
    table, note = one_setting("conversion", table, df, ())
    table = _with_labels(table)
    styles = _Styles(table)
    breakdown = []
    for prefix, part in _sizes(table):
        for loader in _unique(part["loader"]):
            sub = part[part["loader"] == loader]
            load = " (load = zero-copy view)" if loader == NATIVE else ""

            def draw(ax: Axes, sub: pd.DataFrame = sub) -> None:
                component_bars(ax, sub, styles)
                ax.set_ylabel("p50 per sample (ms, log)")

            breakdown.append(_Panel(f"{prefix}loader={loader}{load}", draw))

    def overhead(ax: Axes, part: pd.DataFrame) -> None:
        grouped_bars(ax, part, "overhead_pct", styles, annotate=_percent_label)
        top = float(np.nanmax(part["overhead_pct_max"].to_numpy(dtype=float), initial=0.0))
        _level_bands(ax, OVERHEAD_LEVELS, top=max(40.0, top * 1.15))
        ax.set_ylabel("mean conversion / mean total (%)")

    return [
        _figure("breakdown", "Track 4: where does loading a sample go, numpy load or torch conversion?",
                _caption("p50 per sample (ms, log scale) of the numpy load (solid), the conversion to torch (light) "
                         "and both together (outlined), each timed on its own, per format (colour); one panel per "
                         "loader",
                         table, note),
                breakdown, styles.bar_handles() + _component_handles()),
        _figure("overhead", "Track 4: how much does the conversion to torch add?",
                _caption("conversion overhead = mean conversion / mean total (%), with the seed's levels as bands",
                         table, note),
                [_Panel(prefix.rstrip(": "), lambda ax, part=part: overhead(ax, part)) for prefix, part in
                 _sizes(table)],
                styles.bar_handles()),
    ]


def _peer_panel(ax: Axes, part: pd.DataFrame, metric: str, label: str, styles: _Styles, mark_fastest: bool) -> None:
    """Horizontal bars of ``metric`` per peer x variant that ran (format colour, loader hatch), best at the top;
    the fastest peer named and outlined; the peers that did not run listed under the panel."""
    ran = part[(part["status"] == "ok") & part[metric].notna()].sort_values(metric)
    missing = part[part["status"] != "ok"]
    if ran.empty:
        _no_data(ax, "no peer ran")
    else:
        y = np.arange(len(ran))
        fastest = ran["fastest"].astype(bool).to_numpy() if "fastest" in ran.columns else np.zeros(len(ran), bool)
        bars = ax.barh(y, ran[metric], color=[styles.color[g] for g in ran["_group"]],
                       hatch=None, edgecolor=_EDGE, linewidth=0.5, xerr=_errors(ran, metric), capsize=2,
                       error_kw={"elinewidth": 0.9, "ecolor": "#111111"})
        for bar, series, best in zip(bars, ran["_series"], fastest, strict=True):
            bar.set_hatch(styles.hatch(series))
            if best and mark_fastest:
                bar.set_linewidth(2.0)
        ax.set_yticks(y)
        ax.set_yticklabels([peer_label(r) + (" ★ fastest" if best and mark_fastest else "")
                            for (_, r), best in zip(ran.iterrows(), fastest, strict=True)])
        ax.set_xlabel(label)
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
    if not missing.empty:
        notes = "; ".join(f"{peer_label(r)}: {r['status']}" for _, r in missing.iterrows())
        ax.text(0.0, -0.02, f"not run: {notes}", transform=ax.transAxes, ha="left", va="top", fontsize=8,
                color="#666666", wrap=True)


def _figures_peers(table: pd.DataFrame, df: pd.DataFrame) -> list[PlotFigure]:
    """Per dataset, samples/s (and peak memory) per peer x variant that ran, fastest outlined and named."""
    table = _with_labels(table.assign(_peer=[peer_label(r) for _, r in table.iterrows()]))
    table = table.assign(_series=table["loader"])  # one hatch per peer loader
    styles = _Styles(table)
    groups = peer_groups(table)  # per dataset and page-cache state
    n_bars = max(len(part) for _, part in groups)
    row_height = 1.4 + 0.35 * n_bars

    def panels(metric: str, label: str, mark: bool) -> list[_Panel]:
        return [_Panel(name, lambda ax, part=part: _peer_panel(ax, part, metric, label, styles, mark))
                for name, part in groups]

    figures = [_figure("throughput", "Peers: which loader delivers the most samples per second?",
                       _caption("samples/s per peer x variant (higher is better), each in a fresh process on the same "
                                "file; the fastest is outlined", table, unit="timed epochs"),
                       panels("samples_per_s", "samples/s (higher is better)", True), [], row_height)]
    memory = "peak_pss_mb" if "peak_pss_mb" in table.columns and table["peak_pss_mb"].notna().any() else "peak_uss_mb"
    if memory in table.columns and table[memory].notna().any():
        kind = memory.split("_")[1].upper()
        figures.append(_figure("memory", "Peers: how much memory does each take?",
                               _caption(f"peak {kind} of the whole process tree (MB; lower is better), measured once "
                                        "per peer run", table),
                               panels(memory, f"peak {kind} (MB)", False), [], row_height))
    return figures


PLOTTERS: dict[str, Callable[[pd.DataFrame, pd.DataFrame], list[PlotFigure]]] = {
    "getitem": _figures_getitem,
    "dataloader": _figures_dataloader,
    "end_to_end": _figures_end_to_end,
    "conversion": _figures_conversion,
    "peers": _figures_peers,
}


def track_figures(track: str, df: pd.DataFrame) -> list[PlotFigure]:
    """The track's figures from its raw rows (call inside ``plot_style()`` for the report's fonts)."""
    return PLOTTERS[track](medians(track, df), df)


def plot_style() -> Any:
    """The fonts and SVG settings of the report's figures, as a context manager."""
    return matplotlib.rc_context(_STYLE)


# ----------------------------------------------------------------------------------------------- files


def manifest_path(out_dir: str | os.PathLike[str], track: str) -> Path:
    """``plots/<track>.json``: the track's figures (file, question, caption, wide) and its footnote."""
    return Path(out_dir) / "plots" / f"{track}.json"


def read_manifest(out_dir: str | os.PathLike[str], track: str) -> dict[str, Any] | None:
    """The manifest written by ``plot_track``, or None when the track has no figures."""
    path = manifest_path(out_dir, track)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _remove_track_files(out_dir: Path, track: str) -> None:
    plots = out_dir / "plots"
    for path in [plots / f"{track}.png", manifest_path(out_dir, track), *plots.glob(f"{track}-*.svg")]:
        path.unlink(missing_ok=True)


def _saved(figure: PlotFigure, fmt: str, salt: str, dpi: float | None = None) -> bytes:
    buffer = io.BytesIO()
    # a salt per figure: the SVG ids (clip paths, markers) differ between the figures inlined into one page, and
    # the same results give the same file
    with matplotlib.rc_context({"svg.hashsalt": salt}):
        figure.figure.savefig(buffer, format=fmt, dpi=dpi, metadata={"Date": None} if fmt == "svg" else None)
    return buffer.getvalue()


def plot_track(out_dir: str | os.PathLike[str], track: str, df: pd.DataFrame, summary: dict[str, Any] | None
               ) -> list[Path]:
    """Write the track's figures (``plots/<track>-<slug>.svg``), its first figure as ``plots/<track>.png`` and the
    manifest ``plots/<track>.json``, each atomically, replacing the track's earlier files; return the figure paths
    (the SVGs, then the PNG)."""
    out_dir = Path(out_dir)
    with plot_style():
        figures = track_figures(track, df)
        if not figures:
            raise ValueError(f"no figure for track {track!r}")
        images = [(f"{track}-{f.slug}.svg", _saved(f, "svg", f"{track}-{f.slug}")) for f in figures]
        headline = _saved(figures[0], "png", f"{track}-png", dpi=HEADLINE_PNG_DPI)
    _remove_track_files(out_dir, track)
    written = [atomic_write_bytes(out_dir / "plots" / name, data) for name, data in images]
    written.append(atomic_write_bytes(out_dir / "plots" / f"{track}.png", headline))
    manifest = {
        "track": track,
        "title": TRACKS[track].title if track in TRACKS else track,
        "footnote": footnote(track, summary, df),
        "headline_png": f"{track}.png",
        "figures": [{"file": name, "slug": f.slug, "question": f.question, "caption": f.caption, "wide": f.wide}
                    for (name, _), f in zip(images, figures, strict=True)],
    }
    atomic_write_bytes(manifest_path(out_dir, track), json.dumps(manifest, indent=2).encode("utf-8"))
    return written


def render_plots(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Plot every track whose Parquet file exists and has rows; the stale figures of a now-empty track are removed.

    A track whose figures fail (columns missing from its contract, say) gets no files and one line on stderr; the
    others are still drawn. Returns every figure file written."""
    out_dir = Path(out_dir)
    summary = read_summary(out_dir)
    written: list[Path] = []
    for track in PLOTTERS:
        df = read_track(out_dir, track)
        if df is None:
            continue
        if df.empty:
            _remove_track_files(out_dir, track)
            continue
        try:
            written += plot_track(out_dir, track, df, summary)
        except Exception as exc:  # noqa: BLE001 - one broken figure must not cost the report; the HTML says so
            _remove_track_files(out_dir, track)
            print(f"loaderbench: could not plot {track}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return written


__all__ = [
    "FORMAT_COLORS",
    "LOADER_HATCHES",
    "LOADER_MARKERS",
    "PlotFigure",
    "footnote",
    "format_color",
    "grouped_bars",
    "loader_hatch",
    "loader_marker",
    "manifest_path",
    "pick_common",
    "plot_style",
    "plot_track",
    "read_manifest",
    "render_plots",
    "spread_note",
    "track_figures",
]
