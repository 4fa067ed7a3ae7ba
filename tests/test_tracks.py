"""Tracks 1-4 on a tiny config over ``tiny_dataset`` (every format): shape of the results and their consistency."""

from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import pandas as pd
import psutil
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from loaderbench.config import ALL_FORMATS, ConfigError, load_config
from loaderbench.formats import get_format
from loaderbench.loaders.seed import make_dataset
from loaderbench.loaders.transforms import make_transform
from loaderbench.model import SimpleEmbeddingModel
from loaderbench.stats import overhead_level
from loaderbench.tracks import TRACKS, TrackContext, conversion, dataloader, end_to_end, getitem
from loaderbench.tracks.common import access_indices, iter_targets, make_native_loader

COMMON = [
    "format", "format_label", "format_kind", "loader", "dataset", "image_size", "height", "width", "channels",
    "dtype", "n_images", "repeat",
]  # fmt: skip
REL = 1e-6  # figures computed from the same timings must agree to rounding


def tiny_config(**overrides):
    base = {
        "formats": list(ALL_FORMATS),
        "data": {"n_images": 12},
        "getitem": {"repeats": 2, "samples": 5, "warmup": 2, "transforms": ["none", "normalize", "augment"],
                    "crop_size": 8},
        "dataloader": {"repeats": 2, "batch_sizes": [4], "num_workers": [0, 2], "batches": 2, "warmup_batches": 0},
        "end_to_end": {"repeats": 1, "steps": 5, "warmup_steps": 1, "batch_size": 4},
        "conversion": {"repeats": 2, "samples": 5, "warmup": 2, "batch_size": 2},
        "streaming": {"loaders": []},  # the out-of-core rows have tests of their own (test_streaming_rows_*)
    }  # fmt: skip
    for key, value in overrides.items():
        base[key] = {**base[key], **value} if isinstance(value, dict) else value
    return load_config("quick", overrides=base)


def make_ctx(dataset, **overrides) -> TrackContext:
    messages: list[str] = []
    ctx = TrackContext(config=tiny_config(**overrides), datasets=[dataset], progress=messages.append)
    ctx.messages = messages  # type: ignore[attr-defined]
    return ctx


def kinds(dataset) -> dict[str, str]:
    return {name: get_format(name).INFO.kind for name in dataset.paths}


def check_common(df: pd.DataFrame, dataset) -> None:
    missing = [c for c in COMMON if c not in df.columns]
    assert not missing, f"missing columns {missing}"
    assert set(df["format"]) == set(dataset.paths)
    assert (df["dataset"] == dataset.name).all()
    assert (df["image_size"] == f"{dataset.height}x{dataset.width}").all()
    assert (df["n_images"] == dataset.n_images).all()
    for name, kind in kinds(dataset).items():
        assert (df.loc[df["format"] == name, "format_kind"] == kind).all()


def check_one_row_per_config_repeat(df: pd.DataFrame, config_columns: list[str], repeats: int) -> None:
    groups = df.groupby(config_columns, dropna=False)["repeat"].agg(lambda r: sorted(r.tolist()))
    assert all(reps == list(range(repeats)) for reps in groups), groups


def table_formats(dataset) -> set[str]:
    return {name for name, kind in kinds(dataset).items() if kind == "table"}


def native_formats(dataset) -> set[str]:
    """The formats the native loader runs on: the Arrow-backed ones and the directories its core reads (TIFF,
    OME-Zarr)."""
    return table_formats(dataset) | ({"tiff", "ome_zarr"} & set(dataset.paths))


def check_native_rows(df: pd.DataFrame, dataset, per_format: int) -> pd.DataFrame:
    """``per_format`` native rows for every Arrow-backed format and for the directories the core reads."""
    native = df[df["loader"] == "native"]
    assert set(native["format"]) == native_formats(dataset)
    assert (native.groupby("format").size() == per_format).all()
    return native


def check_ordered(df: pd.DataFrame, *columns: str) -> None:
    for low, high in zip(columns, columns[1:], strict=False):
        assert (df[low] <= df[high] + 1e-12).all(), f"{low} > {high}"


