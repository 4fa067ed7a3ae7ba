"""``plots/profile.png``: stage shares per configuration (stacked bars), the A/B predicted vs observed speedups,
and accelerator utilisation per loader setting against the threshold and the cached-batch head-room.

Built on ``matplotlib.figure.Figure`` (Agg, no pyplot), like the track plots.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from loaderbench.profile.stages import WORKER
from loaderbench.results import atomic_write_bytes

PLOT_NAME = "profile.png"
STAGE_COLORS = {
    "read": "#8c564b",
    "decode": "#d62728",
    "transform": "#ff7f0e",
    "map_load": "#bcbd22",
    "collate": "#9467bd",
    "loader_overhead": "#c7c7c7",
    "data_wait": "#e377c2",
    "forward": "#1f77b4",
    "compute": "#17becf",
    "other": "#7f7f7f",
}
_SPARE = ("#2ca02c", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5")


def _color(stage: str, seen: dict[str, str]) -> str:
    if stage not in seen:
        seen[stage] = STAGE_COLORS.get(stage, _SPARE[len([s for s in seen if s not in STAGE_COLORS]) % len(_SPARE)])
    return seen[stage]


def _shares_panel(ax: Axes, stages: pd.DataFrame) -> None:
    """One horizontal stacked bar per model-loop configuration and scope."""
    table = stages[stages["compute"].str.endswith("model") & ~stages["cached"].astype(bool)]
    bars: list[tuple[str, pd.DataFrame]] = []
    for config, group in table.groupby("config", sort=False):
        for scope, part in group.groupby("scope", sort=False):
            suffix = (
                " · workers' time"
                if scope == WORKER
                else (" · main step" if group["mode"].iloc[0] == "parallel" else "")
            )
            bars.append((f"{config}{suffix}", part))
    colors: dict[str, str] = {}
    for y, (_, part) in enumerate(bars):
        left = 0.0
        for _, row in part.iterrows():
            share = float(row["share"]) if math.isfinite(row["share"]) else 0.0
            ax.barh(y, share * 100, left=left, color=_color(row["stage"], colors), edgecolor="white", linewidth=0.5)
            if share >= 0.06:
                ax.text(
                    left + share * 50, y, f"{share * 100:.0f}%", ha="center", va="center", fontsize=7, color="white"
                )
            left += share * 100
    ax.set_yticks(range(len(bars)), [label for label, _ in bars], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("share of the step (or of the workers' time) %")
    ax.set_title("Where the time goes: stage shares per configuration", fontsize=10)
    ax.legend(
        handles=[Patch(color=c, label=s) for s, c in colors.items()],
        fontsize=7,
        ncol=min(len(colors), 10),
        loc="upper center",
        bbox_to_anchor=(0.5, -0.18),
        frameon=False,
    )


def _ab_panel(ax: Axes, ab: pd.DataFrame) -> None:
    """Predicted (hatched) vs observed (solid, min-max whiskers) speedup per A/B variant; 1.0 = no change."""
    rows = ab[~ab["is_baseline"].astype(bool)].reset_index(drop=True)
    labels = []
    x = np.arange(len(rows))
    for i, row in rows.iterrows():
        where = "" if row["experiment"] == "workers" else f" w{int(row['num_workers'])}"
        labels.append(f"{row['experiment']}:\n{row['variant']}{where}")
        if not row["available"]:
            ax.text(i, 1.0, "n/a", ha="center", va="bottom", fontsize=8, color="#c62828")
            continue
        predicted = row["predicted_speedup"]
        if math.isfinite(predicted):
            ax.bar(i - 0.2, predicted, width=0.38, color="white", edgecolor="#555", hatch="//", label=None)
        observed = row["observed_speedup"]
        err = [[max(observed - row["observed_speedup_min"], 0)], [max(row["observed_speedup_max"] - observed, 0)]]
        ax.bar(i + 0.2, observed, width=0.38, color="#1f77b4", yerr=err, capsize=2)
        ceiling = row["amdahl_ceiling"]
        if math.isfinite(ceiling):
            ax.plot([i - 0.42, i + 0.42], [ceiling, ceiling], color="#d62728", linewidth=1.2)
    ax.axhline(1.0, color="#333", linewidth=0.8, linestyle=":")
    ax.set_xticks(x, labels, fontsize=7)
    ax.set_ylabel("speedup over the baseline (×)")
    ax.set_title("A/B: predicted (Amdahl) vs observed", fontsize=10)
    ax.legend(
        handles=[
            Patch(facecolor="white", edgecolor="#555", hatch="//", label="predicted"),
            Patch(color="#1f77b4", label="observed (min–max)"),
            Patch(color="#d62728", label="Amdahl ceiling"),
        ],
        fontsize=7,
        frameon=False,
    )


def _au_panel(ax: Axes, au: pd.DataFrame) -> None:
    """AU per loader setting (and cached batches) with min-max whiskers and the threshold line."""
    x = np.arange(len(au))
    colors = ["#2ca02c" if met else "#d62728" for met in au["meets_threshold"]]
    colors = ["#7f7f7f" if cached else c for c, cached in zip(colors, au["cached"].astype(bool), strict=True)]
    err = [np.maximum(au["au_pct"] - au["au_pct_min"], 0), np.maximum(au["au_pct_max"] - au["au_pct"], 0)]
    ax.bar(x, au["au_pct"], color=colors, yerr=err, capsize=2)
    for i, value in enumerate(au["au_pct"]):
        ax.text(i, value + 1, f"{value:.0f}%", ha="center", va="bottom", fontsize=7)
    threshold = float(au["threshold_pct"].iloc[0])
    ax.axhline(threshold, color="#333", linestyle="--", linewidth=1)
    ax.text(len(au) - 0.5, threshold + 1, f"threshold {threshold:g}%", ha="right", va="bottom", fontsize=7)
    ax.set_ylim(0, 110)
    ax.set_xticks(x, list(au["config"]), fontsize=7)
    ax.set_ylabel("accelerator utilisation %")
    ax.set_title(f"AU with {au['compute_ms'].iloc[0]:g} ms emulated compute per step", fontsize=10)


def plot_profile(out_dir: str | os.PathLike[str], stages: pd.DataFrame, ab: pd.DataFrame, au: pd.DataFrame,
                 subtitle: str = "") -> Path:  # fmt: skip
    """Render ``out_dir/plots/profile.png`` (atomically) and return its path."""
    fig = Figure(figsize=(14, 9), dpi=110, layout="constrained")
    grid = fig.add_gridspec(2, 2, height_ratios=[1.1, 1])
    _shares_panel(fig.add_subplot(grid[0, :]), stages)
    _ab_panel(fig.add_subplot(grid[1, 0]), ab)
    _au_panel(fig.add_subplot(grid[1, 1]), au)
    fig.suptitle("Pipeline profile" + (f"\n{subtitle}" if subtitle else ""), fontsize=11)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return atomic_write_bytes(Path(out_dir) / "plots" / PLOT_NAME, buffer.getvalue())
