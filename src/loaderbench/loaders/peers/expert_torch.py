"""THE BAR: the vectorised in-memory baseline an Arrow expert writes (DESIGN.md §4.4).

The pixel column is flattened with pyarrow (no ``.as_py()``), viewed as one ``(N, C, H, W)`` tensor, and every batch
is one ``index_select`` of a slice of a per-epoch permutation, then ``.float().div_(max)``.

- ``zero_copy``: batches are gathered straight from the Arrow buffers, in the stored dtype (ome-arrow keeps uint8
  pixels widened to uint16). A column read as several chunks (one per Parquet row group) is concatenated once: one
  contiguous tensor is what ``index_select`` needs, and a per-chunk gather costs more per batch than that one copy.
- ``uint8_preloaded``: one copy into the logical dtype (uint8 for ome-arrow's widened uint8) before the first epoch
  (so inside the time to first batch): half the bytes to gather per batch.

Byte-chunk (zstd) rows have no zero-copy pixel column: ``decode_column`` decodes them once up front, as a user would.

Alternatives measured on 8,192 x 1x100x100, batch 256, 2 cores shared with other work (interleaved epochs, 12
rounds; noisy, so only large differences count): fancy indexing ``pixels[idx]`` was 2-3x slower than
``index_select``; ``index_select`` into a reused stored-dtype buffer (``out=``) matched or beat a fresh
``index_select`` (best epoch 167k vs 125k samples/s for uint8) and is kept; ``.mul_(1 / 255)`` was slower than
``div_`` and is not bit-exact with the reference division; ``torch.div`` straight from the integer tensor was the
slowest. One torch thread per core. The float batch is a fresh tensor each time (a consumer may keep it).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from loaderbench.loaders.peers.workload import ImageWorkload

NAME = "expert_torch"
DISTRIBUTIONS = ("torch", "pyarrow")
DOCS = ("pyarrow zero-copy flatten of the pixel column -> torch.from_numpy(...).reshape(N, C, H, W) -> per batch "
        "index_select(0, perm[i:i+B]).float().div_(max) (DESIGN.md 4.4)")


def unavailable() -> str | None:
    return None


def variants(workload: ImageWorkload) -> dict[str, dict[str, Any]]:
    threads = os.cpu_count() or 1
    return {"zero_copy": {"layout": "zero_copy", "torch_threads": threads},
            "uint8_preloaded": {"layout": "uint8_preloaded", "torch_threads": threads}}


def prepare(workload: ImageWorkload, cache: Path) -> None:
    """Nothing to convert: the pixels are read from the OME-Arrow Parquet file in ``build_loader``."""


def arrow_pixels(workload: ImageWorkload) -> Any:
    """``(N, C, H, W)`` numpy pixels in the stored dtype: a view of the Arrow buffers when the plane pixels are one
    chunk, one concatenation when several; byte chunks are decoded once with ``decode_column``."""
    import numpy as np  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from loaderbench.ome_image import OME_COLUMN, decode_column  # noqa: PLC0415

    planes = pq.read_table(workload.parquet, columns=[f"{OME_COLUMN}.planes"]).column(0)
    values = [chunk.flatten().field("pixels").flatten().to_numpy() for chunk in planes.chunks]
    count = sum(len(v) for v in values)
    if count != workload.n * workload.channels * workload.height * workload.width:  # no planes: byte chunks
        images = decode_column(pq.read_table(workload.parquet, columns=[OME_COLUMN]).column(0))
        return images.reshape(workload.n, *workload.shape)
    flat = values[0] if len(values) == 1 else np.concatenate(values)
    return flat.reshape(workload.n, *workload.shape)


class ExpertBatches:
    """Each iter() is one epoch: a fresh permutation (seed + epoch), one gather and one conversion per batch."""

    def __init__(self, pixels: Any, batch_size: int, shuffle: bool, seed: int, scale: float) -> None:
        import torch  # noqa: PLC0415

        self.pixels, self.batch_size, self.shuffle, self.seed, self.scale = pixels, batch_size, shuffle, seed, scale
        self.epoch = 0
        # The gather lands in one reused buffer; the float batch handed over is always a fresh tensor.
        self.gathered = torch.empty((batch_size, *pixels.shape[1:]), dtype=pixels.dtype)

    def __iter__(self) -> Any:
        import torch  # noqa: PLC0415

        n = len(self.pixels)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(n)
        self.epoch += 1
        for start in range(0, n, self.batch_size):
            rows = order[start : start + self.batch_size]
            gathered = self.gathered[: len(rows)]
            torch.index_select(self.pixels, 0, rows, out=gathered)
            yield gathered.float().div_(self.scale)


def build_loader(workload: ImageWorkload, cache: Path, settings: dict[str, Any]) -> ExpertBatches:
    import warnings  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415
    import torch  # noqa: PLC0415

    torch.set_num_threads(settings["torch_threads"])
    pixels = arrow_pixels(workload)
    if settings["layout"] == "uint8_preloaded":
        pixels = pixels.astype(np.dtype(workload.dtype), copy=False)  # one copy, before the epoch
    with warnings.catch_warnings():  # Arrow buffers are read-only; the tensor is only ever read
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        tensor = torch.from_numpy(pixels)
    return ExpertBatches(tensor, workload.batch_size, workload.shuffle, workload.seed, workload.scale)


USER_CODE = (build_loader, arrow_pixels, ExpertBatches)


def shuffle_note(settings: dict[str, Any]) -> str:
    return ""


def holds_dataset(settings: dict) -> bool:
    """Whether the loader holds the whole dataset in memory after its build. Both variants hold the whole pixel
    column in memory (zero-copy from the table read whole, or a copy)."""
    return True
