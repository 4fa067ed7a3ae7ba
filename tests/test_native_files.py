"""The native loader over TIFF and OME-Zarr directories: the C++ core's own readers, pixel-exact against tifffile and
zarr, with the loader's sampling guarantees and clear errors for damaged or unsupported files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

_core = pytest.importorskip("loaderbench._core")
tifffile = pytest.importorskip("tifffile")
zarr = pytest.importorskip("zarr")

from loaderbench.formats.base import ImageStream  # noqa: E402
from loaderbench.loaders.native import NativeImageLoader  # noqa: E402

if not (_core.file_format_available("tiff") and _core.file_format_available("ome_zarr")):
    pytest.skip("core built without TIFF/Zarr readers", allow_module_level=True)

SHAPES = [(1, 12, 10), (3, 9, 14)]
DTYPES = [np.uint8, np.uint16, np.int16, np.int32, np.float32]


def _images(n: int, shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    """Random images over the dtype's whole range (negative values for signed types)."""
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal((n, *shape)).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, (n, *shape), dtype=dtype, endpoint=True)


def _write_tiffs(path: Path, images: np.ndarray, **kwargs: object) -> Path:
    path.mkdir()
    for i, image in enumerate(images):
        tifffile.imwrite(path / f"img_{i:06d}.tiff", image, photometric="minisblack", **kwargs)
    return path


def _write_zarrs(path: Path, images: np.ndarray, codec: object | None, chunks: tuple[int, ...] | None = None,
                 zarr_format: int = 3, dtype: str | None = None, fill_value: object = 0) -> Path:
    """OME-Zarr image groups as ome_zarr.py lays them out (level 0 named ``s0``), with a chosen codec, stored dtype
    (``">i2"``: big-endian) and fill value; images ``(C, H, W)``, or ``(C, Z, H, W)`` volumes."""
    path.mkdir()
    for i, image in enumerate(images):
        group = zarr.open_group(str(path / f"img_{i:06d}.zarr"), mode="w", zarr_format=zarr_format)
        kwargs: dict[str, object] = {"chunks": chunks or image.shape, "fill_value": fill_value}
        if zarr_format == 3:
            kwargs["compressors"] = [] if codec is None else [codec]
        else:
            kwargs["compressors"] = None if codec is None else codec
        with zarr.config.set({"array.write_empty_chunks": True}):
            array = group.create_array("s0", shape=image.shape, dtype=dtype or image.dtype, **kwargs)
            array[...] = image
        names = ["c", "z", "y", "x"] if image.ndim == 4 else ["c", "y", "x"]
        types = {"c": "channel"}
        multiscales = [{"axes": [{"name": n, "type": types.get(n, "space")} for n in names],
                        "datasets": [{"path": "s0"}]}]
        if zarr_format == 3:
            group.attrs["ome"] = {"version": "0.5", "multiscales": multiscales}
        else:
            group.attrs["multiscales"] = multiscales
    return path


def _native_stored(path: Path, fmt: str) -> np.ndarray:
    """Every image through the native loader, unscaled float32 (exact for uint8/uint16/float32 values)."""
    loader = NativeImageLoader(path, format=fmt, batch_size=4, scale=False, num_threads=2, rank=0, world_size=1)
    return torch.cat(list(loader)).numpy()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_tiff_pixel_exact(tmp_path: Path, shape: tuple[int, ...], dtype: type) -> None:
    images = _images(5, shape, dtype)
    path = _write_tiffs(tmp_path / "tiff", images)
    expected = np.stack([tifffile.imread(p) for p in sorted(path.iterdir())]).reshape(images.shape)
    np.testing.assert_array_equal(_native_stored(path, "tiff"), expected.astype(np.float32))


@pytest.mark.parametrize("compression", ["deflate", "lzw", "zstd"])
@pytest.mark.parametrize("tile", [None, (16, 16)])
def test_tiff_compressed_and_tiled(tmp_path: Path, compression: str, tile: tuple[int, int] | None) -> None:
    images = _images(3, (3, 20, 35), np.uint16, seed=1)
    kwargs: dict[str, object] = {"compression": compression, "predictor": compression != "zstd"}
    if tile:
        kwargs["tile"] = tile
    path = _write_tiffs(tmp_path / "tiff", images, **kwargs)
    expected = np.stack([tifffile.imread(p) for p in sorted(path.iterdir())])
    np.testing.assert_array_equal(_native_stored(path, "tiff"), expected.astype(np.float32))


