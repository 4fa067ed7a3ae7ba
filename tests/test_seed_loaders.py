"""The seed's datasets (loaders/seed.py) and the transforms (loaders/transforms.py)."""

from __future__ import annotations

import pickle
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from loaderbench import datagen
from loaderbench.formats import get_format
from loaderbench.formats.base import FormatInfo
from loaderbench.loaders.seed import (
    DirectoryDataset,
    OMEArrowDataset,
    OMEArrowDatasetNumpy,
    loaders_for,
    make_dataset,
    scale_max,
    to_float_tensor,
)
from loaderbench.loaders.transforms import (
    Compose,
    Identity,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    make_transform,
)
from loaderbench.model import SimpleEmbeddingModel, SimpleEmbeddingModel3d, embedding_model_class

SCALES = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}


@pytest.fixture(scope="module", params=["uint8", "uint16", "float32"])
def images_and_table(request):
    images = datagen.generate_images(6, 8, 10, request.param, channels=2, seed=7)
    return images, datagen.build_ome_table(images)


def expected_float(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image.astype(np.float32) / np.float32(SCALES[str(image.dtype)]))


# --- a fake directory format: one .npy per image, module-level functions so datasets pickle ---


def _npy_item_paths(path: Path) -> list[Path]:
    return sorted(Path(path).glob("*.npy"))


def _npy_read_item(item: Path) -> np.ndarray:
    return np.load(item)


NPY_FORMAT = SimpleNamespace(
    INFO=FormatInfo(name="npy", label="NPY (test)", kind="directory", filename="npy/", requires=()),
    item_paths=_npy_item_paths,
    read_item=_npy_read_item,
)


def _fake_table_format(table):
    return SimpleNamespace(
        INFO=FormatInfo(name="mem", label="Memory (test)", kind="table", filename="x", requires=()),
        read_table=lambda path, column=None: table,
    )


@pytest.fixture
def npy_dir(tmp_path):
    images = datagen.generate_images(5, 8, 10, "uint16", channels=1, seed=3)
    for i, image in enumerate(images):
        np.save(tmp_path / f"img_{i:03d}.npy", image)
    return images, tmp_path


# --- datasets ---


@pytest.mark.parametrize("preload", [False, True])
def test_table_dataset_returns_scaled_pixels(images_and_table, preload):
    images, table = images_and_table
    ds = OMEArrowDataset(table, preload=preload)
    assert len(ds) == len(images)
    for i in range(len(images)):
        item = ds[i]
        assert item.dtype == torch.float32
        assert item.shape == images[i].shape
        torch.testing.assert_close(item, expected_float(images[i]), rtol=0, atol=0)
        assert float(item.min()) >= 0.0 and float(item.max()) <= 1.0


def test_naive_equals_preloaded(images_and_table):
    _, table = images_and_table
    naive, preloaded = OMEArrowDataset(table, preload=False), OMEArrowDataset(table, preload=True)
    assert naive.pixel_cache is None and preloaded.pixel_cache is not None
    for i in range(len(naive)):
        assert torch.equal(naive[i], preloaded[i])


def test_preloaded_items_do_not_alias_the_cache(images_and_table):
    images, table = images_and_table
    ds = OMEArrowDataset(table, preload=True)
    first = ds[0]
    first.fill_(-7.0)  # a caller (or an in-place transform) scribbling on a sample
    torch.testing.assert_close(ds[0], expected_float(images[0]), rtol=0, atol=0)


def test_numpy_variant_returns_stored_dtype(images_and_table):
    images, table = images_and_table
    for ds in (OMEArrowDatasetNumpy(table, preload=False), OMEArrowDatasetNumpy(table, preload=True)):
        item = ds[2]
        assert isinstance(item, np.ndarray)
        assert item.dtype == images.dtype
        np.testing.assert_array_equal(item, images[2])


def test_numpy_view_shares_the_preloaded_cache(images_and_table):
    images, table = images_and_table
    ds = OMEArrowDataset(table, preload=True, transform=Normalize())
    view = ds.numpy_view()
    assert isinstance(view, OMEArrowDatasetNumpy)
    assert view.pixel_cache is ds.pixel_cache  # no second pre-load
    assert view.transform is None and ds.transform is not None
    np.testing.assert_array_equal(view[4], images[4])


def test_transform_is_applied(images_and_table):
    images, table = images_and_table
    ds = OMEArrowDataset(table, preload=True, transform=Normalize(0.5, 0.5))
    torch.testing.assert_close(ds[1], (expected_float(images[1]) - 0.5) / 0.5)


