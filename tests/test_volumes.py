"""Volumes (Z stacks, ``data.depth``) through every track of ``loaderbench run``: samples ``(C, Z, H, W)``, batches
``[B, C, Z, H, W]``, the 3-D model in Track 3, the size shown as ``ZxHxW``; and the loaders' pixels against the
generated reference."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from loaderbench.cli import main
from loaderbench.config import ALL_TRACKS
from loaderbench.datagen import DatasetFiles
from loaderbench.formats import get_format
from loaderbench.loaders.block_datasets import BlockBatchDataset, RandomAccessDataset
from loaderbench.loaders.seed import make_dataset
from loaderbench.loaders.transforms import make_transform
from loaderbench.tracks.common import Target, make_native_loader
from loaderbench.tracks.getitem import native_transform_options

#: 6 volumes of 2 x 3 x 16 x 16 uint8, a few formats, each track cut short (as tests/test_cli.py's TINY_TOML)
VOLUME_TOML = """
formats = ["parquet", "arrow_ipc", "tiff", "ome_zarr"]

[data]
n_images = 6
sizes = [[16, 16]]
channels = 2
depth = 3
seed = 7

[getitem]
repeats = 1
samples = 4
warmup = 1
transforms = ["none", "normalize", "augment"]
crop_size = 8

[dataloader]
repeats = 1
batch_sizes = [2]
num_workers = [0, 2]
batches = 2
warmup_batches = 0
native_threads = [2]

[end_to_end]
repeats = 1
steps = 2
warmup_steps = 1
batch_size = 2

[conversion]
repeats = 1
samples = 4
warmup = 1
batch_size = 2

[streaming]
chunk_size = 2
chunks_per_block = 2
"""
GENERATED = "generated 3x16x16 uint8 2ch"


@pytest.fixture(scope="module")
def volume_run(tmp_path_factory: pytest.TempPathFactory, volume_directories: dict[str, Path]) -> Path:
    """Generated volumes in every configured format, and a user's TIFF and OME-Zarr volume directories beside them."""
    root = tmp_path_factory.mktemp("volumes-cli")
    config = root / "volumes.toml"
    config.write_text(VOLUME_TOML)
    out = root / "results"
    inputs = ["--input", f"tiff:{volume_directories['tiff']}", "--input", f"ome_zarr:{volume_directories['ome_zarr']}"]
    code = main(["run", "--config", str(config), "--out", str(out), "--data-dir", str(root / "data"), *inputs,
                 "--with-generated", "--quiet"])
    assert code == 0
    return out


def test_every_track_runs_on_volumes(volume_run: Path, volume_directories: dict[str, Path]) -> None:
    summary = json.loads((volume_run / "summary.json").read_text())
    datasets = {d["name"]: d for d in summary["datasets"]}
    assert datasets[GENERATED]["depth"] == 3 and datasets[str(volume_directories["tiff"])]["depth"] == 5
    sizes = {GENERATED: "3x16x16", str(volume_directories["tiff"]): "5x10x12",
             str(volume_directories["ome_zarr"]): "5x10x12"}
    for track in ALL_TRACKS:
        frame = pd.read_parquet(volume_run / f"{track}.parquet")
        assert set(frame["dataset"]) == set(sizes), track
        assert (frame["image_size"] == frame["dataset"].map(sizes)).all(), track
        assert (frame["depth"] == frame["dataset"].map({GENERATED: 3}).fillna(5)).all(), track
        assert (frame["channels"] == 2).all(), track
        generated = frame[frame["dataset"] == GENERATED]
        ran = set(generated["format"])
        # every format stores volumes: the directory writers name their axes (OME-TIFF CZYX, OME-Zarr czyx)
        assert ran == {"parquet", "arrow_ipc", "tiff", "ome_zarr"}, (track, summary["skipped_formats"])
        assert "native" in set(frame["loader"]), track
    getitem = pd.read_parquet(volume_run / "getitem.parquet")
    assert {"naive", "preloaded", "random_access", "decode", "native"} <= set(getitem["loader"])
    dataloader = pd.read_parquet(volume_run / "dataloader.parquet")
    assert {"preloaded", "decode", "native", "native_streaming", "block_torch"} <= set(dataloader["loader"])
    assert (dataloader["samples_per_s"] > 0).all() and (dataloader["timed_samples"] > 0).all()
    end_to_end = pd.read_parquet(volume_run / "end_to_end.parquet")
    assert (end_to_end["model"] == "SimpleEmbeddingModel3d").all()
    assert (end_to_end.loc[end_to_end["dataset"] == GENERATED, "images"] == 2 * 2).all()  # 2 steps of 2 volumes
    assert (end_to_end["images_per_s"] > 0).all()
    conversion = pd.read_parquet(volume_run / "conversion.parquet")
    assert {"preloaded", "decode", "native"} <= set(conversion["loader"])
    assert (conversion["torch_p50_ms"] > 0).all()