def test_tiff_transform_matches_arrow_path(tmp_path: Path) -> None:
    """The same conversion code as Arrow images: uint8 output, mean/std, crop and flips agree with numpy/torch."""
    images = _images(4, (3, 16, 16), np.uint8, seed=2)
    path = _write_tiffs(tmp_path / "tiff", images)
    loader = NativeImageLoader(path, batch_size=4, mean=[0.5, 0.4, 0.3], std=[0.2, 0.3, 0.4], rank=0, world_size=1)
    batch = next(iter(loader))
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.3, 0.4]).view(1, 3, 1, 1)
    torch.testing.assert_close(batch, (torch.from_numpy(images).float() / 255 - mean) / std, rtol=0, atol=1e-6)
    crop = NativeImageLoader(path, crop_size=8, random_crop=False, dtype=torch.uint8, rank=0, world_size=1)
    np.testing.assert_array_equal(crop[1].numpy(), images[1][:, 4:12, 4:12])


@pytest.mark.parametrize("codec", ["none", "blosc", "zstd", "gzip"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_ome_zarr_pixel_exact(tmp_path: Path, codec: str, dtype: type) -> None:
    from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

    codecs = {"none": None, "blosc": BloscCodec(cname="zstd", shuffle="shuffle"), "zstd": ZstdCodec(),
              "gzip": GzipCodec()}
    images = _images(4, (3, 9, 14), dtype, seed=3)
    path = _write_zarrs(tmp_path / "oz", images, codecs[codec])
    expected = np.stack([zarr.open_group(str(p), mode="r")["s0"][...] for p in sorted(path.iterdir())])
    np.testing.assert_array_equal(_native_stored(path, "ome_zarr"), expected.astype(np.float32))


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_ome_zarr_edge_chunks_and_v2(tmp_path: Path, zarr_format: int) -> None:
    import numcodecs

    codec = numcodecs.Blosc(cname="lz4") if zarr_format == 2 else None
    images = _images(3, (1, 13, 11), np.uint16, seed=4)
    path = _write_zarrs(tmp_path / "oz", images, codec, chunks=(1, 5, 4), zarr_format=zarr_format)
    expected = np.stack([zarr.open_group(str(p), mode="r")["s0"][...] for p in sorted(path.iterdir())])
    np.testing.assert_array_equal(_native_stored(path, "ome_zarr"), expected.astype(np.float32))


def test_written_by_the_formats_module(tmp_path: Path) -> None:
    """What loaderbench's own writers produce (tifffile, ome-zarr) reads back exactly."""
    from loaderbench.formats import ome_zarr, tiff

    images = _images(3, (2, 8, 8), np.uint16, seed=5)
    tiff.write(ImageStream.from_images(images), tmp_path / "tiff")
    ome_zarr.write(ImageStream.from_images(images), tmp_path / "oz")
    np.testing.assert_array_equal(_native_stored(tmp_path / "tiff", "tiff"), images.astype(np.float32))
    np.testing.assert_array_equal(_native_stored(tmp_path / "oz", "ome_zarr"), images.astype(np.float32))


@pytest.mark.parametrize("fmt", ["tiff", "ome_zarr"])
def test_shuffled_epoch_exactly_once(tmp_path: Path, fmt: str) -> None:
    images = _images(23, (1, 6, 6), np.uint8, seed=6)
    path = (_write_tiffs(tmp_path / "d", images) if fmt == "tiff"
            else _write_zarrs(tmp_path / "d", images, None))
    loader = NativeImageLoader(path, batch_size=5, shuffle=True, num_threads=2, seed=7, dtype=torch.uint8,
                               rank=0, world_size=1)
    assert len(loader) == 5
    seen: list[int] = []
    for batch, indices in loader.iter_with_indices():
        seen += indices
        np.testing.assert_array_equal(batch.numpy(), images[indices])
    assert sorted(seen) == list(range(23))
    assert seen != list(range(23))


def test_dtype_none_is_refused(tmp_path: Path) -> None:
    path = _write_tiffs(tmp_path / "tiff", _images(2, (1, 4, 4), np.uint8))
    loader = NativeImageLoader(path, dtype=None, rank=0, world_size=1)
    with pytest.raises(ValueError, match="not supported for directory formats"):
        loader[0]


def _first_error(path: Path, fmt: str) -> str:
    loader = NativeImageLoader(path, format=fmt, batch_size=2, rank=0, world_size=1)
    with pytest.raises(ValueError) as info:
        list(loader)
    return str(info.value)


def test_truncated_tiff(tmp_path: Path) -> None:
    path = _write_tiffs(tmp_path / "tiff", _images(3, (1, 64, 64), np.uint16), compression="deflate")
    victim = path / "img_000001.tiff"
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    assert "img_000001.tiff" in _first_error(path, "tiff")


def test_tiff_of_another_shape(tmp_path: Path) -> None:
    path = _write_tiffs(tmp_path / "tiff", _images(3, (1, 8, 8), np.uint8))
    tifffile.imwrite(path / "img_000002.tiff", np.zeros((1, 8, 9), np.uint8), photometric="minisblack")
    message = _first_error(path, "tiff")
    assert "img_000002.tiff" in message and "1x8x9 uint8" in message


def _zarr_reads(path: Path) -> np.ndarray:
    """Every image as zarr-python reads level 0 (a missing chunk is the fill value)."""
    return np.stack([zarr.open(str(p / "s0"), mode="r")[...] for p in sorted(path.iterdir())])


@pytest.mark.parametrize(("zarr_format", "dtype", "fill_value"),
                         [(3, "uint16", 4321), (3, "float32", float("nan")), (3, "int16", -7), (2, ">i4", -123456),
                          (2, "<f4", float("-inf")), (2, "|u1", 9)])
def test_missing_zarr_chunks_read_as_the_fill_value(tmp_path: Path, zarr_format: int, dtype: str,
                                                    fill_value: float) -> None:
    """As zarr-python reads them: one chunk of an image deleted, and every chunk of another."""
    images = _images(3, (2, 13, 11), np.dtype(dtype).newbyteorder("="), seed=8)
    path = _write_zarrs(tmp_path / "oz", images, None, chunks=(1, 5, 4), zarr_format=zarr_format, dtype=dtype,
                        fill_value=fill_value)
    chunk = "s0/c/1/2/1" if zarr_format == 3 else "s0/1.2.1"
    (path / "img_000001.zarr" / chunk).unlink()
    for chunk_file in (path / "img_000002.zarr" / "s0").rglob("*"):
        if chunk_file.is_file() and not chunk_file.name.startswith((".z", "zarr.json")):
            chunk_file.unlink()
    expected = _zarr_reads(path)
    assert np.isnan(expected[1, 1, 12, 5]) if np.isnan(fill_value) else expected[1, 1, 12, 5] == fill_value
    np.testing.assert_array_equal(expected[2], np.full(images[2].shape, fill_value, images.dtype))
    np.testing.assert_array_equal(_native_stored(path, "ome_zarr"), expected.astype(np.float32))


def test_missing_zarr_chunk_without_fill_value(tmp_path: Path) -> None:
    """A v2 fill_value of null defines none: a missing chunk is lost pixels, said so (zarr-python reads zeros)."""
    path = _write_zarrs(tmp_path / "oz", _images(3, (1, 8, 8), np.uint8), None, chunks=(1, 4, 8), zarr_format=2,
                        fill_value=None)
    assert json.loads((path / "img_000001.zarr" / "s0" / ".zarray").read_text())["fill_value"] is None
    (path / "img_000001.zarr" / "s0" / "0.1.0").unlink()
    message = _first_error(path, "ome_zarr")
    assert "img_000001.zarr" in message and "s0/0.1.0 is missing and the array defines no fill value" in message


@pytest.mark.parametrize("dtype", [">i2", "<i2", ">i4", "<i4", ">u2"])
def test_ome_zarr_v2_signed_and_big_endian(tmp_path: Path, dtype: str) -> None:
    images = _images(3, (2, 9, 7), np.dtype(dtype).newbyteorder("="), seed=9)
    path = _write_zarrs(tmp_path / "oz", images, None, chunks=(1, 4, 4), zarr_format=2, dtype=dtype)
    expected = _zarr_reads(path)
    np.testing.assert_array_equal(expected, images)
    np.testing.assert_array_equal(_native_stored(path, "ome_zarr"), expected.astype(np.float32))


VOLUME_DTYPES = [np.uint8, np.uint16, np.int16, np.float32]


def _tifffile_czyx(item: Path) -> np.ndarray:
    """``tifffile.imread`` of a volume, arranged as its series axes (from the file's metadata) say: (C, Z, H, W)."""
    with tifffile.TiffFile(item) as tif:
        axes = tif.series[0].axes
    image = tifffile.imread(item)
    if "C" not in axes:
        image, axes = image[np.newaxis], "C" + axes
    return image.transpose([axes.index(a) for a in "CZYX"])


@pytest.mark.parametrize("dtype", VOLUME_DTYPES)
@pytest.mark.parametrize(("metadata", "axes"), [("ome", "CZYX"), ("ome", "ZCYX"), ("imagej", "ZCYX")])
@pytest.mark.parametrize(("compression", "tile"), [(None, None), ("deflate", (16, 16)), ("lzw", None),
                                                   ("zstd", (16, 32))])
def test_tiff_volumes(tmp_path: Path, dtype: type, metadata: str, axes: str, compression: str | None,
                      tile: tuple[int, int] | None) -> None:
    """Pages as Z planes and channels in the order the file's OME-XML (XYZCT for CZYX, XYCZT for ZCYX) or ImageJ
    description gives them."""
    if metadata == "imagej" and dtype == np.int16:
        pytest.skip("ImageJ hyperstacks hold no int16")
    from loaderbench.formats import tiff

    volumes = _images(3, (2, 5, 20, 35), dtype, seed=10)  # (N, C, Z, H, W)
    path = tmp_path / "tiff"
    path.mkdir()
    for i, volume in enumerate(volumes):
        data = volume if axes == "CZYX" else volume.transpose(1, 0, 2, 3)
        kwargs: dict[str, object] = {"compression": compression, "tile": tile, "metadata": {"axes": axes},
                                     metadata: True}
        tifffile.imwrite(path / f"img_{i:06d}.tiff", data, photometric="minisblack", **kwargs)
    expected = np.stack([_tifffile_czyx(p) for p in sorted(path.iterdir())])
    np.testing.assert_array_equal(expected, volumes)
    np.testing.assert_array_equal(_native_stored(path, "tiff"), expected.astype(np.float32))
    items = tiff.item_paths(path)
    assert tiff.item_shape(items[0]) == ((2, 5, 20, 35), str(np.dtype(dtype)))
    np.testing.assert_array_equal(tiff.read_item(items[1]), volumes[1])


@pytest.mark.parametrize("dtype", VOLUME_DTYPES)
@pytest.mark.parametrize("axes", ["czyx", "tczyx", "zyx"])
def test_ome_zarr_volumes(tmp_path: Path, dtype: type, axes: str) -> None:
    """ome-zarr's own writer, several chunks per volume; compared with zarr-python's reads."""
    import warnings

    from loaderbench.formats import ome_zarr

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from ome_zarr.writer import write_image

    volumes = _images(2, (2 if "c" in axes else 1, 6, 17, 12), dtype, seed=11)
    path = tmp_path / "oz"
    path.mkdir()
    for i, volume in enumerate(volumes):
        data = volume[np.newaxis] if axes.startswith("t") else volume if "c" in axes else volume[0]
        chunks = (1,) * (data.ndim - 3) + (4, 8, 8)
        group = zarr.open_group(str(path / f"img_{i:06d}.zarr"), mode="w")
        write_image(data, group, axes=axes, scale_factors=[], storage_options={"chunks": chunks})
    expected = np.stack([zarr.open_group(str(p), mode="r")["s0"][...].reshape(volumes.shape[1:])
                         for p in sorted(path.iterdir())])
    np.testing.assert_array_equal(expected, volumes)
    loader = NativeImageLoader(path, format="ome_zarr", batch_size=2, scale=False, rank=0, world_size=1)
    assert loader.dataset.summary()["depth"] == 6
    np.testing.assert_array_equal(_native_stored(path, "ome_zarr"), expected.astype(np.float32))
    items = ome_zarr.item_paths(path)
    assert ome_zarr.item_shape(items[0]) == (volumes.shape[1:], str(np.dtype(dtype)))
    np.testing.assert_array_equal(ome_zarr.read_item(items[1]), volumes[1])


def test_tiff_metadata_that_disagrees_with_the_pages(tmp_path: Path) -> None:
    path = _write_tiffs(tmp_path / "tiff", _images(2, (6, 8, 8), np.uint16))
    xml = tifffile.OmeXml()
    xml.addimage(np.uint16, (2, 2, 8, 8), (4, 1, 1, 8, 8, 1), axes="ZCYX")  # 4 planes described, 6 pages stored
    tifffile.imwrite(path / "img_000001.tiff", _images(1, (6, 8, 8), np.uint16)[0], photometric="minisblack",
                     description=xml.tostring(), metadata=None)
    message = _first_error(path, "tiff")
    assert "img_000001.tiff" in message and "SizeZ=2, SizeC=2 but the file has 6 pages" in message


def test_unsupported_zarr_codec(tmp_path: Path) -> None:
    path = _write_zarrs(tmp_path / "oz", _images(2, (1, 8, 8), np.uint8), None)
    meta = path / "img_000000.zarr" / "s0" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["codecs"].append({"name": "crc32c"})
    meta.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="'crc32c' is not supported"):
        NativeImageLoader(path, format="ome_zarr", rank=0, world_size=1)
    sharded = _write_zarrs(tmp_path / "oz2", _images(2, (1, 8, 8), np.uint8), None)
    meta = sharded / "img_000000.zarr" / "s0" / "zarr.json"
    doc = json.loads(meta.read_text())
    doc["codecs"] = [{"name": "sharding_indexed", "configuration": {}}]
    meta.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="sharding"):
        NativeImageLoader(sharded, format="ome_zarr", rank=0, world_size=1)


