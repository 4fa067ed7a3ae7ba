"""The profile's part of ``report.html``: ``(title, html)`` sections for
``loaderbench.report.html.render_html(out_dir, extra_sections=profile_sections(out_dir))``.

Self-contained (the PNG embedded as base64); every value from the files is escaped here.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from loaderbench.profile.analysis import pct, times
from loaderbench.profile.output import AB, AU, STAGES, SUMMARY
from loaderbench.profile.plots import PLOT_NAME
from loaderbench.report.html import embedded_png, html_table
from loaderbench.report.html import escape_html as _e
from loaderbench.results import format_number, read_track


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return _e(format_number(value))


def _table(rows: list[list[str]], header: list[str]) -> str:
    """``rows`` of already-escaped cells under an escaped header."""
    return html_table(header, ([f'<td class="num">{c}</td>' for c in row] for row in rows))


def _image(out_dir: Path) -> str:
    return embedded_png(out_dir / "plots" / PLOT_NAME, "pipeline profile plot", "The profile plot was not rendered.")


def _stages_html(stages: pd.DataFrame) -> str:
    table = stages[~stages["cached"].astype(bool) & stages["compute"].str.endswith("model")]
    rows = [
        [_e(r["config"]), _e(r["mode"]), _e(r["scope"]), _e(r["stage"]), _num(r["per_sample_p50_ms"]),
         _num(r["per_sample_mean_ms"]), _num(r["per_batch_ms"]), _e(pct(r["share"])),
         _e(f"{pct(r['share_min'])} – {pct(r['share_max'])}"), _e(times(r["amdahl_ceiling"]))]
        for _, r in table.iterrows()
    ]  # fmt: skip
    header = ["configuration", "mode", "scope", "stage", "p50 ms/sample", "mean ms/sample", "ms/batch", "share",
              "share min–max", "Amdahl ceiling"]  # fmt: skip
    return _table(rows, header)


def _ab_html(ab: pd.DataFrame) -> str:
    rows = []
    for _, r in ab.iterrows():
        if not r["available"]:
            rows.append([_e(r["experiment"]), _e(r["variant"]), _e(f"not measured: {r['reason']}")] + ["-"] * 8)
            continue
        rows.append([
            _e(r["experiment"]), _e(r["variant"]), _e(r["config"]), _num(r["samples_per_s"]),
            _e(times(r["predicted_speedup"])), _e(times(r["observed_speedup"])),
            _e(f"{times(r['observed_speedup_min'])} – {times(r['observed_speedup_max'])}"),
            _e(times(r["amdahl_ceiling"])), _num(r["preload_s"]), _num(r["worker_pss_mb"]), _e(r["prediction"]),
        ])  # fmt: skip
    header = ["experiment", "variant", "configuration", "samples/s", "predicted", "observed", "observed min–max",
              "ceiling", "pre-load s", "PSS MB per worker", "how predicted"]  # fmt: skip
    return _table(rows, header)


def _au_html(au: pd.DataFrame) -> str:
    rows = [
        [_e(r["config"]), _e(f"{r['au_pct']:.1f} %"), _e(f"{r['au_pct_min']:.1f} – {r['au_pct_max']:.1f} %"),
         _e("yes" if r["meets_threshold"] else "no"), _num(r["samples_per_s"]), _e(pct(r["headroom_fraction"])),
         _e(pct(r["data_wait_share"])), _num(r["first_step_ms"]), _num(r["peak_pss_mb"])]
        for _, r in au.iterrows()
    ]  # fmt: skip
    header = ["loader", "AU", "AU min–max", "meets threshold", "samples/s", "of head-room", "data wait",
              "first step ms", "peak PSS MB"]  # fmt: skip
    return _table(rows, header)


def profile_sections(out_dir: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """The profile's report sections (empty when ``out_dir`` holds no profile results)."""
    out = Path(out_dir)
    stages, ab, au = read_track(out, STAGES), read_track(out, AB), read_track(out, AU)
    if stages is None or ab is None or au is None:
        return []
    summary_path = out / SUMMARY
    summary = json.loads(summary_path.read_text()) if summary_path.is_file() else {}
    lines = summary.get("recommendations", [])
    au_info = summary.get("au", {})
    coverage = summary.get("coverage", {})
    intro = (
        '<p class="note">Each sample runs read → decode → transform → map_load in the Dataset, then collate and '
        "the model's forward pass in the main loop; every stage is timed with <code>perf_counter_ns</code>. With "
        "<code>num_workers=0</code> the shares add up to the step (the rest: <i>loader_overhead</i> inside "
        "<code>next()</code>, <i>other</i> in the loop body). With workers the per-sample stages run in parallel "
        "in the workers: their shares are of the workers' time, and the main process sees them only as "
        "<i>data_wait</i>. Amdahl ceiling = 1 / (1 − share): the most that making a stage free could gain.</p>"
    )
    if coverage:
        measured = pct(coverage.get("min_serial"))
        intro += f'<p class="note">{_e(coverage.get("statement", ""))} (measured: {_e(measured)}).</p>'
    advice = "<h3>What it says</h3><ul>" + "".join(f"<li>{_e(line)}</li>" for line in lines) + "</ul>" if lines else ""
    where = intro + _image(out) + advice + "<h3>Stage shares</h3>" + _stages_html(stages)
    ab_html = (
        '<p class="note">Predicted: Amdahl\'s law from the share the changed stage has in the baseline and how much '
        "faster that stage ran in the variant (with workers: Amdahl on the data wait). Observed: the ratio of "
        "samples/s, medians across repeats; with pre-load, one epoch counting the pre-load time.</p>" + _ab_html(ab)
    )
    au_html = (
        f'<p class="note">{_e(au_info.get("definition", "AU = compute time / wall time, first step excluded"))}. '
        f"Compute is emulated by a {_e(au_info.get('compute_ms', '?'))} ms sleep per step; the threshold is "
        f"{_e(au_info.get('threshold_pct', '?'))} %. The cached-batch row replays batches from memory: the most any "
        "loader change can reach.</p>" + _au_html(au)
    )
    return [
        ("Pipeline profile: where the time goes", where),
        ("Pipeline profile: A/B, predicted vs observed", ab_html),
        ("Pipeline profile: accelerator utilisation", au_html),
    ]
