"""Block readers and streamed writers of the table formats: layouts as asked, exact projected rows, clear errors."""

from __future__ import annotations

import os
import select
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from loaderbench.config import ALL_FORMATS
from loaderbench.datagen import build_ome_table, generate_images
from loaderbench.formats import FORMATS, FormatError, ImageStream, get_format, unit_batches
from loaderbench.formats.base import TARGET_UNIT_BYTES, BlockReader, check_rows, default_rows_per_unit
from loaderbench.ome_image import OME_COLUMN, decode_struct, to_chw

BLOCK_FORMATS = [n for n in ALL_FORMATS if FORMATS[n].INFO.block_reads]
#: rows and rows_per_unit per format: several units, the last one short. DuckDB's row groups are multiples of
#: 2,048 rows; Vortex picks its own split (8,192 rows).
LAYOUTS: dict[str, tuple[int, int | None, int]] = {  # rows, rows_per_unit asked, unit expected
    "duckdb": (4500, 2048, 2048),
    "vortex": (9000, None, 8192),
}
DEFAULT_LAYOUT = (103, 16, 16)


def require(name: str) -> Any:
    module = get_format(name)
    reason = module.INFO.unavailable_reason()
    if reason:
        pytest.skip(reason)
    return module


class Written:
    """A dataset written by one format for these tests."""

    def __init__(self, name: str, path: Path, images: np.ndarray, record: dict[str, Any], unit: int) -> None:
        self.name, self.path, self.images, self.record, self.unit = name, path, images, record, unit
        self.module = get_format(name)

    def open(self, column: str | None = None) -> BlockReader:
        return self.module.block_reader(self.path, column=column)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Written]:
    folder = tmp_path_factory.mktemp("blocks")
    out: dict[str, Written] = {}
    cache: dict[int, tuple[pa.Table, np.ndarray]] = {}
    for name in BLOCK_FORMATS:
        module = get_format(name)
        if module.INFO.unavailable_reason():
            continue
        rows, asked, unit = LAYOUTS.get(name, DEFAULT_LAYOUT)
        if rows not in cache:
            images = generate_images(rows, 3, 2, "uint8", 2, seed=rows)
            cache[rows] = build_ome_table(images), images
        table, images = cache[rows]
        path = folder / module.INFO.filename
        record = module.write(ImageStream.from_table(table, images, batch_rows=10), path, asked)
        out[name] = Written(name, path, images, record, unit)
    return out


@pytest.fixture(params=BLOCK_FORMATS)
def written(request: pytest.FixtureRequest, datasets: dict[str, Written]) -> Written:
    require(request.param)
    return datasets[request.param]


def pixels(table: pa.Table) -> np.ndarray:
    """Decode a block read (or a whole table's ``ome_image``) to ``(N, C, H, W)``."""
    return np.stack([to_chw(decode_struct(v)) for v in table.column(OME_COLUMN).to_pylist()])


def expected_fields(written: Written, rows: np.ndarray, fields: tuple[str, ...]) -> dict[str, pa.Array]:
    """What ``read_table(path).take(rows)`` holds in the projected fields."""
    full = written.module.read_table(written.path).column(OME_COLUMN).take(pa.array(rows)).combine_chunks()
    return {name: full.field(name) for name in fields}


def assert_rows(written: Written, reader: BlockReader, rows: np.ndarray) -> None:
    got = reader.read(rows)
    assert isinstance(got, pa.Table) and hasattr(got, "__arrow_c_stream__")
    assert got.column_names == [OME_COLUMN]
    image_type = got.schema.field(OME_COLUMN).type
    assert [f.name for f in image_type] == ["pixels_meta", reader.pixel_field]
    assert got.num_rows == len(rows)
    if len(rows):
        np.testing.assert_array_equal(pixels(got), written.images[rows])
        struct = got.column(OME_COLUMN).combine_chunks()
        for name, array in expected_fields(written, rows, reader.fields).items():
            assert struct.field(name).equals(array), name


# --- layout -----------------------------------------------------------------------------------------------------


