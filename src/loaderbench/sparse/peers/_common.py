"""What every peer shares: the ``PeerUnavailable`` reason, file look-ups and the dense float32 conversion."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loaderbench.start_method import call_keeping_start_method


class PeerUnavailable(RuntimeError):
    """A peer that cannot run here; the message is the reason (recorded as a row ``unavailable: <reason>``)."""


def require(module: str, why: str = "") -> None:
    """Raise ``PeerUnavailable`` when ``module`` cannot be imported (found without importing it)."""
    if importlib.util.find_spec(module) is None:
        raise PeerUnavailable(f"{module} is not installed{why}")


def dataset_path(paths: dict[str, Path], name: str, peer: str) -> Path:
    """The dataset file ``name`` (``h5ad``, ``zarr``, ``soma``...) or ``PeerUnavailable`` saying it was not written."""
    if name not in paths:
        raise PeerUnavailable(f"{peer} needs the {name} file, which was not written for this dataset")
    return Path(paths[name])


def dense_float32_tensor(batch: Any) -> torch.Tensor:
    """A scipy sparse or numpy batch as a dense float32 ``[B, genes]`` tensor (no copy when already dense float32)."""
    array = batch.toarray() if hasattr(batch, "toarray") else np.asarray(batch)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def dataloader_keeping_start_method(make_loader: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
    """``make_loader(*args, **kwargs)`` for the SOMA libraries' ``experiment_dataloader``, which force the process-wide
    start method to ``spawn`` when workers are asked for: the peer keeps its choice on its own DataLoader
    (``multiprocessing_context``), the process keeps its own."""
    loader, chosen = call_keeping_start_method(make_loader, *args, **kwargs)
    if chosen is not None and loader.num_workers > 0 and loader.multiprocessing_context is None:
        loader.multiprocessing_context = chosen
    return loader