def test_the_terminal_and_the_report_show_the_volume_size(volume_run: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(volume_run)]) == 0
    out = capsys.readouterr().out
    assert "3x16x16" in out and "5x10x12" in out
    assert "3x16x16" in (volume_run / "report.html").read_text()


def test_a_2d_model_run_records_its_model(tiny_dataset: DatasetFiles, tmp_path: Path) -> None:
    from loaderbench.config import load_config
    from loaderbench.tracks import TrackContext, end_to_end

    cfg = load_config("quick", overrides={"formats": ["parquet"], "streaming": {"loaders": []},
                                          "end_to_end": {"repeats": 1, "steps": 1, "warmup_steps": 0}})
    frame = end_to_end.run(TrackContext(config=cfg, datasets=[tiny_dataset], progress=lambda _m: None))
    assert (frame["model"] == "SimpleEmbeddingModel").all() and (frame["depth"] == 1).all()
    assert (frame["image_size"] == "24x32").all()


# --- the loaders on volumes, against the reference ---


def _targets(dataset: DatasetFiles, *names: str) -> list[Target]:
    return [Target(dataset, name, get_format(name), Path(dataset.paths[name])) for name in names]


def test_native_samples_and_batches_are_the_seeds(tiny_volume_dataset: DatasetFiles) -> None:
    """The native loader's ``loader[i]`` equals the seed's pre-loaded dataset (plain and normalised), and its batches
    are ``[B, C, Z, H, W]`` of the reference."""
    reference = torch.from_numpy(np.load(tiny_volume_dataset.reference)).float() / 255
    normalize = make_transform("normalize", volume=True)
    for target in _targets(tiny_volume_dataset, "parquet", "arrow_ipc"):
        seed = make_dataset(target.module, target.path, "preloaded")
        plain, normalized = make_native_loader(target), make_native_loader(target, mean=[0.5], std=[0.5])
        for i in range(len(seed)):
            assert torch.equal(plain[i], seed[i]) and plain[i].shape == (2, 3, 16, 16)
            torch.testing.assert_close(normalized[i], normalize(seed[i]), rtol=0, atol=1e-6)
        augmented = make_native_loader(target, **native_transform_options("augment", 8))
        assert augmented[0].shape == (2, 3, 8, 8)  # Track 1's crop: H and W of every plane
        batches = list(make_native_loader(target, batch_size=4, shuffle=False))
        assert [tuple(b.shape) for b in batches] == [(4, 2, 3, 16, 16), (2, 2, 3, 16, 16)]
        assert torch.equal(torch.cat(batches), reference)


def test_the_block_readers_give_volumes(tiny_volume_dataset: DatasetFiles) -> None:
    """Track 1's ``random_access`` and Tracks 2-3's ``block_torch`` read volumes whole: ``(C, Z, H, W)`` samples and
    ``[B, C, Z, H, W]`` batches of the reference."""
    reference = np.load(tiny_volume_dataset.reference)
    as_float = torch.from_numpy(reference).float() / 255
    for target in _targets(tiny_volume_dataset, "parquet", "arrow_ipc"):
        samples = RandomAccessDataset(target.module, target.path)
        for i in range(len(reference)):
            torch.testing.assert_close(samples[i], as_float[i], rtol=0, atol=0)
        samples.reader.close()
        blocks = BlockBatchDataset(target.module, target.path, batch_size=4, chunk_size=2, chunks_per_block=2)
        batches = list(blocks)
        assert [tuple(b.shape) for b in batches] == [(4, 2, 3, 16, 16), (2, 2, 3, 16, 16)]
        assert torch.equal(torch.cat(batches), as_float)
        blocks.reader.close()


def test_the_peers_skip_volumes_with_a_message(tiny_volume_dataset: DatasetFiles) -> None:
    from loaderbench.config import load_config
    from loaderbench.tracks import TrackContext, peers

    messages: list[str] = []
    cfg = load_config("quick", overrides={"formats": ["parquet"], "peers": {"names": ["native"]}})
    frame = peers.run(TrackContext(config=cfg, datasets=[tiny_volume_dataset], progress=messages.append))
    assert frame.empty
    assert any("volumes (Z stacks) are not run by the peers" in m for m in messages), messages