def test_every_table_format_has_block_reads_and_the_directories_declare_items() -> None:
    for name, module in FORMATS.items():
        info = module.INFO
        assert info.read_unit, name
        assert info.random_access, name
        if info.kind == "table":
            assert info.block_reads and callable(module.block_reader) and info.whole_table, name
        else:
            assert not info.block_reads and not hasattr(module, "block_reader") and info.items_per_file, name


def test_layout_is_the_one_written(written: Written) -> None:
    rows, _asked, unit = LAYOUTS.get(written.name, DEFAULT_LAYOUT)
    assert written.record == {"read_unit": written.module.INFO.read_unit, "rows_per_unit": unit}
    with written.open() as reader:
        assert reader.num_rows == rows
        assert reader.unit_name == written.module.INFO.read_unit
        assert reader.unit_starts.dtype == np.int64
        np.testing.assert_array_equal(reader.unit_starts, np.arange(0, rows, unit))
        assert reader.num_units > 1 and rows % unit  # several units, the last one short
        assert reader.unit_range(reader.num_units - 1) == (int(reader.unit_starts[-1]), rows)
        assert reader.pixel_field == "chunks"  # ome-arrow writes chunks (and planes): chunks are read, not both


def library_units(name: str, path: Path) -> list[int]:
    """Rows per unit as the format's own library reports them (not through the block reader)."""
    if name in ("parquet", "parquet_duckdb"):
        import pyarrow.parquet as pq

        meta = pq.read_metadata(path)
        return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    if name == "arrow_ipc":
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        return [reader.get_batch(i).num_rows for i in range(reader.num_record_batches)]
    if name == "lance":
        import lance

        return [f.count_rows() for f in lance.dataset(str(path)).get_fragments()]
    if name == "vortex":
        import vortex

        return [b - a for a, b in vortex.open(str(path)).splits()]
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:
        got = con.execute("SELECT row_group_id, sum(count) FROM pragma_storage_info('images') WHERE column_id = 0 "
                          "AND column_path = '[0, 0]' GROUP BY ALL ORDER BY 1").fetchall()
    return [int(n) for _, n in got]


def test_the_file_really_has_units_of_the_recorded_size(written: Written) -> None:
    sizes = library_units(written.name, written.path)
    unit = written.record["rows_per_unit"]
    assert sizes[:-1] == [unit] * (len(sizes) - 1)
    assert 0 < sizes[-1] < unit


# --- reads -------------------------------------------------------------------------------------------------------


def test_reads_equal_read_table_take(written: Written) -> None:
    rng = np.random.default_rng(5)
    with written.open() as reader:
        n, starts = reader.num_rows, reader.unit_starts
        boundary = int(starts[1])
        cases = [
            np.array([0]),
            np.array([n - 1]),
            np.array([boundary - 1]),
            np.array([boundary]),
            np.arange(boundary - 3, boundary + 3),  # across a unit boundary
            np.array([0, boundary, n - 1]),  # three units, sparse
            np.arange(int(starts[-1]), n),  # the last, short unit
        ]
        cases += [np.sort(rng.choice(n, size=k, replace=False)) for k in (2, 7, 40)]
        for rows in cases:
            assert_rows(written, reader, rows.astype(np.int64))
        whole = reader.read_unit(1)
        np.testing.assert_array_equal(pixels(whole), written.images[slice(*reader.unit_range(1))])
        empty = reader.read(np.array([], dtype=np.int64))
        assert empty.num_rows == 0 and empty.schema == reader.read([0]).schema


def test_the_whole_table_in_one_read(written: Written) -> None:
    with written.open() as reader:
        got = reader.read(np.arange(reader.num_rows))
        assert got.num_rows == reader.num_rows
        meta = got.column(OME_COLUMN).combine_chunks().field("pixels_meta")
        assert pc.all(pc.equal(meta.field("size_c"), 2)).as_py()


def test_one_row_touches_one_unit_in_one_call(written: Written) -> None:
    with written.open() as reader:
        reader.counters.reset()
        reader.read(np.array([int(reader.unit_starts[1]) + 1]))
        assert (reader.counters.reads, reader.counters.units, reader.counters.storage_calls) == (1, 1, 1)
        reader.read(np.array([0, reader.num_rows - 1]))
        assert reader.counters.units == 1 + 2
        assert reader.counters.rows == 3


