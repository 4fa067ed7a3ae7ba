"""The verdict block (report.verdict): per dataset the fastest loader of each track with its ratio to the seed's
approach, the data wait, the memory, the advice and the machine line; first in report.html, last in the terminal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from test_report import synthetic_tracks, write_run

from loaderbench.report import render_report
from loaderbench.report.terminal import summary_table
from loaderbench.report.verdict import verdict_blocks, verdict_lines


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = write_run(tmp_path_factory.mktemp("verdict"), synthetic_tracks())
    render_report(out)
    return out


def test_one_block_per_dataset_with_every_track(run_dir: Path) -> None:
    blocks, machine = verdict_blocks(run_dir)
    assert [name for name, _ in blocks] == ["synthetic-32x32"]
    lines = blocks[0][1]
    getitem = next(line for line in lines if line.startswith("Track 1"))
    # synthetic native rows are 5x faster than preloaded on the same format: the ratio is measured, not assumed
    assert "/ native" in getitem and "the seed's best on the same settings" in getitem
    dataloader = next(line for line in lines if line.startswith("Track 2"))
    assert "peak memory" in dataloader and "MiB PSS" in dataloader
    assert any(line.startswith("Track 3") and "waits for data" in line for line in lines)
    assert lines[-1].startswith("Use ")
    assert machine.startswith("Machine:")


def test_ratio_to_the_seed_is_computed_from_the_rows(run_dir: Path) -> None:
    getitem = pd.read_parquet(run_dir / "getitem.parquet")
    table = getitem.groupby(["loader", "format", "access", "transform"])["p50_ms"].median()
    best = table.idxmin()
    assert best[0] == "native"
    seed = table.loc[["naive", "preloaded"], :, best[2], best[3]].min()
    line = next(line for line in verdict_blocks(run_dir)[0][0][1] if line.startswith("Track 1"))
    assert f"{seed / table[best]:.2f}x the seed's best" in line


def test_report_opens_with_the_verdict_and_terminal_ends_with_it(run_dir: Path) -> None:
    html = (run_dir / "report.html").read_text()
    assert html.index('id="verdict"') < html.index('id="track-getitem"')
    text = summary_table(run_dir)
    assert text.index("== Verdict ==") > text.index("[getitem]")
    assert verdict_lines(run_dir)[0] == "== Verdict =="


def test_no_results_no_verdict(tmp_path: Path) -> None:
    assert verdict_lines(tmp_path) == []
    assert verdict_blocks(tmp_path)[0] == []
