"""Every storage format: pixel-exact round trips, row order, detection and clear errors on bad files."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from loaderbench.config import ALL_FORMATS
from loaderbench.datagen import DatasetFiles, build_ome_table, generate_images
from loaderbench.formats import (
    FORMATS,
    FormatError,
    ImageStream,
    check_table,
    detect_format,
    get_format,
    source_column,
)
from loaderbench.ome_image import OME_COLUMN, decode_struct, to_chw

TABLE_FORMATS = [n for n in ALL_FORMATS if FORMATS[n].INFO.kind == "table"]
DIRECTORY_FORMATS = [n for n in ALL_FORMATS if FORMATS[n].INFO.kind == "directory"]
FILE_FORMATS = [n for n in TABLE_FORMATS if n != "lance"]  # lance is a directory of files


def dataset_path(ds: DatasetFiles, name: str) -> Path:
    """The dataset path of format ``name``, or a skip with the reason it was not written."""
    if name not in ds.paths:
        pytest.skip(ds.skipped.get(name, f"{name} was not written"))
    return ds.paths[name]


def require(name: str):
    """The format module, or a skip naming why its library is unavailable."""
    module = get_format(name)
    reason = module.INFO.unavailable_reason()
    if reason:
        pytest.skip(reason)
    return module


def read_all(name: str, path: Path) -> tuple[np.ndarray, list[int] | None]:
    """All images ``(N, C, H, W)`` through the format's own read path, and the row ids of table formats."""
    module = get_format(name)
    if module.INFO.kind == "table":
        table = module.read_table(path)
        assert isinstance(table, pa.Table)
        assert hasattr(table, "__arrow_c_stream__")
        images = [to_chw(decode_struct(v)) for v in table.column(OME_COLUMN).to_pylist()]
        return np.stack(images), table.column("row_id").to_pylist()
    return np.stack([module.read_item(item) for item in module.item_paths(path)]), None


def assert_one_line_naming(exc: pytest.ExceptionInfo, path: Path) -> None:
    message = str(exc.value)
    assert str(path) in message, message
    assert "\n" not in message, message


# --- round trips -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_round_trip_pixel_exact_in_row_order(name: str, tiny_dataset_any_dtype: DatasetFiles) -> None:
    ds = tiny_dataset_any_dtype
    path = dataset_path(ds, name)
    expected = np.load(ds.reference)
    images, row_ids = read_all(name, path)
    assert images.dtype == expected.dtype == np.dtype(ds.dtype)
    assert images.shape == expected.shape == (ds.n_images, ds.channels, ds.height, ds.width)
    np.testing.assert_array_equal(images, expected)
    if row_ids is not None:
        assert row_ids == list(range(ds.n_images))


def test_reference_is_the_generated_images(tiny_dataset: DatasetFiles, tiny_images: np.ndarray) -> None:
    np.testing.assert_array_equal(np.load(tiny_dataset.reference), tiny_images)


@pytest.mark.parametrize("name", TABLE_FORMATS)
def test_rows_stored_out_of_order_come_back_sorted_by_row_id(name: str, tmp_path: Path) -> None:
    module = require(name)
    images = generate_images(6, 8, 8, "uint16", 1, seed=3)
    table = build_ome_table(images)
    shuffled = table.take(pa.array([4, 1, 5, 0, 3, 2]))
    path = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(shuffled, images[[4, 1, 5, 0, 3, 2]]), path)
    got, row_ids = read_all(name, path)
    assert row_ids == list(range(6))
    np.testing.assert_array_equal(got, images)


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_detect_format_recognises_each_written_format(name: str, tiny_dataset: DatasetFiles) -> None:
    assert detect_format(dataset_path(tiny_dataset, name)) == name


def test_every_format_is_available_here(tiny_dataset: DatasetFiles) -> None:
    assert tiny_dataset.skipped == {}
    assert list(tiny_dataset.paths) == list(ALL_FORMATS)


@pytest.mark.parametrize("name", ALL_FORMATS)
def test_write_leaves_no_temp_files_and_a_failed_write_leaves_nothing(name: str, tmp_path: Path) -> None:
    module = require(name)
    images = generate_images(3, 8, 8, "uint8", 1)
    target = tmp_path / module.INFO.filename.rstrip("/")
    module.write(ImageStream.from_table(build_ome_table(images), images), target)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(TypeError, match="ImageStream"):
        module.write("not a stream", target)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the library raises on nonsense data
        module.write(_failing_stream(images), target)
    assert list(tmp_path.iterdir()) == []