def test_registry():
    from loaderbench.sparse import track as sparse_track
    from loaderbench.tracks import peers

    assert set(TRACKS) == {"getitem", "dataloader", "end_to_end", "conversion", "peers", "sparse"}
    for module in (getitem, dataloader, end_to_end, conversion, peers, sparse_track):
        assert TRACKS[module.NAME] is module.run


def test_iter_targets_filters_generated_not_inputs(tiny_dataset):
    assert set(tiny_dataset.paths) == set(ALL_FORMATS), tiny_dataset.skipped
    ctx = make_ctx(tiny_dataset, formats=["parquet", "tiff"])
    assert [t.format_name for t in iter_targets(ctx)] == [n for n in tiny_dataset.paths if n in ("parquet", "tiff")]
    if dataclasses.is_dataclass(tiny_dataset):
        user_input = dataclasses.replace(tiny_dataset, source="input")
    else:
        user_input = copy.copy(tiny_dataset)
        user_input.source = "input"
    ctx = make_ctx(user_input, formats=["parquet"])
    assert {t.format_name for t in iter_targets(ctx)} == set(tiny_dataset.paths)


def test_access_indices():
    assert access_indices("sequential", 4, 6, 0).tolist() == [0, 1, 2, 3, 0, 1]
    random = access_indices("random", 5, 10, 42)
    assert sorted(random[:5].tolist()) == list(range(5)) and sorted(random[5:].tolist()) == list(range(5))
    assert np.array_equal(random, access_indices("random", 5, 10, 42))
    with pytest.raises(ValueError, match="access"):
        access_indices("strided", 5, 3, 0)


# --- Track 1 ---


@pytest.fixture(scope="module")
def getitem_run(tiny_dataset):
    ctx = make_ctx(tiny_dataset)
    return ctx, getitem.run(ctx)


def test_getitem_rows_and_columns(getitem_run, tiny_dataset):
    ctx, df = getitem_run
    cfg = ctx.config.getitem
    check_common(df, tiny_dataset)
    for column in ("access", "transform", "samples", "warmup", "mean_ms", "std_ms", "min_ms", "max_ms", "p50_ms",
                   "p95_ms", "p99_ms", "samples_per_s", "setup_s"):  # fmt: skip
        assert column in df.columns, column
    n_table = sum(k == "table" for k in kinds(tiny_dataset).values())
    n_dir = len(tiny_dataset.paths) - n_table
    per_loader = len(cfg.access) * len(cfg.transforms) * cfg.repeats
    n_native_dir = len(native_formats(tiny_dataset)) - n_table
    assert len(df) == (n_table * (len(cfg.loaders) + 1) + n_dir + n_native_dir) * per_loader  # + native
    check_one_row_per_config_repeat(df, ["format", "loader", "access", "transform"], cfg.repeats)
    assert set(df.loc[df["format_kind"] == "table", "loader"]) == {"naive", "preloaded", "native", "random_access"}
    random_access = df[df["loader"] == "random_access"]
    assert (random_access["page_cache"] == "warm").all() and random_access["resident_fraction"].ge(0.95).all()
    check_native_rows(df, tiny_dataset, per_loader)
    assert set(df.loc[df["format_kind"] == "directory", "loader"]) == {"decode", "native"}
    assert (df["samples"] == cfg.samples).all() and (df["warmup"] == cfg.warmup).all()
    assert ctx.messages, "no progress reported"


def test_getitem_figures_are_consistent(getitem_run):
    _, df = getitem_run
    check_ordered(df, "min_ms", "p50_ms", "p95_ms", "p99_ms", "max_ms")
    assert ((df["min_ms"] <= df["mean_ms"]) & (df["mean_ms"] <= df["max_ms"])).all()
    assert (df["min_ms"] > 0).all()
    np.testing.assert_allclose(df["samples_per_s"], 1000.0 / df["mean_ms"], rtol=REL)
    assert (df["setup_s"] > 0).all()
    # one dataset per format x loader (the native loader: per transform): its rows carry the same set-up time
    baselines = df[df["loader"] != "native"]
    assert (baselines.groupby(["format", "loader"])["setup_s"].nunique() == 1).all()
    assert (df.groupby(["format", "loader", "transform"])["setup_s"].nunique() == 1).all()


def _targets(dataset, kind="table"):
    return [t for t in iter_targets(make_ctx(dataset)) if t.kind == kind]