def test_reads_on_a_background_thread(written: Written) -> None:
    """The intended use: a background thread reads while the main thread reads too (one reader, shared)."""
    with written.open() as reader:
        n = reader.num_rows
        wanted = [np.arange(i, n, 7)[:30] for i in range(4)]
        results: dict[int, pa.Table] = {}

        def work(k: int) -> None:
            results[k] = reader.read(wanted[k])

        threads = [threading.Thread(target=work, args=(k,)) for k in range(1, 4)]
        for t in threads:
            t.start()
        work(0)
        for t in threads:
            t.join()
        for k, rows in enumerate(wanted):
            np.testing.assert_array_equal(pixels(results[k]), written.images[rows])
    assert reader.concurrent_reads == written.module.INFO.concurrent_reads


def _table_with(table: pa.Table, image: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(OME_COLUMN), OME_COLUMN, image)


@pytest.mark.parametrize("layout", ["planes only", "empty chunks"])
@pytest.mark.parametrize("name", BLOCK_FORMATS)
def test_planes_are_read_when_there_are_no_chunks(name: str, layout: str, tmp_path: Path) -> None:
    module = require(name)
    images = generate_images(20, 3, 2, "uint16", 1, seed=2)
    table = build_ome_table(images)
    struct = table.column(OME_COLUMN).combine_chunks()
    names = [f.name for f in struct.type if f.name != "chunks"]
    children = [struct.field(f) for f in names]
    if layout == "empty chunks":
        names.append("chunks")
        children.append(pa.array([[]] * len(struct), type=struct.type.field("chunks").type))
    path = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(_table_with(table, pa.StructArray.from_arrays(children, names))), path, 8)
    with module.block_reader(path) as reader:
        assert reader.pixel_field == "planes"
        got = reader.read(np.array([1, 2, 9, 19]))
        assert [f.name for f in got.schema.field(OME_COLUMN).type] == ["pixels_meta", "planes"]
        np.testing.assert_array_equal(pixels(got), images[[1, 2, 9, 19]])


@pytest.mark.parametrize("name", BLOCK_FORMATS)
def test_file_order_without_row_id_or_out_of_row_id_order(name: str, tmp_path: Path) -> None:
    """Positions are file order: a table without ``row_id``, or stored out of ``row_id`` order, reads by position."""
    module = require(name)
    images = generate_images(12, 3, 2, "uint8", 1, seed=4)
    order = np.array([4, 1, 5, 0, 3, 2, 11, 10, 9, 8, 7, 6])
    table = build_ome_table(images).take(pa.array(order))
    for variant, stored in (("shuffled", table), ("no row_id", table.drop_columns(["row_id"]))):
        path = tmp_path / f"{variant}-{module.INFO.filename}"
        module.write(ImageStream.from_table(stored), path, 4)
        with module.block_reader(path) as reader:
            np.testing.assert_array_equal(pixels(reader.read(np.arange(12))), images[order], err_msg=variant)
            np.testing.assert_array_equal(pixels(reader.read(np.array([0, 7]))), images[order[[0, 7]]])


@pytest.mark.parametrize("name", BLOCK_FORMATS)
def test_an_image_column_of_another_name(name: str, tmp_path: Path) -> None:
    module = require(name)
    images = generate_images(5, 3, 2, "uint8", 1, seed=8)
    table = build_ome_table(images).rename_columns(["row_id", "image"])
    path = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(table), path)
    for column in (None, "image"):
        with module.block_reader(path, column=column) as reader:
            assert reader.column == "image"
            np.testing.assert_array_equal(pixels(reader.read([1, 3])), images[[1, 3]])
    with pytest.raises(FormatError, match="no column 'nope'"):
        module.block_reader(path, column="nope")


# --- errors ------------------------------------------------------------------------------------------------------