def _failing_stream(images: np.ndarray) -> ImageStream:
    """A stream whose second batch fails (a generator interrupted half-way): the writer must leave nothing."""
    table = build_ome_table(images)

    def batches():
        yield table.to_batches()[0].slice(0, 1), images[:1]
        raise RuntimeError("the generator failed")

    return ImageStream(schema=table.schema, num_rows=table.num_rows, batches=batches)


# --- errors ------------------------------------------------------------------------------------------------------


def test_unknown_format_name_lists_known_names() -> None:
    with pytest.raises(FormatError, match="unknown format 'hdf5'") as exc:
        get_format("hdf5")
    assert all(name in str(exc.value) for name in ALL_FORMATS)


def test_detect_format_rejects_foreign_files(tmp_path: Path) -> None:
    foreign = tmp_path / "notes.txt"
    foreign.write_text("hello")
    with pytest.raises(FormatError, match="not a dataset of any supported format") as exc:
        detect_format(foreign)
    assert_one_line_naming(exc, foreign)
    with pytest.raises(FormatError, match="no such file"):
        detect_format(tmp_path / "missing.parquet")


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return dst


@pytest.mark.parametrize("name", TABLE_FORMATS)
def test_truncated_table_file_is_a_format_error(name: str, tiny_dataset: DatasetFiles, tmp_path: Path) -> None:
    path = _copy(dataset_path(tiny_dataset, name), tmp_path / f"cut-{name}")
    victim = path
    if path.is_dir():  # lance: cut its biggest data file
        victim = max((p for p in path.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    os.truncate(victim, victim.stat().st_size // 2)
    with pytest.raises(FormatError) as exc:
        get_format(name).read_table(path)
    assert_one_line_naming(exc, path)


@pytest.mark.parametrize("name", FILE_FORMATS)
def test_garbage_table_file_is_a_format_error(name: str, tmp_path: Path) -> None:
    module = require(name)
    path = tmp_path / module.INFO.filename
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(FormatError) as exc:
        module.read_table(path)
    assert_one_line_naming(exc, path)


def test_garbage_lance_dataset_is_a_format_error(tmp_path: Path) -> None:
    module = require("lance")
    path = tmp_path / "images.lance"
    (path / "_versions").mkdir(parents=True)
    (path / "_versions" / "1.manifest").write_bytes(np.random.default_rng(0).bytes(512))
    with pytest.raises(FormatError) as exc:
        module.read_table(path)
    assert_one_line_naming(exc, path)
    with pytest.raises(FormatError):
        module.read_table(tmp_path)  # not a Lance dataset at all


@pytest.mark.parametrize("name", TABLE_FORMATS)
def test_table_without_ome_image_is_a_format_error(name: str, tmp_path: Path) -> None:
    module = require(name)
    path = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(pa.table({"row_id": pa.array([0, 1], pa.int64()), "label": ["a", "b"]})), path)
    with pytest.raises(FormatError, match="ome_image") as exc:
        module.read_table(path)
    assert_one_line_naming(exc, path)


@pytest.mark.parametrize("name", TABLE_FORMATS)
def test_empty_table_is_a_format_error(name: str, tmp_path: Path) -> None:
    module = require(name)
    table = build_ome_table(generate_images(2, 4, 4, "uint8", 1)).slice(0, 0)
    path = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(table, np.zeros((0, 1, 4, 4), np.uint8)), path)
    with pytest.raises(FormatError, match="no rows") as exc:
        module.read_table(path)
    assert_one_line_naming(exc, path)


@pytest.mark.parametrize("name", TABLE_FORMATS)
def test_table_without_row_id_is_read_in_file_order(name: str, tmp_path: Path) -> None:
    module = require(name)
    images = generate_images(5, 4, 4, "uint8", 1, seed=7)
    table = build_ome_table(images).drop_columns(["row_id"])
    path = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(table, images), path)
    got = module.read_table(path)
    assert got.column_names == [OME_COLUMN]
    decoded = np.stack([to_chw(decode_struct(v)) for v in got.column(OME_COLUMN).to_pylist()])
    np.testing.assert_array_equal(decoded, images)


