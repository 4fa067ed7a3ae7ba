"""Data generation: the OME-Arrow table, the cached dataset folder, and opening user inputs."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import ome_arrow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loaderbench import datagen
from loaderbench.config import (
    ALL_FORMATS,
    Config,
    ConfigError,
    DataConfig,
    data_key,
    dataset_plans,
    load_config,
    validate,
)
from loaderbench.datagen import (
    DatasetFiles,
    batch_rows,
    build_ome_table,
    ensure_dataset,
    generate_image_batches,
    generate_images,
    ome_struct,
    open_input,
    read_reference_batches,
    reference_stream,
    write_reference,
)
from loaderbench.formats import FORMATS, FormatError
from loaderbench.formats.base import FormatInfo, ImageStream
from loaderbench.ome_batch import build_ome_batch, build_ome_images, ome_batch_schema
from loaderbench.ome_image import OME_COLUMN, decode_column, decode_struct, to_chw

SMALL = (8, 12)  # height, width


def small_config(**overrides: object) -> DataConfig:
    values: dict[str, object] = {"n_images": 4, "sizes": [list(SMALL)], "channels": 1, "seed": 1}
    values.update(overrides)
    return DataConfig(**values)  # type: ignore[arg-type]


def snapshot(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its modification time in ns."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_build_ome_table_matches_ome_arrows_own_export(dtype: str) -> None:
    images = generate_images(3, 5, 7, dtype, 2, seed=0)
    table = build_ome_table(images)
    assert table.column_names == ["row_id", OME_COLUMN]
    assert table.column("row_id").to_pylist() == [0, 1, 2]
    assert table.column(OME_COLUMN).num_chunks == 1
    for i, value in enumerate(table.column(OME_COLUMN).to_pylist()):
        np.testing.assert_array_equal(to_chw(decode_struct(value)), images[i])
        theirs = ome_arrow.to_numpy(table.column(OME_COLUMN)[i], dtype=images.dtype)  # (T, C, Z, Y, X)
        np.testing.assert_array_equal(theirs.reshape(images[i].shape), images[i])


def test_build_ome_table_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="N, C, H, W"):
        build_ome_table(np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(ValueError, match="zero images"):
        build_ome_table(np.zeros((0, 1, 3, 4), np.uint8))


def test_tiny_dataset_fixture(tiny_dataset: DatasetFiles, tiny_images: np.ndarray) -> None:
    ds = tiny_dataset
    assert ds.source == "generated"
    assert ds.skipped == {}
    assert (ds.n_images, ds.channels, ds.height, ds.width) == tiny_images.shape
    assert ds.dtype == "uint8"
    assert ds.name == "generated 24x32 uint8 2ch"
    assert ds.root.name.startswith(data_key(DataConfig(n_images=12, sizes=[[24, 32]], channels=2, seed=7)))
    manifest = json.loads((ds.root / "manifest.json").read_text())
    assert sorted(manifest["formats"]) == sorted(FORMATS)
    assert manifest["config"]["seed"] == 7
    assert manifest["reference"] == "images.npy"
    assert all(entry["versions"] for entry in manifest["formats"].values())


def test_second_call_rewrites_nothing_and_a_new_seed_gets_a_new_folder(tmp_path: Path) -> None:
    formats = ["parquet", "tiff", "arrow_ipc"]
    messages: list[str] = []
    first = ensure_dataset(small_config(), SMALL, formats, tmp_path, progress=messages.append)
    assert list(first.paths) == formats
    assert sum(m.startswith("writing") for m in messages) == 3
    before = snapshot(first.root)
    assert "manifest.json" in before
    assert "images.npy" in before

    messages.clear()
    again = ensure_dataset(small_config(), SMALL, formats, tmp_path, progress=messages.append)
    assert again == first
    assert snapshot(first.root) == before
    assert messages == []

    other = ensure_dataset(small_config(seed=2), SMALL, formats, tmp_path)
    assert other.root != first.root
    assert not np.array_equal(np.load(other.reference), np.load(first.reference))
    assert snapshot(first.root) == before


def test_only_missing_formats_are_written(tmp_path: Path) -> None:
    first = ensure_dataset(small_config(), SMALL, ["parquet"], tmp_path)
    parquet_mtime = first.paths["parquet"].stat().st_mtime_ns
    messages: list[str] = []
    both = ensure_dataset(small_config(), SMALL, ["parquet", "arrow_ipc"], tmp_path, progress=messages.append)
    assert list(both.paths) == ["parquet", "arrow_ipc"]
    assert both.paths["parquet"].stat().st_mtime_ns == parquet_mtime
    assert [m for m in messages if m.startswith("writing")] == [
        f"writing Arrow IPC (mmap) to {both.paths['arrow_ipc']}"
    ]
    manifest = json.loads((both.root / "manifest.json").read_text())
    assert sorted(manifest["formats"]) == ["arrow_ipc", "parquet"]

    # a dataset deleted behind the cache's back is written again
    both.paths["parquet"].unlink()
    again = ensure_dataset(small_config(), SMALL, ["parquet"], tmp_path)
    assert again.paths["parquet"].exists()
    # so is one whose manifest entry is gone (e.g. an interrupted run): the stale leftover is replaced
    (both.root / "manifest.json").unlink()
    stale_mtime = both.paths["arrow_ipc"].stat().st_mtime_ns
    ensure_dataset(small_config(), SMALL, ["arrow_ipc"], tmp_path)
    assert both.paths["arrow_ipc"].stat().st_mtime_ns > stale_mtime
    assert "arrow_ipc" in json.loads((both.root / "manifest.json").read_text())["formats"]


def test_unavailable_and_failing_formats_are_skipped_with_reasons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lance = FORMATS["lance"]
    missing = FormatInfo(**{**lance.INFO.__dict__, "requires": ("no_such_module_xyz",)})
    monkeypatch.setattr(lance, "INFO", missing)

    def broken_write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
        path.mkdir()
        (path / "half.tiff").write_bytes(b"partial")
        raise OSError("disk on fire")

    monkeypatch.setattr(FORMATS["tiff"], "write", broken_write)
    ds = ensure_dataset(small_config(), SMALL, ["lance", "tiff", "parquet"], tmp_path)
    assert list(ds.paths) == ["parquet"]
    assert "no_such_module_xyz" in ds.skipped["lance"]
    assert "Lance" in ds.skipped["lance"]
    assert ds.skipped["tiff"] == "TIFF (directory): write failed: OSError: disk on fire"
    assert not (ds.root / "tiff").exists()
    manifest = json.loads((ds.root / "manifest.json").read_text())
    assert list(manifest["formats"]) == ["parquet"]
    assert set(manifest["skipped"]) == {"lance", "tiff"}

    monkeypatch.undo()
    fixed = ensure_dataset(small_config(), SMALL, ["tiff"], tmp_path)
    assert list(fixed.paths) == ["tiff"]
    assert fixed.skipped == {}
    assert set(json.loads((ds.root / "manifest.json").read_text())["skipped"]) == {"lance"}


# --- the vectorised OME-Arrow builder and the streamed generation --------------------------------------------

WHEN = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


def per_image_column(images: np.ndarray, start: int = 0, when: datetime | None = WHEN) -> pa.Array:
    """The reference: ``ome_arrow.from_numpy`` image by image, as ``ome_struct`` builds it."""
    return pa.concat_arrays([pa.repeat(ome_struct(img, f"img-{start + i}", when), 1) for i, img in enumerate(images)])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize(
    "shape",
    [(1, 5, 7), (3, 6, 4), (2, 515, 9), (1, 600, 520)],  # 515 rows: two chunks in Y; 600x520: a 2x2 chunk grid
    ids=lambda s: "x".join(map(str, s)),
)
def test_vectorised_batch_equals_ome_arrow_image_by_image(dtype: str, shape: tuple[int, int, int]) -> None:
    images = generate_images(3, shape[1], shape[2], dtype, shape[0], seed=5)
    mine = build_ome_images(images, start=40, acquisition_datetime=WHEN)
    theirs = per_image_column(images, start=40)
    mine.validate(full=True)
    assert mine.type.equals(theirs.type, check_metadata=True)  # field order, nullability, metadata
    assert mine.equals(theirs)
    assert mine.field("id").to_pylist() == ["img-40", "img-41", "img-42"]
    for i, value in enumerate(mine.to_pylist()):
        np.testing.assert_array_equal(to_chw(decode_struct(value)), images[i])


def test_vectorised_batches_continue_the_row_numbering() -> None:
    images = generate_images(7, 6, 10, "uint8", 2, seed=2)
    batches = [build_ome_batch(images[:4], 0, WHEN), build_ome_batch(images[4:], 4, WHEN)]
    table = pa.Table.from_batches(batches)
    assert table.schema == ome_batch_schema("uint8") == build_ome_table(images).schema
    assert table.column("row_id").to_pylist() == list(range(7))
    assert table.column(OME_COLUMN).combine_chunks().equals(per_image_column(images))
    assert build_ome_table(images, WHEN).equals(table.combine_chunks())


def test_only_the_acquisition_time_differs_from_ome_arrows_defaults() -> None:
    """``from_numpy`` reads the clock once per image (``datetime.now``), the builder once per batch: with the
    default times, every other field is equal."""
    images = generate_images(3, 4, 5, "uint16", 1, seed=1)
    mine, theirs = build_ome_images(images), per_image_column(images, when=None)
    names = [f.name for f in mine.type]
    assert "acquisition_datetime" in names
    for name in names:
        if name != "acquisition_datetime":
            assert mine.field(name).equals(theirs.field(name)), name
    assert len(set(mine.field("acquisition_datetime").to_pylist())) == 1


@pytest.mark.parametrize("layout", ["bytes", "bytes-zstd", "bytes-lz4"])
def test_byte_layouts_equal_ome_arrows_byte_chunks(layout: str) -> None:
    """uint16 images (no widening): the vectorised byte chunks equal ``from_numpy(chunk_encoding="bytes", ...)``
    image by image, compressed payloads included."""
    images = generate_images(3, 600, 520, "uint16", 2, seed=4)  # a 2x2 chunk grid per plane
    codec = {"bytes": None, "bytes-zstd": "zstd", "bytes-lz4": "lz4"}[layout]
    mine = build_ome_images(images, 0, WHEN, layout)
    mine.validate(full=True)
    for i, value in enumerate(mine.to_pylist()):
        theirs = ome_arrow.from_numpy(images[i].reshape(1, 2, 1, 600, 520), image_id=f"img-{i}",
                                      chunk_encoding="bytes", chunk_compression=codec, acquisition_datetime=WHEN)
        theirs = theirs.as_py()
        assert [c["compression"] for c in value["chunks"]] == [c["compression"] for c in theirs["chunks"]]
        assert value["planes"] == theirs["planes"] == []
        # the payloads decode to the same pixels (compressed bytes may differ by codec settings)
        np.testing.assert_array_equal(to_chw(decode_struct(value)), to_chw(decode_struct(theirs)))
        np.testing.assert_array_equal(to_chw(decode_struct(value)), images[i])


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("layout", ["ome-arrow", "planes", "chunks", "bytes", "bytes-zstd", "bytes-lz4"])
def test_every_layout_decodes_exactly_and_keeps_its_dtype(dtype: str, layout: str) -> None:
    images = generate_images(4, 515, 9, dtype, 2, seed=3)
    if dtype == "float32" and layout in ("planes", "chunks"):
        with pytest.raises(ValueError, match="cannot use the"):
            build_ome_images(images, layout=layout)
        return
    column = build_ome_images(images, layout=layout)
    column.validate(full=True)
    values = column.to_pylist()
    assert {v["pixels_meta"]["type"] for v in values} == {dtype}  # uint8 declared as uint8, bytes included
    if layout == "planes":
        assert all(v["chunks"] == [] and v["planes"] for v in values)
    if layout == "chunks":
        assert all(v["planes"] == [] and v["chunks"] for v in values)
    for i, value in enumerate(values):
        np.testing.assert_array_equal(to_chw(decode_struct(value)), images[i])
    np.testing.assert_array_equal(decode_column(column)[:, :, 0], images)


def test_a_layout_reaches_the_files_and_the_manifest(tmp_path: Path) -> None:
    cfg = small_config(layout="bytes-zstd")
    ds = ensure_dataset(cfg, SMALL, ["parquet"], tmp_path)
    assert json.loads((ds.root / "manifest.json").read_text())["layout"] == "bytes-zstd"
    assert ds.root.name.split("-")[0] != data_key(small_config())  # its own cache folder
    chunks = pq.read_table(ds.paths["parquet"]).column(OME_COLUMN).combine_chunks().field("chunks")
    assert set(chunks.flatten().field("compression").to_pylist()) == {"zstd"}


def test_unknown_or_impossible_layouts_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="data.layout"):
        load_config("quick", overrides={"data": {"layout": "jpeg"}})
    with pytest.raises(ConfigError, match="cannot hold float32"):
        load_config("quick", overrides={"data": {"layout": "planes", "dtype": "float32"}})
    assert data_key(load_config("quick").data) == data_key(load_config("quick", overrides={
        "data": {"layout": "ome-arrow"}}).data)


def test_builder_rejects_what_ome_arrow_would_not_store() -> None:
    with pytest.raises(ValueError, match="N, C, H, W"):
        build_ome_images(np.zeros((2, 3, 4), np.uint8))
    with pytest.raises(ValueError, match="unsupported dtype 'int32'"):
        build_ome_images(np.zeros((1, 1, 2, 2), np.int32))


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_batched_generation_is_one_calls_stream(dtype: str) -> None:
    whole = generate_images(13, 5, 7, dtype, 3, seed=9)  # 105 pixels an image: odd
    for rows in (4, 8, 12, 16):
        np.testing.assert_array_equal(np.concatenate(list(generate_image_batches(13, 5, 7, dtype, 3, 9, rows))), whole)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
def test_smooth_content_compresses_and_any_batching_gives_its_pixels(
    dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    zstandard = pytest.importorskip("zstandard")
    monkeypatch.setattr(datagen, "SMOOTH_GROUP_PIXELS", 5 * 40 * 30)  # groups of 5 images: batches straddle them
    whole = generate_images(23, 40, 30, dtype, 1, seed=9, content="smooth")
    assert whole.shape == (23, 1, 40, 30) and whole.dtype == np.dtype(dtype)
    for rows in (1, 3, 4, 7, 23, 50):
        batches = list(generate_image_batches(23, 40, 30, dtype, 1, 9, rows, content="smooth"))
        np.testing.assert_array_equal(np.concatenate(batches), whole)
    assert not np.array_equal(generate_images(23, 40, 30, dtype, 1, seed=10, content="smooth"), whole)
    if dtype != "float32":  # the integer content is mostly dark background: zstd keeps well under the raw bytes
        ratio = whole.nbytes / len(zstandard.ZstdCompressor().compress(whole.tobytes()))
        noise = generate_images(23, 40, 30, dtype, 1, seed=9)
        assert ratio > 1.4 > noise.nbytes / len(zstandard.ZstdCompressor().compress(noise.tobytes()))
        low, span, _ = datagen.SMOOTH_LEVELS[dtype]
        assert whole.min() >= low and whole.max() < low + span + 64
    else:
        assert 0 <= whole.min() and whole.max() <= 1
    volumes = generate_images(3, 6, 5, dtype, 2, seed=1, depth=4, content="smooth")
    assert volumes.shape == (3, 2, 4, 6, 5)
    with pytest.raises(ValueError, match="unknown image content 'noise'"):
        generate_images(2, 4, 4, dtype, content="noise")


def test_content_is_part_of_the_cache_key_and_validated() -> None:
    plain = DataConfig()
    assert data_key(dataclasses.replace(plain, content="random")) == data_key(plain)  # old caches keep their key
    assert data_key(dataclasses.replace(plain, content="smooth")) != data_key(plain)
    with pytest.raises(ConfigError, match="data.content"):
        validate(Config(data=dataclasses.replace(plain, content="blobs")))


def test_batches_of_other_sizes_would_change_the_pixels() -> None:
    """Why ``batch_rows`` is a multiple of 4: numpy draws uint8 four to a 32-bit word, afresh in each call."""
    whole = generate_images(6, 5, 7, "uint8", 1, seed=9)
    assert not np.array_equal(np.concatenate(list(generate_image_batches(6, 5, 7, "uint8", 1, 9, rows=3))), whole)


def test_batch_rows_is_a_multiple_of_4_of_about_32_mib() -> None:
    assert batch_rows(1, 100, 100, "uint8") == 3352  # 32 MiB / 10,000 bytes, rounded down to a multiple of 4
    assert batch_rows(1, 1000, 1000, "uint8") == 32
    assert batch_rows(3, 1000, 1000, "float32") == 4  # 12 MB an image: at least 4
    assert batch_rows(1, 5, 7, "uint8", target_bytes=36 * 7) == 4


def test_reference_is_written_and_read_batch_by_batch(tmp_path: Path) -> None:
    images = generate_images(10, 3, 5, "uint16", 2, seed=4)
    path = tmp_path / "images.npy"
    messages: list[str] = []
    write_reference(path, iter(np.array_split(images, [4, 8])), images.shape, "uint16", messages.append)
    np.testing.assert_array_equal(np.load(path), images)
    assert messages[0] == "generating images: 0/10 images"
    assert [m.split(",")[0] for m in messages[1:3]] == ["generating images: 4/10 images (40%)",
                                                         "generating images: 8/10 images (80%)"]
    assert "left" in messages[1] and messages[3].startswith("generating images: 10/10 images in ")
    parts = list(read_reference_batches(path, rows=4))
    assert [len(p) for p in parts] == [4, 4, 2]
    assert all(type(p) is np.ndarray for p in parts)  # plain arrays: no mapping left in the process
    np.testing.assert_array_equal(np.concatenate(parts), images)
    np.testing.assert_array_equal(np.concatenate(list(read_reference_batches(path, 3, start=2, stop=7))), images[2:7])


def test_an_interrupted_generation_leaves_no_reference(tmp_path: Path) -> None:
    def interrupted() -> Iterator[np.ndarray]:
        yield np.zeros((4, 1, 2, 2), np.uint8)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_reference(tmp_path / "images.npy", interrupted(), (8, 1, 2, 2), "uint8")
    with pytest.raises(ValueError, match="4 images generated, 8 expected"):
        write_reference(tmp_path / "images.npy", iter([np.zeros((4, 1, 2, 2), np.uint8)]), (8, 1, 2, 2), "uint8")
    assert list(tmp_path.iterdir()) == []


def test_reference_stream_is_the_table_a_batch_at_a_time(tmp_path: Path) -> None:
    images = generate_images(9, 4, 6, "float32", 1, seed=3)
    np.save(tmp_path / "images.npy", images)
    stream = reference_stream(tmp_path / "images.npy", WHEN, rows=4)
    assert (stream.num_rows, stream.schema) == (9, ome_batch_schema("float32"))
    for _ in range(2):  # a fresh pass per call
        parts = list(stream.batches())
        assert [b.num_rows for b, _ in parts] == [4, 4, 1]
        np.testing.assert_array_equal(np.concatenate([p for _, p in parts]), images)
        assert pa.Table.from_batches([b for b, _ in parts]).combine_chunks().equals(build_ome_table(images, WHEN))


class RecordingWriter:
    """Stands in for a format's ``write``: writes the streamed table as Parquet, remembers what it was given."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
        parts = list(data.batches())
        self.calls.append({"rows": [b.num_rows for b, _ in parts], "rows_per_unit": rows_per_unit})
        with datagen.atomic_output(path) as tmp:
            pq.write_table(pa.Table.from_batches([b for b, _ in parts], schema=data.schema), tmp)
        return {"read_unit": "row group", "rows_per_unit": rows_per_unit or 7}


