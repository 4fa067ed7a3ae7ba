"""The native image loader from Python: pixels, sampling, lifetimes and bad input."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import ome_arrow
import pyarrow as pa
import pytest
import torch
from torch.utils.data import DataLoader

from loaderbench import _core
from loaderbench.config import LAYOUTS
from loaderbench.datagen import build_ome_table, generate_images
from loaderbench.formats import get_format
from loaderbench.loaders.native import NativeImageLoader

SCALE = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}


def reference(table: pa.Table, dtype: str) -> torch.Tensor:
    """The ome-arrow package's own numpy export of every row, converted as torch would: (N, C, H, W) float32."""
    images = [ome_arrow.to_numpy(table["ome_image"][i], dtype=np.dtype(dtype))[0, :, 0] for i in range(len(table))]
    return torch.from_numpy(np.stack(images)).to(torch.float32).div(SCALE[dtype])


@pytest.fixture(scope="module")
def small_table() -> pa.Table:
    return build_ome_table(generate_images(23, 12, 10, "uint8", 2, seed=5))


def test_pixel_exact_for_every_arrow_format_and_dtype(tiny_dataset_any_dtype) -> None:
    ds = tiny_dataset_any_dtype
    for name, path in ds.paths.items():
        module = get_format(name)
        if module.INFO.kind != "table":
            continue
        table = module.read_table(path)
        expected = reference(table, ds.dtype)
        for shuffle in (False, True):
            loader = NativeImageLoader(path, batch_size=5, shuffle=shuffle, seed=1, num_threads=2)
            rows, batches = [], []
            for batch, indices in loader.iter_with_indices():
                batches.append(batch)
                rows += indices
            got = torch.cat(batches)
            assert torch.equal(got, expected[rows]), (name, ds.dtype, shuffle)
            assert sorted(rows) == list(range(len(table)))


def test_compressed_byte_chunks_and_tiles() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 65535, size=(2, 600, 530), dtype=np.uint16)  # > one 512x512 chunk per plane
    for codec in ("zstd", "lz4", None):
        struct = ome_arrow.from_numpy(image.reshape(1, 2, 1, 600, 530), chunk_encoding="bytes", chunk_compression=codec)
        table = pa.table({"row_id": [0], "ome_image": pa.array([struct.as_py()], type=struct.type)})
        loader = NativeImageLoader(table, batch_size=1)
        (batch,) = list(loader)
        assert torch.equal(batch[0], torch.from_numpy(image).float().div(65535)), codec
        with pytest.raises(ValueError, match="not stored as one contiguous block"):
            NativeImageLoader(table, dtype=None)[0]


def test_corrupt_compressed_chunk_surfaces_in_the_consumer() -> None:
    image = np.arange(64, dtype=np.uint16).reshape(1, 1, 1, 8, 8)
    row = ome_arrow.from_numpy(image, chunk_encoding="bytes", chunk_compression="zstd").as_py()
    good = row["chunks"][0]["pixel_bytes"]
    # A bad frame header is refused when the table is imported ...
    row["chunks"][0]["pixel_bytes"] = b"not zstd at all"
    table = pa.table({"ome_image": pa.array([row] * 3, type=ome_arrow.OME_ARROW_BYTE_STRUCT)})
    with pytest.raises(ValueError, match="row 0: chunk 0 is not a zstd frame"):
        NativeImageLoader(table, batch_size=1, num_threads=2)
    # ... a cut-off frame too (its block headers are walked at import) ...
    row["chunks"][0]["pixel_bytes"] = good[:-3]
    table = pa.table({"ome_image": pa.array([row] * 3, type=ome_arrow.OME_ARROW_BYTE_STRUCT)})
    with pytest.raises(ValueError, match="row 0: chunk 0 holds a truncated or corrupt zstd frame"):
        NativeImageLoader(table, batch_size=1, num_threads=2)
    # ... and corrupt entropy-coded data behind good headers when the batch holding it is assembled. (A frame without
    # a checksum, as pyarrow writes them, can also decode corrupt literals without any error: zstd cannot tell.)
    row["chunks"][0]["pixel_bytes"] = good[:10] + bytes([good[10] ^ 0xFF]) + good[11:]
    table = pa.table({"ome_image": pa.array([row] * 3, type=ome_arrow.OME_ARROW_BYTE_STRUCT)})
    loader = NativeImageLoader(table, batch_size=1, num_threads=2)
    with pytest.raises(ValueError, match="row 0: chunk 0: zstd chunk is corrupt"):
        list(loader)
    with pytest.raises(ValueError, match="row 0: chunk 0: zstd chunk is corrupt"):  # preloading decodes it at once
        NativeImageLoader(table, batch_size=1, num_threads=2, preload=True)


