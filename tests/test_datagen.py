"""Data generation: the OME-Arrow table, the cached dataset folder, and opening user inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import ome_arrow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from loaderbench.config import DataConfig, data_key
from loaderbench.datagen import (
    DatasetFiles,
    build_ome_table,
    ensure_dataset,
    generate_images,
    open_input,
)
from loaderbench.formats import FORMATS, FormatError
from loaderbench.formats.base import FormatInfo
from loaderbench.ome_image import OME_COLUMN, decode_struct, to_chw

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

    def broken_write(table: pa.Table, images: np.ndarray, path: Path) -> None:
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
    module.write(None, images, tmp_path / "a")
    module.write(None, generate_images(1, 6, 8, "uint8", 1), tmp_path / "b")
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