def test_native_getitem_matches_the_preloaded_dataset(tiny_dataset):
    cfg = make_ctx(tiny_dataset).config.getitem
    for target in _targets(tiny_dataset):
        reference = make_dataset(target.module, target.path, "preloaded")
        plain = make_native_loader(target, **getitem.native_transform_options("none"))
        normalized = make_native_loader(target, **getitem.native_transform_options("normalize"))
        augmented = make_native_loader(target, **getitem.native_transform_options("augment", cfg.crop_size))
        normalize = make_transform("normalize")
        for i in range(len(reference)):
            expected = reference[i]
            got = plain[i]
            assert got.dtype == torch.float32 and torch.equal(got, expected), (target.format_name, i)
            torch.testing.assert_close(normalized[i], normalize(expected), rtol=0, atol=1e-6)
            crop = augmented[i]
            assert crop.shape == (tiny_dataset.channels, cfg.crop_size, cfg.crop_size)
            assert torch.equal(crop, augmented[i])  # draws depend on the row, not on the call
            assert set(crop.unique().tolist()) <= set(normalize(expected).unique().tolist())


def test_native_transform_options():
    assert getitem.native_transform_options("none") == {}
    assert getitem.native_transform_options("normalize") == {"mean": [0.5], "std": [0.5]}
    augment = getitem.native_transform_options("augment", 8)
    assert augment == {"random_hflip": True, "mean": [0.5], "std": [0.5], "crop_size": 8}
    assert getitem.native_transform_options("augment")["crop_size"] is None
    with pytest.raises(ValueError, match="transform"):
        getitem.native_transform_options("blur")


# --- Track 2 ---


@pytest.fixture(scope="module")
def dataloader_run(tiny_dataset):
    ctx = make_ctx(tiny_dataset)
    df = dataloader.run(ctx)
    return ctx, df


def test_dataloader_rows_and_columns(dataloader_run, tiny_dataset):
    ctx, df = dataloader_run
    cfg = ctx.config.dataloader
    check_common(df, tiny_dataset)
    for column in ("batch_size", "num_workers", "pin_memory", "persistent_workers", "prefetch_factor", "batches",
                   "first_batch_ms", "p50_batch_ms", "p95_batch_ms", "mean_batch_ms", "samples_per_s",
                   "peak_uss_mb", "setup_s"):  # fmt: skip
        assert column in df.columns, column
    n_native = len(native_formats(tiny_dataset)) * len(cfg.batch_sizes) * len(cfg.native_threads) * cfg.repeats
    assert len(df) == len(tiny_dataset.paths) * len(cfg.batch_sizes) * len(cfg.num_workers) * cfg.repeats + n_native
    check_one_row_per_config_repeat(df, ["format", "loader", "batch_size", "num_workers", "num_threads"], cfg.repeats)
    assert set(df.loc[df["format_kind"] == "table", "loader"]) == {"preloaded", "native"}
    assert set(df.loc[df["format_kind"] == "directory", "loader"]) == {"decode", "native"}
    assert df.loc[df["num_workers"] == 0, "prefetch_factor"].isna().all()
    assert (df.loc[df["num_workers"] > 0, "prefetch_factor"] == cfg.prefetch_factor).all()
    assert not df["persistent_workers"].any() and not df["pin_memory"].any()


def test_dataloader_native_rows(dataloader_run, tiny_dataset):
    ctx, df = dataloader_run
    cfg = ctx.config.dataloader
    assert cfg.native_threads == [1, 2]
    native = check_native_rows(df, tiny_dataset, len(cfg.batch_sizes) * len(cfg.native_threads) * cfg.repeats)
    assert (native["num_workers"] == 0).all()
    assert sorted(native["num_threads"].unique().tolist()) == cfg.native_threads
    assert df.loc[df["loader"] != "native", "num_threads"].isna().all()
    assert (native["samples_per_s"] > 0).all() and (native["first_batch_ms"] > 0).all()


