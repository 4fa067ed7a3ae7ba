"""``lance.torch.data.LanceDataset`` (pylance): an ``IterableDataset`` of ready batches, read by Lance's own Rust
threads, each Arrow batch turned into a tensor by a ``to_tensor_fn``.

Layouts: ``documented``/``tuned`` read a Lance dataset that ``prepare`` writes in the peer's cache with one
``FixedSizeList<uint8|uint16>`` pixel column (the tensor layout lance.torch converts zero-copy); ``ome_struct`` reads
the OME-Arrow rows as stored (``workload.lance``, or the Parquet rows copied into the cache when there is none),
decoding each batch's struct column with ``decode_column``.

Lance's runtime does not survive a fork, so no DataLoader workers here: Lance reads on its own threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loaderbench.loaders.peers.workload import ImageWorkload, stored_images

NAME = "lance_torch"
DISTRIBUTIONS = ("pylance",)
DOCS = ("LanceDataset(uri, batch_size=B, columns=[...], sampler=ShardedBatchSampler(rank, world_size, "
        "randomize=True, seed=S), to_tensor_fn=...) iterated directly (it yields batches); a new sampler per epoch "
        "(seed + epoch), since ShardedBatchSampler's shuffle ignores set_epoch")
FLAT = "images_flat.lance"
STRUCT = "images_ome.lance"
COLUMN = "pixels"


def unavailable() -> str | None:
    try:
        import lance.torch.data  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"lance.torch is not importable (pip install pylance): {exc}"
    return None


def variants(workload: ImageWorkload) -> dict[str, dict[str, Any]]:
    # documented: the shuffle lance.torch offers for a whole dataset, ShardedBatchSampler(randomize=True): batches
    # of contiguous rows in a random order, read ahead by Lance (batch_readahead 16, its default).
    # tuned: a full per-epoch permutation like every other peer's, one dataset.take per batch through a Sampler
    # subclass (lance.sampler.Sampler is the documented extension point).
    # ome_struct: the OME-Arrow rows as stored, the documented sampler, each batch's struct decoded by decode_column.
    return {"documented": {"layout": "flat", "sampler": "sharded_batch", "batch_readahead": 16},
            "tuned": {"layout": "flat", "sampler": "permutation_take", "batch_readahead": 16},
            "ome_struct": {"layout": "ome_struct", "sampler": "sharded_batch", "batch_readahead": 16}}


def _struct_path(workload: ImageWorkload, cache: Path) -> Path:
    return Path(workload.lance) if workload.lance else cache / STRUCT


def prepare(workload: ImageWorkload, cache: Path) -> None:
    """Write the flat pixel dataset (and, without ``workload.lance``, the OME-Arrow rows) into ``cache``."""
    import lance  # noqa: PLC0415
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    if not (cache / FLAT).exists():
        images = stored_images(workload)
        pixels = pa.FixedSizeListArray.from_arrays(pa.array(images.reshape(-1)), int(images[0].size))
        table = pa.table({COLUMN: pixels})
        lance.write_dataset(table, str(cache / f"{FLAT}.partial"), mode="create")
        (cache / f"{FLAT}.partial").rename(cache / FLAT)
    if not workload.lance and not (cache / STRUCT).exists():
        lance.write_dataset(pq.read_table(workload.parquet), str(cache / f"{STRUCT}.partial"), mode="create")
        (cache / f"{STRUCT}.partial").rename(cache / STRUCT)


def flat_to_tensor(batch: Any, *, shape: tuple[int, ...], scale: float, **_: Any) -> Any:
    """A batch's ``FixedSizeList`` pixel column -> float32 ``[B, C, H, W]`` in [0, 1]."""
    import warnings  # noqa: PLC0415

    import torch  # noqa: PLC0415

    column = batch[COLUMN]
    width = column.type.list_size
    values = column.values.slice(column.offset * width, len(column) * width).to_numpy()
    with warnings.catch_warnings():  # Arrow's buffer is read-only; it is only read (into the float copy)
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        pixels = torch.from_numpy(values)
    return pixels.reshape(len(column), *shape).float().div_(scale)


def struct_to_tensor(batch: Any, *, shape: tuple[int, ...], scale: float, **_: Any) -> Any:
    """A batch's OME-Arrow ``ome_image`` column, decoded -> float32 ``[B, C, H, W]`` in [0, 1]."""
    import torch  # noqa: PLC0415

    from loaderbench.ome_image import OME_COLUMN, decode_column  # noqa: PLC0415

    images = decode_column(batch[OME_COLUMN])
    return torch.from_numpy(images.reshape(len(images), *shape)).float().div_(scale)


def _permutation_sampler(seed: int) -> Any:
    import numpy as np  # noqa: PLC0415
    from lance.sampler import Sampler  # noqa: PLC0415

    class PermutationSampler(Sampler):
        """A full random permutation of the rows, one ``take`` per batch."""

        def __call__(self, dataset: Any, *args: Any, batch_size: int = 128, columns: Any = None, **kwargs: Any) -> Any:
            n = dataset.count_rows()
            order = np.random.default_rng(seed).permutation(n)
            for start in range(0, n, batch_size):
                yield dataset.take(order[start : start + batch_size], columns=columns).combine_chunks().to_batches()[0]

    return PermutationSampler()


class LanceEpochs:
    """Each iter() is one epoch of the LanceDataset, with a sampler seeded by seed + epoch."""

    def __init__(self, dataset: Any, sampler: str, shuffle: bool, seed: int) -> None:
        self.dataset, self.sampler, self.shuffle, self.seed = dataset, sampler, shuffle, seed
        self.epoch = 0

    def __iter__(self) -> Any:
        from lance.sampler import FullScanSampler, ShardedBatchSampler  # noqa: PLC0415

        seed = self.seed + self.epoch
        self.epoch += 1
        if not self.shuffle:
            self.dataset.sampler = FullScanSampler()
        elif self.sampler == "permutation_take":
            self.dataset.sampler = _permutation_sampler(seed)
        else:
            self.dataset.sampler = ShardedBatchSampler(rank=0, world_size=1, randomize=True, seed=seed)
        return iter(self.dataset)


def build_loader(workload: ImageWorkload, cache: Path, settings: dict[str, Any]) -> LanceEpochs:
    import functools  # noqa: PLC0415

    from lance.torch.data import LanceDataset  # noqa: PLC0415

    if settings["layout"] == "flat":
        uri, columns, convert = cache / FLAT, [COLUMN], flat_to_tensor
    else:
        uri, columns, convert = _struct_path(workload, cache), ["ome_image"], struct_to_tensor
    dataset = LanceDataset(str(uri), batch_size=workload.batch_size, columns=columns,
                           batch_readahead=settings["batch_readahead"], auto_detect_rank=False,
                           to_tensor_fn=functools.partial(convert, shape=workload.shape, scale=workload.scale))
    return LanceEpochs(dataset, settings["sampler"], workload.shuffle, workload.seed)


USER_CODE = (build_loader, flat_to_tensor, struct_to_tensor, _permutation_sampler, LanceEpochs)


def shuffle_note(settings: dict[str, Any]) -> str:
    if settings["sampler"] == "sharded_batch":
        return ("ShardedBatchSampler(randomize=True) shuffles the order of batches of batch_size contiguous rows: "
                "a batch holds neighbouring rows, not a random sample (seeded with seed + epoch here)")
    return ""


def holds_dataset(settings: dict) -> bool:
    """Whether the loader holds the whole dataset in memory after its build. No: every batch is read from the
    Lance dataset on disk."""
    return False
