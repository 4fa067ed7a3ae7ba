"""The command line end to end on a tiny config: every output file, clear errors, report and compare."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from loaderbench.cli import main
from loaderbench.config import ALL_FORMATS, ALL_TRACKS

TINY_TOML = """
[data]
n_images = 8
sizes = [[16, 20]]
channels = 1

[getitem]
repeats = 2
samples = 4
warmup = 1
transforms = ["none", "augment"]

[dataloader]
repeats = 1
batch_sizes = [4]
num_workers = [0]
batches = 2
warmup_batches = 0

[end_to_end]
repeats = 1
steps = 2
warmup_steps = 1
batch_size = 4

[conversion]
repeats = 1
samples = 4
warmup = 1
batch_size = 4
"""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    config = root / "tiny.toml"
    config.write_text(TINY_TOML)
    out = root / "results"
    code = main(["run", "--config", str(config), "--out", str(out), "--data-dir", str(root / "data"), "--quiet"])
    assert code == 0
    return out


def test_run_writes_every_output(tiny_run: Path) -> None:
    for track in ALL_TRACKS:
        frame = pd.read_parquet(tiny_run / f"{track}.parquet")
        assert not frame.empty, track
        assert (tiny_run / "plots" / f"{track}.png").stat().st_size > 0
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert set(summary["tracks"]) == set(ALL_TRACKS)
    assert summary["config"]["data"]["n_images"] == 8
    assert summary["environment"]
    ran = set(pd.read_parquet(tiny_run / "getitem.parquet")["format"])
    # every format either ran or is reported as skipped with a reason
    assert ran | set(summary["skipped_formats"]) == set(ALL_FORMATS)
    html = (tiny_run / "report.html").read_text()
    assert html.count("<svg") >= len(ALL_TRACKS)  # every track's figures, inlined: one self-contained file


def test_run_prints_a_summary(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    assert "getitem" in out.lower() and "report.html" in out


def test_compare_a_run_with_itself(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = tiny_run.parent / "compare.html"
    assert main(["compare", str(tiny_run), str(tiny_run), "--html", str(page)]) == 0
    assert "1.0" in capsys.readouterr().out and page.is_file()


def test_inspect_command(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    summary = json.loads((tiny_run / "summary.json").read_text())
    parquet = summary["datasets"][0]["formats"]["parquet"]
    assert main(["inspect", parquet]) == 0
    out = capsys.readouterr().out
    assert "rows:          8" in out and "1x16x20" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--formats", "csv"], "formats: unknown value(s) 'csv'"),
        (["run", "--tracks", "warp"], "tracks: unknown value(s) 'warp'"),
        (["run", "--n-images", "0"], "data.n_images must be >= 1"),
        (["run", "--config", "/nonexistent.toml"], "cannot read config file"),
        (["run", "--input", "/nonexistent/images.parquet"], "/nonexistent/images.parquet"),
        (["inspect", "/nonexistent.parquet"], "no such file"),
        (["report", "/nonexistent-dir"], "no loaderbench results"),
    ],
)
def test_bad_input_gives_one_clear_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    error_lines = [line for line in err.splitlines() if line.startswith("loaderbench: error:")]
    assert len(error_lines) == 1, err
    assert message in error_lines[0]
    assert "Traceback" not in err


def test_bad_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cases = {
        "unknown.toml": ("[data]\nimages = 3\n", "unknown config key 'data.images'"),
        "type.toml": ("[dataloader]\nbatch_sizes = [\"x\"]\n", "dataloader.batch_sizes"),
        "syntax.toml": ("[data\n", "not valid TOML"),
        "dtype.toml": ("[data]\ndtype = \"int4\"\n", "data.dtype: unknown value(s) 'int4'"),
    }
    for name, (text, message) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        assert main(["run", "--config", str(path)]) == 2, name
        assert message in capsys.readouterr().err, name


def test_not_an_ome_arrow_dataset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "plain.parquet"
    pq.write_table(pa.table({"x": [1, 2, 3]}), path)
    assert main(["run", "--input", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "ome_image" in err


def test_run_on_the_users_own_dataset(tiny_run: Path, tmp_path: Path) -> None:
    summary = json.loads((tiny_run / "summary.json").read_text())
    formats = summary["datasets"][0]["formats"]
    out = tmp_path / "own"
    argv = ["run", "--input", formats["lance"], "--input", f"tiff:{formats['tiff']}", "--tracks", "getitem",
            "--repeats", "1", "--out", str(out), "--quiet"]
    assert main(argv) == 0
    frame = pd.read_parquet(out / "getitem.parquet")
    assert set(frame["format"]) >= {"lance", "tiff"}
    assert set(frame["n_images"]) == {8}


def test_smooth_content_from_the_command_line(tmp_path: Path) -> None:
    import numpy as np  # noqa: PLC0415

    from loaderbench.datagen import generate_images  # noqa: PLC0415

    config = tmp_path / "tiny.toml"
    config.write_text(TINY_TOML)
    data = tmp_path / "data"
    code = main(["run", "--config", str(config), "--out", str(tmp_path / "out"), "--data-dir", str(data), "--quiet",
                 "--formats", "arrow_ipc", "--tracks", "getitem", "--content", "smooth", "--layout", "bytes-zstd"])
    assert code == 0
    (manifest,) = data.glob("*/manifest.json")
    assert json.loads(manifest.read_text())["content"] == "smooth"
    stored = np.load(manifest.parent / "images.npy")
    np.testing.assert_array_equal(stored, generate_images(8, 16, 20, "uint8", 1, seed=42, content="smooth"))