def test_dataloader_figures_are_consistent(dataloader_run):
    ctx, df = dataloader_run
    cfg = ctx.config.dataloader
    # 12 images in batches of 4: the first batch, then 2 timed ones (the cap) of 4 samples
    assert (df["batches"] == 2).all() and (df["timed_samples"] == 8).all()
    check_ordered(df, "min_batch_ms", "p50_batch_ms", "p95_batch_ms", "max_batch_ms")
    timed_s = df["mean_batch_ms"] * df["batches"] / 1000.0
    np.testing.assert_allclose(df["samples_per_s"], df["timed_samples"] / timed_s, rtol=REL)
    assert (df["first_batch_ms"] > 0).all()
    assert (df["peak_uss_mb"] > 10).all() and (df["peak_pss_mb"] > 10).all()
    assert cfg.warmup_batches == 0


def test_native_threads_config():
    assert load_config("quick").dataloader.native_threads == [1, 2]
    assert load_config("quick", overrides={"dataloader": {"native_threads": [4]}}).dataloader.native_threads == [4]
    with pytest.raises(ConfigError, match="native_threads"):
        load_config("quick", overrides={"dataloader": {"native_threads": [0]}})


def _workers() -> list[psutil.Process]:
    """Child processes, but for multiprocessing's resource tracker: a spawn context (the Lance DataLoader workers)
    starts it once, and it lives as long as this process by design."""
    children = []
    for child in psutil.Process().children(recursive=True):
        try:
            if not any("resource_tracker" in part for part in child.cmdline()):
                children.append(child)
        except psutil.Error:  # gone meanwhile
            pass
    return children


def test_dataloader_leaves_no_workers(dataloader_run):
    deadline = time.monotonic() + 5
    while _workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _workers() == []


def test_time_epoch_counts_partial_batches_and_stops_at_the_end():
    loader = DataLoader(TensorDataset(torch.arange(10.0)), batch_size=4)
    epoch = dataloader.time_epoch(loader, warmup_batches=0, max_batches=50)
    assert len(epoch["batch_ns"]) == 2 and epoch["samples"] == 6  # 4 (first) | 4 + 2 timed
    epoch = dataloader.time_epoch(loader, warmup_batches=5, max_batches=50)
    assert epoch["batch_ns"] == [] and epoch["samples"] == 0 and epoch["first_ns"] > 0


# --- Track 3 ---


@pytest.fixture(scope="module")
def end_to_end_run(tiny_dataset):
    ctx = make_ctx(tiny_dataset)
    return ctx, end_to_end.run(ctx)


def test_end_to_end_rows_and_figures(end_to_end_run, tiny_dataset):
    ctx, df = end_to_end_run
    cfg = ctx.config.end_to_end
    check_common(df, tiny_dataset)
    for column in ("mode", "batch_size", "num_workers", "steps", "step_p50_ms", "step_p95_ms", "data_wait_p50_ms",
                   "compute_p50_ms", "data_wait_fraction", "images_per_s"):  # fmt: skip
        assert column in df.columns, column
    assert len(df) == (len(tiny_dataset.paths) + len(native_formats(tiny_dataset))) * cfg.repeats
    check_one_row_per_config_repeat(df, ["format", "loader"], cfg.repeats)
    native = check_native_rows(df, tiny_dataset, cfg.repeats)
    assert (native["num_threads"] == max(ctx.config.dataloader.native_threads)).all()
    assert (native["num_workers"] == 0).all() and df.loc[df["loader"] != "native", "num_threads"].isna().all()
    assert (df["mode"] == "inference").all()
    # 6 steps over 3 batches per epoch: the loader is iterated again, every step has a full batch
    assert (df["steps"] == cfg.steps).all() and (df["images"] == cfg.steps * cfg.batch_size).all()
    assert df["data_wait_fraction"].between(0, 1).all()
    check_ordered(df, "step_p50_ms", "step_p95_ms")
    step_s = df["step_mean_ms"] * df["steps"] / 1000.0
    np.testing.assert_allclose(df["images_per_s"], df["images"] / step_s, rtol=REL)