def test_ome_zarr_multiscale_level(tmp_path: Path) -> None:
    """multiscale_level reads a lower resolution that ome-zarr wrote, pixel-exact against zarr; a level that does
    not exist, or a level for a format without levels, is one clear error."""
    from ome_zarr.writer import write_image  # noqa: PLC0415

    images = _images(3, (1, 16, 12), np.uint16, seed=4)
    path = tmp_path / "ome_zarr"
    path.mkdir()
    for i, image in enumerate(images):
        group = zarr.open_group(str(path / f"img_{i:06d}.zarr"), mode="w")
        write_image(image, group, axes="cyx", scale_factors=[2])  # levels s0 (16x12) and s1 (8x6)
    levels = [zarr.open_group(str(path / f"img_{i:06d}.zarr"), mode="r")["s1"][...] for i in range(3)]
    loader = NativeImageLoader(path, format="ome_zarr", batch_size=3, scale=False, multiscale_level=1)
    batch = next(iter(loader))
    assert batch.shape == (3, 1, 8, 6)
    assert torch.equal(batch, torch.from_numpy(np.stack(levels).astype(np.float32)))
    with pytest.raises(ValueError, match="multiscale level 2 does not exist .*2 level"):
        NativeImageLoader(path, format="ome_zarr", multiscale_level=2)
    tiffs = _write_tiffs(tmp_path / "tiff", images)
    with pytest.raises(ValueError, match="multiscale_level applies to OME-Zarr"):
        NativeImageLoader(tiffs, format="tiff", multiscale_level=1)


