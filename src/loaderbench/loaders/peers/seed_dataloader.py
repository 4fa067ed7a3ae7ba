"""The seed's pre-loaded dataset under a torch DataLoader: the old headline's baseline.

``OMEArrowDataset(table, preload=True)`` decodes every image once (``.as_py()``) into a Python list of numpy arrays;
``__getitem__`` copies one out, ``.float()``, then divides by 255 when some value exceeds 1 (the seed's step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loaderbench.loaders.peers.workload import ImageWorkload

NAME = "seed_dataloader"
DISTRIBUTIONS = ("torch",)
DOCS = ("the seed's Track 3: DataLoader(OMEArrowDataset(table, preload=True), batch_size=B, shuffle=True, "
        "num_workers=2); the seed's `if t.max() > 1: t / 255` step is kept (no transform)")


def unavailable() -> str | None:
    return None


def variants(workload: ImageWorkload) -> dict[str, dict[str, Any]]:
    # documented = the seed's Track 3 setting (2 workers); the others show what the worker count does.
    counts = sorted({0, 2, 4, *workload.num_workers})
    found = {"documented": {"num_workers": 2}}
    found.update({f"workers{w}": {"num_workers": w} for w in counts if w != 2})
    return found


def prepare(workload: ImageWorkload, cache: Path) -> None:
    """Nothing to convert: the dataset pre-loads the OME-Arrow table itself (in build_loader, so in ttfb)."""


def build_loader(workload: ImageWorkload, cache: Path, settings: dict[str, Any]) -> Any:
    import pyarrow.parquet as pq  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from torch.utils.data import DataLoader  # noqa: PLC0415

    from loaderbench.loaders.seed import OMEArrowDataset  # noqa: PLC0415

    dataset = OMEArrowDataset(pq.read_table(workload.parquet), preload=True)
    # A seeded generator: DataLoader draws a fresh permutation from it every epoch.
    generator = torch.Generator().manual_seed(workload.seed)
    return DataLoader(dataset, batch_size=workload.batch_size, shuffle=workload.shuffle,
                      num_workers=settings["num_workers"], generator=generator)


def shuffle_note(settings: dict[str, Any]) -> str:
    return ""


def holds_dataset(settings: dict) -> bool:
    """Whether the loader holds the whole dataset in memory after its build. The seed's dataset decodes every
    image into memory at build (``preload=True``)."""
    return True