def test_ensure_dataset_streams_batches_and_records_the_read_unit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = RecordingWriter()
    monkeypatch.setattr(FORMATS["parquet"], "write", writer)
    monkeypatch.setattr(datagen, "BATCH_BYTES", 4 * 8 * 12)  # 4 images a batch
    messages: list[str] = []
    ds = ensure_dataset(small_config(n_images=10, rows_per_unit=5), SMALL, ["parquet"], tmp_path, messages.append)
    images = generate_images(10, *SMALL, "uint8", 1, seed=1)
    np.testing.assert_array_equal(np.load(ds.reference), images)
    assert writer.calls == [{"rows": [4, 4, 2], "rows_per_unit": 5}]
    assert [m.split(",")[0] for m in messages if m.startswith("generating images: ")][1:3] == [
        "generating images: 4/10 images (40%)", "generating images: 8/10 images (80%)"]
    assert any(m.startswith("Parquet (pyarrow) written: 10/10 images in ") for m in messages)
    table = pq.read_table(ds.paths["parquet"])
    manifest = json.loads((ds.root / "manifest.json").read_text())
    when = datetime.fromisoformat(manifest["acquisition_datetime"])
    assert table.equals(build_ome_table(images, when))
    assert manifest["manifest_version"] == datagen.MANIFEST_VERSION
    assert manifest["formats"]["parquet"]["layout"] == {"read_unit": "row group", "rows_per_unit": 5}
    assert ds.layouts == {"parquet": {"read_unit": "row group", "rows_per_unit": 5}}
    assert ensure_dataset(small_config(n_images=10, rows_per_unit=5), SMALL, ["parquet"], tmp_path) == ds
    assert len(writer.calls) == 1