def test_index_errors(images_and_table):
    _, table = images_and_table
    ds = OMEArrowDataset(table, preload=False)
    with pytest.raises(IndexError):
        ds[len(ds)]
    assert torch.equal(ds[-1], ds[len(ds) - 1])


def test_table_without_ome_column_is_rejected():
    import pyarrow as pa  # noqa: PLC0415

    with pytest.raises(ValueError, match="ome_image"):
        OMEArrowDataset(pa.table({"row_id": [0, 1]}))


def test_directory_dataset_decodes_per_item(npy_dir):
    images, path = npy_dir
    ds = make_dataset(NPY_FORMAT, path, "decode")
    assert isinstance(ds, DirectoryDataset) and len(ds) == len(images)
    for i in range(len(images)):
        torch.testing.assert_close(ds[i], expected_float(images[i]), rtol=0, atol=0)
    view = ds.numpy_view()
    assert view[3].dtype == np.uint16
    np.testing.assert_array_equal(view[3], images[3])


def test_datasets_pickle(images_and_table, npy_dir):
    _, table = images_and_table
    for ds in (OMEArrowDataset(table, preload=False), OMEArrowDataset(table, preload=True)):
        clone = pickle.loads(pickle.dumps(ds))
        assert torch.equal(clone[3], ds[3])
    _, path = npy_dir
    directory = make_dataset(NPY_FORMAT, path, "decode", transform=make_transform("augment"))
    clone = pickle.loads(pickle.dumps(directory))
    assert clone[0].shape == directory[0].shape


def test_make_dataset_table_loaders(images_and_table):
    images, table = images_and_table
    fmt = _fake_table_format(table)
    naive = make_dataset(fmt, "unused", "naive")
    preloaded = make_dataset(fmt, "unused", "preloaded", transform=Identity())
    assert naive.pixel_cache is None and preloaded.pixel_cache is not None
    assert torch.equal(naive[0], preloaded[0])


@pytest.mark.parametrize("loader", ["decode", "fast", ""])
def test_make_dataset_rejects_bad_table_loader(images_and_table, loader):
    _, table = images_and_table
    with pytest.raises(ValueError, match="naive, preloaded"):
        make_dataset(_fake_table_format(table), "unused", loader)


@pytest.mark.parametrize("loader", ["naive", "preloaded", "nope"])
def test_make_dataset_rejects_bad_directory_loader(npy_dir, loader):
    _, path = npy_dir
    with pytest.raises(ValueError, match=r"loader .* not available .*decode"):
        make_dataset(NPY_FORMAT, path, loader)


def test_to_float_tensor_memory_sharing():
    u8 = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    out = to_float_tensor(u8)
    assert out.dtype == torch.float32 and out.data_ptr() != u8.ctypes.data
    torch.testing.assert_close(out, torch.from_numpy(u8.astype(np.float32) / 255))
    f32 = np.random.default_rng(0).random((1, 3, 4), dtype=np.float32)
    assert to_float_tensor(f32).data_ptr() == f32.ctypes.data  # float32: nothing to convert, a view
    with pytest.raises(ValueError, match="dtype"):
        scale_max(np.int64)


def test_every_format_and_loader_returns_the_reference(tiny_dataset_any_dtype):
    """Pixel-exact over the real formats and every stored dtype: float32 [0, 1] for torch, stored dtype for numpy."""
    files = tiny_dataset_any_dtype
    reference = np.load(files.reference)
    assert str(reference.dtype) == files.dtype
    for name, path in files.paths.items():
        module = get_format(name)
        for loader in loaders_for(module):
            ds = make_dataset(module, path, loader)
            assert len(ds) == len(reference), (name, loader)
            for i in (0, 5, len(reference) - 1):
                torch.testing.assert_close(ds[i], expected_float(reference[i]), rtol=0, atol=0, msg=f"{name} {loader}")
                stored = ds.numpy_view()[i]
                assert stored.dtype == reference.dtype, (name, loader)
                np.testing.assert_array_equal(stored, reference[i])


def test_getitem_is_the_seeds_steps(images_and_table):
    """float(), then the division only when some value exceeds 1 (the seed's ``if t.max() > 1.0``)."""
    images, table = images_and_table
    ds = OMEArrowDataset(table, preload=True)
    torch.testing.assert_close(ds[0], expected_float(images[0]), rtol=0, atol=0)
    if images.dtype != np.uint8:
        return
    torch.testing.assert_close(ds[0], torch.from_numpy(images[0]).float() / 255.0, rtol=0, atol=0)
    dark = np.zeros_like(images[:1])
    dark[0, 0, 0, 0] = 1  # max() == 1: the seed leaves such an image undivided
    from loaderbench.datagen import build_ome_table  # noqa: PLC0415

    assert float(OMEArrowDataset(build_ome_table(dark), preload=True)[0].max()) == 1.0


