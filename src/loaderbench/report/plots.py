"""One PNG per track (``out_dir/plots/<track>.png``) with the seeds' panels.

Every bar or point is the median across repeats with a min-max error bar; formats are the groups, loaders the hue;
one row of panels per image size. Figures are built on ``matplotlib.figure.Figure`` (Agg canvas, no pyplot), so
plotting touches no global backend state.
"""

from __future__ import annotations

import io
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullFormatter

from loaderbench.results import (
    NATIVE,
    TRACKS,
    atomic_write_bytes,
    loader_label,
    medians,
    param_text,
    peer_label,
    read_summary,
    read_track,
)

LOADER_COLORS = {"naive": "#d62728", "preloaded": "#1f77b4", "decode": "#ff7f0e", "native": "#2ca02c"}
_SPARE_COLORS = ("#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
_HATCHES = ("", "//", "..", "xx", "\\\\", "oo")
_LINESTYLES = ("-", "--", ":", "-.")
_MARKERS = ("o", "s", "^", "D", "v", "P")
# The seeds' thresholds (docs of Tracks 3 and 4): (upper bound in %, reading, band colour) per level.
_GOOD, _MID, _BAD = "#2ca02c", "#ff9900", "#d62728"
DATA_WAIT_LEVELS = ((30.0, "not a bottleneck", _GOOD), (50.0, "significant", _MID), (None, "bottleneck", _BAD))
OVERHEAD_LEVELS = ((10.0, "negligible", _GOOD), (30.0, "measurable", _MID), (None, "significant", _BAD))


def loader_color(loader: Any, known: Sequence[Any] = ()) -> str:
    """A stable colour per loader (baselines and native fixed; others from a spare palette)."""
    if loader in LOADER_COLORS:
        return LOADER_COLORS[loader]
    others = [v for v in known if v not in LOADER_COLORS]
    index = others.index(loader) if loader in others else 0
    return _SPARE_COLORS[index % len(_SPARE_COLORS)]


def _format_colors(labels: Sequence[str]) -> dict[str, Any]:
    palette = [*(f"C{i}" for i in range(10)), *_SPARE_COLORS]
    return {label: palette[i % len(palette)] for i, label in enumerate(labels)}


def _unique(values: pd.Series) -> list[Any]:
    """Distinct values in order of appearance (the medians table is already in display order)."""
    return list(dict.fromkeys(values.tolist()))


def _label(row: pd.Series | dict[str, Any]) -> str:
    label = row.get("format_label")
    if label is None or (isinstance(label, float) and math.isnan(label)):
        label = row.get("format", "?")
    return str(label)


def _with_labels(table: pd.DataFrame) -> pd.DataFrame:
    return table.assign(_group=[_label(r) for _, r in table.iterrows()])


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


def _errors(table: pd.DataFrame, metric: str, scale: float = 1.0) -> np.ndarray:
    med = table[metric].to_numpy(dtype=float) * scale
    low = table.get(f"{metric}_min", table[metric]).to_numpy(dtype=float) * scale
    high = table.get(f"{metric}_max", table[metric]).to_numpy(dtype=float) * scale
    err = np.vstack([med - low, high - med])
    return np.nan_to_num(np.clip(err, 0, None))


def _bar_positions(
    table: pd.DataFrame, groups: Sequence[str], combos: list[tuple[Any, Any]], hue: str, hatch_by: str | None
) -> dict[int, dict[tuple[Any, Any], float]]:
    """Per group, the offset (in bar widths) of each bar present there, centred: a format with one loader gets
    one centred bar rather than a gap for every loader it does not have."""
    positions: dict[int, dict[tuple[Any, Any], float]] = {}
    for index, group in enumerate(groups):
        in_group = table[table["_group"] == group]
        present = [c for c in combos if not in_group[(in_group[hue] == c[0]) & _eq(in_group, hatch_by, c[1])].empty]
        positions[index] = {c: j - (len(present) - 1) / 2 for j, c in enumerate(present)}
    return positions


def grouped_bars(
    ax: Axes,
    table: pd.DataFrame,
    metric: str,
    *,
    groups: Sequence[str],
    hue: str = "loader",
    hatch_by: str | None = None,
    log: bool = False,
    scale: float = 1.0,
    colors: Callable[[Any], str] | None = None,
    annotate: Callable[[float], str] | None = None,
) -> list[Any]:
    """Bars of ``metric`` (median, min-max error bars) per group (``table._group``), one bar per hue value (and per
    ``hatch_by`` value). Returns legend handles."""
    hues = _unique(table[hue])
    hatches = _unique(table[hatch_by]) if hatch_by else [None]
    combos = [(h, t) for h in hues for t in hatches if not table[(table[hue] == h) & _eq(table, hatch_by, t)].empty]
    colors = colors or (lambda value: loader_color(value, hues))
    positions = _bar_positions(table, groups, combos, hue, hatch_by)
    width = 0.8 / max([len(v) for v in positions.values()] + [1])
    for h, t in combos:
        sub = table[(table[hue] == h) & _eq(table, hatch_by, t)]
        sub = sub[sub[metric].notna()]
        if log:
            sub = sub[sub[metric] > 0]
        if sub.empty:
            continue
        x = np.array([g + positions[g][(h, t)] * width for g in (groups.index(n) for n in sub["_group"])])
        heights = sub[metric].to_numpy(dtype=float) * scale
        bars = ax.bar(
            x,
            heights,
            width=width * 0.95,
            color=colors(h),
            hatch=_HATCHES[hatches.index(t) % len(_HATCHES)] if hatch_by else "",
            edgecolor="white" if not hatch_by else "#333333",
            linewidth=0.4,
            yerr=_errors(sub, metric, scale),
            capsize=2,
            error_kw={"elinewidth": 0.8, "ecolor": "#222222"},
        )
        if annotate is not None:
            for bar, value in zip(bars, heights, strict=True):
                ax.annotate(
                    annotate(value),
                    (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                    xytext=(0, 3),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                )
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30 if len(groups) > 3 else 0, ha="right" if len(groups) > 3 else "center")
    ax.set_xlim(-0.6, len(groups) - 0.4)
    if log:
        _log_y(ax)
    ax.grid(axis="y", alpha=0.3, which="both" if log else "major")
    ax.set_axisbelow(True)
    handles = [Patch(facecolor=colors(h), label=str(h)) for h in hues]
    if hatch_by and len(hatches) > 1:
        handles += [
            Patch(facecolor="white", edgecolor="#333333", hatch=_HATCHES[j % len(_HATCHES)], label=f"{hatch_by}={t}")
            for j, t in enumerate(hatches)
        ]
    return handles


def _log_y(ax: Axes) -> None:
    """Log y axis; call after plotting. Over a wide range only decades are labelled (minor labels crowd the axis)."""
    ax.set_yscale("log")
    low, high = ax.get_ylim()
    if low > 0 and high / low > 30:  # under ~1.5 decades the minor labels are the only ones: keep them
        ax.yaxis.set_minor_formatter(NullFormatter())


def _eq(table: pd.DataFrame, column: str | None, value: Any) -> pd.Series:
    if column is None:
        return pd.Series(True, index=table.index)
    if isinstance(value, float) and math.isnan(value):
        return table[column].isna()
    return table[column] == value


def _no_data(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=9, color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])