def test_an_interrupted_write_keeps_the_formats_finished_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(FORMATS["parquet"], "write", RecordingWriter())

    def interrupted(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
        with datagen.atomic_output(path) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt

    monkeypatch.setattr(FORMATS["arrow_ipc"], "write", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_dataset(small_config(), SMALL, ["parquet", "arrow_ipc"], tmp_path)
    (folder,) = tmp_path.iterdir()
    assert sorted(p.name for p in folder.iterdir()) == ["images.npy", "images.parquet", "manifest.json"]
    assert list(json.loads((folder / "manifest.json").read_text())["formats"]) == ["parquet"]


# --- config: rows_per_unit, datasets at scale ----------------------------------------------------------------------


def test_data_keys_of_configs_without_the_new_keys_are_unchanged() -> None:
    """Existing cached datasets keep their folders: the keys as they were before rows_per_unit and datasets."""
    keys = {(p.size, p.data.n_images): data_key(p.data) for p in dataset_plans(load_config("full"))}
    assert keys[((1000, 1000), 250)] == "961e79550c6f"
    assert keys[((100, 100), 1000)] == "aaf7fc6c3d58"
    (quick,) = dataset_plans(load_config("quick"))
    # quick asks for read units of 32 rows (so that its streaming rows have several blocks): only that changed it
    assert quick.data.rows_per_unit == 32
    assert data_key(dataclasses.replace(quick.data, rows_per_unit=None)) == "0e3cdb0ace17"
    assert data_key(DataConfig(rows_per_unit=64)) != data_key(DataConfig())


def test_quick_prepares_what_it_always_did() -> None:
    (plan,) = dataset_plans(load_config("quick"))
    assert (plan.size, plan.data.n_images, plan.formats) == ((100, 100), 256, list(ALL_FORMATS))


def test_full_adds_a_million_small_images_and_big_ones_beyond_half_the_memory() -> None:
    memory = 24 * 10**9
    plans = dataset_plans(load_config("full"), memory_bytes=memory)
    assert [(p.size, p.data.n_images) for p in plans[:3]] == [((50, 50), 1000), ((100, 100), 1000), ((1000, 1000), 250)]
    million, big = plans[3:]
    assert (million.size, million.data.n_images, million.formats) == ((100, 100), 1_000_000, ["parquet"])
    assert (big.size, big.formats) == ((1000, 1000), ["parquet"])
    assert big.data.n_images == 7201  # pixels just over 0.3 x memory: Parquet stores them about twice
    assert big.data.n_images * 10**6 > 0.3 * memory
    assert big.data.sizes == [[1000, 1000]] and big.data.datasets == [] and big.data.max_pixels == 0
    # an entry is written only in formats also configured; with none left it is not generated
    only_tiff = load_config("full", overrides={"formats": ["tiff"]})
    assert [p.size for p in dataset_plans(only_tiff, memory)] == [(50, 50), (100, 100), (1000, 1000)]


@pytest.mark.parametrize(
    ("datasets", "match"),
    [
        ([{"n_images": 3}], r"data.datasets\[0\] needs a size"),
        ([{"size": [0, 4]}], r"data.datasets\[0\].size must be \[height, width\]"),
        ([{"size": [4, 4], "colour": 1}], r"unknown config key data.datasets\[0\].'colour'"),
        ([{"size": [4, 4], "formats": ["hdf5"]}], r"data.datasets\[0\].formats: unknown value"),
        ([{"size": [4, 4], "ram_fraction": -1}], r"ram_fraction must be a number"),
        ([{"size": [4, 4], "n_images": 0}], r"data.datasets\[0\].n_images must be >= 1"),
        (["big"], r"data.datasets\[0\] must be a table"),
    ],
)
def test_bad_datasets_entries_are_refused(datasets: list[Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config("quick", overrides={"data": {"datasets": datasets}})


def test_rows_per_unit_must_be_positive() -> None:
    assert load_config("quick", overrides={"data": {"rows_per_unit": 128}}).data.rows_per_unit == 128
    with pytest.raises(ConfigError, match="data.rows_per_unit must be >= 1"):
        load_config("quick", overrides={"data": {"rows_per_unit": 0}})


# --- open_input --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(FORMATS))
def test_open_input_detects_each_format(name: str, tiny_dataset: DatasetFiles) -> None:
    if name not in tiny_dataset.paths:
        pytest.skip(tiny_dataset.skipped.get(name, "not written"))
    path = tiny_dataset.paths[name]
    ds = open_input(str(path))
    assert ds.source == "input"
    assert ds.reference is None
    assert ds.skipped == {}
    assert ds.paths == {name: path}
    assert ds.name == str(path)
    assert (ds.n_images, ds.channels, ds.height, ds.width, ds.dtype) == (12, 2, 24, 32, "uint8")
    assert open_input(f"{name}:{path}").paths == {name: path}


def test_open_input_reports_the_stored_dtype(tiny_dataset_any_dtype: DatasetFiles) -> None:
    ds = open_input(str(tiny_dataset_any_dtype.paths["parquet"]))
    assert ds.dtype == tiny_dataset_any_dtype.dtype


def test_open_input_named_format_overrides_detection(tiny_dataset: DatasetFiles) -> None:
    path = tiny_dataset.paths["parquet_duckdb"]
    assert open_input(f"parquet:{path}").paths == {"parquet": path}


def test_open_input_errors_are_one_line_naming_the_path(tiny_dataset: DatasetFiles, tmp_path: Path) -> None:
    def fails(spec: str, match: str) -> None:
        with pytest.raises(FormatError, match=match) as exc:
            open_input(spec)
        assert "\n" not in str(exc.value)

    fails(str(tmp_path / "missing.parquet"), "no such file")
    fails("hdf5:/data/x.h5", "unknown format 'hdf5'")
    fails("parquet:", "no path")
    text = tmp_path / "notes.txt"
    text.write_text("not a dataset")
    fails(str(text), "not a dataset of any supported format")
    fails(f"duckdb:{tiny_dataset.paths['parquet']}", "not a DuckDB database")
    fails(f"tiff:{tmp_path}", "no .tif")

    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"row_id": [0], "label": ["x"]}), foreign)
    fails(str(foreign), f"{foreign}: no 'ome_image' column")

    # a struct with the right fields whose pixel type nobody can decode
    table = build_ome_table(generate_images(2, 4, 4, "uint16", 1))
    rows = table.column(OME_COLUMN).to_pylist()
    for row in rows:
        row["pixels_meta"]["type"] = "complex64"
    broken = pa.table({"row_id": [0, 1], OME_COLUMN: pa.array(rows, type=table.schema.field(OME_COLUMN).type)})
    pq.write_table(broken, tmp_path / "broken.parquet")
    fails(str(tmp_path / "broken.parquet"), r"rows 0, 1: pixel type 'complex64' is not supported")

    # images of different sizes cannot be batched
    mixed = pa.concat_tables(
        [
            build_ome_table(generate_images(1, 4, 4, "uint8", 1)),
            build_ome_table(generate_images(1, 4, 6, "uint8", 1)),
        ]
    )
    mixed = mixed.set_column(0, "row_id", pa.array([0, 1], pa.int64()))
    pq.write_table(mixed, tmp_path / "mixed.parquet")
    fails(str(tmp_path / "mixed.parquet"), r"images differ in size: row 0 is 1x4x4 \(CxHxW\), row 1 is 1x4x6")


def test_open_input_on_a_copied_directory_dataset(tiny_dataset: DatasetFiles, tmp_path: Path) -> None:
    copy = tmp_path / "my_tiffs"
    shutil.copytree(tiny_dataset.paths["tiff"], copy)
    ds = open_input(str(copy))
    assert ds.paths == {"tiff": copy}
    assert ds.n_images == 12
    assert ds.root == tmp_path


def test_open_input_names_the_null_rows(tmp_path: Path) -> None:
    table = build_ome_table(generate_images(6, 4, 4, "uint8", 1))
    images = table.column(OME_COLUMN).combine_chunks()
    mask = pa.array([False, False, True, False, True, False])
    nulled = pa.StructArray.from_arrays(images.flatten(), fields=list(images.type), mask=mask)
    pq.write_table(table.set_column(1, OME_COLUMN, nulled), tmp_path / "nulls.parquet")
    with pytest.raises(FormatError, match=r"nulls\.parquet: 2 of 6 rows have a null ome_image \(rows 2, 4\)"):
        open_input(str(tmp_path / "nulls.parquet"))


def test_open_input_takes_mixed_pixel_types(tmp_path: Path) -> None:
    small = build_ome_table(generate_images(2, 4, 4, "uint8", 1))
    wide = build_ome_table(generate_images(2, 4, 4, "uint16", 1))
    mixed = pa.concat_tables([small, wide]).set_column(0, "row_id", pa.array(np.arange(4)))
    pq.write_table(mixed, tmp_path / "mixed.parquet")
    ds = open_input(str(tmp_path / "mixed.parquet"))
    assert (ds.dtype, ds.n_images, ds.column) == ("uint8+uint16", 4, OME_COLUMN)


def test_open_input_reads_any_image_column(tmp_path: Path) -> None:
    table = build_ome_table(generate_images(3, 4, 4, "uint8", 1)).drop_columns(["row_id"])
    pq.write_table(table.rename_columns(["image"]), tmp_path / "image.parquet")
    assert open_input(str(tmp_path / "image.parquet")).column == "image"
    pq.write_table(pa.table({"a": table.column(0), "b": table.column(0)}), tmp_path / "two.parquet")
    with pytest.raises(FormatError, match=r"2 OME-Arrow image columns \(a, b\)"):
        open_input(str(tmp_path / "two.parquet"))
    assert open_input(str(tmp_path / "two.parquet"), column="b").column == "b"


@pytest.mark.parametrize("name", ["tiff", "ome_zarr"])
def test_open_input_checks_every_item_has_one_size(name: str, tmp_path: Path) -> None:
    module = FORMATS[name]
    images = generate_images(4, 8, 8, "uint8", 1)
    module.write(ImageStream.from_images(images), tmp_path / "a")
    module.write(ImageStream.from_images(generate_images(1, 6, 8, "uint8", 1)), tmp_path / "b")
    items = module.item_paths(tmp_path / "a")
    for item in items:  # the metadata says what a decode gives
        assert module.item_shape(item) == ((1, 8, 8), "uint8") == (module.read_item(item).shape, "uint8")
    odd = module.item_paths(tmp_path / "b")[0]
    remove = shutil.rmtree if items[-1].is_dir() else Path.unlink
    remove(items[-1])
    (shutil.copytree if odd.is_dir() else shutil.copy)(odd, items[-1])
    with pytest.raises(FormatError, match=rf"{items[-1].name}: image is 1x6x8 \(CxHxW\) but {items[0].name} is 1x8x8"):
        open_input(str(tmp_path / "a"))


def test_column_is_for_table_inputs(tiny_dataset: DatasetFiles) -> None:
    with pytest.raises(FormatError, match="--column applies to table formats"):
        open_input(str(tiny_dataset.paths["tiff"]), column="image")


# --- volumes (Z stacks) ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "float32"])
@pytest.mark.parametrize("shape", [(2, 3, 6, 4), (1, 4, 515, 9)], ids=lambda s: "x".join(map(str, s)))  # C, Z, H, W
def test_vectorised_volumes_equal_ome_arrows_czyx_import(dtype: str, shape: tuple[int, int, int, int]) -> None:
    """The builder on ``(N, C, Z, H, W)`` equals ``ome_arrow.from_numpy(volume, dim_order="CZYX")`` image by image:
    one plane per (C, Z), Z inner; one chunk row per plane (two in Y for 515 rows); ``XYZCT``; ``size_z``."""
    c, z, h, w = shape
    volumes = generate_images(3, h, w, dtype, c, seed=6, depth=z)
    assert volumes.shape == (3, c, z, h, w)
    mine = build_ome_images(volumes, start=10, acquisition_datetime=WHEN)
    mine.validate(full=True)
    options: dict[str, Any] = {"dtype_meta": dtype, "acquisition_datetime": WHEN}
    if dtype == "float32":
        options.update(clamp_to_uint16=False, chunk_encoding="bytes")
    theirs = pa.concat_arrays([pa.repeat(ome_arrow.from_numpy(v, dim_order="CZYX", image_id=f"img-{10 + i}",
                                                              **options), 1) for i, v in enumerate(volumes)])
    assert mine.type.equals(theirs.type, check_metadata=True)
    assert mine.equals(theirs)
    assert ome_struct(volumes[0], "img-10", WHEN).equals(theirs[0])  # the per-image reference takes volumes too
    meta = mine.field("pixels_meta")
    assert meta.field("size_z").to_pylist() == [z] * 3 and set(meta.field("dimension_order").to_pylist()) == {"XYZCT"}
    for i, value in enumerate(mine.to_pylist()):
        np.testing.assert_array_equal(decode_struct(value), volumes[i])
    np.testing.assert_array_equal(decode_column(mine), volumes)


@pytest.mark.parametrize("layout", ["planes", "chunks", "bytes", "bytes-zstd", "bytes-lz4"])
def test_every_layout_stores_volumes_exactly(layout: str) -> None:
    volumes = generate_images(3, 515, 9, "uint16", 2, seed=8, depth=3)
    column = build_ome_images(volumes, layout=layout)
    column.validate(full=True)
    for i, value in enumerate(column.to_pylist()):
        np.testing.assert_array_equal(decode_struct(value), volumes[i])
    np.testing.assert_array_equal(decode_column(column), volumes)


def test_volumes_are_generated_batch_by_batch_as_one_call() -> None:
    whole = generate_images(9, 5, 7, "uint8", 2, seed=3, depth=4)
    assert whole.shape == (9, 2, 4, 5, 7)
    batches = list(generate_image_batches(9, 5, 7, "uint8", 2, 3, rows=4, depth=4))
    np.testing.assert_array_equal(np.concatenate(batches), whole)
    assert generate_images(2, 5, 7, "uint8", 2, seed=3, depth=1).shape == (2, 2, 5, 7)  # depth 1: 2-D, as before
    assert batch_rows(1, 100, 100, "uint8", depth=8) < batch_rows(1, 100, 100, "uint8")  # Z planes count as pixels


def test_tiny_volume_dataset(tiny_volume_dataset: DatasetFiles) -> None:
    ds = tiny_volume_dataset
    reference = np.load(ds.reference)
    assert reference.shape == (6, 2, 3, 16, 16)
    assert (ds.depth, ds.channels, ds.height, ds.width, ds.is_volume) == (3, 2, 16, 16, True)
    assert (ds.image_size, ds.image_shape) == ("3x16x16", (2, 3, 16, 16))
    assert ds.name == "generated 3x16x16 uint8 2ch" and ds.root.name.endswith("-3x16x16")
    assert {"parquet", "arrow_ipc", "parquet_duckdb", "lance", "vortex", "duckdb"} <= set(ds.paths), ds.skipped
    assert set(ds.paths) | set(ds.skipped) == set(ALL_FORMATS)
    assert json.loads((ds.root / "manifest.json").read_text())["depth"] == 3


def test_a_directory_writer_that_loses_the_z_axis_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that leaves files its reader takes for something else (here: Z planes read as channels) is a
    skipped format with the reason, not a dataset every track would fail on."""
    tiff = FORMATS["tiff"]
    write = tiff.write

    def flattening_write(data: ImageStream, path: Path, rows_per_unit: int | None = None) -> dict[str, Any]:
        flat = [v.reshape(-1, *v.shape[-2:]) for v in data.images()]
        return write(ImageStream.from_images(np.stack(flat)), path)

    monkeypatch.setattr(tiff, "write", flattening_write)
    ds = ensure_dataset(small_config(channels=2, depth=3), SMALL, ["tiff", "parquet"], tmp_path)
    assert list(ds.paths) == ["parquet"]
    assert "reads back as 6x8x12 (CxHxW), written as 2x3x8x12 (CxZxHxW)" in ds.skipped["tiff"]
    assert not (ds.root / "tiff").exists()


@pytest.mark.parametrize("depth", [0, -2, True, "3", 1.5])
def test_depth_must_be_a_whole_number_of_planes(depth: object) -> None:
    with pytest.raises(ConfigError, match="data.depth"):
        load_config("quick", overrides={"data": {"depth": depth}})


def test_depth_defaults_to_2d_and_keeps_the_cache_keys(tmp_path: Path) -> None:
    config_file = tmp_path / "volumes.toml"
    config_file.write_text("[data]\ndepth = 8\nmax_pixels = 80000\nsizes = [[100, 100]]\n")
    volumes = load_config("quick", config_file).data
    assert load_config("quick").data.depth == 1 and volumes.depth == 8
    assert data_key(DataConfig(depth=1)) == data_key(DataConfig())  # the folders cached before depth existed
    assert data_key(volumes) != data_key(dataclasses.replace(volumes, depth=1))
    (plan,) = dataset_plans(load_config("quick", config_file))
    assert plan.data.n_images == 1  # max_pixels counts every plane: 8 x 100 x 100 per image
    with pytest.raises(ConfigError, match=r"data.depth must be an integer >= 1 \(Z planes per image"):
        load_config("quick", overrides={"data": {"depth": 0}})


@pytest.mark.parametrize("name", ["parquet", "arrow_ipc", "lance", "duckdb"])
def test_open_input_takes_table_volumes(name: str, tiny_volume_dataset: DatasetFiles) -> None:
    ds = open_input(f"{name}:{tiny_volume_dataset.paths[name]}")
    assert (ds.n_images, ds.channels, ds.depth, ds.height, ds.width) == (6, 2, 3, 16, 16)
    assert ds.image_size == "3x16x16" and ds.is_volume


def test_open_input_names_a_volume_of_another_depth(tmp_path: Path) -> None:
    mixed = pa.concat_tables([build_ome_table(generate_images(1, 4, 4, "uint8", 1, depth=3)),
                              build_ome_table(generate_images(1, 4, 4, "uint8", 1, depth=2))])
    pq.write_table(mixed.set_column(0, "row_id", pa.array([0, 1], pa.int64())), tmp_path / "z.parquet")
    with pytest.raises(FormatError, match=r"row 0 is 1x4x4 z=3 \(CxHxW\), row 1 is 1x4x4 z=2"):
        open_input(str(tmp_path / "z.parquet"))


@pytest.mark.parametrize("name", ["tiff", "ome_zarr"])
def test_open_input_takes_directory_volumes(name: str, volume_directories: dict[str, Path]) -> None:
    volumes = np.load(volume_directories["reference"])
    folder = volume_directories[name]
    ds = open_input(f"{name}:{folder}")
    assert (ds.n_images, ds.channels, ds.depth, ds.height, ds.width, ds.dtype) == (3, 2, 5, 10, 12, "uint16")
    module = FORMATS[name]
    for item, volume in zip(module.item_paths(folder), volumes, strict=True):
        np.testing.assert_array_equal(module.read_item(item), volume)