def _ome_only(n: int = 3) -> tuple[pa.Table, np.ndarray]:
    images = generate_images(n, 4, 4, "uint8", 1, seed=5)
    return build_ome_table(images).drop_columns(["row_id"]), images


def test_image_column_is_found_whatever_its_name() -> None:
    table, _ = _ome_only()
    image = table.rename_columns(["image"]).append_column("label", pa.array(["a", "b", "c"]))
    got = check_table(image, Path("x.parquet"))
    assert got.column_names == [OME_COLUMN] and source_column(got) == "image"
    assert got.column(OME_COLUMN).equals(table.column(OME_COLUMN))
    assert source_column(check_table(table, Path("x.parquet"))) == OME_COLUMN
    named = check_table(image, Path("x.parquet"), column="image")
    assert source_column(named) == "image"


def test_image_column_errors_list_the_candidates() -> None:
    table, _ = _ome_only()
    two = pa.table({"raw": table.column(OME_COLUMN), "mask": table.column(OME_COLUMN)})
    with pytest.raises(FormatError, match=r"x\.parquet: 2 OME-Arrow image columns \(raw, mask\).*--column"):
        check_table(two, Path("x.parquet"))
    assert source_column(check_table(two, Path("x.parquet"), column="mask")) == "mask"
    with pytest.raises(FormatError, match=r"no column 'nope' \(columns: raw, mask; OME-Arrow image columns: raw, mask"):
        check_table(two, Path("x.parquet"), column="nope")
    labels = two.append_column("label", pa.array([1, 2, 3]))
    with pytest.raises(FormatError, match=r"column 'label' is int64, not an OME-Arrow struct; OME-Arrow image"):
        check_table(labels, Path("x.parquet"), column="label")
    with pytest.raises(FormatError, match=r"row_id' is string, not an integer \(row_id is optional"):
        check_table(table.append_column("row_id", pa.array(["a", "b", "c"])), Path("x.parquet"))


@pytest.mark.parametrize("name", DIRECTORY_FORMATS)
def test_empty_directory_is_a_format_error(name: str, tmp_path: Path) -> None:
    module = require(name)
    with pytest.raises(FormatError) as exc:
        module.item_paths(tmp_path)
    assert_one_line_naming(exc, tmp_path)
    assert not module.looks_like(tmp_path)


def test_garbage_tiff_item_is_a_format_error(tmp_path: Path) -> None:
    module = require("tiff")
    item = tmp_path / "img_000000.tiff"
    item.write_bytes(b"II*\x00" + np.random.default_rng(0).bytes(256))
    assert module.item_paths(tmp_path) == [item]
    with pytest.raises(FormatError) as exc:
        module.read_item(item)
    assert_one_line_naming(exc, item)


