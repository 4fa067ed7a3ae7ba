"""Shared fixtures: a tiny generated dataset in every format, built once per test session."""

from __future__ import annotations

import multiprocessing
import warnings
from pathlib import Path

import numpy as np
import pytest

from loaderbench.config import ALL_FORMATS, DTYPES, DataConfig
from loaderbench.datagen import DatasetFiles, ensure_dataset, generate_images

#: small enough that writing all eight formats takes about a second
TINY_N, TINY_H, TINY_W, TINY_C, TINY_SEED = 12, 24, 32, 2, 7
#: the tiny volumes: 6 Z stacks of 2 channels x 3 planes x 16 x 16
VOLUME_N, VOLUME_C, VOLUME_Z, VOLUME_HW = 6, 2, 3, 16


@pytest.fixture(autouse=True)
def start_method_unchanged():
    """Fail the test that changes the process-wide multiprocessing start method (a peer library forcing ``spawn``
    once made every later test's forked DataLoader workers pickle their datasets), and put it back for the rest."""
    before = multiprocessing.get_start_method()
    yield
    after = multiprocessing.get_start_method()
    if after != before:
        multiprocessing.set_start_method(before, force=True)
        pytest.fail(f"the test changed the multiprocessing start method from {before!r} to {after!r}")


def tiny_config(dtype: str = "uint8") -> DataConfig:
    """The ``DataConfig`` of the tiny datasets (uint8 unless asked otherwise)."""
    return DataConfig(n_images=TINY_N, sizes=[[TINY_H, TINY_W]], dtype=dtype, channels=TINY_C, seed=TINY_SEED)


@pytest.fixture(scope="session")
def tiny_images() -> np.ndarray:
    """``(12, 2, 24, 32)`` uint8 images; the pixels of ``tiny_dataset``."""
    return generate_images(TINY_N, TINY_H, TINY_W, "uint8", TINY_C, TINY_SEED)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One data folder shared by every tiny dataset of the session."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def tiny_dataset(tiny_data_dir: Path) -> DatasetFiles:
    """``tiny_images`` written in every format (``DatasetFiles``; its ``reference`` .npy holds the pixels)."""
    return ensure_dataset(tiny_config("uint8"), (TINY_H, TINY_W), list(ALL_FORMATS), tiny_data_dir)


@pytest.fixture(scope="session")
def tiny_volume_dataset(tiny_data_dir: Path) -> DatasetFiles:
    """6 volumes ``(2, 3, 16, 16)`` uint8 (``data.depth = 3``) in every format whose writer stores volumes (the
    others are in ``skipped`` with the reason); its ``reference`` .npy holds the ``(N, C, Z, H, W)`` pixels."""
    config = DataConfig(n_images=VOLUME_N, sizes=[[VOLUME_HW, VOLUME_HW]], channels=VOLUME_C, depth=VOLUME_Z,
                        seed=TINY_SEED)
    return ensure_dataset(config, (VOLUME_HW, VOLUME_HW), list(ALL_FORMATS), tiny_data_dir)


@pytest.fixture(scope="session")
def volume_directories(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """3 volumes ``(2, 5, 10, 12)`` uint16 as a user's TIFF and OME-Zarr directories whose metadata names C and Z
    (OME-XML axes ``CZYX``; NGFF axes ``czyx``), as a microscope's software writes them; ``reference``: their .npy."""
    import tifffile  # noqa: PLC0415
    import zarr  # noqa: PLC0415

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ome-zarr builds a deprecated default Scaler at import
        from ome_zarr.writer import write_image  # noqa: PLC0415

    root = tmp_path_factory.mktemp("volumes")
    volumes = generate_images(3, 10, 12, "uint16", 2, seed=4, depth=5)
    np.save(root / "volumes.npy", volumes)
    (root / "tiff").mkdir()
    (root / "ome_zarr").mkdir()
    for i, volume in enumerate(volumes):
        tifffile.imwrite(root / "tiff" / f"img_{i:06d}.tiff", volume, photometric="minisblack", ome=True,
                         metadata={"axes": "CZYX"})
        group = zarr.open_group(str(root / "ome_zarr" / f"img_{i:06d}.zarr"), mode="w")
        write_image(volume, group, scale_factors=[], axes="czyx", storage_options={"chunks": volume.shape})
    return {"tiff": root / "tiff", "ome_zarr": root / "ome_zarr", "reference": root / "volumes.npy"}


@pytest.fixture(scope="session", params=DTYPES)
def tiny_dataset_any_dtype(request: pytest.FixtureRequest, tiny_data_dir: Path) -> DatasetFiles:
    """Like ``tiny_dataset``, once per stored dtype (uint8, uint16, float32)."""
    return ensure_dataset(tiny_config(request.param), (TINY_H, TINY_W), list(ALL_FORMATS), tiny_data_dir)
