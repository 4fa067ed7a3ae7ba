"""The C++ importer through Python: ``_core.inspect_arrow`` and ``loaderbench inspect``."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loaderbench import _core
from loaderbench.datagen import build_ome_table, generate_images
from loaderbench.formats import get_format
from loaderbench.inspect import format_inspection, inspect_dataset


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