def test_ome_zarr_item_without_multiscales_or_pixels_is_a_format_error(
    tiny_dataset: DatasetFiles, tmp_path: Path
) -> None:
    module = require("ome_zarr")
    plain = tmp_path / "plain.zarr"
    plain.mkdir()
    (plain / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    with pytest.raises(FormatError, match="multiscales") as exc:
        module.read_item(plain)
    assert_one_line_naming(exc, plain)

    item = _copy(module.item_paths(dataset_path(tiny_dataset, "ome_zarr"))[0], tmp_path / "img.zarr")
    for chunk in (p for p in item.rglob("*") if p.is_file() and p.name != "zarr.json"):
        chunk.write_bytes(b"garbage")
    with pytest.raises(FormatError) as exc:
        module.read_item(item)
    assert_one_line_naming(exc, item)


def _chunk_files(item: Path) -> list[Path]:
    return [p for p in item.rglob("*") if p.is_file() and p.name not in ("zarr.json", ".zarray", ".zgroup", ".zattrs")]


def test_ome_zarr_item_with_deleted_chunk_files_is_a_format_error(tiny_dataset: DatasetFiles, tmp_path: Path) -> None:
    # The Zarr spec reads a missing chunk as the fill value (zeros); in our one-chunk-per-image layout it is data loss.
    module = require("ome_zarr")
    folder = _copy(dataset_path(tiny_dataset, "ome_zarr"), tmp_path / "ome_zarr")
    item = module.item_paths(folder)[3]
    chunks = _chunk_files(item)
    assert chunks
    for chunk in chunks:
        chunk.unlink()
    with pytest.raises(FormatError, match=r"chunk file s0/c/0/0/0 missing \(0 of 1 stored\)") as exc:
        module.read_item(item)
    assert_one_line_naming(exc, item)
    ds = tiny_dataset
    assert module.read_item(module.item_paths(folder)[2]).shape == (ds.channels, ds.height, ds.width)  # others read


def test_ome_zarr_image_of_fill_values_keeps_its_chunk(tmp_path: Path) -> None:
    # zarr skips all-fill-value chunks by default; the writer stores them, so a missing chunk always means loss.
    module = require("ome_zarr")
    images = generate_images(2, 8, 8, "uint8", 1)
    images[1] = 0
    path = tmp_path / "ome_zarr"
    module.write(ImageStream.from_table(build_ome_table(images), images), path)
    items = module.item_paths(path)
    assert all(_chunk_files(item) for item in items)
    np.testing.assert_array_equal(np.stack([module.read_item(item) for item in items]), images)


@pytest.mark.parametrize("keep", [0, 4, 8, 100, 0.5, -1])
def test_truncated_tiff_item_is_a_format_error(keep: float, tmp_path: Path) -> None:
    module = require("tiff")
    images = generate_images(1, 16, 20, "uint8", 2)
    module.write(ImageStream.from_images(images), tmp_path / "tiff")
    item = module.item_paths(tmp_path / "tiff")[0]
    data = item.read_bytes()
    cut = int(len(data) * keep) if isinstance(keep, float) else keep
    item.write_bytes(data[: cut if keep != -1 else len(data) - 120])  # -1: the end of the directory cut off
    with pytest.raises(FormatError, match="TIFF") as exc:
        module.read_item(item)
    assert_one_line_naming(exc, item)
    assert "truncated or corrupt" in str(exc.value)


def test_missing_tiff_item_is_a_format_error(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="No such file") as exc:
        require("tiff").read_item(tmp_path / "img_000000.tiff")
    assert_one_line_naming(exc, tmp_path / "img_000000.tiff")


def _broken_directory_copy(ds: DatasetFiles, name: str, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the tiny dataset's ``name`` directory with item 5 broken: its chunk files deleted (OME-Zarr) or the
    file cut in half (TIFF). Returns the copy and the broken item."""
    module = require(name)
    folder = _copy(dataset_path(ds, name), tmp_path / name)
    item = module.item_paths(folder)[5]
    if name == "ome_zarr":
        for chunk in _chunk_files(item):
            chunk.unlink()
    else:
        os.truncate(item, item.stat().st_size // 2)
    return folder, item


RUN_WITH_WORKERS = """
[dataloader]
repeats = 1
batch_sizes = [4]
num_workers = [2]
batches = 3
warmup_batches = 0
native_threads = []
"""


@pytest.mark.parametrize("name", DIRECTORY_FORMATS)
@pytest.mark.parametrize("track", ["getitem", "dataloader"])
def test_run_on_a_damaged_directory_fails_with_one_line(
    name: str, track: str, tiny_dataset: DatasetFiles, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from loaderbench.cli import main

    folder, item = _broken_directory_copy(tiny_dataset, name, tmp_path)
    config = tmp_path / "workers.toml"
    config.write_text(RUN_WITH_WORKERS)  # dataloader: the item is read in a worker process
    argv = ["run", "--input", f"{name}:{folder}", "--tracks", track, "--repeats", "1", "--config", str(config),
            "--out", str(tmp_path / "out"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("loaderbench: error: ") and str(item) in lines[0], err
    assert "Traceback" not in err


def test_directory_items_are_in_natural_order(tmp_path: Path) -> None:
    module = require("tiff")
    tifffile = pytest.importorskip("tifffile")
    for i in (10, 2, 1):
        tifffile.imwrite(tmp_path / f"img_{i}.tif", np.full((4, 4), i, np.uint16))
    items = module.item_paths(tmp_path)
    assert [p.name for p in items] == ["img_1.tif", "img_2.tif", "img_10.tif"]
    first = module.read_item(items[0])
    assert first.shape == (1, 4, 4)
    assert first.dtype == np.uint16
