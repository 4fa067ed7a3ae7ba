"""Shared fixtures: a tiny generated dataset in every format, built once per test session."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import numpy as np
import pytest

from loaderbench.config import ALL_FORMATS, DTYPES, DataConfig
from loaderbench.datagen import DatasetFiles, ensure_dataset, generate_images

#: small enough that writing all eight formats takes about a second
TINY_N, TINY_H, TINY_W, TINY_C, TINY_SEED = 12, 24, 32, 2, 7


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


@pytest.fixture(scope="session", params=DTYPES)
def tiny_dataset_any_dtype(request: pytest.FixtureRequest, tiny_data_dir: Path) -> DatasetFiles:
    """Like ``tiny_dataset``, once per stored dtype (uint8, uint16, float32)."""
    return ensure_dataset(tiny_config(request.param), (TINY_H, TINY_W), list(ALL_FORMATS), tiny_data_dir)