@pytest.mark.parametrize("dtype", ["uint8", "uint16"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_preload_decodes_once_into_the_same_batches(layout: str, dtype: str) -> None:
    images = generate_images(9, 13, 17, dtype, channels=2, seed=4)
    table = build_ome_table(images, layout=layout)
    args = dict(batch_size=4, shuffle=True, seed=3, num_threads=2, random_hflip=True)
    arrow, preloaded = NativeImageLoader(table, **args), NativeImageLoader(table, **args, preload=True)
    for _ in range(2):  # two epochs: other orders and flips
        for a, b in zip(arrow, preloaded, strict=True):
            assert torch.equal(a, b)
    # Every image one aligned run of the declared dtype: uint8 comes back to one byte a pixel, whatever the layout
    per_image = -(-2 * 13 * 17 * np.dtype(dtype).itemsize // 64) * 64
    assert preloaded.dataset.owned_bytes == 9 * per_image and arrow.dataset.owned_bytes == 0
    view = NativeImageLoader(table, dtype=None, preload=True)
    assert view[5].dtype == getattr(torch, dtype) and torch.equal(view[5], torch.from_numpy(images[5]))


def test_preload_keeps_uint16_when_declared_uint8_pixels_exceed_255() -> None:
    row = ome_arrow.from_numpy(np.arange(12, dtype=np.uint8).reshape(1, 1, 1, 3, 4)).as_py()
    row["pixels_meta"]["type"] = "uint8"  # declared uint8 over list<uint16>, as build_ome_table writes uint8
    for piece in row["planes"] + row["chunks"]:
        piece["pixels"][7] = 300  # out of uint8's range: narrowing would change it
    table = pa.table({"ome_image": pa.array([row] * 3, type=ome_arrow.OME_ARROW_STRUCT)})
    arrow, preloaded = NativeImageLoader(table, batch_size=3), NativeImageLoader(table, batch_size=3, preload=True)
    (a,), (b,) = list(arrow), list(preloaded)
    assert torch.equal(a, b) and b[0, 0, 1, 3] == pytest.approx(300 / 255)
    assert preloaded.dataset.summary()["stored_dtype"] == "uint16"


def test_preload_is_for_arrow_sources(tiny_dataset) -> None:
    with pytest.raises(ValueError, match="preload=True is for Arrow-backed sources"):
        NativeImageLoader(tiny_dataset.paths["tiff"], preload=True)


def test_conversion_options(small_table: pa.Table) -> None:
    raw = reference(small_table, "uint8")
    norm = next(iter(NativeImageLoader(small_table, batch_size=23, mean=[0.5, 0.25], std=[0.5, 2.0])))
    mean = torch.tensor([0.5, 0.25]).view(1, 2, 1, 1)
    std = torch.tensor([0.5, 2.0]).view(1, 2, 1, 1)
    assert torch.equal(norm, raw.sub(mean).div(std))
    half = next(iter(NativeImageLoader(small_table, batch_size=23, dtype=torch.float16)))
    assert half.dtype == torch.float16 and torch.equal(half, raw.half())
    as_uint8 = next(iter(NativeImageLoader(small_table, batch_size=23, dtype=torch.uint8)))
    assert as_uint8.dtype == torch.uint8 and torch.equal(as_uint8, (raw * 255).round().to(torch.uint8))
    crop = next(iter(NativeImageLoader(small_table, batch_size=23, crop_size=(4, 6), random_crop=False)))
    assert torch.equal(crop, raw[:, :, 4:8, 2:8])


def test_augmentation_is_seeded_and_thread_independent(small_table: pa.Table) -> None:
    def epoch(threads: int, seed: int) -> torch.Tensor:
        loader = NativeImageLoader(small_table, batch_size=4, shuffle=True, seed=seed, num_threads=threads,
                                   random_hflip=True, random_vflip=True, crop_size=8)
        return torch.cat(list(loader))

    one = epoch(1, 3)
    assert torch.equal(one, epoch(4, 3))
    assert not torch.equal(one, epoch(1, 4))
    raw = reference(small_table, "uint8")
    # every augmented sample is a flipped 8x8 window of its source image
    loader = NativeImageLoader(small_table, batch_size=23, random_hflip=True, random_vflip=True, crop_size=8)
    batch, rows = next(loader.iter_with_indices())
    for sample, row in zip(batch, rows, strict=True):
        candidates = [raw[row, :, y : y + 8, x : x + 8] for y in range(5) for x in range(3)]
        flips = [c for w in candidates for c in (w, w.flip(-1), w.flip(-2), w.flip(-1, -2))]
        assert any(torch.equal(sample, c) for c in flips)


@pytest.mark.parametrize("seed", range(6))
def test_exactly_once_property(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 60))
    table = build_ome_table(generate_images(n, 4, 3, "uint8", 1, seed=seed))
    for sampler in ("sequential", "random", "block"):
        for threads in (1, 2, 4):
            for world in (1, 2, 3):
                batch_size = int(rng.integers(1, 9))
                seen: list[int] = []
                for rank in range(world):
                    loader = NativeImageLoader(table, batch_size=batch_size, sampler=sampler, block_size=5,
                                               buffer_blocks=2, seed=seed, num_threads=threads, rank=rank,
                                               world_size=world)
                    got = [i for _, idx in loader.iter_with_indices() for i in idx]
                    assert len(loader) == -(-len(got) // batch_size)
                    seen += got
                assert set(seen) == set(range(n)), (sampler, threads, world)
                per_rank = -(-n // world)
                assert len(seen) == per_rank * world


def test_same_seed_same_order_across_thread_counts(small_table: pa.Table) -> None:
    orders = []
    for threads in (1, 2, 4):
        loader = NativeImageLoader(small_table, batch_size=3, shuffle=True, seed=9, num_threads=threads)
        orders.append([i for _, idx in loader.iter_with_indices() for i in idx])
    assert orders[0] == orders[1] == orders[2]


def test_epochs_advance_and_set_epoch_fixes_them(small_table: pa.Table) -> None:
    loader = NativeImageLoader(small_table, batch_size=23, shuffle=True, seed=1)
    first = next(loader.iter_with_indices())[1]
    second = next(loader.iter_with_indices())[1]
    assert first != second
    loader.set_epoch(0)
    assert next(loader.iter_with_indices())[1] == first
    assert next(loader.iter_with_indices())[1] == first


def test_drop_last_and_len(small_table: pa.Table) -> None:
    loader = NativeImageLoader(small_table, batch_size=5, drop_last=True)
    batches = list(loader)
    assert len(loader) == len(batches) == 4
    assert all(b.shape == (5, 2, 12, 10) for b in batches)
    assert len(NativeImageLoader(small_table, batch_size=5)) == 5


def test_works_inside_a_dataloader(small_table: pa.Table) -> None:
    loader = NativeImageLoader(small_table, batch_size=8)
    batches = list(DataLoader(loader, batch_size=None, num_workers=0))
    assert [b.shape[0] for b in batches] == [8, 8, 7]
    assert torch.equal(torch.cat(batches), reference(small_table, "uint8"))


def test_zero_copy_view_keeps_arrow_buffers_alive(small_table: pa.Table) -> None:
    loader = NativeImageLoader(small_table, dtype=None)
    view = loader[3]
    assert view.dtype == torch.uint16  # ome-arrow stores uint8 widened to list<uint16>
    again = loader[3]
    assert view.data_ptr() == again.data_ptr()  # a view into the same Arrow buffer, not a copy
    expected = reference(small_table, "uint8")[3].mul(255).to(torch.int32)
    del loader, again
    gc.collect()
    assert torch.equal(view.to(torch.int32), expected)
    assert torch.equal(NativeImageLoader(small_table)[-1], reference(small_table, "uint8")[-1])


def test_lifetimes(small_table: pa.Table) -> None:
    loader = NativeImageLoader(small_table, batch_size=2, num_threads=4, prefetch=2)
    iterator = iter(loader)
    kept = next(iterator)
    del loader, iterator  # loader and epoch deleted mid-epoch, workers blocked on the prefetch bound
    gc.collect()
    assert torch.equal(kept, reference(small_table, "uint8")[:2])  # the tensor outlives its loader
    loader = NativeImageLoader(small_table, batch_size=2, num_threads=2)
    for _ in range(3):  # break mid-epoch, then re-iterate
        for k, _batch in enumerate(loader):
            if k == 2:
                break
    assert sum(b.shape[0] for b in loader) == 23
    # buffers return to the pool: many epochs allocate a bounded number of batch buffers
    for _ in range(5):
        for _batch in loader:
            pass
    assert loader._pool.allocations <= loader.options.prefetch + loader.options.num_threads + 2


def test_errors_in_the_source_stream_surface(small_table: pa.Table) -> None:
    def batches():
        yield small_table.to_batches()[0]
        raise OSError("source went away")

    reader = pa.RecordBatchReader.from_batches(small_table.schema, batches())
    with pytest.raises(_core.ArrowImportError, match="source went away"):
        NativeImageLoader(reader)


def _with_image_column(table: pa.Table, column: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index("ome_image"), "ome_image", column)


def test_image_column_of_any_name(small_table: pa.Table) -> None:
    renamed = small_table.rename_columns(["row_id", "image"])
    expected = NativeImageLoader(small_table, dtype=None)[3]
    assert torch.equal(NativeImageLoader(renamed, dtype=None)[3], expected)  # the one OME-Arrow struct column
    assert torch.equal(NativeImageLoader(renamed, column="image", dtype=None)[3], expected)
    two = renamed.append_column("mask", renamed.column("image"))
    with pytest.raises(ValueError, match=r"2 OME-Arrow image columns \(image, mask\)"):
        NativeImageLoader(two)
    with pytest.raises(_core.ArrowImportError, match="no column 'ome_image'"):
        NativeImageLoader(renamed, column="ome_image")


def test_malformed_arrow_is_a_clear_error(small_table: pa.Table) -> None:
    with pytest.raises(_core.ArrowImportError, match="must be an OME-Arrow struct"):
        NativeImageLoader(pa.table({"ome_image": ["x"]}))
    images = small_table.column("ome_image").combine_chunks()
    mask = pa.array([i == 4 for i in range(len(images))])
    nulled = pa.StructArray.from_arrays(images.flatten(), fields=list(images.type), mask=mask)
    with pytest.raises(_core.ArrowImportError, match="row 4: image is null"):
        NativeImageLoader(_with_image_column(small_table, nulled))
    rows = small_table.column("ome_image").to_pylist()
    rows[2]["pixels_meta"]["size_y"] = 11
    with pytest.raises(_core.ArrowImportError, match="row 2: plane 0 has 120 pixels"):
        NativeImageLoader(_with_image_column(small_table, pa.array(rows, type=images.type)))


def test_offsets_out_of_range_are_rejected(small_table: pa.Table) -> None:
    planes = small_table.column("ome_image").combine_chunks().field("planes")
    plane = planes.values
    pixels = plane.field("pixels")
    offsets = np.frombuffer(pixels.buffers()[1], dtype=np.int32)[: len(pixels) + 1].copy()
    # pyarrow validates offsets on construction, so build a valid array over memory we own, then corrupt it.
    bad_pixels = pa.ListArray.from_buffers(pixels.type, len(pixels), [None, pa.py_buffer(offsets)],
                                           children=[pixels.values])
    bad_plane = pa.StructArray.from_arrays([plane.field(i) if f.name != "pixels" else bad_pixels
                                            for i, f in enumerate(plane.type)], fields=list(plane.type))
    bad_planes = pa.ListArray.from_arrays(planes.offsets, bad_plane)
    image = small_table.column("ome_image").combine_chunks()
    fields = [bad_planes if f.name == "planes" else image.field(i) for i, f in enumerate(image.type)]
    bad_image = pa.StructArray.from_arrays(fields, fields=[f if f.name != "planes" else
                                                           pa.field("planes", bad_planes.type) for f in image.type])
    table = pa.table({"ome_image": bad_image})
    NativeImageLoader(table)  # still valid
    offsets[-1] += 1000  # now past the end of the values
    with pytest.raises(_core.ArrowImportError, match="offsets reach"):
        NativeImageLoader(table)
    offsets[-1] -= 1000
    offsets[5] = offsets[4] - 1  # decreasing
    with pytest.raises(_core.ArrowImportError, match="offsets decrease"):
        NativeImageLoader(table)


def test_bad_arguments(small_table: pa.Table, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        NativeImageLoader(small_table, batch_size=0)
    with pytest.raises(ValueError, match="rank"):
        NativeImageLoader(small_table, rank=2, world_size=2)
    with pytest.raises(ValueError, match="crop"):
        NativeImageLoader(small_table, crop_size=50)
    with pytest.raises(ValueError, match="sampler"):
        NativeImageLoader(small_table, sampler="zigzag")
    with pytest.raises(ValueError, match="dtype"):
        NativeImageLoader(small_table, dtype=torch.int64)
    with pytest.raises(TypeError, match="__arrow_c_stream__"):
        NativeImageLoader(42)
    with pytest.raises(FileNotFoundError):
        NativeImageLoader(tmp_path / "missing.parquet")


def test_directory_formats_are_read_by_the_core(tiny_dataset) -> None:
    """TIFF directories are no longer refused: the core reads them (tests/test_native_files.py checks the pixels)."""
    loader = NativeImageLoader(tiny_dataset.paths["tiff"], batch_size=4, rank=0, world_size=1)
    assert loader.num_samples == tiny_dataset.n_images
    assert sum(batch.shape[0] for batch in loader) == tiny_dataset.n_images


TORCHRUN_SCRIPT = textwrap.dedent(
    """
    import math
    import scipy.sparse as sp
    import torch.distributed as dist
    from loaderbench.datagen import build_ome_table, generate_images
    from loaderbench.loaders.native import NativeImageLoader
    from loaderbench.loaders.native_sparse import NativeSparseLoader

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    table = build_ome_table(generate_images(29, 6, 5, "uint8", 1, seed=2))
    cells = sp.random(29, 7, density=0.3, format="csr", random_state=1, dtype="float32")
    # Default rank/world_size: taken from the process group torchrun started.
    for name, loader in (
        ("images", NativeImageLoader(table, batch_size=4, shuffle=True, seed=3, num_threads=2)),
        ("cells", NativeSparseLoader(cells, batch_size=4, shuffle="random", seed=3, num_threads=2)),
        ("images-drop", NativeImageLoader(table, batch_size=4, shuffle=True, seed=3, drop_uneven=True)),
    ):
        loader.set_epoch(1)
        mine = [i for _, idx in loader.iter_with_indices() for i in idx]
        everyone = [None] * world
        dist.all_gather_object(everyone, mine)
        if rank == 0:
            counts = [len(part) for part in everyone]
            union = set().union(*map(set, everyone))
            if name.endswith("drop"):  # DistributedSampler(drop_last=True): equal shares, nothing repeated
                assert counts == [29 // world] * world, (name, counts)
                assert len(union) == sum(counts), (name, counts)
            else:  # padded by wrapping around: every row at least once
                assert counts == [math.ceil(29 / world)] * world, (name, counts)
                assert union == set(range(29)), (name, sorted(union))
    if rank == 0:
        print("UNION-OK")
    dist.destroy_process_group()
    """
)


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_under_torchrun_cover_the_dataset_with_default_arguments(tmp_path: Path, ranks: int) -> None:
    script = tmp_path / "ranks.py"
    script.write_text(TORCHRUN_SCRIPT)
    result = subprocess.run(
        # --standalone: a rendezvous on a free local port, so concurrent runs of the suite cannot collide
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}", str(script)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "UNION-OK" in result.stdout


def test_prefetch_zero_assembles_on_demand_in_one_buffer(small_table) -> None:
    loader = NativeImageLoader(small_table, batch_size=2, num_threads=2, prefetch=0)
    expected = list(NativeImageLoader(small_table, batch_size=2))
    seen = 0
    for got in loader:  # (not zip: its reused result tuple would hold the last batch while the next is made)
        assert torch.equal(got, expected[seen // 2])
        seen += got.shape[0]
        del got  # dropped before the next is asked for
    assert seen == small_table.num_rows
    assert loader._pool.allocations == 1
