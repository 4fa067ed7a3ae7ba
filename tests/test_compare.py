"""``loaderbench compare``: each run's spread over repeats, whether a difference is within it, and the HTML page."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from test_report import synthetic_tracks, write_run

from loaderbench.report import compare
from loaderbench.report.compare_html import render_compare_html
from loaderbench.report.terminal import compare_table


def _runs(tmp_path: Path) -> tuple[Path, Path]:
    tracks_a = synthetic_tracks()
    tracks_b = {name: df.copy() for name, df in tracks_a.items()}
    tracks_b["getitem"]["p50_ms"] *= 2.0  # far outside the ~10 % spread of the synthetic repeats
    return write_run(tmp_path / "a", tracks_a), write_run(tmp_path / "b", tracks_b)


def test_spread_and_within_spread(tmp_path: Path) -> None:
    df = compare(*_runs(tmp_path))
    p50 = df[(df["track"] == "getitem") & (df["metric"] == "p50_ms")]
    assert (p50["a_min"] <= p50["a"]).all() and (p50["a"] <= p50["a_max"]).all()
    assert not p50["within_spread"].any()  # doubled: every range is apart
    same = df[df["track"] == "dataloader"]
    assert same["within_spread"].all()  # identical runs: the ranges overlap
    text = compare_table(df)
    assert "within spread" in text and "worse" in text


def test_html_page(tmp_path: Path) -> None:
    a, b = _runs(tmp_path)
    page = render_compare_html(compare(a, b), a, b, tmp_path / "page.html")
    html = page.read_text()
    assert "Track 1" in html and "B worse" in html and "within spread" in html
    assert str(a.resolve()) in html


def test_cli_writes_the_page(tmp_path: Path) -> None:
    a, b = _runs(tmp_path)
    out = tmp_path / "cmp.html"
    cli = [sys.executable, "-m", "loaderbench", "compare", str(a), str(b), "--html", str(out)]
    proc = subprocess.run(cli, capture_output=True, text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and f"Wrote {out}" in proc.stdout
