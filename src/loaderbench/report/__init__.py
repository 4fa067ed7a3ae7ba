"""Turning saved results into something to read: PNG plots, a self-contained HTML report, terminal tables, and the
comparison of two runs."""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from loaderbench.results import (
    COMMON_KEYS,
    HIGHER_IS_BETTER,
    TRACKS,
    headline_metrics,
    medians,
    param_text,
    read_track,
    split_columns,
)

COMPARE_COLUMNS = (
    "track",
    "format",
    "format_label",
    "loader",
    "image_size",
    "dataset",
    "params",
    "metric",
    "a",
    "b",
    "ratio",
    "higher_is_better",
    "a_min",
    "a_max",
    "b_min",
    "b_max",
    "within_spread",
)


def render_report(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Render ``plots/<track>.png`` for every track with rows, then ``report.html`` with the sections registered in
    ``loaderbench.sections`` (the profiler's, the sparse benchmark's); returns
    ``{"plots": [Path, ...], "html": Path}``."""
    from loaderbench.report.html import render_html
    from loaderbench.report.plots import render_plots
    from loaderbench.sections import html_sections

    plots = render_plots(out_dir)
    return {"plots": plots, "html": render_html(out_dir, extra_sections=html_sections(out_dir))}


def _spreads(joined: pd.DataFrame, metric: str) -> dict[str, pd.Series]:
    """Each run's min and max over its repeats of ``metric``, and whether the two ranges overlap."""
    ends = {f"{run}_{end}": joined[f"{metric}_{end}_{run}"].astype(float) for run in "ab" for end in ("min", "max")}
    overlap = (ends["a_min"] <= ends["b_max"]) & (ends["b_min"] <= ends["a_max"])
    return {**ends, "within_spread": overlap}


def compare(dir_a: str | os.PathLike[str], dir_b: str | os.PathLike[str]) -> pd.DataFrame:
    """Per configuration present in both runs, the medians of each headline metric and their ratio b/a.

    Long format, one row per (track, configuration, metric), columns ``COMPARE_COLUMNS``; ``params`` is the
    track's other key parameters as ``"name=value, ..."``; ``a_min`` .. ``b_max`` are each run's spread over its
    repeats, and ``within_spread`` says whether the two ranges overlap (the difference is then within the noise of
    the repeats). Configurations found in one run only are left out.
    """
    frames = []
    for track in TRACKS:
        df_a, df_b = read_track(dir_a, track), read_track(dir_b, track)
        if df_a is None or df_b is None or df_a.empty or df_b.empty:
            continue
        med_a, med_b = medians(track, df_a), medians(track, df_b)
        keys_b = split_columns(track, df_b)[0]
        keys = [k for k in split_columns(track, df_a)[0] if k in keys_b]
        metrics = [m for m in headline_metrics(track, df_a) if m in headline_metrics(track, df_b)]
        if not keys or not metrics:
            continue
        label = ["format_label"] if "format_label" in med_a.columns else []
        spread = [f"{m}_{end}" for m in metrics for end in ("min", "max")]
        joined = med_a[[*keys, *label, *metrics, *spread]].merge(
            med_b[[*keys, *metrics, *spread]], on=keys, how="inner", suffixes=("_a", "_b")
        )
        params = [k for k in keys if k not in COMMON_KEYS]
        per_track = []
        for m_index, metric in enumerate(metrics):
            a = joined[f"{metric}_a"].astype(float)
            b = joined[f"{metric}_b"].astype(float)
            per_track.append(
                pd.DataFrame(
                    {
                        "_configuration": range(len(joined)),
                        "_metric": m_index,
                        "track": track,
                        "format": joined.get("format"),
                        "format_label": joined["format_label"] if label else joined.get("format"),
                        "loader": joined.get("loader"),
                        "image_size": joined.get("image_size"),
                        "dataset": joined.get("dataset"),
                        "params": [", ".join(f"{k}={param_text(r[k])}" for k in params) for _, r in joined.iterrows()],
                        "metric": metric,
                        "a": a,
                        "b": b,
                        "ratio": (b / a.where(a != 0)).astype(float),
                        "higher_is_better": metric in HIGHER_IS_BETTER,
                        **_spreads(joined, metric),
                    }
                )
            )
        ordered = pd.concat(per_track, ignore_index=True).sort_values(["_configuration", "_metric"], kind="stable")
        frames.append(ordered)
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=list(COMPARE_COLUMNS))
    return pd.concat(frames, ignore_index=True)[list(COMPARE_COLUMNS)]


__all__ = ["COMPARE_COLUMNS", "compare", "render_report"]
