"""The shapes and pixel types real data has, through the native loader: images of different sizes (crop, pad, or
one a batch), signed pixels, scaling by bit depth, and the warning for uint8 data declared uint16."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import ome_arrow
import pyarrow as pa
import pytest
import torch

from loaderbench.loaders.native import NativeImageLoader


def ome_table(images: list[np.ndarray], **from_numpy: object) -> pa.Table:
    """A table of ``ome_arrow.from_numpy`` structs, one per 2-D image (YX)."""
    structs = [ome_arrow.from_numpy(image, dim_order="YX", **from_numpy) for image in images]
    return pa.table({"row_id": pa.array(range(len(images)), pa.int64()),
                     "ome_image": pa.array([s.as_py() for s in structs], type=structs[0].type)})


def with_significant_bits(table: pa.Table, bits: int | None) -> pa.Table:
    """``table`` with ``pixels_meta.significant_bits`` added (as a producer recording its camera's depth would)."""
    images = table.column("ome_image").combine_chunks()
    meta = images.field("pixels_meta")
    fields = [meta.field(i) for i in range(meta.type.num_fields)]
    names = [meta.type.field(i).name for i in range(meta.type.num_fields)]
    meta = pa.StructArray.from_arrays([*fields, pa.array([bits] * len(table), pa.int32())],
                                      names=[*names, "significant_bits"])
    names = [images.type.field(i).name for i in range(images.type.num_fields)]
    arrays = [meta if name == "pixels_meta" else images.field(i) for i, name in enumerate(names)]
    return table.set_column(1, "ome_image", pa.StructArray.from_arrays(arrays, names=names))


@pytest.fixture(scope="module")
def mixed_sizes() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [rng.integers(0, 256, size, dtype=np.uint8) for size in [(6, 7), (4, 9), (8, 8), (5, 5)]]


def test_mixed_sizes_need_a_crop_or_batches_of_one(mixed_sizes: list[np.ndarray]) -> None:
    table = ome_table(mixed_sizes, dtype_meta="uint8")
    with pytest.raises(ValueError, match=r"row 1 has 1x1x4x9.*crop_size.*batch_size=1"):
        NativeImageLoader(table, batch_size=2)
    loader = NativeImageLoader(table, batch_size=1, shuffle=True, num_threads=2)
    seen = {}
    for batch, rows in loader.iter_with_indices():
        seen[rows[0]] = batch
    assert sorted(seen) == [0, 1, 2, 3]
    for row, batch in seen.items():
        assert torch.equal(batch[0, 0], torch.from_numpy(mixed_sizes[row]).float() / 255)


def test_a_crop_smaller_than_every_image_batches_them(mixed_sizes: list[np.ndarray]) -> None:
    table = ome_table(mixed_sizes, dtype_meta="uint8")
    loader = NativeImageLoader(table, batch_size=4, crop_size=(4, 5), random_crop=False)
    batch = next(iter(loader))
    assert batch.shape == (4, 1, 4, 5)
    for row, image in enumerate(mixed_sizes):
        # torchvision's CenterCrop: int(round((size - crop) / 2)), halves to even (the 8-wide image: 3 / 2 -> 2)
        top, left = round((image.shape[0] - 4) / 2), round((image.shape[1] - 5) / 2)
        want = torch.from_numpy(image[top:top + 4, left:left + 5]).float() / 255
        assert torch.equal(batch[row, 0], want), row
    with pytest.raises(ValueError, match=r"row 1 has 1x1x4x9 \(CxZxHxW\), smaller than the crop 5x5.*pad_if_needed"):
        NativeImageLoader(table, batch_size=4, crop_size=5)


def test_pad_if_needed_pads_smaller_images_like_torchvision(mixed_sizes: list[np.ndarray]) -> None:
    table = ome_table(mixed_sizes, dtype_meta="uint8")
    loader = NativeImageLoader(table, batch_size=4, crop_size=(7, 7), random_crop=False, pad_if_needed=True,
                               mean=[0.5], std=[0.5])
    batch = next(iter(loader))
    assert batch.shape == (4, 1, 7, 7)
    for row, image in enumerate(mixed_sizes):
        # torchvision's CenterCrop: pad (crop - size) // 2 before, the rest after, then crop the centre.
        padded = torch.zeros(max(7, image.shape[0]), max(7, image.shape[1]))
        py, px = max(0, (7 - image.shape[0]) // 2), max(0, (7 - image.shape[1]) // 2)
        padded[py:py + image.shape[0], px:px + image.shape[1]] = torch.from_numpy(image).float()
        top, left = round((padded.shape[0] - 7) / 2), round((padded.shape[1] - 7) / 2)
        want = (padded[top:top + 7, left:left + 7] / 255 - 0.5) / 0.5
        assert torch.equal(batch[row, 0], want), row
    # Random placement: every image lands whole inside its padded window, the rest is the padding value.
    loader = NativeImageLoader(table, batch_size=4, crop_size=(9, 9), pad_if_needed=True, seed=5)
    batch = next(iter(loader))
    for row, image in enumerate(mixed_sizes):
        assert int((batch[row, 0] > 0).sum()) <= image.size
        assert float(batch[row, 0].sum()) == pytest.approx(float(image.astype(np.float64).sum() / 255), rel=1e-5)
    with pytest.raises(ValueError, match="pad_if_needed pads images to crop_size"):
        NativeImageLoader(table, batch_size=1, pad_if_needed=True)


def test_signed_pixels_scale_by_their_types_maximum() -> None:
    rng = np.random.default_rng(4)
    for dtype in (np.int16, np.int32):
        info = np.iinfo(dtype)
        images = [rng.integers(info.min, info.max, (5, 6), dtype=dtype) for _ in range(3)]
        # ome-arrow keeps signed pixels only in byte chunks (its list chunks are uint16 and clamp).
        table = ome_table(images, clamp_to_uint16=False, chunk_encoding="bytes")
        batch = next(iter(NativeImageLoader(table, batch_size=3)))
        want = torch.from_numpy(np.stack(images)).to(torch.float32) / float(info.max)
        assert torch.equal(batch[:, 0], want), dtype
        raw = next(iter(NativeImageLoader(table, batch_size=3, scale=False)))
        assert torch.equal(raw[:, 0], torch.from_numpy(np.stack(images)).to(torch.float32))


def test_scale_by_a_value_bits_or_the_measured_depth() -> None:
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 4096, (6, 6), dtype=np.uint16) for _ in range(4)]  # a 12-bit camera
    images[2][0, 0] = 4095
    table = ome_table(images)
    stacked = torch.from_numpy(np.stack(images).astype(np.float32))
    for scale in (4095, 4095.0, "measured"):
        batch = next(iter(NativeImageLoader(table, batch_size=4, scale=scale)))
        assert torch.equal(batch[:, 0], stacked / 4095), scale
    assert torch.equal(next(iter(NativeImageLoader(table, batch_size=4)))[:, 0], stacked / 65535)
    with pytest.raises(ValueError, match="significant_bits.*found none"):
        NativeImageLoader(table, scale="significant_bits")
    declared = with_significant_bits(table, 12)
    batch = next(iter(NativeImageLoader(declared, batch_size=4, scale="significant_bits")))
    assert torch.equal(batch[:, 0], stacked / 4095)
    for bad in (0, -1.0, float("nan"), "bits", [1]):
        with pytest.raises(ValueError, match="scale must be"):
            NativeImageLoader(table, scale=bad)