# --- transforms ---


def test_make_transform_names():
    assert isinstance(make_transform("none"), Identity)
    assert isinstance(make_transform("normalize"), Normalize)
    augment = make_transform("augment")
    assert isinstance(augment, Compose)
    assert [type(t) for t in augment.transforms] == [RandomHorizontalFlip, Normalize]  # the seed's Compose
    assert [type(t) for t in make_transform("augment", crop_size=4).transforms][0] is RandomCrop
    with pytest.raises(ValueError, match="unknown transform"):
        make_transform("rotate")


def test_normalize_values_computed_by_hand():
    image = torch.tensor([[[0.0, 0.5, 1.0]], [[0.25, 0.75, 1.0]]])
    out = make_transform("normalize")(image)
    # (x - 0.5) / 0.5 for every channel: 0 -> -1, 0.25 -> -0.5, 0.5 -> 0, 0.75 -> 0.5, 1 -> 1
    torch.testing.assert_close(out, torch.tensor([[[-1.0, 0.0, 1.0]], [[-0.5, 0.5, 1.0]]]), rtol=0, atol=0)
    assert image[0, 0, 0] == 0.0  # input untouched: torchvision clones unless inplace
    per_channel = Normalize([0.0, 1.0], [2.0, 4.0])(torch.tensor([[[2.0]], [[9.0]]]))
    torch.testing.assert_close(per_channel, torch.tensor([[[1.0]], [[2.0]]]), rtol=0, atol=0)


def test_normalize_refuses_what_torchvision_refuses():
    with pytest.raises(TypeError, match="float tensor"):
        Normalize()(torch.zeros(1, 2, 2, dtype=torch.uint8))
    with pytest.raises(ValueError, match="tensor image of size"):
        Normalize()(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="division by zero"):
        Normalize([0.5], [0.0])(torch.zeros(1, 2, 2))


def test_augment_flips_with_torchs_generator_and_normalises():
    image = torch.arange(2 * 5 * 6, dtype=torch.float32).reshape(2, 5, 6) / 60
    augment = make_transform("augment")
    torch.manual_seed(11)
    outs_a = [augment(image) for _ in range(40)]
    torch.manual_seed(11)
    outs_b = [augment(image) for _ in range(40)]
    assert all(torch.equal(a, b) for a, b in zip(outs_a, outs_b, strict=True))  # same torch seed, same draws
    plain, flipped = (image - 0.5) / 0.5, (image.flip(-1) - 0.5) / 0.5
    kinds = [0 if torch.equal(out, plain) else 1 if torch.equal(out, flipped) else -1 for out in outs_a]
    assert -1 not in kinds and set(kinds) == {0, 1}
    torch.manual_seed(11)
    draws = [bool(torch.rand(1) < 0.5) for _ in range(40)]  # RandomHorizontalFlip's own draw, one per call
    assert kinds == [int(d) for d in draws]


def test_augment_crop_shape_and_content():
    image = torch.arange(3 * 7 * 9, dtype=torch.float32).reshape(3, 7, 9)
    augment = make_transform("augment", crop_size=4)
    for _ in range(20):
        out = augment(image) * 0.5 + 0.5  # undo the normalisation
        assert out.shape == (3, 4, 4)
        windows = [image[:, top : top + 4, left : left + 4] for top in range(7 - 4 + 1) for left in range(9 - 4 + 1)]
        assert any(torch.allclose(out, w) or torch.allclose(out, w.flip(-1)) for w in windows)


def test_augment_crop_larger_than_image():
    with pytest.raises(ValueError, match="larger than the image"):
        make_transform("augment", crop_size=9)(torch.zeros(1, 8, 8))


# --- model ---


@pytest.mark.parametrize("channels", [1, 3])
def test_simple_embedding_model(channels):
    torch.manual_seed(0)
    model = SimpleEmbeddingModel(in_channels=channels)
    out = model(torch.rand(4, channels, 16, 20))
    assert out.shape == (4, 128)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (channels, 32, (3, 3), (1, 1)),  # the seed's padding=1: feature maps keep the image size
        (32, 64, (3, 3), (1, 1)),
    ]
    linear = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(64, 128)]