def _title(ax: Axes, text: str, size: str, multi_size: bool, note: str = "") -> None:
    prefix = f"[{size}] " if multi_size else ""
    suffix = f"\n({note})" if note else ""
    ax.set_title(prefix + text + suffix, fontsize=9)


def footnote(track: str, summary: dict[str, Any] | None, df: pd.DataFrame) -> str:
    """The config essentials under every figure: images, sizes, dtype, repeats, preset, machine."""
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


# ----------------------------------------------------------------------------------------------- per track


def _rows(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    if "image_size" not in table.columns:
        return [("", table)]
    return [(str(size), table[table["image_size"] == size]) for size in _unique(table["image_size"])]


def _plot_getitem(fig: Figure, table: pd.DataFrame, df: pd.DataFrame) -> list[Any]:
    rows = _rows(table)
    overhead_all = transform_overhead(df)
    accesses = _unique(table["access"]) if "access" in table.columns else [None]
    transforms = _unique(table["transform"]) if "transform" in table.columns else [None]
    base = "none" if "none" in transforms else transforms[0]
    axes = fig.subplots(len(rows), len(accesses) + 2, squeeze=False)
    handles: list[Any] = []
    for r, (size, part) in enumerate(rows):
        part = _with_labels(part)
        groups = _unique(part["_group"])
        plain = part[_eq(part, "transform" if base is not None else None, base)]
        for c, access in enumerate(accesses):
            sub = plain[_eq(plain, "access" if access is not None else None, access)]
            handles = grouped_bars(axes[r][c], sub, "p50_ms", groups=groups, log=True) or handles
            axes[r][c].set_ylabel("p50 latency per sample (ms, log)")
            _title(axes[r][c], f"__getitem__ p50 latency, {access} access", size, len(rows) > 1, f"transform={base}")
        ax = axes[r][len(accesses)]
        hatch = "access" if len(accesses) > 1 else None
        handles_tp = grouped_bars(ax, plain, "samples_per_s", groups=groups, hatch_by=hatch, log=True)
        handles = handles_tp if len(handles_tp) > len(handles) else handles
        ax.set_ylabel("samples/s (log)")
        _title(ax, "throughput", size, len(rows) > 1, f"transform={base}")
        ax = axes[r][len(accesses) + 1]
        extra = [t for t in transforms if t != base]
        if not extra:
            _no_data(ax, "one transform measured:\nno overhead to show")
            _title(ax, "transform overhead", size, len(rows) > 1)
            continue
        overhead = overhead_all[overhead_all["image_size"] == size] if size else overhead_all
        overhead = _with_labels(overhead)
        h = grouped_bars(ax, overhead, "added_ms", groups=groups, hatch_by="transform" if len(extra) > 1 else None)
        handles = h if len(h) > len(handles) else handles
        ax.axhline(0, color="#444444", linewidth=0.8)
        ax.set_ylabel("added p50 latency (ms)")
        note = ", ".join(map(str, extra)) + f" vs {base}; per repeat, all access patterns"
        _title(ax, "transform overhead", size, len(rows) > 1, note)
    return handles


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


def _line_panel(
    ax: Axes, table: pd.DataFrame, metric: str, x: str, format_colors: dict[str, Any], series: list[Any], log: bool
) -> None:
    """One line per format (colour) x series (line style, ``table._series``). A native series measured at one ``x``
    only (in-process: ``num_workers`` 0) is its point plus a thin level line across the panel, so it reads as the
    level the worker counts are compared with."""
    x_values = sorted(table[x].dropna().unique())
    for (group, name), sub in table.groupby(["_group", "_series"], sort=False, dropna=False):
        sub = sub.sort_values(x)
        sub = sub[sub[metric].notna() & ((sub[metric] > 0) if log else True)]
        if sub.empty:
            continue
        j = series.index(name) if name in series else 0
        style = {"color": format_colors[group], "linestyle": _LINESTYLES[j % len(_LINESTYLES)]}
        ax.errorbar(
            sub[x].to_numpy(dtype=float),
            sub[metric].to_numpy(dtype=float),
            yerr=_errors(sub, metric),
            marker=_MARKERS[j % len(_MARKERS)],
            markersize=4,
            linewidth=1.2,
            capsize=2,
            **style,
        )
        if (sub["loader"] == NATIVE).all() and sub[x].nunique() == 1 and len(x_values) > 1:
            ax.hlines(sub[metric].iloc[0], x_values[0], x_values[-1], linewidth=0.9, alpha=0.6, **style)
    ax.set_xticks(x_values)
    ax.set_xlabel(x)
    if log:
        _log_y(ax)
    ax.grid(alpha=0.3, which="both" if log else "major")


def _line_handles(format_colors: dict[str, Any], series: list[Any]) -> list[Any]:
    handles: list[Any] = [Patch(facecolor=color, label=group) for group, color in format_colors.items()]
    handles += [
        Line2D([], [], color="#333333", linestyle=_LINESTYLES[j % 4], marker=_MARKERS[j % 6], label=str(name))
        for j, name in enumerate(series)
    ]
    return handles


def _with_series(table: pd.DataFrame) -> pd.DataFrame:
    """``_series``: the loader, with its thread count when it has one (``native ×2 threads``)."""
    threads = table["num_threads"] if "num_threads" in table.columns else pd.Series(math.nan, index=table.index)
    return table.assign(_series=[loader_label(a, b) for a, b in zip(table["loader"], threads, strict=True)])


def _plot_dataloader(fig: Figure, table: pd.DataFrame, df: pd.DataFrame) -> list[Any]:
    # The DataLoader settings pick among the torch rows; the native rows have none of them and are all kept.
    native = table["loader"] == NATIVE
    torch_rows, note = pick_common(table[~native], ("pin_memory", "persistent_workers", "prefetch_factor"))
    table = _with_series(table[table.index.isin(torch_rows.index) | native])
    if native.any():
        note = ", ".join(filter(None, [note, "native: in-process, its level drawn across"]))
    rows = _rows(table)
    batch_sizes = sorted(table["batch_size"].dropna().unique()) if "batch_size" in table.columns else [None]
    axes = fig.subplots(len(rows), len(batch_sizes) + 2, squeeze=False)
    labelled = _with_labels(table)
    format_colors = _format_colors(_unique(labelled["_group"]))
    # baselines first, then the native thread counts in order (the table is sorted by format first)
    loaders = sorted(_unique(table["_series"]), key=lambda name: str(name).startswith(NATIVE))
    for r, (size, part) in enumerate(rows):
        part = _with_labels(part)
        for c, batch in enumerate(batch_sizes):
            sub = part[_eq(part, "batch_size" if batch is not None else None, batch)]
            _line_panel(axes[r][c], sub, "samples_per_s", "num_workers", format_colors, loaders, log=True)
            axes[r][c].set_ylabel("samples/s (log)")
            _title(axes[r][c], f"throughput, batch_size={batch}", size, len(rows) > 1, note)
        biggest = part[_eq(part, "batch_size" if batch_sizes[-1] is not None else None, batch_sizes[-1])]
        ax = axes[r][len(batch_sizes)]
        _line_panel(ax, biggest, "first_batch_ms", "num_workers", format_colors, loaders, log=True)
        ax.set_ylabel("first batch (ms, log)")
        _title(ax, f"start-up: first batch, batch_size={batch_sizes[-1]}", size, len(rows) > 1)
        ax = axes[r][len(batch_sizes) + 1]
        # PSS, not USS: after fork the parent's pages are shared and drop out of every process's USS, so a
        # USS sum undercounts; PSS counts each shared page once across the tree.
        memory = "peak_pss_mb" if "peak_pss_mb" in biggest.columns else "peak_uss_mb"
        if memory in biggest.columns and biggest[memory].notna().any():
            _line_panel(ax, biggest, memory, "num_workers", format_colors, loaders, log=False)
            ax.set_ylabel(f"peak {memory.split('_')[1].upper()} incl. workers (MB)")
        else:
            _no_data(ax, "no memory figures")
        _title(ax, f"peak memory, batch_size={batch_sizes[-1]}", size, len(rows) > 1)
    return _line_handles(format_colors, loaders)


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
        ax.text(
            0.995,
            min(high, top) - 0.01 * top,
            label,
            transform=ax.get_yaxis_transform(),
            ha="right",
            va="top",
            fontsize=7,
            color="#444444",
            bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
            zorder=5,
        )
        low = high


def _plot_end_to_end(fig: Figure, table: pd.DataFrame, df: pd.DataFrame) -> list[Any]:
    # num_workers is not picked: the native row runs in-process (0) whatever the torch rows use.
    table, note = pick_common(table, ("mode", "batch_size"))
    native = _with_series(table[table["loader"] == NATIVE]) if "loader" in table.columns else table.iloc[:0]
    if not native.empty:
        note = ", ".join(filter(None, [note, "native = " + " / ".join(map(str, _unique(native["_series"])))]))
    rows = _rows(table)
    axes = fig.subplots(len(rows), 3, squeeze=False)
    handles: list[Any] = []
    for r, (size, part) in enumerate(rows):
        part = _with_labels(part)
        groups = _unique(part["_group"])
        loaders = _unique(part["loader"])
        ax = axes[r][0]
        positions = _bar_positions(part, groups, [(loader, None) for loader in loaders], "loader", None)
        width = 0.8 / max([len(v) for v in positions.values()] + [1])
        for loader in loaders:
            sub = part[part["loader"] == loader]
            x = np.array([g + positions[g][(loader, None)] * width for g in (groups.index(n) for n in sub["_group"])])
            wait = sub["data_wait_p50_ms"].to_numpy(dtype=float)
            compute = sub["compute_p50_ms"].to_numpy(dtype=float)
            color = loader_color(loader, loaders)
            ax.bar(x, wait, width=width * 0.95, color=color, edgecolor="white", linewidth=0.4)
            ax.bar(x, compute, bottom=wait, width=width * 0.95, color=color, alpha=0.35, hatch="//", edgecolor=color)
            ax.errorbar(
                x,
                sub["step_p50_ms"].to_numpy(dtype=float),
                yerr=_errors(sub, "step_p50_ms"),
                fmt="_",
                color="black",
                markersize=8,
                capsize=2,
                elinewidth=0.8,
            )
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels(groups, rotation=30 if len(groups) > 3 else 0, ha="right" if len(groups) > 3 else "center")
        ax.set_ylabel("per step, p50 (ms)")
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        _title(ax, "step time: data wait (solid) + compute (hatched)", size, len(rows) > 1, note)
        ax = axes[r][1]
        handles = grouped_bars(ax, part, "data_wait_fraction", groups=groups, scale=100.0)
        _level_bands(ax, DATA_WAIT_LEVELS, top=100.0)
        ax.set_ylabel("data wait fraction (%)")
        _title(ax, "time waiting for data", size, len(rows) > 1, note)
        ax = axes[r][2]
        grouped_bars(ax, part, "images_per_s", groups=groups, log=True)
        ax.set_ylabel("images/s (log)")
        _title(ax, "end-to-end throughput", size, len(rows) > 1, note)
    handles += [
        Line2D([], [], color="black", marker="_", linestyle="", markersize=10, label="step p50 (min-max)"),
        Patch(facecolor="#999999", alpha=0.35, hatch="//", edgecolor="#999999", label="compute"),
    ]
    return handles


_COMPONENTS = (
    ("numpy_p50_ms", "numpy load", "#4c72b0"),
    ("conversion_p50_ms", "conversion to torch", "#dd8452"),
    ("torch_p50_ms", "total (load + convert)", "#55a868"),
)


def _percent_label(value: float) -> str:
    return f"{value:.0f}%" if abs(value) >= 10 else f"{value:.1f}%"


def _plot_conversion(fig: Figure, table: pd.DataFrame, df: pd.DataFrame) -> list[Any]:
    table, note = pick_common(table, ("batch_size",))
    rows = _rows(table)
    loaders = _unique(table["loader"])
    labelled = _with_labels(table)
    # One breakdown panel per loader, showing only the formats it ran on, as wide as their number.
    panel_groups = {loader: _unique(labelled[labelled["loader"] == loader]["_group"]) for loader in loaders}
    all_groups = _unique(labelled["_group"])
    ratios = [max(len(panel_groups[loader]), 1.5) for loader in loaders] + [max(len(all_groups), 1.5)]
    axes = fig.subplots(len(rows), len(loaders) + 1, squeeze=False, gridspec_kw={"width_ratios": ratios})
    colors = {label: color for _, label, color in _COMPONENTS}
    handles: list[Any] = []
    for r, (size, part) in enumerate(rows):
        part = _with_labels(part)
        groups = all_groups
        for c, loader in enumerate(loaders):
            sub = part[part["loader"] == loader]
            long = pd.concat(
                [
                    sub.assign(
                        _component=label,
                        _value=sub[metric],
                        _value_min=sub.get(f"{metric}_min", sub[metric]),
                        _value_max=sub.get(f"{metric}_max", sub[metric]),
                    )
                    for metric, label, _ in _COMPONENTS
                    if metric in sub.columns
                ],
                ignore_index=True,
            )
            ax = axes[r][c]
            if long.empty:
                _no_data(ax, f"no {loader} rows")
            else:
                panel = panel_groups[loader]
                grouped_bars(ax, long, "_value", groups=panel, hue="_component", log=True, colors=colors.__getitem__)
                if len(panel) <= 3:  # a narrow panel: slanted names do not run into each other
                    ax.set_xticklabels(panel, rotation=30, ha="right")
            ax.set_ylabel("p50 per sample (ms, log)")
            load = "load = zero-copy view of the Arrow buffer" if loader == NATIVE else ""
            _title(ax, f"time breakdown, loader={loader}", size, len(rows) > 1, ", ".join(filter(None, [note, load])))
        ax = axes[r][len(loaders)]
        handles = grouped_bars(ax, part, "overhead_pct", groups=groups, annotate=_percent_label)
        top = float(np.nanmax(part["overhead_pct_max"].to_numpy(dtype=float), initial=0.0))
        _level_bands(ax, OVERHEAD_LEVELS, top=max(40.0, top * 1.15))
        ax.set_ylabel("mean conversion / mean total (%)")
        _title(ax, "conversion overhead", size, len(rows) > 1, note)
    return [Patch(facecolor=color, label=label) for _, label, color in _COMPONENTS] + handles


def _plot_peers(fig: Figure, table: pd.DataFrame, df: pd.DataFrame) -> list[Any]:
    """One panel per dataset: samples/s per peer x variant (median over epochs, min-max bars), fastest first and
    marked; peers that did not run are named under the panel with their status."""
    datasets = _unique(table["dataset"])
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=True):
        part = table[table["dataset"] == dataset]
        ran = part[(part["status"] == "ok") & part["samples_per_s"].notna()].sort_values("samples_per_s")
        missing = part[part["status"] != "ok"]
        if ran.empty:
            _no_data(ax, "no peer ran")
        else:
            y = np.arange(len(ran))
            colors = [_GOOD if bool(r["fastest"]) else loader_color(r["loader"], _unique(table["loader"]))
                      for _, r in ran.iterrows()]
            ax.barh(y, ran["samples_per_s"], color=colors, xerr=_errors(ran, "samples_per_s"), capsize=2,
                    error_kw={"elinewidth": 0.8, "ecolor": "#222222"})
            ax.set_yticks(y)
            ax.set_yticklabels([peer_label(r) + (" (fastest)" if bool(r["fastest"]) else "")
                                for _, r in ran.iterrows()], fontsize=8)
            ax.set_xlabel("samples/s (median over epochs; higher is better)")
            ax.grid(axis="x", alpha=0.3)
            ax.set_axisbelow(True)
        if not missing.empty:
            notes = "; ".join(f"{peer_label(r)}: {r['status']}" for _, r in missing.iterrows())
            ax.set_title(f"{dataset}\nnot run: {notes}", fontsize=8)
        else:
            ax.set_title(str(dataset), fontsize=9)
    return []


