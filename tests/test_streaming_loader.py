"""The native streaming loaders from Python: every row once, pixel- and row-exact against the in-memory loaders,
memory bounded by the blocks in flight, clear errors when the file goes bad mid-epoch."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch.utils.data import DataLoader

from loaderbench.datagen import build_ome_table, generate_images
from loaderbench.formats import FormatError, get_format
from loaderbench.formats.base import ImageStream
from loaderbench.loaders.native import NativeImageLoader
from loaderbench.loaders.streaming import StreamingImageLoader, StreamingSparseLoader

BLOCK_FORMATS = [name for name in ("parquet", "parquet_duckdb", "lance", "vortex", "duckdb", "arrow_ipc")
                 if get_format(name).INFO.unavailable_reason() is None]
N = 103  # rows: units of 16 leave an uneven last one


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return generate_images(N, 12, 10, "uint8", 2, seed=7)


@pytest.fixture(scope="module")
def datasets(images: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The images in every format with block reads, in units of 16 rows (the last one shorter)."""
    root = tmp_path_factory.mktemp("streaming")
    table = build_ome_table(images)
    paths = {}
    for name in BLOCK_FORMATS:
        module = get_format(name)
        path = root / module.INFO.filename
        module.write(ImageStream.from_table(table, images, batch_rows=40), path, rows_per_unit=16)
        paths[name] = path
    return paths


def epoch_rows(loader: StreamingImageLoader, images: np.ndarray) -> list[int]:
    """One epoch's rows, each batch checked pixel-exact against the reference images."""
    rows: list[int] = []
    for batch, indices in loader.iter_with_indices():
        expected = torch.from_numpy(images[indices]).float().div(255)
        assert torch.equal(batch, expected)
        rows += indices
    return rows