def test_bad_rows_are_value_errors(written: Written) -> None:
    with written.open() as reader:
        n = reader.num_rows
        for rows, message in [
            ([3, 2], r"sorted and unique: rows\[0\] = 3, rows\[1\] = 2"),
            ([2, 2], "sorted and unique"),
            ([-1, 0], r"row -1 is out of range \[0, "),
            ([0, n], f"row {n} is out of range"),
            (np.zeros((2, 2), np.int64), "1-D"),
            ([0.5], "integer"),
        ]:
            with pytest.raises(ValueError, match=message) as exc:
                reader.read(np.asarray(rows))
            assert not isinstance(exc.value, FormatError)
    with pytest.raises(ValueError, match="closed"):
        reader.read([0])
    reader.close()  # twice is fine


def assert_one_line(exc: pytest.ExceptionInfo[BaseException], path: Path) -> None:
    message = str(exc.value)
    assert str(path) in message and "\n" not in message, message


def _copy(src: Path, dst: Path) -> Path:
    if src.is_dir():
        shutil.copytree(src, dst)
    else:
        shutil.copy(src, dst)
    return dst


def test_truncated_dataset_is_a_format_error(written: Written, tmp_path: Path) -> None:
    path = _copy(written.path, tmp_path / written.path.name)
    victim = path
    if path.is_dir():  # lance: cut its biggest data file
        victim = max((p for p in path.rglob("*.lance") if p.is_file()), key=lambda p: p.stat().st_size)
    os.truncate(victim, victim.stat().st_size // 2)
    with pytest.raises(FormatError) as exc:  # at open (footer) or at the read that meets the damage
        with written.module.block_reader(path) as reader:
            reader.read(np.arange(reader.num_rows))
    assert_one_line(exc, path)


def test_garbage_and_missing_files_are_format_errors(written: Written, tmp_path: Path) -> None:
    missing = tmp_path / "missing" / written.path.name
    with pytest.raises(FormatError, match="no such file") as exc:
        written.module.block_reader(missing)
    assert_one_line(exc, missing)
    garbage = tmp_path / written.path.name
    if written.path.is_dir():
        (garbage / "_versions").mkdir(parents=True)
        (garbage / "_versions" / "1.manifest").write_bytes(np.random.default_rng(0).bytes(512))
    else:
        garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(FormatError) as exc:
        written.module.block_reader(garbage)
    assert_one_line(exc, garbage)


def test_dataset_deleted_after_open_is_a_format_error(written: Written, tmp_path: Path) -> None:
    path = _copy(written.path, tmp_path / written.path.name)
    with written.module.block_reader(path) as reader:
        reader.read([0])
        shutil.rmtree(path) if path.is_dir() else path.unlink()
        with pytest.raises(FormatError, match="deleted since the block reader opened it") as exc:
            reader.read([1])
        assert_one_line(exc, path)


def test_dataset_replaced_after_open_is_a_format_error(written: Written, tmp_path: Path) -> None:
    path = _copy(written.path, tmp_path / written.path.name)
    with written.module.block_reader(path) as reader:
        images = generate_images(4, 3, 2, "uint8", 2, seed=1)
        written.module.write(ImageStream.from_table(build_ome_table(images)), path)  # atomic replace
        with pytest.raises(FormatError, match="changed on disk since the block reader opened it") as exc:
            reader.read([0])
        assert_one_line(exc, path)


@pytest.mark.parametrize("name", BLOCK_FORMATS)
def test_empty_table_is_a_format_error(name: str, tmp_path: Path) -> None:
    module = require(name)
    table = build_ome_table(generate_images(2, 4, 4, "uint8", 1)).slice(0, 0)
    path = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(table), path)
    with pytest.raises(FormatError, match="no rows") as exc:
        module.block_reader(path)
    assert_one_line(exc, path)


def test_check_rows_accepts_lists_and_unsigned() -> None:
    np.testing.assert_array_equal(check_rows([1, 5], 6, "x"), [1, 5])
    assert check_rows(np.array([2], np.uint32), 3, "x").dtype == np.int64
    with pytest.raises(ValueError, match="out of range"):
        check_rows(np.array([2**63], np.uint64), 3, "x")


# --- streams and writers -----------------------------------------------------------------------------------------


