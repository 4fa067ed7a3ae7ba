"""Plots, HTML report, terminal tables and ``compare`` on synthetic results that follow the column contract."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loaderbench.report import compare, render_report
from loaderbench.report.html import escape_html, render_html
from loaderbench.report.plots import read_manifest
from loaderbench.report.terminal import compare_table, summary_table
from loaderbench.results import read_track, write_summary, write_track

FORMATS = (("parquet", "Parquet (pyarrow)", "table"), ("lance", "Lance", "table"), ("tiff", "TIFF <dir>", "directory"))
LOADERS = ("naive", "preloaded", "native")
SIZES = ((32, 32), (64, 48))
REPEATS = 3
SKIPPED = {"vortex": "Vortex: cannot import vortex (ImportError: <no module>)"}


def _common(rng: np.random.Generator, fmt: tuple[str, str, str], loader: str, size: tuple[int, int], rep: int) -> dict:
    h, w = size
    return {
        "format": fmt[0],
        "format_label": fmt[1],
        "format_kind": fmt[2],
        "loader": loader,
        "dataset": f"synthetic-{h}x{w}",
        "image_size": f"{h}x{w}",
        "height": h,
        "width": w,
        "channels": 1,
        "dtype": "uint8",
        "n_images": 64,
        "repeat": rep,
    }


def _base_ms(fmt: str, loader: str, size: tuple[int, int]) -> float:
    scale = {"naive": 5.0, "preloaded": 0.05, "native": 0.01}[loader]
    return scale * (1 + 0.3 * ("parquet", "lance", "tiff").index(fmt)) * size[0] * size[1] / 1024


def synthetic_tracks(sizes: tuple[tuple[int, int], ...] = SIZES[:1], seed: int = 0) -> dict[str, pd.DataFrame]:
    """A few formats x loaders x sizes x repeats for each track, with plausible values."""
    rng = np.random.default_rng(seed)
    rows: dict[str, list[dict]] = {t: [] for t in ("getitem", "dataloader", "end_to_end", "conversion")}
    for fmt, loader, size, rep in itertools.product(FORMATS, LOADERS, sizes, range(REPEATS)):
        common = _common(rng, fmt, loader, size, rep)
        base = _base_ms(fmt[0], loader, size) * rng.uniform(0.9, 1.1)
        for access, transform in itertools.product(("sequential", "random"), ("none", "augment")):
            p50 = base * (1.2 if access == "random" else 1.0) + (0.05 if transform == "augment" else 0.0)
            rows["getitem"].append(
                common
                | {
                    "access": access,
                    "transform": transform,
                    "samples": 50,
                    "warmup": 5,
                    "mean_ms": p50 * 1.05,
                    "std_ms": p50 * 0.1,
                    "min_ms": p50 * 0.8,
                    "max_ms": p50 * 2,
                    "p50_ms": p50,
                    "p95_ms": p50 * 1.5,
                    "p99_ms": p50 * 1.8,
                    "samples_per_s": 1000 / (p50 * 1.05),
                    "setup_s": 0.01,
                }
            )
        # torch rows: num_workers 0 and 2; native rows: in-process (num_workers 0) with 1 and 2 threads
        parallel = ((0, 1), (0, 2)) if loader == "native" else ((0, None), (2, None))
        for batch, (workers, threads) in itertools.product((1, 16), parallel):
            batch_ms = base * batch / (1 + workers + (threads or 1) - 1)
            rows["dataloader"].append(
                common
                | {
                    "batch_size": batch,
                    "num_workers": workers,
                    "num_threads": threads,
                    "pin_memory": False,
                    "persistent_workers": False,
                    "prefetch_factor": 2 if workers else None,
                    "batches": 20,
                    "first_batch_ms": batch_ms + 300 * workers,
                    "p50_batch_ms": batch_ms,
                    "p95_batch_ms": batch_ms * 1.4,
                    "mean_batch_ms": batch_ms * 1.1,
                    "samples_per_s": 1000 * batch / (batch_ms * 1.1),
                    "peak_uss_mb": 200 + 150 * workers + rng.uniform(0, 5),
                    "peak_pss_mb": 260 + 150 * workers + rng.uniform(0, 5),
                    "setup_s": 0.02,
                }
            )
        wait = base * 16
        compute = 4.0
        rows["end_to_end"].append(
            common
            | {
                "mode": "inference",
                "batch_size": 16,
                "num_workers": 0,
                "num_threads": 2 if loader == "native" else None,
                "steps": 20,
                "step_p50_ms": wait + compute,
                "step_p95_ms": (wait + compute) * 1.3,
                "data_wait_p50_ms": wait,
                "compute_p50_ms": compute,
                "data_wait_fraction": wait / (wait + compute),
                "images_per_s": 16000 / (wait + compute),
            }
        )
        conv = 0.004 * size[0] * size[1] / 1024
        overhead = 100 * conv / (base + conv)
        rows["conversion"].append(
            common
            | {
                "samples": 50,
                "numpy_p50_ms": base,
                "numpy_p95_ms": base * 1.3,
                "numpy_p99_ms": base * 1.5,
                "numpy_mean_ms": base * 1.05,
                "conversion_p50_ms": conv,
                "conversion_mean_ms": conv,
                "torch_p50_ms": base + conv,
                "torch_p95_ms": (base + conv) * 1.3,
                "torch_mean_ms": (base + conv) * 1.05,
                "overhead_pct": overhead,
                "overhead_level": "low" if overhead < 10 else ("moderate" if overhead <= 30 else "high"),
                "from_numpy_shares_memory": True,
                "converted_shares_memory": False,
                "batch_size": 16,
                "batch_conversion_ms": conv * 10,
                "batch_conversion_per_sample_ms": conv * 10 / 16,
                "numpy_samples_per_s": 1000 / base,
                "torch_samples_per_s": 1000 / (base + conv),
            }
        )
    return {track: pd.DataFrame(r) for track, r in rows.items()}


CONFIG = {
    "preset": "quick",
    "data": {"n_images": 64, "sizes": [[32, 32], [64, 48]], "dtype": "uint8"},
    "getitem": {"repeats": REPEATS},
    "dataloader": {"repeats": REPEATS},
    "end_to_end": {"repeats": REPEATS},
    "conversion": {"repeats": REPEATS},
}


def write_run(out_dir: Path, tracks: dict[str, pd.DataFrame], skipped: dict[str, str] | None = None) -> Path:
    for track, df in tracks.items():
        write_track(out_dir, track, df)
    write_summary(
        out_dir,
        CONFIG,
        tracks,
        SKIPPED if skipped is None else skipped,
        {t: 1.5 for t in tracks},
        [{"name": "synthetic-32x32", "n_images": 64}],
    )
    return out_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = write_run(tmp_path_factory.mktemp("run"), synthetic_tracks(SIZES))  # two sizes: two rows of panels
    render_report(out)
    return out


TRACK_NAMES = ("getitem", "dataloader", "end_to_end", "conversion")


def test_every_file_exists_and_is_not_empty(run_dir: Path) -> None:
    for name in TRACK_NAMES:
        assert (run_dir / f"{name}.parquet").stat().st_size > 0
        png = run_dir / "plots" / f"{name}.png"  # the track's first figure, high-DPI
        assert png.stat().st_size > 10_000, png
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        manifest = read_manifest(run_dir, name)
        assert manifest is not None and len(manifest["figures"]) >= 2, name  # one figure per question
        for figure in manifest["figures"]:
            svg = (run_dir / "plots" / figure["file"]).read_text()
            assert svg.startswith("<?xml") and "<svg" in svg and len(svg) > 10_000, figure["file"]
            assert figure["file"].startswith(f"{name}-") and figure["question"]
            caption = figure["caption"].lower()
            assert "median across 3 repeats" in caption and "error bars: min-max over" in caption
    assert (run_dir / "summary.json").stat().st_size > 0
    assert (run_dir / "report.html").stat().st_size > 0


def test_html_is_self_contained_and_complete(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    for section in ("track-getitem", "track-dataloader", "track-end_to_end", "track-conversion", "how-to-read"):
        assert f'id="{section}"' in html, section
    # every figure of every track is inlined, with its caption
    figures = [f for name in TRACK_NAMES for f in read_manifest(run_dir, name)["figures"]]
    assert html.count('<svg class="plot"') == len(figures)
    for figure in figures:
        assert escape_html(figure["caption"]) in html
    assert "<?xml" not in html and "<metadata>" not in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "<link" not in html and "<script src" not in html
    # Skipped format and its reason are visible, escaped.
    assert "vortex" in html
    assert "cannot import vortex (ImportError: &lt;no module&gt;)" in html
    assert "<no module>" not in html
    # Labels from the data are escaped too, in the tables and inside the inlined SVGs.
    assert "TIFF &lt;dir&gt;" in html and "TIFF <dir>" not in html
    # Interpretation with the seeds' levels.
    assert "bottleneck" in html and "negligible" in html
    assert "native" in html


def test_medians_tables_collapsed_sortable_best_marked(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    sections = re.findall(r'<section id="(track-[a-z_]+)">(.*?)</section>', html, re.DOTALL)
    assert {name for name, _ in sections} == {f"track-{t}" for t in TRACK_NAMES}
    for name, body in sections:
        assert body.count('<details class="medians">') == 1, name  # collapsed: no "open"
        assert '<table class="sortable"><thead>' in body
        assert body.count('<tr class="best">') == len(SIZES), name  # the best row of each image size
    # the getitem best rows are the lowest p50 of their size: native on Parquet, sequential, no transform
    getitem = dict(sections)["track-getitem"]
    for row in re.findall(r'<tr class="best">(.*?)</tr>', getitem):
        assert "Parquet (pyarrow)" in row and "native" in row and "sequential" in row and ">none<" in row
    assert "★ best p50_ms (lowest) per image size" in getitem
    assert "<script>" in html and "aria-sort" in html  # the sorting script, inline


def test_colours_per_format_and_hatches_per_loader_are_fixed(run_dir: Path) -> None:
    from matplotlib.colors import to_hex  # noqa: PLC0415

    from loaderbench.report import plots  # noqa: PLC0415

    assert plots.format_color("parquet") == plots.FORMAT_COLORS["parquet"]
    assert plots.format_color("some_new_format") == plots.format_color("some_new_format")  # stable fallback
    assert plots.loader_hatch("some_peer") == plots.loader_hatch("some_peer")
    assert len({plots.loader_hatch(n) for n in plots.LOADER_HATCHES}) == len(plots.LOADER_HATCHES)
    expected = {plots.format_color(f).lower() for f, _, _ in FORMATS}
    for track in TRACK_NAMES:
        df = read_track(run_dir, track)
        with plots.plot_style():
            figures = plots.track_figures(track, df)
        for figure in figures:
            legend = figure.figure.legends[0]
            shown = {h.get_label(): h for h in legend.legend_handles}
            for fmt, label, _ in FORMATS:  # the legend's format colours are the fixed ones, in every figure
                assert to_hex(shown[label].get_facecolor()).lower() == plots.format_color(fmt).lower(), (track, label)
            bars = [p for ax in figure.figure.axes for p in ax.patches if p.get_height() > 0 and p.get_width() < 1]
            # every bar is filled with one of the formats' colours (an outlined one: drawn in it)
            fills = {to_hex(p.get_edgecolor()[:3]).lower() if f == "#ffffff" else f
                     for p, f in zip(bars, [to_hex(p.get_facecolor()[:3]).lower() for p in bars], strict=True)}
            assert fills <= expected, (track, figure.slug)
            assert figure.figure.get_figwidth() <= plots.WIDE_IN  # drawn for the page width, not wider
            assert all(len(ax.get_gridspec().get_geometry()) == 2 and ax.get_gridspec().ncols <= 2
                       for ax in figure.figure.axes)


def test_html_extra_sections_hook(run_dir: Path, tmp_path: Path) -> None:
    out = write_run(tmp_path, synthetic_tracks())
    path = render_html(out, extra_sections=[("Sparse <matrices>", "<p id='extra-body'>hello</p>")])
    html = path.read_text()
    assert "Sparse &lt;matrices&gt;" in html
    assert "<p id='extra-body'>hello</p>" in html
    assert html.index("extra-body") < html.index('id="how-to-read"')


def test_no_skipped_formats_is_said(tmp_path: Path) -> None:
    out = write_run(tmp_path, {"getitem": synthetic_tracks()["getitem"]}, skipped={})
    html = render_html(out).read_text()
    assert "No format was skipped" in html


def test_empty_and_missing_tracks_do_not_crash(tmp_path: Path) -> None:
    tracks = synthetic_tracks()
    empty = {"getitem": tracks["getitem"].iloc[0:0], "conversion": tracks["conversion"]}
    out = write_run(tmp_path, empty)
    (out / "plots").mkdir()
    (out / "plots" / "getitem-latency.svg").write_text("<svg>stale</svg>")  # from an earlier render
    result = render_report(out)
    assert {p.name.split("-")[0].split(".")[0] for p in result["plots"]} == {"conversion"}
    assert "conversion.png" in [p.name for p in result["plots"]]
    assert not (out / "plots" / "getitem.png").exists()
    assert not list((out / "plots").glob("getitem*"))
    html = result["html"].read_text()
    assert 'id="track-getitem"' in html and "no rows" in html.lower()
    assert 'id="track-dataloader"' not in html
    assert "getitem" in summary_table(out)


def test_empty_directory_report(tmp_path: Path) -> None:
    result = render_report(tmp_path)
    assert result["plots"] == []
    assert result["html"].stat().st_size > 0
    assert "no results" in summary_table(tmp_path).lower()


def test_summary_table_lists_tracks_and_skipped(run_dir: Path) -> None:
    text = summary_table(run_dir)
    for word in ("getitem", "dataloader", "end_to_end", "conversion", "native", "p50_ms", "vortex", "cannot import"):
        assert word in text, word
    assert max(len(line) for line in text.splitlines()) < 200
    # one native-vs-baseline line per image size and native configuration of each track
    assert "native ×1 thread vs the best baseline" in text and "native ×2 threads vs the best baseline" in text
    assert text.count("vs the best baseline") == 2 * (1 + 2 + 1 + 1)


def test_native_rows_in_html_and_plots(run_dir: Path) -> None:
    from loaderbench.report import plots  # noqa: PLC0415

    html = (run_dir / "report.html").read_text()
    assert "native ×2 threads vs the best baseline" in html and "samples_per_s, any worker count" in html
    assert "Parquet (pyarrow) / native ×2 threads [" in html  # row names carry the thread count
    assert "num_threads=-" not in html  # a parameter that does not apply is left out of row names
    df = read_track(run_dir, "dataloader")
    with plots.plot_style():
        figure = plots.track_figures("dataloader", df)[0].figure
    handles = figure.legends[0].legend_handles
    labels = [h.get_label() for h in handles]
    assert {"preloaded", "native ×1 thread", "native ×2 threads"} <= set(labels)
    styles = {h.get_label(): (h.get_linestyle(), h.get_marker()) for h in handles if "native" in h.get_label()}
    assert len(set(styles.values())) == 2  # the two thread counts are told apart


def test_compare_ratios(tmp_path: Path) -> None:
    tracks_a = synthetic_tracks()
    tracks_b = {name: df.copy() for name, df in tracks_a.items()}
    tracks_b["getitem"]["p50_ms"] *= 2.0
    tracks_b["getitem"]["samples_per_s"] /= 4.0
    tracks_b["conversion"]["overhead_pct"] *= 0.5
    a = write_run(tmp_path / "a", tracks_a)
    b = write_run(tmp_path / "b", {k: v for k, v in tracks_b.items() if k != "end_to_end"})
    df = compare(a, b)
    assert set(df["track"]) == {"getitem", "dataloader", "conversion"}
    p50 = df[(df["track"] == "getitem") & (df["metric"] == "p50_ms")]
    assert len(p50) == len(FORMATS) * len(LOADERS) * 4  # x access x transform
    assert np.allclose(p50["ratio"], 2.0)
    assert np.allclose(df[(df["track"] == "getitem") & (df["metric"] == "samples_per_s")]["ratio"], 0.25)
    assert np.allclose(df[(df["track"] == "conversion") & (df["metric"] == "overhead_pct")]["ratio"], 0.5)
    assert np.allclose(df[df["track"] == "dataloader"]["ratio"], 1.0)
    text = compare_table(df)
    assert "2.00" in text and "0.25" in text


def test_summary_json_is_plain_json(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["tracks"]) == {"getitem", "dataloader", "end_to_end", "conversion"}
    assert summary["skipped_formats"] == SKIPPED


def test_broken_track_does_not_cost_the_others(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tracks = synthetic_tracks()
    broken = {"end_to_end": tracks["end_to_end"].drop(columns=["data_wait_p50_ms"]), "conversion": tracks["conversion"]}
    out = write_run(tmp_path, broken)
    result = render_report(out)
    assert {p.name.split("-")[0].split(".")[0] for p in result["plots"]} == {"conversion"}
    assert not list((out / "plots").glob("end_to_end*"))
    assert "could not plot end_to_end" in capsys.readouterr().err
    html = result["html"].read_text()
    assert 'id="track-end_to_end"' in html and "No plot was rendered" in html
