"""Hugging Face ``datasets``, used the documented way: a Parquet file of one ``Array3D`` image column (written once by
``prepare``, the layout the docs recommend for fixed-shape arrays), ``Dataset.from_parquet`` (its Arrow cache is
built by ``prepare`` and memory-mapped afterwards), ``.with_format("torch")``, a torch ``DataLoader``.

Every cache ``datasets`` keeps lives in the peer's cache folder (``cache_dir=`` and ``HF_HOME``), never in ``~``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loaderbench.loaders.peers.workload import ImageWorkload, stored_images

NAME = "hf_datasets"
DISTRIBUTIONS = ("datasets",)
DOCS = ("Dataset.from_parquet(path) with an Array3D image column, .with_format('torch'), DataLoader(ds, "
        "batch_size=B, shuffle=True, num_workers=w); the model's side does .float() / 255 (here: each batch)")
PARQUET = "images_array3d.parquet"
COLUMN = "image"


def unavailable() -> str | None:
    import importlib.util  # noqa: PLC0415

    if importlib.util.find_spec("datasets") is None:
        return "Hugging Face datasets is not installed (pip install datasets)"
    return None


def variants(workload: ImageWorkload) -> dict[str, dict[str, Any]]:
    # documented: the docs' DataLoader with 2 workers (one per core here).
    # tuned: no DataLoader; one batched ds[rows] per batch of a shuffled permutation (one Arrow take and one stacked
    # tensor instead of per-row dicts collated in workers). On 8,192 x 1x100x100 it was as fast as the documented
    # DataLoader (both about 2k samples/s on 2 shared cores: Arrow's take of the nested Array3D lists dominates, and
    # with_format "numpy" or "arrow" were no faster) with no worker processes, so less memory (PSS 365 vs 487 MiB).
    # The DataLoader with 0 workers is shown too.
    return {"documented": {"access": "dataloader", "num_workers": 2},
            "dataloader_workers0": {"access": "dataloader", "num_workers": 0},
            "tuned": {"access": "batched_getitem", "num_workers": 0}}


def _use_cache(cache: Path) -> None:
    """Point every cache ``datasets`` (and the hub client) uses into ``cache`` before importing it; stay offline."""
    os.environ.setdefault("HF_HOME", str(cache / "hf_home"))
    os.environ.setdefault("HF_DATASETS_CACHE", str(cache / "datasets_cache"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


def _open(workload: ImageWorkload, cache: Path) -> Any:
    _use_cache(cache)
    import datasets  # noqa: PLC0415

    datasets.disable_progress_bars()
    return datasets.Dataset.from_parquet(str(cache / PARQUET), cache_dir=str(cache / "datasets_cache"))


def prepare(workload: ImageWorkload, cache: Path) -> None:
    """Write the images as one ``Array3D(uint8|uint16)`` column to Parquet (with the features in its metadata), then
    open it once so that ``datasets`` builds its Arrow cache."""
    if not (cache / PARQUET).exists():
        _use_cache(cache)
        import datasets  # noqa: PLC0415

        datasets.disable_progress_bars()
        features = datasets.Features({COLUMN: datasets.Array3D(shape=workload.shape, dtype=workload.dtype)})
        dataset = datasets.Dataset.from_dict({COLUMN: stored_images(workload)}, features=features)
        partial = cache / f"{PARQUET}.partial"
        dataset.to_parquet(str(partial))
        partial.rename(cache / PARQUET)
    _open(workload, cache)


def _float_batches(loader: Any, scale: float) -> Any:
    for batch in loader:
        yield batch[COLUMN].float().div_(scale)


class ShuffledBatches:
    """Each iter() is one epoch of the documented DataLoader, its uint8/uint16 batches turned into float [0, 1]."""

    def __init__(self, loader: Any, scale: float) -> None:
        self.loader, self.scale = loader, scale

    def __iter__(self) -> Any:
        return _float_batches(self.loader, self.scale)


class BatchedAccess:
    """Each iter() is one epoch: a fresh permutation (seed + epoch), one ``ds[rows]`` per batch."""

    def __init__(self, dataset: Any, batch_size: int, shuffle: bool, seed: int, scale: float) -> None:
        self.dataset, self.batch_size, self.shuffle, self.seed, self.scale = dataset, batch_size, shuffle, seed, scale
        self.epoch = 0

    def __iter__(self) -> Any:
        import torch  # noqa: PLC0415

        n = len(self.dataset)
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(n, generator=generator) if self.shuffle else torch.arange(n)
        self.epoch += 1
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size].tolist()
            yield self.dataset[rows][COLUMN].float().div_(self.scale)


def build_loader(workload: ImageWorkload, cache: Path, settings: dict[str, Any]) -> Any:
    import torch  # noqa: PLC0415
    from torch.utils.data import DataLoader  # noqa: PLC0415

    dataset = _open(workload, cache).with_format("torch")
    if settings["access"] == "batched_getitem":
        return BatchedAccess(dataset, workload.batch_size, workload.shuffle, workload.seed, workload.scale)
    loader = DataLoader(dataset, batch_size=workload.batch_size, shuffle=workload.shuffle,
                        num_workers=settings["num_workers"], generator=torch.Generator().manual_seed(workload.seed))
    return ShuffledBatches(loader, workload.scale)


USER_CODE = (build_loader, _open, _float_batches, ShuffledBatches, BatchedAccess)


def shuffle_note(settings: dict[str, Any]) -> str:
    return ""


def holds_dataset(settings: dict) -> bool:
    """Whether the loader holds the whole dataset in memory after its build. No: the Arrow cache is
    memory-mapped, so an epoch reads its pages from disk when they are not cached."""
    return False