def test_uint8_data_declared_uint16_gets_a_warning() -> None:
    rng = np.random.default_rng(6)
    images = [rng.integers(0, 256, (5, 5), dtype=np.uint8) for _ in range(3)]
    with pytest.warns(UserWarning, match="declared uint16 but 3 sampled of 3 hold no value above"):
        NativeImageLoader(ome_table(images))  # ome-arrow's default declares uint8 input uint16
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NativeImageLoader(ome_table(images, dtype_meta="uint8"))
        NativeImageLoader(ome_table(images), scale=255)
        NativeImageLoader(ome_table([images[0].astype(np.uint16) * 257]))


def test_a_tiff_directory_of_mixed_sizes_crops_pads_and_measures(tmp_path: Path,
                                                                 mixed_sizes: list[np.ndarray]) -> None:  # fmt: skip
    """Directory formats take the same crop, padding and measured scale, each file at its own size."""
    tifffile = pytest.importorskip("tifffile")
    twelve_bit = [(image.astype(np.uint16) * 16) for image in mixed_sizes]  # values up to 4080: 12 bits
    for i, image in enumerate(twelve_bit):
        tifffile.imwrite(tmp_path / f"img_{i:06d}.tiff", image, photometric="minisblack")
    table = ome_table(twelve_bit)
    args = dict(batch_size=4, crop_size=(7, 7), pad_if_needed=True, random_crop=False, scale="measured")
    from_files = NativeImageLoader(tmp_path, format="tiff", **args)
    from_arrow = NativeImageLoader(table, **args)
    assert from_files.transform.max_value == from_arrow.transform.max_value == 4095
    assert torch.equal(next(iter(from_files)), next(iter(from_arrow)))
    assert torch.equal(from_files[1], from_arrow[1])
    with pytest.raises(ValueError, match=r"img_000001.tiff: the image is 1x4x9 uint16 .* need a crop_size"):
        list(NativeImageLoader(tmp_path, format="tiff", batch_size=1))
    with pytest.raises(ValueError, match=r"img_000001.tiff: the image has 1x1x4x9 .*pad_if_needed"):
        list(NativeImageLoader(tmp_path, format="tiff", batch_size=2, crop_size=5))


def test_uint8_out_of_compressed_uint8_chunks_is_the_stored_bytes() -> None:
    """With nothing to convert, zstd and lz4 chunks are decompressed straight into the batch: same bytes as stored,
    and the same as the converting path gives."""
    rng = np.random.default_rng(9)
    images = [rng.integers(0, 256, (6, 9), dtype=np.uint8) for _ in range(5)]
    # whole rows (decompressed into the batch) and tiles (decompressed, then copied row by row)
    for codec, chunk_shape in (("zstd", (1, 3, 9)), ("lz4", (1, 3, 9)), ("zstd", (1, 4, 4))):
        table = ome_table(images, dtype_meta="uint8", clamp_to_uint16=False, chunk_encoding="bytes",
                          chunk_compression=codec, chunk_shape=chunk_shape)
        direct = next(iter(NativeImageLoader(table, batch_size=5, dtype=torch.uint8)))
        assert torch.equal(direct[:, 0], torch.from_numpy(np.stack(images))), codec
        converted = next(iter(NativeImageLoader(table, batch_size=5, dtype=torch.uint8, random_vflip=True, seed=1)))
        flipped = NativeImageLoader(table, batch_size=5, dtype=torch.uint8, random_vflip=True, seed=1)
        assert torch.equal(converted, next(iter(flipped)))  # the converting path, deterministic
        for row in range(5):
            want = direct[row]
            assert torch.equal(converted[row], want) or torch.equal(converted[row], want.flip(-2)), (codec, row)
