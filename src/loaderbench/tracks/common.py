"""What every track shares: the context it runs in, the (dataset, format) pairs it visits, the common columns."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from loaderbench.config import Config
from loaderbench.datagen import size_text
from loaderbench.progress import task as progress_task

if TYPE_CHECKING:
    from loaderbench.datagen import DatasetFiles
    from loaderbench.loaders.native import NativeImageLoader

#: the loader name of loaderbench's own C++ loader in every track's rows
NATIVE = "native"


@dataclass
class TrackContext:
    """Everything a track needs: the run's config, the datasets on disk, and where to report progress."""

    config: Config
    datasets: list[DatasetFiles]
    progress: Callable[[str], None]


@dataclass
class Target:
    """One dataset stored in one format: what a track measures a configuration on."""

    dataset: DatasetFiles
    format_name: str
    module: ModuleType | Any
    path: Path

    @property
    def kind(self) -> str:
        return self.module.INFO.kind

    @property
    def label(self) -> str:
        return self.module.INFO.label

    @property
    def column(self) -> str | None:
        """The image column of a table input, as named in its file (``None``: ``ome_image`` or the one found)."""
        return self.dataset.column

    def read_table(self) -> Any:
        """The whole table through the format's reader, its image column named ``ome_image``."""
        return self.module.read_table(self.path, column=self.column)


def iter_targets(ctx: TrackContext, label: str | None = None) -> Iterator[Target]:
    """Each dataset x each of its formats that the config selects (a user's input runs in whatever format it has);
    with a ``label``, progress follows them (a bar on a terminal, else a line every tenth with the time left)."""
    from loaderbench.formats import get_format  # noqa: PLC0415 - keeps tracks importable without every format

    pairs = [(dataset, name, Path(path)) for dataset in ctx.datasets for name, path in dataset.paths.items()
             if dataset.source == "input" or name in ctx.config.formats]
    if label is None:
        for dataset, name, path in pairs:
            yield Target(dataset, name, get_format(name), path)
        return
    with progress_task(ctx.progress, label, len(pairs), "datasets x formats") as done:
        for dataset, name, path in pairs:
            yield Target(dataset, name, get_format(name), path)
            done.advance()


def common_columns(target: Target, loader: str, repeat: int) -> dict[str, Any]:
    """The columns every track's rows start with (``image_size`` is ``HxW``, or ``ZxHxW`` for volumes, whose
    ``depth`` is their Z)."""
    ds = target.dataset
    depth = int(getattr(ds, "depth", 1))  # a dataset described without it holds 2-D images
    return {
        "format": target.format_name,
        "format_label": target.label,
        "format_kind": target.kind,
        "loader": loader,
        "dataset": ds.name,
        "image_size": size_text(ds.height, ds.width, depth),
        "height": ds.height,
        "width": ds.width,
        "depth": depth,
        "channels": ds.channels,
        "dtype": ds.dtype,
        "n_images": ds.n_images,
        "repeat": repeat,
    }


