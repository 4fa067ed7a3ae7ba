"""Processes that read results exit cleanly, every time.

Reading a Parquet file through a Python file object (what ``pd.read_parquet(path)`` does) leaves Arrow freeing that
object's buffers on its I/O threads after the read returns; when that runs while the interpreter exits, the process
aborts ("terminate called without an active exception", exit 134) in about 1 run in 10. ``results.read_track`` reads
by path instead. The abort is a race, so each command runs many times, two at a time.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from loaderbench.cli import main

TOML = """
[data]
n_images = 8
sizes = [[16, 20]]

[getitem]
repeats = 2
samples = 4
warmup = 1
transforms = ["none"]
"""


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("clean-exit")
    (root / "tiny.toml").write_text(TOML)
    out = root / "results"
    argv = ["run", "--config", str(root / "tiny.toml"), "--tracks", "getitem", "--formats", "parquet", "tiff",
            "--out", str(out), "--data-dir", str(root / "data"), "--quiet"]
    assert main(argv) == 0
    return out


def _exit_codes(argv: list[str], times: int) -> Counter[int]:
    def once(_: int) -> tuple[int, str]:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        return done.returncode, done.stderr

    with ThreadPoolExecutor(max_workers=2) as pool:
        outcomes = list(pool.map(once, range(times)))
    failed = [err.strip().splitlines()[-1:] for code, err in outcomes if code != 0]
    assert not failed, f"{len(failed)} of {times} runs failed: {failed[:3]}"
    return Counter(code for code, _ in outcomes)


def test_read_track_gives_pyarrow_a_path(results_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pyarrow.parquet as pq

    from loaderbench.results import read_track

    sources: list[object] = []
    original = pq.read_table

    def recording(source, *args, **kwargs):
        sources.append(source)
        return original(source, *args, **kwargs)

    monkeypatch.setattr(pq, "read_table", recording)
    assert not read_track(results_dir, "getitem").empty
    assert len(sources) == 1 and isinstance(sources[0], str), sources  # not a Python file object


def test_reading_a_track_then_exiting(results_dir: Path) -> None:
    # Before the fix: 1 to 4 aborts in 80 runs of exactly this.
    code = f"from loaderbench.results import read_track; read_track({str(results_dir)!r}, 'getitem')"
    assert _exit_codes([sys.executable, "-c", code], 60) == {0: 60}


def test_compare_exits_cleanly(results_dir: Path) -> None:
    argv = [sys.executable, "-m", "loaderbench", "compare", str(results_dir), str(results_dir), "--html",
            str(results_dir / "compare.html")]
    assert _exit_codes(argv, 20) == {0: 20}


def test_report_exits_cleanly(results_dir: Path) -> None:
    argv = [sys.executable, "-m", "loaderbench", "report", str(results_dir)]
    assert _exit_codes(argv, 20) == {0: 20}