@pytest.mark.parametrize("track", [dataloader, end_to_end])
def test_streaming_rows_warm_and_cold(track, tiny_dataset):
    ctx = make_ctx(tiny_dataset, formats=["parquet", "arrow_ipc", "tiff"],
                   streaming={"loaders": ["native_streaming", "block_torch"], "page_cache": ["warm", "cold"],
                              "chunk_size": 4, "chunks_per_block": 2})
    df = track.run(ctx)
    streamed = df[df["loader"].isin(["native_streaming", "block_torch"])]
    assert set(streamed["format"]) == {"parquet", "arrow_ipc"}  # TIFF has no block reads
    per_config = ctx.config.dataloader.repeats if track is dataloader else ctx.config.end_to_end.repeats
    if track is dataloader:
        cfg = ctx.config.dataloader
        expected = 2 * (len(cfg.batch_sizes) * (len(cfg.native_threads) + len(cfg.num_workers))) * 2 * per_config
    else:
        expected = 2 * 2 * 2 * per_config  # formats x loaders x cache states
    assert len(streamed) == expected
    # this machine's disk drops pages on request; elsewhere a row says it could not ("partial")
    assert set(streamed["page_cache"]) <= {"warm", "cold", "partial"}
    assert (streamed["chunk_size"] == 4).all() and (streamed["chunks_per_block"] == 2).all()
    figure = "samples_per_s" if track is dataloader else "images_per_s"
    assert (streamed[figure] > 0).all()


def test_end_to_end_train_mode_updates_the_model(tiny_dataset):
    ctx = make_ctx(tiny_dataset, formats=["parquet"], end_to_end={"train": True, "steps": 2, "warmup_steps": 0})
    df = end_to_end.run(ctx)
    assert df["loader"].tolist() == ["preloaded", "native"]
    assert (df["mode"] == "train").all() and (df["steps"] == 2).all()
    assert df["data_wait_fraction"].between(0, 1).all()

    torch.manual_seed(0)
    model = SimpleEmbeddingModel(in_channels=1)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loader = DataLoader(TensorDataset(torch.rand(6, 1, 8, 8)), batch_size=3, collate_fn=lambda b: torch.stack(
        [x[0] for x in b]))  # fmt: skip
    wait, compute, images = end_to_end.run_loop(loader, model, optimizer, total_steps=3)
    assert len(wait) == len(compute) == 3 and images == [3, 3, 3]
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


# --- Track 4 ---


@pytest.fixture(scope="module")
def conversion_run(tiny_dataset):
    ctx = make_ctx(tiny_dataset)
    return ctx, conversion.run(ctx)


def test_conversion_rows_and_columns(conversion_run, tiny_dataset):
    ctx, df = conversion_run
    cfg = ctx.config.conversion
    check_common(df, tiny_dataset)
    for column in ("samples", "numpy_p50_ms", "numpy_p95_ms", "numpy_p99_ms", "numpy_mean_ms", "conversion_p50_ms",
                   "conversion_mean_ms", "torch_p50_ms", "torch_p95_ms", "torch_mean_ms", "overhead_pct",
                   "overhead_level", "from_numpy_shares_memory", "converted_shares_memory", "batch_size",
                   "batch_conversion_ms", "batch_conversion_per_sample_ms", "numpy_samples_per_s",
                   "torch_samples_per_s"):  # fmt: skip
        assert column in df.columns, column
    n_native = len(native_formats(tiny_dataset))
    assert len(df) == (len(tiny_dataset.paths) + n_native) * cfg.repeats  # directory formats included
    check_one_row_per_config_repeat(df, ["format", "loader"], cfg.repeats)
    check_native_rows(df, tiny_dataset, cfg.repeats)
    assert set(df.loc[df["format_kind"] == "table", "loader"]) == {"preloaded", "native"}
    assert set(df.loc[df["format_kind"] == "directory", "loader"]) == {"decode", "native"}
    assert (df["samples"] == cfg.samples).all() and (df["batch_size"] == cfg.batch_size).all()


