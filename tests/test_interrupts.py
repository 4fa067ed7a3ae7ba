"""Ctrl-C during ``loaderbench run``: exit 130, finished tracks intact, no temp files, no traceback, no processes left.

The run is a real ``loaderbench`` process in its own session; SIGINT goes to its whole process group, as a
terminal sends it, so the DataLoader workers get it too. Each case waits for a progress line, then interrupts.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from loaderbench import interrupts
from loaderbench.cli import main

TOML = """
formats = ["parquet", "parquet_duckdb", "tiff", "ome_zarr"]
tracks = ["getitem", "dataloader", "end_to_end"]

[data]
n_images = 96
sizes = [[32, 32]]

[getitem]
repeats = 1
samples = 10
warmup = 1
transforms = ["none"]
access = ["sequential"]

[dataloader]
repeats = 2
batch_sizes = [4]
num_workers = [2]
batches = 40
warmup_batches = 0
native_threads = []

[end_to_end]
repeats = 1
steps = 20
warmup_steps = 1
batch_size = 4
num_workers = 2
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The config, and its data generated once for the cases that interrupt a track."""
    from loaderbench.config import load_config
    from loaderbench.progress import Progress
    from loaderbench.runner import prepare_datasets

    root = tmp_path_factory.mktemp("interrupts")
    (root / "run.toml").write_text(TOML)
    prepare_datasets(load_config("quick", root / "run.toml", {"data_dir": str(root / "data")}), Progress(True), False)
    return root


def _interrupt(root: Path, data_dir: Path, out: Path, marker: str, delay: float, tracks: str) -> tuple[int, str]:
    """Start ``loaderbench run --tracks TRACKS``, SIGINT its process group ``delay`` s after a stderr line matches
    ``marker``; return its exit code and stderr once it and every process of its group are gone."""
    err_path = out.with_suffix(".stderr")
    argv = [sys.executable, "-m", "loaderbench", "run", "--config", str(root / "run.toml"), "--out", str(out),
            "--data-dir", str(data_dir), "--tracks", *tracks.split()]
    with err_path.open("w") as err:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not re.search(marker, err_path.read_text()):
            assert proc.poll() is None, f"finished before {marker!r}:\n{err_path.read_text()}"
            assert time.monotonic() < deadline, f"no {marker!r} in 120 s"
            time.sleep(0.01)
        time.sleep(delay)
        assert proc.poll() is None, "finished before it could be interrupted"
        os.killpg(proc.pid, signal.SIGINT)
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + 10
    while True:  # the DataLoader workers leave with the main process
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of the interrupted run are still alive"
        time.sleep(0.05)
    return code, err_path.read_text()


def _assert_clean(code: int, err: str, out: Path, data_dir: Path) -> None:
    assert code == 130, err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    assert err.rstrip().splitlines()[-1] == "loaderbench: interrupted (finished tracks are kept)", err
    temps = [p for d in (out, data_dir) if d.exists() for p in d.rglob("*") if ".tmp" in p.name]
    assert temps == [], temps
    for parquet in out.glob("*.parquet"):
        assert not pd.read_parquet(parquet).empty, parquet
    if (out / "summary.json").exists():
        json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize(
    ("marker", "delay"),
    [
        (r"writing Parquet \(DuckDB\)", 0.0),  # DuckDB turns Ctrl-C into its own InterruptException
        (r"writing OME-Zarr", 0.3),  # dask threads writing chunks
    ],
    ids=["duckdb-write", "ome-zarr-write"],
)
def test_interrupt_during_data_generation(workspace: Path, tmp_path: Path, marker: str, delay: float) -> None:
    data_dir, out = tmp_path / "data", tmp_path / "out"
    code, err = _interrupt(workspace, data_dir, out, marker, delay, "getitem")
    _assert_clean(code, err, out, data_dir)


@pytest.mark.parametrize(
    ("marker", "delay", "track"),
    [
        (r"\[dataloader\] .* num_workers=2", 0.0, "dataloader"),  # workers starting
        (r"\[dataloader\] .* num_workers=2", 0.4, "dataloader"),  # workers serving batches
        (r"\[end_to_end\] .* num_workers=2", 0.2, "end_to_end"),
    ],
    ids=["dataloader-workers-starting", "dataloader-workers-running", "end-to-end-workers"],
)
def test_interrupt_during_a_track_with_workers(
    workspace: Path, tmp_path: Path, marker: str, delay: float, track: str
) -> None:
    out = tmp_path / "out"
    code, err = _interrupt(workspace, workspace / "data", out, marker, delay, f"getitem {track}")
    _assert_clean(code, err, out, workspace / "data")
    assert (out / "getitem.parquet").is_file()  # finished before the interrupt, kept


def test_interrupt_between_tracks_keeps_the_finished_one(workspace: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, err = _interrupt(workspace, workspace / "data", out, r"track getitem: \d+ rows", 0.0, "getitem dataloader")
    _assert_clean(code, err, out, workspace / "data")
    assert set(pd.read_parquet(out / "getitem.parquet")["format"]) == {"parquet", "parquet_duckdb", "tiff", "ome_zarr"}
    assert "getitem" in json.loads((out / "summary.json").read_text())["tracks"]


# --- in process: how the CLI reads an interrupt that comes back as something else ----------------------------------


def _sigint_self() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs at the next bytecode of the main thread


def test_an_error_after_sigint_is_the_interrupt(monkeypatch, capsys) -> None:
    def dies_like_a_worker(args) -> int:
        try:
            _sigint_self()
        except KeyboardInterrupt:
            pass  # a library that swallows it ...
        raise RuntimeError("DataLoader worker (pid(s) 123) exited unexpectedly")  # ... and fails another way

    monkeypatch.setattr("loaderbench.cli.cmd_report", dies_like_a_worker)
    assert main(["report", "anywhere"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_a_swallowed_sigint_still_exits_130(monkeypatch) -> None:
    def swallows(args) -> int:
        try:
            _sigint_self()
        except Exception:  # noqa: BLE001 - what DuckDB's InterruptException meets
            pass
        except KeyboardInterrupt:
            pass
        return 0

    monkeypatch.setattr("loaderbench.cli.cmd_report", swallows)
    assert main(["report", "anywhere"]) == 130


def test_deferred_raises_when_the_block_ends(monkeypatch) -> None:
    reached: list[str] = []

    def starts_workers(args) -> int:
        with interrupts.deferred():
            _sigint_self()
            reached.append("end of set-up")
        reached.append("after")  # not reached
        return 0

    monkeypatch.setattr("loaderbench.cli.cmd_report", starts_workers)
    assert main(["report", "anywhere"]) == 130
    assert reached == ["end of set-up"]


def test_the_previous_sigint_handler_comes_back() -> None:
    before = signal.getsignal(signal.SIGINT)
    assert main(["report", "/nonexistent-dir"]) == 2
    assert signal.getsignal(signal.SIGINT) is before


def test_a_forked_worker_stays_quiet_when_its_parent_goes_away(monkeypatch, capsys) -> None:
    """A DataLoader worker's resource-sharer thread reports a connection reset by the interrupted parent through
    sys.excepthook; the worker ignores SIGINT, so that reset is all it learns. Other errors are still reported."""
    with interrupts.handled():
        owner = os.getpid()
        monkeypatch.setattr(interrupts.os, "getpid", lambda: owner + 1)  # as in a forked child
        sys.excepthook(ConnectionResetError, ConnectionResetError(104, "Connection reset by peer"), None)
        sys.excepthook(EOFError, EOFError(), None)
        assert capsys.readouterr().err == ""
        sys.excepthook(ValueError, ValueError("a real worker error"), None)
        assert "a real worker error" in capsys.readouterr().err
        monkeypatch.setattr(interrupts.os, "getpid", lambda: owner)  # the parent, not interrupted: still reported
        sys.excepthook(ConnectionResetError, ConnectionResetError(104, "reset in the parent"), None)
        assert "reset in the parent" in capsys.readouterr().err
