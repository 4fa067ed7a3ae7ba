"""The native loaders under hostile use: shared iterators, close() racing next(), DataLoader workers, the
distributed environment, out-of-range arguments, and malformed Arrow that must be refused, never misread."""

from __future__ import annotations

import threading

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import scipy.sparse as sp
import torch
from torch.utils.data import DataLoader

from loaderbench import _core
from loaderbench.datagen import build_ome_table, generate_images
from loaderbench.loaders.arguments import check_batch_memory, resolve_rank
from loaderbench.loaders.native import NativeImageLoader
from loaderbench.loaders.native_sparse import NativeSparseLoader, to_sparse_matrix


@pytest.fixture(scope="module")
def table() -> pa.Table:
    return build_ome_table(generate_images(61, 8, 6, "uint8", 1, seed=4))


@pytest.fixture(autouse=True)
def _no_distributed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)


def rows_of(batches) -> list[int]:
    return [i for _, idx in batches for i in idx]


@pytest.mark.parametrize("prefetch", [0, 1, 4])
def test_two_threads_share_one_iterator_and_both_stop_at_the_end(table: pa.Table, prefetch: int) -> None:
    loader = NativeImageLoader(table, batch_size=3, shuffle=True, num_threads=2, prefetch=prefetch)
    for _ in range(5):
        iterator = loader.iter_with_indices()
        got: list[list[int]] = [[], []]

        def consume(k: int, it=iterator, got=got) -> None:
            for _, idx in it:
                got[k].extend(idx)

        threads = [threading.Thread(target=consume, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads), "a consumer hung at the end of the epoch"
        assert sorted(got[0] + got[1]) == list(range(table.num_rows))


def test_close_from_another_thread_during_next_neither_crashes_nor_hangs(table: pa.Table) -> None:
    loader = NativeImageLoader(table, batch_size=2, num_threads=2, prefetch=0)
    for round_ in range(30):
        iterator = iter(loader)
        errors: list[BaseException] = []

        def consume(it=iterator, errors=errors) -> None:
            try:
                for _ in it:
                    pass
            except BaseException as exc:  # noqa: BLE001 - any exception is the failure reported below
                errors.append(exc)

        consumer = threading.Thread(target=consume)
        consumer.start()
        if round_ % 3:
            threading.Event().wait(0.0005 * round_)
        iterator.close()
        consumer.join(timeout=60)
        assert not consumer.is_alive(), "next() did not return after close()"
        assert not errors, errors
        assert list(iterator) == []


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
@pytest.mark.parametrize("workers", [2, 3])
def test_dataloader_workers_split_the_epoch_exactly_once_in_the_unsplit_order(table: pa.Table, workers: int) -> None:
    loader = NativeImageLoader(table, batch_size=4, shuffle=True, seed=11)
    loader.set_epoch(2)
    expected = [batch for batch in loader]
    got = list(DataLoader(loader, batch_size=None, num_workers=workers))
    assert len(got) == len(expected) == len(loader)
    for a, b in zip(got, expected, strict=True):
        assert torch.equal(a, b)


def test_spawned_workers_get_one_clear_error_not_a_pickling_trace(table: pa.Table) -> None:
    """The loaders hold their data in C++: spawn / forkserver workers cannot receive them, and the error says why."""
    import pickle

    loader = NativeImageLoader(table, batch_size=4)
    with pytest.raises(TypeError, match=r"NativeImageLoader cannot be pickled.*multiprocessing_context='fork'"):
        pickle.dumps(loader)
    spawned = DataLoader(loader, batch_size=None, num_workers=1, multiprocessing_context="spawn")
    with pytest.raises(TypeError, match="NativeImageLoader cannot be pickled"):
        next(iter(spawned))
    cells = sp.random(8, 3, density=0.5, format="csr", random_state=1, dtype=np.float32)
    with pytest.raises(TypeError, match="NativeSparseLoader cannot be pickled"):
        pickle.dumps(NativeSparseLoader(cells, batch_size=2))


def test_sparse_dataloader_workers_deliver_every_cell_once() -> None:
    cells = sp.random(50, 9, density=0.4, format="csr", random_state=3, dtype=np.float32)
    for output in ("dense", "csr"):
        loader = NativeSparseLoader(cells, batch_size=6, shuffle="random", seed=1, output=output)
        loader.set_epoch(0)
        expected = [b.to_dense() if output == "csr" else b for b in loader]
        got = [b.to_dense() if output == "csr" else b for b in DataLoader(loader, batch_size=None, num_workers=2)]
        assert len(got) == len(expected)
        for a, b in zip(got, expected, strict=True):
            assert torch.equal(a, b)


def test_rank_and_world_size_default_to_the_environment(table: pa.Table, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_rank(None, None) == (0, 1)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert resolve_rank(None, None) == (1, 2)
    assert resolve_rank(0, 1) == (0, 1)  # explicit arguments win
    mine = rows_of(NativeImageLoader(table, batch_size=5).iter_with_indices())
    everything = _core.epoch_indices(table.num_rows, _sampler(rank=1, world_size=2))
    assert mine == list(everything) and len(mine) == 31
    cells = sp.random(10, 4, density=0.5, format="csr", random_state=0, dtype=np.float32)
    assert rows_of(NativeSparseLoader(cells, batch_size=2, shuffle="none").iter_with_indices()) == [1, 3, 5, 7, 9]
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not an integer"):
        NativeImageLoader(table)


def _sampler(rank: int, world_size: int) -> _core.SamplerOptions:
    options = _core.SamplerOptions()
    options.rank, options.world_size = rank, world_size
    return options


def test_drop_last_and_drop_uneven_are_separate(table: pa.Table) -> None:
    # 61 rows over 2 ranks: padded to 31 each (drop_uneven=False) or cut to 30 (True); batches of 4.
    padded = NativeImageLoader(table, batch_size=4, rank=0, world_size=2)
    assert len(padded) == 8 and len(rows_of(padded.iter_with_indices())) == 31
    no_partial = NativeImageLoader(table, batch_size=4, rank=0, world_size=2, drop_last=True)
    assert len(no_partial) == 7 and len(rows_of(no_partial.iter_with_indices())) == 28
    even = NativeImageLoader(table, batch_size=4, rank=0, world_size=2, drop_uneven=True)
    assert len(rows_of(even.iter_with_indices())) == 30


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 2**62}, r"batch_size must lie in \[1, 2147483647\], got 4611686018427387904"),
        ({"batch_size": 0}, r"batch_size must lie in \[1, "),
        ({"seed": -1}, r"seed must lie in \[0, 18446744073709551615\], got -1"),
        ({"seed": 2**64}, r"seed must lie in"),
        ({"num_threads": 0}, r"num_threads must lie in \[1, 1024\]"),
        ({"num_threads": 10_000}, r"num_threads must lie in \[1, 1024\]"),
        ({"prefetch": -1}, r"prefetch must lie in \[0, 1024\]"),
        ({"rank": 2, "world_size": 2}, r"rank must lie in \[0, 1\], got 2"),
        ({"world_size": 0}, r"world_size must lie in \[1, "),
        ({"block_size": 0, "sampler": "block"}, r"block_size must lie in"),
        ({"crop_size": -3}, r"crop_size must lie in"),
        ({"max_sample_bytes": 0}, r"max_sample_bytes must lie in"),
    ],
)
def test_out_of_range_arguments_give_one_line(table: pa.Table, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        NativeImageLoader(table, **kwargs)
    assert "\n" not in str(info.value)


def test_a_non_integer_argument_is_a_type_error(table: pa.Table) -> None:
    with pytest.raises(TypeError, match="batch_size must be an integer, got float 2.5"):
        NativeImageLoader(table, batch_size=2.5)
    with pytest.raises(TypeError, match="seed must be an integer, got bool"):
        NativeSparseLoader(sp.eye(3, format="csr", dtype=np.float32), seed=True)


def test_a_batch_larger_than_the_dataset_is_one_batch_of_the_dataset(table: pa.Table) -> None:
    loader = NativeImageLoader(table, batch_size=2**31 - 1)
    (batch,) = list(loader)
    assert batch.shape[0] == table.num_rows
    assert loader._pool.buffer_bytes == table.num_rows * 8 * 6 * 4


def test_batch_buffers_beyond_the_machines_memory_are_refused_before_allocation() -> None:
    with pytest.raises(ValueError, match="more than this machine's"):
        check_batch_memory(2**60, 4, "64 images")
    with pytest.raises(ValueError, match="lower batch_size or prefetch"):
        import psutil

        check_batch_memory(psutil.virtual_memory().total // 2, 4, "64 images")


def test_a_too_large_image_is_refused_before_anything_is_allocated(table: pa.Table) -> None:
    with pytest.raises(ValueError, match=r"row 0: an image of 48 uint8 pixels exceeds max_sample_bytes=47"):
        NativeImageLoader(table, max_sample_bytes=47)


def _with_field(table: pa.Table, path: tuple[str, ...], make) -> pa.Table:
    """``table`` with the struct field at ``path`` (inside ``ome_image``) replaced by ``make(old_field_array)``."""

    def rebuild(array: pa.StructArray, names: tuple[str, ...]) -> pa.StructArray:
        fields = [array.type.field(i) for i in range(array.type.num_fields)]
        children = []
        for field in fields:
            child = array.field(field.name)
            if field.name == names[0]:
                if len(names) == 1:
                    child = make(child)
                elif pa.types.is_list(field.type):
                    inner = rebuild(child.values, names[1:])
                    child = pa.ListArray.from_arrays(child.offsets, inner)
                else:
                    child = rebuild(child, names[1:])
            children.append(child)
        return pa.StructArray.from_arrays(children, names=[f.name for f in fields], mask=array.is_null())

    column = table["ome_image"].combine_chunks()
    return table.set_column(table.schema.get_field_index("ome_image"), "ome_image", rebuild(column, path))


def test_dictionary_encoded_fields_are_refused_not_read_as_indices(table: pa.Table) -> None:
    small = table.slice(0, 3)
    for path in (("pixels_meta", "type"), ("planes", "c"), ("planes", "pixels")):
        def encode(child, path=path):
            if path[-1] == "pixels":  # the values of each pixel list
                return pa.ListArray.from_arrays(child.offsets, pc.dictionary_encode(child.values))
            return pc.dictionary_encode(child)

        bad = _with_field(small, path, encode)
        for check in (lambda t: NativeImageLoader(t), _core.inspect_arrow):
            with pytest.raises(ValueError, match="dictionary-encoded fields are not supported"):
                check(bad)


def test_nulls_in_fields_the_loader_reads_are_refused(table: pa.Table) -> None:
    small = table.slice(0, 3)
    bad = _with_field(small, ("pixels_meta", "size_x"), lambda a: pa.array([None, 6, 6], type=a.type))
    with pytest.raises(ValueError, match="row 0: pixels_meta: size_x is null"):
        NativeImageLoader(bad)
    with pytest.raises(ValueError, match="row 0: pixels_meta: size_x is null"):
        _core.inspect_arrow(bad)


def test_a_producer_exception_is_one_line_without_its_traceback(table: pa.Table) -> None:
    def batches():
        yield table.to_batches()[0]
        raise RuntimeError("disk went away")

    reader = pa.RecordBatchReader.from_batches(table.schema, batches())
    with pytest.raises(ValueError, match="disk went away") as info:
        NativeImageLoader(reader)
    assert "\n" not in str(info.value) and "Traceback" not in str(info.value)


def test_sparse_indices_beyond_int32_are_refused_not_cast() -> None:
    wide = sp.csr_matrix((np.ones(1, np.float32), (np.zeros(1, np.int64), np.array([2**31 + 1]))),
                         shape=(1, 2**31 + 5))
    with pytest.raises(ValueError, match="gene indices"):
        NativeSparseLoader(wide)


@pytest.mark.parametrize("n_genes", [65_535, 65_536, 65_537, 70_000])
def test_gene_indices_either_side_of_the_two_byte_limit_give_the_same_cells(n_genes: int) -> None:
    # The core keeps gene indices in 2 bytes up to 65,536 genes and in 4 above; the last gene must survive both.
    cells = sp.random(12, n_genes, density=0.001, format="csr", random_state=n_genes, dtype=np.float32)
    cells = sp.csr_matrix(cells + sp.csr_matrix(([5.0, 6.0], ([0, 11], [n_genes - 1, 0])), shape=cells.shape))
    coo = cells.tocoo()
    table = pa.table({"soma_dim_0": pa.array(coo.row, pa.int64()), "soma_dim_1": pa.array(coo.col, pa.int64()),
                      "soma_data": pa.array(coo.data, pa.float32())})
    for source, n_cols in ((cells, 0), (table, n_genes), (table, 0)):
        matrix = to_sparse_matrix(source, n_cols=n_cols)
        indptr, indices, data = matrix.csr_arrays()
        assert indices.dtype == torch.int32
        assert np.array_equal(indptr.numpy(), cells.indptr) and np.array_equal(indices.numpy(), cells.indices)
        for output in ("dense", "csr"):
            loader = NativeSparseLoader(matrix, batch_size=5, shuffle="none", output=output, num_threads=2)
            got = torch.cat([b.to_dense() if output == "csr" else b for b in loader])
            assert torch.equal(got, torch.from_numpy(cells.toarray())), (type(source).__name__, n_cols, output)


def test_a_huge_cell_id_is_refused_before_the_row_index_grows() -> None:
    coo = pa.table({"soma_dim_0": pa.array([0, 2**40], pa.int64()), "soma_dim_1": pa.array([0, 1], pa.int64()),
                    "soma_data": pa.array([1.0, 2.0], pa.float32())})
    with pytest.raises(ValueError, match="cell index 1099511627776 .*above max_cells"):
        NativeSparseLoader(coo)
    with pytest.raises(ValueError, match="n_cells=1099511627777 exceeds max_cells"):
        _core.SparseMatrix.from_arrow(coo, n_rows=2**40 + 1)
