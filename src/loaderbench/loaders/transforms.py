"""Per-sample transforms for the seed datasets, in plain torch (no torchvision).

``none``, ``normalize`` (mean 0.5, std 0.5 per channel, as the seed declared) and ``augment`` — the seed's declared
but unused augmentation made real (DESIGN.md §6): seeded random horizontal and vertical flips and, when
``crop_size > 0``, a random ``crop_size`` x ``crop_size`` crop. Transforms are picklable classes so DataLoader
workers can use them; each worker draws from its own stream (seed + worker id), so runs are reproducible.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import torch

TRANSFORM_NAMES = ("none", "normalize", "augment")


class Identity:
    """The ``none`` transform: returns the tensor unchanged."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def __repr__(self) -> str:
        return "Identity()"


class Normalize:
    """``(x - mean) / std`` with the same mean and std for every channel; returns a new tensor."""

    def __init__(self, mean: float = 0.5, std: float = 0.5) -> None:
        if std == 0:
            raise ValueError("normalize: std must not be 0")
        self.mean = float(mean)
        self.std = float(std)

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image.sub(self.mean).div_(self.std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"


class Augment:
    """Random crop (when ``crop_size > 0``), then random horizontal and vertical flips, each with p = 0.5.

    Draws come from ``random.Random(seed)``; in a DataLoader worker the stream is re-seeded with
    ``seed + 1000003 * (worker id + 1)`` on first use, so workers do not repeat each other's draws.
    """

    def __init__(self, crop_size: int = 0, seed: int = 0, p_flip: float = 0.5) -> None:
        if crop_size < 0:
            raise ValueError(f"augment: crop_size must be >= 0, got {crop_size}")
        self.crop_size = int(crop_size)
        self.seed = int(seed)
        self.p_flip = float(p_flip)
        self._rng = random.Random(self.seed)
        self._pid = os.getpid()

    def _generator(self) -> random.Random:
        pid = os.getpid()
        if pid != self._pid:  # first call in a forked / spawned worker
            info = torch.utils.data.get_worker_info()
            worker = info.id if info is not None else 0
            self._rng = random.Random(self.seed + 1000003 * (worker + 1))
            self._pid = pid
        return self._rng

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        rng = self._generator()
        if self.crop_size:
            height, width = image.shape[-2], image.shape[-1]
            if self.crop_size > height or self.crop_size > width:
                raise ValueError(f"augment: crop_size {self.crop_size} is larger than the image ({height}x{width})")
            top = rng.randint(0, height - self.crop_size)
            left = rng.randint(0, width - self.crop_size)
            image = image[..., top : top + self.crop_size, left : left + self.crop_size]
        dims = []
        if rng.random() < self.p_flip:
            dims.append(-1)  # horizontal
        if rng.random() < self.p_flip:
            dims.append(-2)  # vertical
        # flip copies; a crop without flips is made contiguous so batches collate without strided views
        return torch.flip(image, dims) if dims else image.contiguous()

    def __repr__(self) -> str:
        return f"Augment(crop_size={self.crop_size}, seed={self.seed})"


def make_transform(name: str, crop_size: int = 0, seed: int = 0) -> Callable[[torch.Tensor], torch.Tensor]:
    """The transform called ``name`` (``none``, ``normalize`` or ``augment``)."""
    if name == "none":
        return Identity()
    if name == "normalize":
        return Normalize(0.5, 0.5)
    if name == "augment":
        return Augment(crop_size=crop_size, seed=seed)
    raise ValueError(f"unknown transform {name!r} (choose from {', '.join(TRANSFORM_NAMES)})")