def test_ome_tiff_significant_bits_scale_the_pixels(tmp_path: Path) -> None:
    # A 12-bit camera's OME-TIFFs declare SignificantBits="12": scale="significant_bits" divides by 4095.
    rng = np.random.default_rng(7)
    images = rng.integers(0, 4096, (3, 1, 6, 5), dtype=np.uint16)
    path = tmp_path / "ome"
    path.mkdir()
    for i, image in enumerate(images):
        tifffile.imwrite(path / f"img_{i}.ome.tif", image, photometric="minisblack",
                         metadata={"axes": "CYX", "SignificantBits": 12})
    loader = NativeImageLoader(path, format="tiff", batch_size=3, scale="significant_bits", rank=0, world_size=1)
    assert torch.equal(next(iter(loader)), torch.from_numpy(images.astype(np.float32)) / 4095)
    plain = _write_tiffs(tmp_path / "plain", images)  # no OME-XML: nothing declared
    with pytest.raises(ValueError, match="SignificantBits.*found none"):
        NativeImageLoader(plain, format="tiff", scale="significant_bits")
    for bits, reason in (("17", "more than the 16 bits of its uint16 pixels"), ("twelve", "not a number of bits")):
        bad = tmp_path / f"bad{bits}"
        bad.mkdir()
        xml = tifffile.OmeXml()
        xml.addimage(np.uint16, (1, 6, 5), (1, 1, 1, 6, 5, 1), axes="CYX")
        description = xml.tostring().replace("DimensionOrder=", f'SignificantBits="{bits}" DimensionOrder=')
        tifffile.imwrite(bad / "img_0.ome.tif", images[0], photometric="minisblack", metadata=None,
                         description=description)
        with pytest.raises(ValueError, match=f"img_0.ome.tif.*{reason}"):
            NativeImageLoader(bad, format="tiff", scale="significant_bits")
