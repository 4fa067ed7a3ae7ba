"""The seed's speed-vs-memory figure: samples/s against peak memory (PSS of the process and its workers), one point
per configuration (median samples/s over the warm epochs, peak memory over all), marker size by block size, colour
by method or peer. Written to ``out_dir/plots/sparse_speed_vs_memory.png``."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from loaderbench.results import atomic_write_bytes
from loaderbench.sparse.data_loader import per_config
from loaderbench.sparse.methods import NATIVE_METHODS

PLOT_NAME = "sparse_speed_vs_memory.png"
COLORS = {"np.array": "#d62728", "scipy.csr": "#ff7f0e", "native": "#2ca02c", "native_streaming": "#17becf",
          "torch": "#1f77b4", "scdataset": "#9467bd", "annbatch": "#8c564b"}
_MARKERS = {0: "o", 1: "s", 2: "^", 4: "D", 8: "v"}


def _label(row: pd.Series) -> str:
    if row["loader"] in NATIVE_METHODS:
        return f"{row['loader']} x{int(row['num_threads'])}"
    if row["loader"] in ("torch", "scdataset"):
        return f"{row['loader']} w{int(row['num_workers'])}"
    return str(row["loader"])


def speed_vs_memory(epochs: pd.DataFrame, out_dir: str | os.PathLike[str]) -> Path | None:
    """Draw the figure from epoch rows; ``None`` when no configuration has figures."""
    table = per_config(epochs)
    table = table[(table["status"] == "ok") & table["samples_per_s"].notna()] if not table.empty else table
    if table.empty:
        return None
    table = table.assign(series=table.apply(_label, axis=1))
    fig = Figure(figsize=(9, 6), dpi=110)
    ax = fig.add_subplot()
    sizes = np.log2(table["block_size"].astype(float))
    span = max(1.0, float(sizes.max() - sizes.min()))
    marker_size = 30 + 170 * (sizes - sizes.min()) / span
    handles = []
    for series, group in table.groupby("series", sort=True):
        loader = group["loader"].iloc[0]
        color = COLORS.get(loader, "#7f7f7f")
        parallel = group["num_threads"] if loader in NATIVE_METHODS else group["num_workers"]  # marker: threads/workers
        marker = _MARKERS.get(int(parallel.iloc[0]), "o") if loader in (*NATIVE_METHODS, "torch", "scdataset") else "o"
        ax.scatter(group["peak_pss_mb"], group["samples_per_s"], s=marker_size[group.index], c=color, marker=marker,
                   alpha=0.75, edgecolors="black", linewidths=0.5)
        handles.append(Line2D([], [], marker=marker, color=color, linestyle="", markeredgecolor="black",
                              label=str(series)))
    for block in sorted(table["block_size"].unique()):
        size = 30 + 170 * (np.log2(block) - sizes.min()) / span
        handles.append(Line2D([], [], marker="o", color="#bbbbbb", linestyle="", markersize=np.sqrt(size),
                              label=f"block {int(block):,} rows"))
    ax.set_xlabel("peak memory, PSS of process + workers (MiB)")
    ax.set_ylabel("samples / s (median of warm epochs)")
    ax.set_yscale("log")
    batch = ", ".join(str(b) for b in sorted(table["batch_size"].unique()))
    ax.set_title(f"Sparse cell x gene loading: speed vs memory (batch {batch}; dense float32 batches)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8, frameon=False)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return atomic_write_bytes(Path(out_dir) / "plots" / PLOT_NAME, buffer.getvalue())