PLOTTERS: dict[str, Callable[[Figure, pd.DataFrame, pd.DataFrame], list[Any]]] = {
    "getitem": _plot_getitem,
    "dataloader": _plot_dataloader,
    "end_to_end": _plot_end_to_end,
    "conversion": _plot_conversion,
    "peers": _plot_peers,
}
_PANEL_COLUMNS = {"end_to_end": 3}


def _figure_size(track: str, table: pd.DataFrame) -> tuple[float, float]:
    n_rows = table["image_size"].nunique() if "image_size" in table.columns else 1
    n_groups = table["format"].nunique() if "format" in table.columns else 1
    if track == "peers":  # horizontal bars: one panel per dataset, one bar per peer x variant
        n_panels = table["dataset"].nunique() if "dataset" in table.columns else 1
        return (min(7.0 * n_panels, 28.0), 1.6 + 0.3 * len(table) / max(n_panels, 1))
    if track == "getitem":
        n_cols = (table["access"].nunique() if "access" in table.columns else 1) + 2
    elif track == "dataloader":
        n_cols = (table["batch_size"].nunique() if "batch_size" in table.columns else 1) + 2
    elif track == "conversion":
        n_cols = (table["loader"].nunique() if "loader" in table.columns else 1) * 0.6 + 1
    else:
        n_cols = _PANEL_COLUMNS.get(track, 2)
    n_loaders = table["loader"].nunique() if "loader" in table.columns else 1
    panel_width = max(3.8, 1.0 + 0.25 * n_groups * max(n_loaders, 2))
    n_cols = max(n_cols, 2)
    return (min(6 + panel_width * n_cols, 60.0), 1.6 + 3.6 * n_rows)