def test_image_stream_from_table_round_trip() -> None:
    images = generate_images(23, 3, 2, "uint8", 1, seed=9)
    table = build_ome_table(images)
    stream = ImageStream.from_table(table, images, batch_rows=5)
    assert stream.num_rows == 23 and stream.schema == table.schema
    for _ in range(2):  # a fresh iterator per call
        items = list(stream.batches())
        assert [b.num_rows for b, _ in items] == [5, 5, 5, 5, 3]
        assert pa.Table.from_batches([b for b, _ in items]).equals(table)
        np.testing.assert_array_equal(np.concatenate([p for _, p in items]), images)
        for batch, part in items:
            assert batch.num_rows == len(part)
    np.testing.assert_array_equal(np.stack(list(stream.images())), images)
    with pytest.raises(ValueError, match="3 images for a table of 23 rows"):
        ImageStream.from_table(table, images[:3])
    with pytest.raises(ValueError, match="batch_rows must be a positive integer"):
        ImageStream.from_table(table, images, batch_rows=0)
    with pytest.raises(ValueError, match="carries no pixel arrays"):
        next(ImageStream.from_table(table).images())
    only = ImageStream.from_images(images, batch_rows=10)
    assert only.num_rows == 23
    np.testing.assert_array_equal(np.stack(list(only.images())), images)
    assert [b.column("row_id").to_pylist()[0] for b, _ in only.batches()] == [0, 10, 20]


