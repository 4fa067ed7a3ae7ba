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
from loaderbench.formats import FORMATS, FormatError, detect_format, get_format
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
    module.write(shuffled, images, path)
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
    module.write(build_ome_table(images), images, target)
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(Exception):  # noqa: B017, PT011 - whatever the library raises on nonsense input
        module.write("not a table", np.zeros((2, 3), dtype=object), target)
    assert list(tmp_path.iterdir()) == []


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
    module.write(pa.table({"row_id": pa.array([0, 1], pa.int64()), "label": ["a", "b"]}), np.zeros(0), path)
    with pytest.raises(FormatError, match="ome_image") as exc:
        module.read_table(path)
    assert_one_line_naming(exc, path)


@pytest.mark.parametrize("name", TABLE_FORMATS)
def test_empty_table_is_a_format_error(name: str, tmp_path: Path) -> None:
    module = require(name)
    table = build_ome_table(generate_images(2, 4, 4, "uint8", 1)).slice(0, 0)
    path = tmp_path / module.INFO.filename
    module.write(table, np.zeros((0, 1, 4, 4), np.uint8), path)
    with pytest.raises(FormatError, match="no rows") as exc:
        module.read_table(path)
    assert_one_line_naming(exc, path)


@pytest.mark.parametrize("name", TABLE_FORMATS)
def test_table_without_row_id_is_a_format_error(name: str, tmp_path: Path) -> None:
    module = require(name)
    table = build_ome_table(generate_images(2, 4, 4, "uint8", 1)).drop_columns(["row_id"])
    path = tmp_path / module.INFO.filename
    module.write(table, np.zeros((2, 1, 4, 4), np.uint8), path)
    with pytest.raises(FormatError, match="row_id"):
        module.read_table(path)


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