def plot_track(out_dir: str | os.PathLike[str], track: str, df: pd.DataFrame, summary: dict[str, Any] | None) -> Path:
    """Render one track's figure to ``out_dir/plots/<track>.png`` (atomically) and return the path."""
    table = medians(track, df)
    fig = Figure(figsize=_figure_size(track, table), dpi=110, layout="constrained")
    handles = PLOTTERS[track](fig, table, df)
    title = TRACKS[track].title
    fig.suptitle(f"{title}\n{footnote(track, summary, df)}", fontsize=10)
    if handles:
        fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 10), fontsize=8, frameon=False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write_bytes(Path(out_dir) / "plots" / f"{track}.png", buffer.getvalue())


def render_plots(out_dir: str | os.PathLike[str]) -> list[Path]:
    """Plot every track whose Parquet file exists and has rows; a stale PNG of a now-empty track is removed.

    A track whose figure fails (columns missing from its contract, say) gets no PNG and one line on stderr; the
    others are still drawn."""
    out_dir = Path(out_dir)
    summary = read_summary(out_dir)
    written = []
    for track in PLOTTERS:
        df = read_track(out_dir, track)
        if df is None:
            continue
        if df.empty:
            (out_dir / "plots" / f"{track}.png").unlink(missing_ok=True)
            continue
        try:
            written.append(plot_track(out_dir, track, df, summary))
        except Exception as exc:  # noqa: BLE001 - one broken figure must not cost the report; the HTML says so
            (out_dir / "plots" / f"{track}.png").unlink(missing_ok=True)
            print(f"loaderbench: could not plot {track}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return written


__all__ = ["footnote", "grouped_bars", "pick_common", "plot_track", "render_plots"]
