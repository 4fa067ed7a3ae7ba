"""What every peer shares: the ``PeerUnavailable`` reason, file look-ups and the dense float32 conversion."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import torch


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