def test_conversion_figures_are_consistent(conversion_run, tiny_dataset):
    _, df = conversion_run
    check_ordered(df, "numpy_p50_ms", "numpy_p95_ms", "numpy_p99_ms")
    check_ordered(df, "torch_p50_ms", "torch_p95_ms", "torch_p99_ms")
    check_ordered(df, "conversion_p50_ms", "conversion_p95_ms")
    np.testing.assert_allclose(df["overhead_pct"], df["conversion_mean_ms"] / df["torch_mean_ms"] * 100, rtol=REL)
    assert [overhead_level(p) for p in df["overhead_pct"]] == df["overhead_level"].tolist()
    np.testing.assert_allclose(df["overhead_p50_pct"], df["conversion_p50_ms"] / df["torch_p50_ms"] * 100, rtol=REL)
    np.testing.assert_allclose(df["numpy_samples_per_s"], 1000.0 / df["numpy_mean_ms"], rtol=REL)
    np.testing.assert_allclose(df["torch_samples_per_s"], 1000.0 / df["torch_mean_ms"], rtol=REL)
    np.testing.assert_allclose(df["batch_conversion_per_sample_ms"] * df["batch_size"], df["batch_conversion_ms"])
    assert (df["batch_conversion_ms"] > 0).all()
    # the stored images are uint8: from_numpy (native: the view of the Arrow buffer) shares memory, the conversion
    # copies; ome-arrow stores uint8 widened to uint16, and the native view has that dtype (the directory formats,
    # decoded from their files by the core, keep the file's dtype)
    native = (df["loader"] == "native") & (df["format_kind"] == "table")
    assert (df.loc[~native, "stored_dtype"] == tiny_dataset.dtype).all()
    assert (df.loc[native, "stored_dtype"] == "uint16").all()
    # the core decodes a directory's files: no view to share, the "numpy load" is the decode
    decoded = (df["loader"] == "native") & (df["format_kind"] == "directory")
    assert df.loc[~decoded, "from_numpy_shares_memory"].all() and not df.loc[decoded, "from_numpy_shares_memory"].any()
    assert not df["converted_shares_memory"].any()


def test_conversion_track_follows_the_stored_dtype(tiny_dataset_any_dtype):
    files = tiny_dataset_any_dtype
    ctx = make_ctx(files, formats=["parquet", "tiff"], conversion={"repeats": 1})
    df = conversion.run(ctx)
    assert set(df["format"]) == {"parquet", "tiff"}
    assert df.loc[df["format"] == "tiff", "loader"].tolist() == ["decode", "native"]
    native = (df["loader"] == "native") & (df["format"] == "parquet")
    assert native.sum() == 1
    assert (df.loc[~native, "stored_dtype"] == files.dtype).all()
    assert df.loc[native, "stored_dtype"].item() == ("float32" if files.dtype == "float32" else "uint16")
    decoded = (df["loader"] == "native") & (df["format"] == "tiff")
    assert decoded.sum() == 1 and not df.loc[decoded, "from_numpy_shares_memory"].any()
    assert df.loc[~decoded, "from_numpy_shares_memory"].all()
    assert (df.loc[~decoded, "converted_shares_memory"] == (files.dtype == "float32")).all()


def test_conversion_share_flags_per_dtype():
    for dtype, converted_shares in (("uint8", False), ("uint16", False), ("float32", True)):
        arr = np.zeros((1, 4, 4), dtype=dtype)
        assert conversion.shares_memory(torch.from_numpy(arr), arr)
        from loaderbench.loaders.seed import to_float_tensor  # noqa: PLC0415

        assert conversion.shares_memory(to_float_tensor(arr), arr) is converted_shares


def test_native_view_conversion_and_sharing(tiny_dataset, tiny_images):
    target = _targets(tiny_dataset)[0]
    table = target.module.read_table(target.path)
    views = make_native_loader(target, source=table, dtype=None)
    converted = make_native_loader(target, source=table)
    convert = conversion.view_converter(255.0)
    for i in range(len(tiny_images)):
        view = views[i]
        assert view.dtype == torch.uint16 and np.array_equal(view.numpy(), tiny_images[i])
        assert torch.equal(convert(view), converted[i])
    assert conversion.in_arrow_buffers(views[0], table)
    assert not conversion.in_arrow_buffers(views[0].clone(), table)
    assert not conversion.in_arrow_buffers(converted[0], table)
    assert conversion.view_shares_memory(views, 3, table)
    assert not conversion.view_shares_memory(converted, 3, table)  # a new tensor per call
    # a float32 view converts to itself; it must not be divided in place (that would write into Arrow memory)
    float_view = torch.ones(2, 2)
    assert conversion.view_converter(1.0)(float_view) is float_view and (float_view == 1).all()


def test_batch_conversion_times_enough_batches():
    arrays = [np.full((1, 4, 4), i, dtype=np.uint8) for i in range(5)]
    assert len(conversion.batch_conversion_ns(arrays, 2)) == conversion.MIN_CONVERSION_BATCHES
    assert len(conversion.batch_conversion_ns(arrays * 10, 2)) == 25