# --- volumes (Z stacks) ---


def test_every_format_and_loader_returns_the_reference_volumes(tiny_volume_dataset):
    """Volumes come out ``(C, Z, H, W)``, pixel-exact against the generated ``(N, C, Z, H, W)`` reference."""
    files = tiny_volume_dataset
    reference = np.load(files.reference)
    assert reference.shape == (6, 2, 3, 16, 16)
    assert {"parquet", "arrow_ipc"} <= set(files.paths), files.skipped
    for name, path in files.paths.items():
        module = get_format(name)
        for loader in loaders_for(module):
            ds = make_dataset(module, path, loader)
            for i in range(len(reference)):
                got = ds[i]
                assert got.shape == (2, 3, 16, 16), (name, loader)
                torch.testing.assert_close(got, expected_float(reference[i]), rtol=0, atol=0, msg=f"{name} {loader}")
                np.testing.assert_array_equal(ds.numpy_view()[i], reference[i])


def test_normalize_of_a_volume_is_per_channel_computed_by_hand():
    """torchvision views a per-channel mean as (C, 1, 1): on (C, Z, H, W) that lines up with Z. ``volume=True`` makes
    it (C, 1, 1, 1)."""
    volume = torch.tensor([[2.0, 4.0, 6.0], [9.0, 5.0, 1.0]]).reshape(2, 3, 1, 1)  # C=2, Z=3, H=W=1
    out = Normalize([0.0, 1.0], [2.0, 4.0], volume=True)(volume)
    # channel 0: (x - 0) / 2 -> 1, 2, 3; channel 1: (x - 1) / 4 -> 2, 1, 0
    by_hand = torch.tensor([[1.0, 2.0, 3.0], [2.0, 1.0, 0.0]]).reshape(2, 3, 1, 1)
    torch.testing.assert_close(out, by_hand, rtol=0, atol=0)
    assert volume[0, 0, 0, 0] == 2.0  # a new tensor, as in 2-D
    with pytest.raises(RuntimeError):  # the 2-D view of the mean cannot broadcast over Z = 3
        Normalize([0.0, 1.0], [2.0, 4.0])(volume)
    square = torch.tensor([[4.0, 8.0], [5.0, 9.0]]).reshape(2, 2, 1, 1)  # Z == C: the 2-D view silently mixes them
    by_hand = torch.tensor([[2.0, 4.0], [1.0, 2.0]]).reshape(2, 2, 1, 1)
    torch.testing.assert_close(Normalize([0.0, 1.0], [2.0, 4.0], volume=True)(square), by_hand, rtol=0, atol=0)
    assert not torch.equal(Normalize([0.0, 1.0], [2.0, 4.0])(square), by_hand)
    with pytest.raises(ValueError, match=r"\(\.\.\., C, Z, H, W\)"):
        Normalize(volume=True)(torch.zeros(1, 4, 4))


def test_the_seeds_transforms_on_volumes():
    """The seed's single mean gives the same values either way; the flip and crop act on H and W of every plane."""
    volume = torch.arange(2 * 3 * 5 * 6, dtype=torch.float32).reshape(2, 3, 5, 6) / 180
    normalize = make_transform("normalize", volume=True)
    assert normalize.volume and not make_transform("normalize").volume  # 2-D keeps torchvision's own path
    torch.testing.assert_close(normalize(volume), (volume - 0.5) / 0.5, rtol=0, atol=0)
    augment = make_transform("augment", crop_size=4, volume=True)
    for _ in range(20):
        out = augment(volume) * 0.5 + 0.5
        assert out.shape == (2, 3, 4, 4)
        windows = [volume[..., t : t + 4, left : left + 4] for t in range(2) for left in range(3)]
        assert any(torch.allclose(out, w) or torch.allclose(out, w.flip(-1)) for w in windows)


def test_simple_embedding_model_3d():
    torch.manual_seed(0)
    model = SimpleEmbeddingModel3d(in_channels=2)
    assert model(torch.rand(3, 2, 4, 8, 6)).shape == (3, 128)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.padding) for c in convs] == [
        (2, 32, (3, 3, 3), (1, 1, 1)),
        (32, 64, (3, 3, 3), (1, 1, 1)),
    ]
    assert [(m.in_features, m.out_features) for m in model.modules() if isinstance(m, torch.nn.Linear)] == [(64, 128)]
    assert embedding_model_class(True) is SimpleEmbeddingModel3d
    assert embedding_model_class(False) is SimpleEmbeddingModel
