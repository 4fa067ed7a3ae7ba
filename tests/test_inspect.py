"""The C++ importer through Python: ``_core.inspect_arrow`` and ``loaderbench inspect``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loaderbench import _core
from loaderbench.datagen import build_ome_table, generate_images
from loaderbench.formats import FormatError, get_format
from loaderbench.formats.base import ImageStream
from loaderbench.inspect import QUICK_ITEMS, format_inspection, inspect_dataset, sample_indices


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return build_ome_table(generate_images(6, 10, 12, "uint8", 2, seed=3))


def test_summary_describes_the_table(table: pa.Table) -> None:
    info = _core.inspect_arrow(table)
    assert info["rows"] == 6
    assert info["shapes"] == [{"t": 1, "c": 2, "z": 1, "y": 10, "x": 12, "rows": 6}]
    assert info["declared_types"] == ["uint8"]
    assert info["stored_types"] == ["uint16"]  # ome-arrow widens uint8 into list<uint16>
    assert info["has_planes"] and info["has_chunks"] and info["chunk_encoding"] == "list"
    assert info["planes"] == 12 and info["chunks"] == 12
    assert info["payload_bytes"] == 2 * 6 * 2 * 10 * 12 * 2  # planes and chunks, 2 bytes each
    assert info["voxels"] == 6 * 2 * 10 * 12


@pytest.mark.parametrize("dtype", ["uint16", "float32"])
def test_other_dtypes(dtype: str) -> None:
    info = _core.inspect_arrow(build_ome_table(generate_images(3, 8, 8, dtype, 1)))
    assert info["declared_types"] == [dtype]
    assert info["rows"] == 3


def test_sliced_and_chunked_tables(table: pa.Table) -> None:
    combined = pa.concat_tables([table.slice(4, 2), table.slice(1, 3)])
    info = _core.inspect_arrow(combined)
    assert info["rows"] == 5 and info["batches"] == 2


def test_reader_and_duckdb_sources(table: pa.Table) -> None:
    import duckdb

    assert _core.inspect_arrow(pa.RecordBatchReader.from_batches(table.schema, table.to_batches()))["rows"] == 6
    images = table  # noqa: F841 - DuckDB finds the Arrow table by its Python name
    relation = duckdb.sql("SELECT * FROM images")
    assert _core.inspect_arrow(relation)["rows"] == 6


def _replace_image_column(table: pa.Table, column: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index("ome_image"), "ome_image", column)


def test_null_image_is_rejected(table: pa.Table) -> None:
    images = table.column("ome_image").combine_chunks()
    mask = pa.array([False, False, True, False, False, False])
    nulled = pa.StructArray.from_arrays(images.flatten(), fields=list(images.type), mask=mask)
    with pytest.raises(_core.ArrowImportError, match="row 2: image is null"):
        _core.inspect_arrow(_replace_image_column(table, nulled))


def test_pixel_count_mismatch_is_rejected(table: pa.Table) -> None:
    rows = table.column("ome_image").to_pylist()
    rows[1]["pixels_meta"]["size_x"] = 13  # declared shape no longer matches the stored pixels
    bad = pa.array(rows, type=table.schema.field("ome_image").type)
    with pytest.raises(_core.ArrowImportError, match="row 1: plane 0 has 120 pixels, but size_y\\*size_x = 130"):
        _core.inspect_arrow(_replace_image_column(table, bad))


def test_wrong_column_and_wrong_type(table: pa.Table) -> None:
    with pytest.raises(_core.ArrowImportError, match="no column 'ome_image'"):
        _core.inspect_arrow(table.rename_columns(["row_id", "image"]))
    with pytest.raises(_core.ArrowImportError, match="must be an OME-Arrow struct"):
        _core.inspect_arrow(pa.table({"ome_image": [1, 2]}))
    with pytest.raises(_core.ArrowImportError, match="no rows"):
        _core.inspect_arrow(table.slice(0, 0))
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        _core.inspect_arrow(np.zeros(3))


def test_a_stream_is_consumed_once(table: pa.Table) -> None:
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches())
    _core.inspect_arrow(reader)
    with pytest.raises(Exception):  # noqa: B017 - pyarrow refuses a second export of a consumed reader
        _core.inspect_arrow(reader)


def test_producer_errors_surface_as_python_exceptions(table: pa.Table) -> None:
    def batches():
        yield table.to_batches()[0]
        raise OSError("disk on fire")

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    with pytest.raises(_core.ArrowImportError, match="disk on fire"):
        _core.inspect_arrow(reader)


def test_inspect_every_format(tiny_dataset) -> None:
    for name, path in tiny_dataset.paths.items():
        info = inspect_dataset(path)
        assert info["format"] == name
        assert info["rows"] == tiny_dataset.n_images
        assert info["disk_bytes"] > 0
        text = format_inspection(info)
        assert str(tiny_dataset.height) in text and "rows" in text
        if get_format(name).INFO.kind == "table":
            assert info["shapes"][0]["c"] == tiny_dataset.channels


def test_inspect_missing_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        inspect_dataset(tmp_path / "nope.parquet")


# --- loaderbench inspect: the same full validation as the loaders, or a sample with --quick ------------------------


def _write(name: str, images: np.ndarray, path):
    module = get_format(name)
    stream = ImageStream.from_table(build_ome_table(images), images) if module.INFO.kind == "table" \
        else ImageStream.from_images(images)
    module.write(stream, path)
    return path


def test_sample_indices() -> None:
    assert sample_indices(0) == []
    assert sample_indices(1) == [0]
    assert sample_indices(5) == [0, 1, 2, 3, 4]
    picks = sample_indices(1000)
    assert picks[0] == 0 and picks[-1] == 999 and picks == sorted(set(picks)) and len(picks) <= QUICK_ITEMS + 2


@pytest.mark.parametrize("name", ["tiff", "ome_zarr"])
def test_inspect_decodes_every_item_and_quick_samples(name: str, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("loaderbench.inspect.QUICK_ITEMS", 4)
    path = _write(name, generate_images(20, 4, 6, "uint8", 1), tmp_path / name)
    module = get_format(name)
    items = module.item_paths(path)
    info = inspect_dataset(path)
    assert info["rows"] == info["checked_rows"] == 20 and not info["sampled"]
    assert info["shapes"] == [{"c": 1, "y": 4, "x": 6, "rows": 20, "dtype": "uint8"}]
    assert "all 20 items decoded" in format_inspection(info)

    unsampled = next(i for i in range(20) if i not in sample_indices(20, 4))
    victim = items[unsampled]
    if name == "tiff":
        victim.write_bytes(victim.read_bytes()[:40])
    else:
        for chunk in (p for p in victim.rglob("*") if p.is_file() and p.name != "zarr.json"):
            chunk.unlink()
    with pytest.raises(FormatError, match="truncated or corrupt" if name == "tiff" else "chunk") as exc:
        inspect_dataset(path)
    assert str(victim) in str(exc.value)

    quick = inspect_dataset(path, quick=True)  # the damaged item is not in the sample
    assert quick["sampled"] and quick["rows"] == 20 and quick["checked_rows"] == len(sample_indices(20, 4))
    text = format_inspection(quick)
    assert "sampled check" in text and "without --quick" in text


def test_inspect_quick_checks_the_last_item(tmp_path) -> None:
    path = _write("tiff", generate_images(50, 4, 4, "uint8", 1), tmp_path / "tiff")
    last = get_format("tiff").item_paths(path)[-1]
    last.write_bytes(last.read_bytes()[:20])
    with pytest.raises(FormatError, match=last.name):
        inspect_dataset(path, quick=True)


def test_inspect_reports_a_mix_of_shapes(tmp_path) -> None:
    tifffile = pytest.importorskip("tifffile")
    path = _write("tiff", generate_images(3, 4, 4, "uint8", 1), tmp_path / "tiff")
    tifffile.imwrite(path / "img_000003.tiff", np.zeros((1, 5, 4), np.uint16), photometric="minisblack")
    info = inspect_dataset(path)
    assert {(s["y"], s["dtype"], s["rows"]) for s in info["shapes"]} == {(4, "uint8", 3), (5, "uint16", 1)}
    assert info["stored_types"] == ["uint16", "uint8"]
    text = format_inspection(info)
    assert "warning:" in text and "img_000003.tiff" in text


def test_inspect_quick_validates_only_the_first_rows(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("loaderbench.inspect.QUICK_ROWS", 4)
    table = build_ome_table(generate_images(8, 10, 12, "uint8", 1))
    rows = table.column("ome_image").to_pylist()
    rows[6]["pixels_meta"]["size_x"] = 13  # row 6: declared shape no longer matches the stored pixels
    bad = _replace_image_column(table, pa.array(rows, type=table.schema.field("ome_image").type))
    path = tmp_path / "images.parquet"
    get_format("parquet").write(ImageStream.from_table(bad), path)
    with pytest.raises(FormatError, match="row 6") as exc:
        inspect_dataset(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)
    quick = inspect_dataset(path, quick=True)
    assert quick["sampled"] and quick["rows"] == 8 and quick["checked_rows"] == 4
    assert quick["shapes"][0]["rows"] == 4
    assert "the first 4 of 8 rows validated" in format_inspection(quick)


def test_inspect_shows_progress_on_long_checks(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr("loaderbench.inspect.PROGRESS_EVERY_S", 0.0)
    path = _write("tiff", generate_images(5, 4, 4, "uint8", 1), tmp_path / "tiff")
    said: list[str] = []
    inspect_dataset(path, progress=said.append)
    assert said and said[-1].endswith("5 of 5 items checked")


def test_inspect_command_quick_and_damaged(tmp_path, capsys) -> None:
    from loaderbench.cli import main

    path = _write("ome_zarr", generate_images(3, 4, 4, "uint8", 1), tmp_path / "ome_zarr")
    assert main(["inspect", "--quick", str(path)]) == 0
    assert "rows:          3" in capsys.readouterr().out
    item = get_format("ome_zarr").item_paths(path)[1]
    for chunk in (p for p in item.rglob("*") if p.is_file() and p.name != "zarr.json"):
        chunk.unlink()
    assert main(["inspect", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(item) in err and "chunk" in err and "Traceback" not in err
