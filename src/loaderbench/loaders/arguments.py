"""Argument checks and defaults shared by the native loaders: every integer is range-checked here, in one readable
line naming the argument, before it reaches the C++ core (where nanobind would print its whole overload table);
rank and world size default to the job the process runs in; DataLoader workers split an epoch among themselves
(forked: the loaders hold their data in C++ and do not pickle).
"""

from __future__ import annotations

import numbers
import os
from typing import Any

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
UINT64_MAX = 2**64 - 1
MAX_THREADS = 1024
MAX_PREFETCH = 1024


def check_int(name: str, value: Any, low: int, high: int) -> int:
    """``value`` as an int if it is an integer in ``[low, high]``; else one clear TypeError / ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if not low <= value <= high:
        raise ValueError(f"{name} must lie in [{low}, {high}], got {value}")
    return value


def _env_int(name: str) -> int | None:
    text = os.environ.get(name)
    if text is None or text.strip() == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}={text!r} is not an integer") from None


def resolve_rank(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: the arguments where given, else the initialised ``torch.distributed`` process group,
    else ``RANK`` / ``WORLD_SIZE`` from the environment (what torchrun sets), else ``(0, 1)``."""
    if rank is None or world_size is None:
        default_rank, default_world = 0, 1
        import torch.distributed as dist  # noqa: PLC0415 - only when a default is needed

        if dist.is_available() and dist.is_initialized():
            default_rank, default_world = dist.get_rank(), dist.get_world_size()
        elif _env_int("WORLD_SIZE") is not None:
            default_world = _env_int("WORLD_SIZE")
            default_rank = _env_int("RANK") or 0
        rank = default_rank if rank is None else rank
        world_size = default_world if world_size is None else world_size
    world_size = check_int("world_size", world_size, 1, INT32_MAX)
    rank = check_int("rank", rank, 0, world_size - 1)
    return rank, world_size


def worker_share() -> tuple[int, int]:
    """``(worker_id, num_workers)`` inside a DataLoader worker process, ``(0, 1)`` elsewhere: each worker takes
    every ``num_workers``-th batch, which the DataLoader interleaves back into the unsplit order."""
    from torch.utils.data import get_worker_info  # noqa: PLC0415

    info = get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def check_batch_memory(batch_bytes: int, buffers: int, what: str) -> None:
    """Refuses batch buffers that could never fit in this machine's memory, before any is allocated."""
    import psutil  # noqa: PLC0415

    total = psutil.virtual_memory().total
    if batch_bytes > total:
        raise ValueError(f"one batch of {what} needs {batch_bytes / 2**30:.1f} GiB, more than this machine's "
                         f"{total / 2**30:.1f} GiB of memory; lower batch_size")
    if batch_bytes * buffers > total:
        raise ValueError(f"{buffers} batch buffers of {what} ({batch_bytes / 2**30:.1f} GiB each) exceed this "
                         f"machine's {total / 2**30:.1f} GiB of memory; lower batch_size or prefetch")


class ForkedWorkersOnly:
    """For the native loaders: their data lives in the C++ core, so they cannot be pickled, which a DataLoader with
    workers started by ``spawn`` or ``forkserver`` would do. One clear error says so, instead of pickle's
    "cannot pickle 'ImageDataset' object"."""

    def __reduce_ex__(self, protocol: object) -> Any:
        import multiprocessing  # noqa: PLC0415 - only on this error path

        raise TypeError(
            f"{type(self).__name__} cannot be pickled: it holds its data in the C++ core. DataLoader workers must be "
            f"forked (DataLoader(..., multiprocessing_context='fork'); this process's start method is "
            f"{multiprocessing.get_start_method()!r}), or use the loader's own num_threads instead of workers")
