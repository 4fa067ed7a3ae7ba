"""Peer loaders: what a PyTorch user could pick instead of loaderbench's native loader (issue 12).

One module per peer (``NAME``, ``DISTRIBUTIONS``, ``DOCS``, ``unavailable()``, ``variants(workload)``,
``prepare(workload, cache)``, ``build_loader(workload, cache, settings)``, ``shuffle_note(settings)``,
``holds_dataset(settings)``: whether a cold page cache can reach its epochs), each measured in its own process by
``driver`` over the same ``workload.ImageWorkload``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: registry: key == module name under this package
IMAGE_PEERS = ("native", "seed_dataloader", "expert_torch", "hf_datasets", "lance_torch", "litdata", "webdataset",
               "spdl")


class PeerUnavailable(RuntimeError):  # noqa: N818 - reads as the state it reports, like StopIteration
    """A peer cannot run here (its library is missing or lacks what we need); the message is the one-line reason."""


def peer_module(name: str) -> ModuleType:
    """The module of peer ``name`` (one of ``IMAGE_PEERS``)."""
    if name not in IMAGE_PEERS:
        raise ValueError(f"unknown image peer {name!r} (known: {', '.join(IMAGE_PEERS)})")
    return importlib.import_module(f"{__name__}.{name}")