@pytest.mark.parametrize("name", BLOCK_FORMATS)
def test_every_format_streams_every_row_once_pixel_exact(name: str, datasets: dict[str, Path],
                                                         images: np.ndarray) -> None:  # fmt: skip
    for shuffle, (chunk, per_block) in itertools.product((False, True), ((16, 1), (7, 3), (1, 20))):
        loader = StreamingImageLoader(datasets[name], batch_size=8, shuffle=shuffle, seed=3, num_threads=2,
                                      chunk_size=chunk, chunks_per_block=per_block, memory_budget=1 << 16)
        rows = epoch_rows(loader, images)
        assert sorted(rows) == list(range(N)), (name, shuffle, chunk, per_block)
        assert len(loader) == -(-N // 8)
        if not shuffle:
            assert rows == list(range(N))


def test_exactly_once_over_threads_ranks_and_block_specs(datasets: dict[str, Path], images: np.ndarray) -> None:
    path = datasets["arrow_ipc" if "arrow_ipc" in datasets else BLOCK_FORMATS[0]]
    orders = {}
    for threads, world, (chunk, per_block), shuffle in itertools.product(
            (1, 2, 4), (1, 2, 3), ((16, 1), (5, 4)), (False, True)):
        per_rank = []
        for rank in range(world):
            loader = StreamingImageLoader(path, batch_size=6, shuffle=shuffle, seed=11, num_threads=threads,
                                          rank=rank, world_size=world, chunk_size=chunk,
                                          chunks_per_block=per_block, memory_budget=1 << 15, prefetch=1)
            per_rank.append(epoch_rows(loader, images))
        counts = {len(rows) for rows in per_rank}
        assert counts == {-(-N // world)}, (threads, world)  # equal shares, padded as DistributedSampler pads
        union = sorted(set(itertools.chain.from_iterable(per_rank)))
        assert union == list(range(N))
        assert sum(len(r) for r in per_rank) - N < world  # only the padding repeats
        orders.setdefault((world, chunk, per_block, shuffle), per_rank)
        assert orders[(world, chunk, per_block, shuffle)] == per_rank  # same order whatever the thread count


def test_block_scheme_and_epochs(datasets: dict[str, Path], images: np.ndarray) -> None:
    path = datasets[BLOCK_FORMATS[0]]
    loader = StreamingImageLoader(path, batch_size=10, shuffle=True, seed=2, chunk_size=10, chunks_per_block=2)
    first, second = epoch_rows(loader, images), epoch_rows(loader, images)
    assert first != second and sorted(first) == sorted(second)
    # the order is a sequence of blocks, each the rows of two whole chunks of 10 (the short last chunk anywhere)
    start = 0
    while start < N:
        chunks: list[int] = []
        for row in first[start:]:
            if row // 10 not in chunks:
                if len(chunks) == 2:
                    break
                chunks.append(row // 10)
        block = {row for chunk in chunks for row in range(chunk * 10, min(chunk * 10 + 10, N))}
        assert set(first[start:start + len(block)]) == block, start
        start += len(block)
    loader.set_epoch(5)
    assert epoch_rows(loader, images) == epoch_rows(loader, images)


def test_same_pixels_and_transforms_as_the_in_memory_loader(datasets: dict[str, Path]) -> None:
    path = datasets[BLOCK_FORMATS[0]]
    options = {"mean": [0.5, 0.25], "std": [0.5, 0.5], "random_hflip": True, "crop_size": 8, "seed": 4}
    in_memory = NativeImageLoader(path, batch_size=N, **options)
    (reference, rows) = next(iter(in_memory.iter_with_indices()))
    streaming = StreamingImageLoader(path, batch_size=7, shuffle=True, chunk_size=9, chunks_per_block=2, **options)
    # the in-memory loader ran epoch 0; so does the streaming one's first epoch
    got = {}
    for batch, indices in streaming.iter_with_indices():
        got.update(zip(indices, batch, strict=False))
    assert rows == list(range(N))
    for row in range(N):
        assert torch.equal(got[row], reference[row]), row


def test_memory_is_bounded_by_the_budget(datasets: dict[str, Path], images: np.ndarray) -> None:
    path = datasets[BLOCK_FORMATS[0]]
    # a budget below one block: one block at a time, so the peak is one block's bytes
    one_block = StreamingImageLoader(path, batch_size=4, chunk_size=16, chunks_per_block=1, memory_budget=1)
    epoch_rows(one_block, images)
    block_bytes = one_block.epoch_stats()["peak_block_bytes"]
    assert block_bytes > 0
    for budget_blocks in (1, 2, 3):
        budget = int(block_bytes * budget_blocks * 1.2)
        loader = StreamingImageLoader(path, batch_size=4, chunk_size=16, chunks_per_block=1, memory_budget=budget,
                                      num_threads=2, io_threads=2)
        epoch_rows(loader, images)
        stats = loader.epoch_stats()
        assert stats["peak_block_bytes"] <= budget, stats
        assert stats["peak_blocks_in_flight"] <= budget_blocks, stats
        assert stats["blocks_read"] == -(-N // 16)
        assert loader._readers.opened <= 2  # one reader per I/O thread, reused from block to block
    assert one_block.epoch_stats()["peak_blocks_in_flight"] == 1


def test_later_epochs_start_with_the_largest_block_size_seen(datasets: dict[str, Path], images: np.ndarray) -> None:
    """The first epoch has no size to check the budget with (its first read runs alone); later ones are told the
    largest block read so far, and stay within the budget and exactly-once."""
    path = datasets[BLOCK_FORMATS[0]]
    loader = StreamingImageLoader(path, batch_size=4, shuffle=True, chunk_size=16, chunks_per_block=1,
                                  num_threads=2, io_threads=2)
    assert loader.options.block_bytes_hint == 0
    epoch_rows(loader, images)
    largest = loader.epoch_stats()["largest_block_bytes"]
    assert largest > 0
    budget = int(largest * 2.5)
    loader.options.memory_budget = budget
    for _ in range(2):
        assert sorted(epoch_rows(loader, images)) == list(range(N))  # every row once, pixel-exact
        assert loader.options.block_bytes_hint == largest
        stats = loader.epoch_stats()
        assert stats["peak_block_bytes"] <= budget and stats["largest_block_bytes"] == largest, stats


def test_dataloader_workers_split_the_batches(datasets: dict[str, Path], images: np.ndarray) -> None:
    path = datasets[BLOCK_FORMATS[0]]
    loader = StreamingImageLoader(path, batch_size=8, shuffle=True, seed=1, chunk_size=8, chunks_per_block=2)
    loader.set_epoch(0)
    alone = epoch_rows(loader, images)
    batches = list(DataLoader(loader, batch_size=None, num_workers=2))
    together = torch.cat(batches)
    assert torch.equal(together, torch.from_numpy(images[alone]).float().div(255))


@pytest.mark.parametrize("name", [n for n in ("parquet", "parquet_duckdb", "lance", "vortex", "duckdb", "arrow_ipc")
                                  if n in BLOCK_FORMATS])
def test_a_file_truncated_mid_epoch_is_a_clear_error(name: str, tmp_path: Path) -> None:
    # Images large enough that the file is far bigger than any footer read-ahead (a small file is read whole)
    big = generate_images(64, 64, 64, "uint8", 1, seed=1)
    module = get_format(name)
    copy = tmp_path / module.INFO.filename
    module.write(ImageStream.from_table(build_ome_table(big), big), copy, rows_per_unit=8)
    victims = sorted(p for p in copy.rglob("*") if p.is_file() and p.stat().st_size > 50_000) if copy.is_dir() \
        else [copy]
    loader = StreamingImageLoader(copy, batch_size=4, chunk_size=8, chunks_per_block=1, memory_budget=1, prefetch=0)
    iterator = iter(loader)
    next(iterator)
    for victim in victims:  # cut to 16 KiB: a DuckDB file keeps free blocks at its end, so a third may hold it all
        with victim.open("r+b") as f:
            f.truncate(min(victim.stat().st_size // 3, 16384))
    with pytest.raises(RuntimeError, match=copy.name):
        for _ in iterator:
            pass
    iterator.close()


@pytest.mark.parametrize("layout", ["ome-arrow", "bytes-zstd"])
def test_arrow_ipc_blocks_are_copied_out_of_the_map_into_recycled_buffers(layout: str, images: np.ndarray,
                                                                         tmp_path: Path) -> None:
    """The reader hands out views into the mapped file and the core copies each block out at once (planes as one run
    per image; zstd chunks piece by piece), into buffers reused from block to block: the pixels are exact, and blocks
    held when the file is cut under them are still read (the next read is the error)."""
    if "arrow_ipc" not in BLOCK_FORMATS:
        pytest.skip("pyarrow's IPC support is unavailable")
    module = get_format("arrow_ipc")
    path = tmp_path / module.INFO.filename
    table = build_ome_table(images, layout=layout)
    module.write(ImageStream.from_table(table, images, batch_rows=40), path, rows_per_unit=16)
    loader = StreamingImageLoader(path, batch_size=8, shuffle=True, seed=5, num_threads=2, chunks_per_block=2)
    for _ in range(2):
        assert sorted(epoch_rows(loader, images)) == list(range(N))
    assert loader._readers._opened and all(not r.copy_rows for r in loader._readers._opened)

    # blocks read ahead and held when the file is cut under them: their batches still come exact (a view into the
    # map would fault there), and the first read after the cut is the error, naming the file
    loader = StreamingImageLoader(path, batch_size=8, chunk_size=16, chunks_per_block=1, io_threads=1,
                                  max_blocks_in_flight=3)
    iterator = loader.iter_with_indices()
    delivered = [next(iterator)]
    time.sleep(0.5)  # the I/O thread reads ahead meanwhile
    with path.open("r+b") as f:
        f.truncate(1024)
    with pytest.raises(RuntimeError, match=path.name):
        for item in iterator:
            delivered.append(item)
    iterator.close()
    assert len(delivered) >= 2  # block 0's second batch at least came from a held block
    for batch, indices in delivered:
        assert torch.equal(batch, torch.from_numpy(images[indices]).float().div(255))


UNEVEN_UNITS = (5, 30, 1, 17, 40, 10)  # rows per unit, as another tool might cut a file (sums to N)


def write_uneven_units(name: str, images: np.ndarray, path: Path) -> None:
    """``images`` in read units of ``UNEVEN_UNITS`` rows: Parquet row groups or Arrow IPC record batches."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    table = build_ome_table(images)
    starts = np.cumsum((0, *UNEVEN_UNITS[:-1]))
    pieces = [table.slice(start, size) for start, size in zip(starts, UNEVEN_UNITS, strict=True)]
    if name == "parquet":
        with pq.ParquetWriter(path, table.schema) as writer:
            for piece in pieces:
                writer.write_table(piece, row_group_size=piece.num_rows)
    else:
        with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            for piece in pieces:
                writer.write_table(piece, max_chunksize=piece.num_rows)


@pytest.mark.parametrize("name", [n for n in ("parquet", "arrow_ipc") if n in BLOCK_FORMATS])
def test_uneven_read_units_are_each_read_once_as_a_chunk(name: str, images: np.ndarray, tmp_path: Path) -> None:
    """By default a chunk is one read unit as the file cut it: every unit is read once per epoch, whole, by one
    block (median-sized chunks straddled uneven units, so units were read for two blocks), and every row comes
    once, pixel-exact, over threads and ranks; the torch baseline's blocks are the same units."""
    from loaderbench.loaders.block_datasets import BlockBatchDataset  # noqa: PLC0415

    path = tmp_path / get_format(name).INFO.filename
    write_uneven_units(name, images, path)
    units = len(UNEVEN_UNITS)
    for threads, per_block, shuffle in itertools.product((1, 2, 4), (1, 2, 4), (False, True)):
        loader = StreamingImageLoader(path, batch_size=8, shuffle=shuffle, seed=5, num_threads=threads,
                                      chunks_per_block=per_block)
        assert loader.unit_starts.tolist() == list(np.cumsum((0, *UNEVEN_UNITS[:-1])))
        before = loader.units_read()  # the loader read row 0 to learn the sample shape
        rows = epoch_rows(loader, images)
        assert sorted(rows) == list(range(N))
        assert loader.units_read() - before == units, (threads, per_block, shuffle)
        assert loader.epoch_stats()["blocks_read"] == -(-units // per_block)
        loader.close()
    for world in (2, 3):
        shares = [epoch_rows(StreamingImageLoader(path, batch_size=8, shuffle=True, seed=5, rank=rank,
                                                  world_size=world, drop_uneven=True), images)
                  for rank in range(world)]
        together = list(itertools.chain.from_iterable(shares))
        assert len(together) == len(set(together)) == N // world * world
    # DataLoader workers plan the same unit chunks (their options are copied, chunk starts included)
    loader = StreamingImageLoader(path, batch_size=8, shuffle=True, seed=5, chunks_per_block=2)
    loader.set_epoch(0)
    alone = epoch_rows(loader, images)
    together = torch.cat(list(DataLoader(loader, batch_size=None, num_workers=2)))
    assert torch.equal(together, torch.from_numpy(images[alone]).float().div(255))
    # an explicit chunk size still cuts every chunk_size rows, across the units
    loader = StreamingImageLoader(path, batch_size=8, chunk_size=20, chunks_per_block=1)
    before = loader.units_read()
    assert epoch_rows(loader, images) == list(range(N)) and loader.units_read() - before > units
    dataset = BlockBatchDataset(get_format(name), path, batch_size=8, chunk_size=None, chunks_per_block=2,
                                shuffle=True, seed=1)
    starts = dataset.chunk_starts.tolist()
    assert starts == loader.unit_starts.tolist()
    assert sum(len(batch) for batch in dataset) == N
    assert dataset.reader.get().counters.units == units


def test_bad_arguments_and_formats(datasets: dict[str, Path], tmp_path: Path) -> None:
    path = datasets[BLOCK_FORMATS[0]]
    for bad in ({"chunk_size": 0}, {"chunks_per_block": 0}, {"memory_budget": 0}, {"io_threads": 0},
                {"batch_size": 0}, {"dtype": None}):
        with pytest.raises(ValueError):
            StreamingImageLoader(path, **bad)
    (tmp_path / "tiff").mkdir()
    with pytest.raises((ValueError, FormatError)):
        StreamingImageLoader(tmp_path / "tiff", format="tiff")
    with pytest.raises(FileNotFoundError):
        StreamingImageLoader(tmp_path / "missing.parquet")


def test_sparse_streaming_matches_the_matrix(tmp_path: Path) -> None:
    import pyarrow.parquet as pq  # noqa: PLC0415
    import scipy.sparse as sp  # noqa: PLC0415

    from loaderbench.sparse.block_readers import open_block_reader  # noqa: PLC0415

    matrix = sp.random(300, 40, density=0.1, format="coo", random_state=3, dtype=np.float32)
    order = np.lexsort((matrix.col, matrix.row))
    table = pa.table({"soma_dim_0": matrix.row[order].astype(np.int64),
                      "soma_dim_1": matrix.col[order].astype(np.int64), "soma_data": matrix.data[order]})
    table = table.replace_schema_metadata({b"shape": b"[300, 40]", b"n_cells": b"300", b"n_genes": b"40"})
    path = tmp_path / "cells.parquet"
    pq.write_table(table, path, row_group_size=500)
    dense = matrix.toarray()
    for shuffle, threads in itertools.product((False, True), (1, 3)):
        loader = StreamingSparseLoader(path, "parquet", batch_size=32, shuffle=shuffle, num_threads=threads,
                                       chunk_size=20, chunks_per_block=3, memory_budget=1 << 14)
        rows = []
        for batch, indices in loader.iter_with_indices():
            assert torch.equal(batch, torch.from_numpy(dense[indices]))
            rows += indices
        assert sorted(rows) == list(range(300))
    # by default a chunk is one read unit (cells cut where row groups of 500 entries start: uneven), read once an
    # epoch: the row groups read (what the COO reader counts) are those of each unit once, a cell that straddles two
    # groups reading both
    loader = StreamingSparseLoader(path, "parquet", batch_size=32, shuffle=True, chunks_per_block=2)
    sizes = np.diff(np.append(loader.unit_starts, 300))
    assert len(set(sizes.tolist())) > 1
    before = loader.units_read()
    rows = [row for _, indices in loader.iter_with_indices() for row in indices]
    assert sorted(rows) == list(range(300))
    bounds = np.append(loader.unit_starts, 300)
    with open_block_reader("parquet", path) as reader:
        per_unit = sum(len(reader.groups_for(np.arange(a, b))) for a, b in zip(bounds[:-1], bounds[1:], strict=True))
    assert loader.units_read() - before == per_unit


def test_readers_are_closed_and_reopened_after_fork(datasets: dict[str, Path], images: np.ndarray) -> None:
    path = datasets[BLOCK_FORMATS[0]]
    loader = StreamingImageLoader(path, batch_size=16)
    epoch_rows(loader, images)
    loader.close()
    assert sorted(epoch_rows(loader, images)) == list(range(N))
    pid = os.fork()
    if pid == 0:  # the child reads through readers of its own
        code = 0 if sorted(epoch_rows(loader, images)) == list(range(N)) else 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0


@pytest.mark.parametrize("name", [n for n in ("lance", "parquet") if n in BLOCK_FORMATS])
def test_block_torch_workers_read_every_row_once(name: str, datasets: dict[str, Path], images: np.ndarray) -> None:
    """The torch baseline with DataLoader workers: forked for Parquet; spawned for Lance, whose runtime does not
    survive a fork (forked workers segfaulted)."""
    from loaderbench.loaders.block_datasets import BlockBatchDataset, batch_transform, block_dataloader
    from loaderbench.tracks.common import shutdown_loader

    module = get_format(name)
    dataset = BlockBatchDataset(module, datasets[name], batch_size=8, chunk_size=16, chunks_per_block=2,
                                shuffle=True, seed=3, transform=batch_transform("none"))
    loader = block_dataloader(dataset, num_workers=2)
    assert (loader.multiprocessing_context is not None) == (not module.INFO.fork_safe)
    batches = list(loader)
    shutdown_loader(loader)  # persistent (spawned) workers stop now, not when the loader is collected
    together = torch.cat(batches)
    assert len(together) == N
    # every image exactly once: match each output to its reference image
    reference = torch.from_numpy(images).float().div(255).flatten(1)
    matches = (together.flatten(1)[:, None, :] == reference[None]).all(-1)
    assert matches.sum(1).eq(1).all() and matches.sum(0).eq(1).all()


def test_images_of_different_sizes_stream_cropped_and_padded(tmp_path: Path) -> None:
    """Mixed sizes (as real collections have) stream with a crop_size and pad_if_needed, exactly as the in-memory
    loader gives them; without a crop the block is refused with the reason."""
    from test_native_shapes import ome_table  # noqa: PLC0415 - the one builder of mixed-size tables

    rng = np.random.default_rng(8)
    sizes = [(6, 7), (4, 9), (8, 8), (5, 5)] * 5
    table = ome_table([rng.integers(0, 4096, size, dtype=np.uint16) for size in sizes])
    path = tmp_path / "mixed.parquet"
    get_format("parquet").write(ImageStream.from_table(table), path, rows_per_unit=8)
    args = dict(batch_size=4, shuffle=True, seed=2, num_threads=2, crop_size=(6, 6), pad_if_needed=True, scale=4095)
    streamed = {tuple(rows): batch for batch, rows in StreamingImageLoader(path, **args).iter_with_indices()}
    in_memory = NativeImageLoader(path, **{**args, "shuffle": False, "batch_size": 1})
    assert sorted(r for rows in streamed for r in rows) == list(range(len(sizes)))
    for rows, batch in streamed.items():
        assert batch.shape == (4, 1, 6, 6)
        assert float(batch.max()) <= 1.0
        for k, row in enumerate(rows):
            assert torch.equal(batch[k], in_memory[row]), row
    with pytest.raises(RuntimeError, match="different sizes.*crop_size"):
        list(StreamingImageLoader(path, batch_size=4))
    with pytest.raises(ValueError, match="scale='measured' needs the whole dataset"):
        StreamingImageLoader(path, scale="measured")