def test_unit_batches_cut_the_stream_exactly() -> None:
    images = generate_images(50, 3, 2, "uint8", 1, seed=3)
    table = build_ome_table(images)
    stream = ImageStream.from_table(table, images, batch_rows=7)
    size, batches = unit_batches(stream, 16)
    got = list(batches)
    assert size == 16 and [b.num_rows for b in got] == [16, 16, 16, 2]
    assert pa.Table.from_batches(got).equals(table)
    size, batches = unit_batches(stream, None)
    first = next(stream.batches())[0]
    assert size == default_rows_per_unit(first) == int(TARGET_UNIT_BYTES // (first.nbytes / first.num_rows))
    assert [b.num_rows for b in batches] == [50]  # 32 MiB is far more than 50 tiny images
    with pytest.raises(ValueError, match="rows_per_unit must be a positive integer"):
        unit_batches(stream, 0)


def test_default_rows_per_unit_is_about_32_mib() -> None:
    table = build_ome_table(generate_images(4, 100, 100, "uint8", 1))
    batch = table.to_batches()[0]
    rows = default_rows_per_unit(batch)
    assert abs(rows * batch.nbytes / batch.num_rows - TARGET_UNIT_BYTES) < batch.nbytes / batch.num_rows
    assert default_rows_per_unit(batch, target_bytes=1) == 1


@pytest.mark.parametrize("name", BLOCK_FORMATS)
def test_default_unit_is_recorded(name: str, tmp_path: Path) -> None:
    module = require(name)
    images = generate_images(30, 3, 2, "uint8", 1)
    stream = ImageStream.from_table(build_ome_table(images), images)
    record = module.write(stream, tmp_path / module.INFO.filename)
    expected = default_rows_per_unit(next(stream.batches())[0])
    if name == "duckdb":
        expected = -(-expected // 2048) * 2048
    if name == "vortex":
        expected = 30  # one split: Vortex chooses
    assert record == {"read_unit": module.INFO.read_unit, "rows_per_unit": expected}


@pytest.mark.parametrize("name", [n for n in ALL_FORMATS if FORMATS[n].INFO.kind == "directory"])
def test_directory_writers_record_one_image_per_unit(name: str, tmp_path: Path) -> None:
    module = require(name)
    images = generate_images(3, 4, 4, "uint8", 1)
    record = module.write(ImageStream.from_images(images), tmp_path / "out", 16)
    assert record == {"read_unit": module.INFO.read_unit, "rows_per_unit": 1}
    np.testing.assert_array_equal(np.stack([module.read_item(p) for p in module.item_paths(tmp_path / "out")]),
                                  images)


def test_arrow_ipc_reads_point_into_the_map_unless_copied(datasets: dict[str, Written]) -> None:
    written = datasets["arrow_ipc"]
    for copy_rows, zero_copy in ((False, True), (True, False)):
        with written.module.block_reader(written.path, copy_rows=copy_rows) as reader:
            got = reader.read(np.arange(3, 9))
            np.testing.assert_array_equal(pixels(got), written.images[3:9])
            values = got.column(OME_COLUMN).chunk(0).field("chunks").values.field("pixels").values
            mapped = reader._file.get_batch(0)  # the reader's own map
            base = mapped.column(OME_COLUMN).field("chunks").values.field("pixels").values.buffers()[1].address
            assert (values.buffers()[1].address == base) is zero_copy


def test_arrow_ipc_copied_rows_own_every_buffer(datasets: dict[str, Written]) -> None:
    """``copy_rows`` copies every buffer (offsets, validity, nested children), for contiguous and scattered rows:
    none lies inside the map, so a truncated file cannot fault a block the loader holds."""
    written = datasets["arrow_ipc"]
    with written.module.block_reader(written.path, copy_rows=True) as reader:
        mapped = [b for k in range(reader._file.num_record_batches)
                  for b in reader._file.get_batch(k).column(OME_COLUMN).buffers() if b is not None]
        low, high = min(b.address for b in mapped), max(b.address + b.size for b in mapped)
        for rows in (np.arange(3, 9), np.array([0, 5, 17, 30])):
            got = reader.read(rows)
            np.testing.assert_array_equal(pixels(got), written.images[rows])
            owned = [b for chunk in got.column(OME_COLUMN).chunks for b in chunk.buffers() if b is not None]
            assert owned and all(not low <= b.address < high for b in owned)


def test_reopen_reads_the_same_rows_and_shares_the_parquet_footer(written: Written) -> None:
    with written.module.block_reader(written.path) as first:
        expected = first.read([0, 2])
    again = first.reopen()  # from a closed reader, as the streaming loader's I/O threads do
    with again:
        assert again.read([0, 2]).equals(expected)
        assert (again.num_rows, again.column) == (first.num_rows, first.column)
        if written.name == "parquet":
            assert again._footer[1] is first._footer[1]
        if written.name == "arrow_ipc":  # the batch lengths, each read from its batch's metadata, are not reread
            assert again._layout[2] is first._layout[2]


@pytest.mark.parametrize("name", ["parquet", "arrow_ipc"])
def test_reopen_after_the_file_changed_parses_the_new_footer(name: str, tmp_path: Path) -> None:
    module = require(name)
    path = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(build_ome_table(generate_images(6, 4, 4, "uint8", 1))), path, 2)
    with module.block_reader(path) as first:
        pass
    module.write(ImageStream.from_table(build_ome_table(generate_images(9, 4, 4, "uint8", 1))), path, 3)
    with first.reopen() as again:
        assert again.num_rows == 9
        np.testing.assert_array_equal(again.unit_starts, [0, 3, 6])
        if name == "parquet":
            assert again._footer[1] is not first._footer[1]


def test_a_forked_child_neither_uses_nor_destroys_the_parents_reader(written: Written) -> None:
    """Dropping a parent's DuckDB connection in a forked child hangs it (the connection joins threads that are not
    in the child): the child keeps the parent's readers alive, refuses to read through them, opens its own.

    A format that is not fork-safe (Lance: its runtime's threads are not in the child) is refused the same way, but
    the child does not open its own reader: the product never forks for such a format (its workers are spawned), and
    a clean-clone run once hung there, in Lance."""
    reader = written.open()
    reader.read([0])
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report through the pipe, never return into pytest
        code = 1
        try:
            try:
                reader.read([1])
            except ValueError as exc:
                if "forked process" in str(exc):
                    code = 0
            reader.close()
            del reader
            own_ok = True
            if written.module.INFO.fork_safe:
                with written.open() as own:
                    own_ok = np.array_equal(pixels(own.read([2])), written.images[[2]])
            os.write(write_end, bytes([code if own_ok else 2]))
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], 30)
        if not ready:
            os.kill(pid, signal.SIGKILL)
        assert ready, "the forked child hung"
        assert os.read(read_end, 1) == b"\x00"
    finally:
        os.waitpid(pid, 0)
        os.close(read_end)
    np.testing.assert_array_equal(pixels(reader.read([1])), written.images[[1]])  # the parent's reader still works
    reader.close()