def access_indices(access: str, n: int, count: int, seed: int) -> np.ndarray:
    """``count`` indices into ``n`` items: ``sequential`` is 0, 1, ... wrapping at ``n``; ``random`` is a seeded
    permutation of all ``n`` (another permutation follows when ``count > n``), so every format sees the same order."""
    if n <= 0:
        raise ValueError("cannot index an empty dataset")
    if access == "sequential":
        return np.arange(count, dtype=np.int64) % n
    if access == "random":
        rng = np.random.default_rng(seed)
        rounds = -(-count // n)
        return np.concatenate([rng.permutation(n) for _ in range(rounds)])[:count].astype(np.int64)
    raise ValueError(f"unknown access pattern {access!r} (choose from sequential, random)")


def timed_construct(factory: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """Call ``factory(*args, **kwargs)`` and return its result with the seconds it took (dataset set-up cost)."""
    start = time.perf_counter_ns()
    result = factory(*args, **kwargs)
    return result, (time.perf_counter_ns() - start) / 1e9


def batch_len(batch: Any) -> int:
    """Samples in a collated batch (a tensor, or a tuple/list/dict whose first entry is one)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0])
    if isinstance(batch, dict):
        return batch_len(next(iter(batch.values())))
    if isinstance(batch, (list, tuple)):
        return batch_len(batch[0])
    return len(batch)


def effective_pin_memory(requested: bool) -> bool:
    """``pin_memory`` only means something with an accelerator; torch ignores it (with a warning) otherwise."""
    if not requested:
        return False
    accelerator = getattr(torch, "accelerator", None)
    if accelerator is not None:
        return bool(accelerator.is_available())
    return torch.cuda.is_available()


def shutdown_loader(loader: Any, iterator: Any | None = None) -> None:
    """Stop a DataLoader's worker processes now (persistent workers outlive their iterator otherwise), or the
    native loader's threads (its iterator's ``close``)."""
    for it in (iterator, getattr(loader, "_iterator", None)):
        shutdown = getattr(it, "_shutdown_workers", None) or getattr(it, "close", None)
        if shutdown is not None:
            shutdown()
    if getattr(loader, "_iterator", None) is not None:
        loader._iterator = None


def native_loader_class() -> type[NativeImageLoader] | None:
    """``NativeImageLoader``, or ``None`` when the C++ core is not built (the native rows are then left out)."""
    try:
        from loaderbench.loaders.native import NativeImageLoader  # noqa: PLC0415 - the core is optional here
    except ImportError:
        return None
    return NativeImageLoader


def runs_native(ctx: TrackContext, target: Target, track: str) -> bool:
    """Whether ``track`` measures the native loader on ``target``: Arrow-backed formats and the directory formats
    the core reads itself (TIFF, OME-Zarr), and only with the core built (said once per target when it is not)."""
    if target.kind != "table" and not native_reads_directory(target.format_name):
        return False
    if native_loader_class() is None:
        ctx.progress(f"[{track}] {target.dataset.name} {target.label} loader={NATIVE}: core not built, skipped")
        return False
    return True


def native_reads_directory(format_name: str) -> bool:
    """Whether the built native core reads this directory format itself, file by file (built with its library)."""
    try:
        from loaderbench import _core  # noqa: PLC0415 - the core is optional here
        from loaderbench.loaders.native import NATIVE_DIRECTORY_FORMATS  # noqa: PLC0415
    except ImportError:
        return False
    return format_name in NATIVE_DIRECTORY_FORMATS and bool(_core.file_format_available(format_name))


def make_native_loader(target: Target, source: Any | None = None, **options: Any) -> NativeImageLoader:
    """The native loader over ``target``: reads its table (unless ``source`` is given; a directory format's files
    are listed and the first probed, then read by the core per sample) and validates it, no pre-load, so timing
    this call gives the set-up cost as ``make_dataset`` does for the baselines."""
    loader_class = native_loader_class()
    if loader_class is None:
        raise RuntimeError("the native loader's C++ core (loaderbench._core) is not built")
    if source is None and target.kind != "table":
        options.setdefault("format", target.format_name)
        source = target.path
    table = target.read_table() if source is None else source
    # The benchmark measures the whole dataset in one process, whatever RANK/WORLD_SIZE the shell exports.
    options.setdefault("rank", 0)
    options.setdefault("world_size", 1)
    return loader_class(table, **options)


#: loader names of the out-of-core rows
RANDOM_ACCESS = "random_access"
STREAMING = "native_streaming"
BLOCK_TORCH = "block_torch"


def has_block_reads(target: Target) -> bool:
    """Whether the target's format reads blocks of rows through its own library (the Arrow-backed formats)."""
    return bool(getattr(target.module.INFO, "block_reads", False)) and hasattr(target.module, "block_reader")


def page_cache_states(ctx: TrackContext) -> list[str]:
    """The page-cache states each disk-reading row is measured in (``streaming.page_cache``)."""
    return list(ctx.config.streaming.page_cache)


def set_page_cache(target: Target, state: str, loader: Any = None) -> dict[str, Any]:
    """Put the target's files in ``state`` before a timed repeat: ``cold`` evicts their pages, ``warm`` reads them
    once. For ``cold``, ``loader``'s format readers are closed first (they reopen on the next read): a file a reader
    keeps memory-mapped keeps its pages. Warm repeats keep them open, as a user's next epoch does (reopening them
    would time a file open and footer parse in every epoch). Returns the result columns: ``page_cache`` (what was
    measured: ``cold``, ``warm``, or ``partial`` when eviction did not take) and ``resident_fraction``."""
    from loaderbench import page_cache  # noqa: PLC0415
    from loaderbench.loaders.block_datasets import close_readers  # noqa: PLC0415

    if state == "cold":
        close_readers(loader)
        result = page_cache.evict(target.path)
        return {"page_cache": result.page_cache, "resident_fraction": result.resident_fraction}
    with contextlib.suppress(page_cache.PageCacheUnsupported):
        resident = page_cache.resident_fraction(target.path)
        if resident >= page_cache.WARM_THRESHOLD:  # already cached (e.g. the previous repeat): no second read
            return {"page_cache": "warm", "resident_fraction": resident}
    result = page_cache.warm(target.path)
    return {"page_cache": result.page_cache, "resident_fraction": result.resident_fraction}


def streaming_options(ctx: TrackContext) -> dict[str, Any]:
    """The block settings every out-of-core row shares (``streaming`` in the config)."""
    st = ctx.config.streaming
    return {"chunk_size": st.chunk_size or None, "chunks_per_block": st.chunks_per_block}


def make_streaming_loader(ctx: TrackContext, target: Target, **options: Any) -> Any:
    """The native streaming loader over the target's file: nothing read but the footer and one probe row."""
    from loaderbench.loaders.streaming import StreamingImageLoader  # noqa: PLC0415 - needs the core

    st = ctx.config.streaming
    options.setdefault("rank", 0)
    options.setdefault("world_size", 1)
    return StreamingImageLoader(target.path, format=target.format_name, column=target.column,
                                memory_budget=st.memory_budget_mb * 2**20, io_threads=st.io_threads,
                                **streaming_options(ctx), **options)


def make_block_torch_loader(ctx: TrackContext, target: Target, *, batch_size: int, num_workers: int,
                            shuffle: bool, transform: str = "none") -> Any:  # fmt: skip
    """The torch baseline of the streaming rows: ``BlockBatchDataset`` (a block per step through the same reader,
    decoded vectorised) in a ``DataLoader(batch_size=None)`` with ``num_workers`` workers."""
    from loaderbench.loaders.block_datasets import (  # noqa: PLC0415
        BlockBatchDataset,
        batch_transform,
        block_dataloader,
    )

    dataset = BlockBatchDataset(target.module, target.path, batch_size=batch_size, shuffle=shuffle,
                                seed=ctx.config.data.seed, transform=batch_transform(transform),
                                column=target.column, **streaming_options(ctx))
    return block_dataloader(dataset, num_workers)
