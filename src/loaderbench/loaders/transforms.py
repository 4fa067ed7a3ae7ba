"""Per-sample transforms of the seed datasets: torchvision's, reproduced step for step.

The seed's Track 1 used ``none``, ``normalize`` = ``transforms.Normalize(mean=[0.5], std=[0.5])`` and ``augment`` =
``transforms.Compose([transforms.RandomHorizontalFlip(p=0.5), transforms.Normalize(mean=[0.5], std=[0.5])])``.
torchvision cannot be installed beside the CPU torch wheel used here (PyPI's torchvision needs its own torch
build), so these classes follow torchvision 0.21's source as written (``transforms/transforms.py``,
``transforms/functional.py``, ``transforms/_functional_tensor.py``): the transforms are ``nn.Module``s called
through ``Module.__call__``, ``normalize`` clones its input and builds new mean/std tensors on every call, the flip
is drawn with ``torch.rand(1)`` from torch's global generator (seed it with ``torch.manual_seed``; DataLoader
workers get their own torch seeds), and API usage is logged once per call as torchvision does.

``crop_size > 0`` puts a ``RandomCrop`` (drawn with ``torch.randint``, as torchvision's) before the flip: a
loaderbench extension, off by default, so the default ``augment`` is the seed's.

Volumes: torchvision reads a tensor as ``(..., C, H, W)`` and views a per-channel mean as ``(C, 1, 1)``, which on a
``(C, Z, H, W)`` volume lines up with Z, not C. ``volume=True`` (``make_transform(..., volume=True)``) views it as
``(C, 1, 1, 1)`` instead; without it every step is torchvision's. Crops and flips act on the last two dims (H, W)
either way, so a volume is cropped and flipped as a whole, every Z plane alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import FunctionType
from typing import Any

import torch
from torch import nn

TRANSFORM_NAMES = ("none", "normalize", "augment")
SEED_MEAN = (0.5,)
SEED_STD = (0.5,)


def _log_api_usage_once(obj: Any) -> None:
    """What torchvision's ``utils._log_api_usage_once`` does on every transform call outside TorchScript."""
    module = obj.__module__
    if not module.startswith("torchvision"):
        module = f"torchvision.internal.{module}"
    name = obj.__name__ if isinstance(obj, FunctionType) else obj.__class__.__name__
    torch._C._log_api_usage_once(f"{module}.{name}")


def _assert_image_tensor(image: torch.Tensor) -> None:
    if not image.ndimension() >= 2:
        raise TypeError("Tensor is not a torch image.")


def normalize(tensor: torch.Tensor, mean: Sequence[float], std: Sequence[float], inplace: bool = False,
              volume: bool = False) -> torch.Tensor:
    """torchvision's ``F.normalize`` on a tensor: ``(tensor - mean) / std`` per channel; a new tensor unless
    ``inplace``. ``volume``: the tensor is ``(..., C, Z, H, W)``, so per-channel values broadcast over Z too."""
    _log_api_usage_once(normalize)
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"img should be Tensor Image. Got {type(tensor)}")
    _assert_image_tensor(tensor)
    if not tensor.is_floating_point():
        raise TypeError(f"Input tensor should be a float tensor. Got {tensor.dtype}.")
    if tensor.ndim < (4 if volume else 3):
        size = "(..., C, Z, H, W)" if volume else "(..., C, H, W)"
        raise ValueError(f"Expected tensor to be a tensor image of size {size}. Got tensor.size() = {tensor.size()}")
    if not inplace:
        tensor = tensor.clone()
    dtype = tensor.dtype
    mean_t = torch.as_tensor(mean, dtype=dtype, device=tensor.device)
    std_t = torch.as_tensor(std, dtype=dtype, device=tensor.device)
    if (std_t == 0).any():
        raise ValueError(f"std evaluated to zero after conversion to {dtype}, leading to division by zero.")
    if mean_t.ndim == 1:
        mean_t = mean_t.view(-1, 1, 1, 1) if volume else mean_t.view(-1, 1, 1)
    if std_t.ndim == 1:
        std_t = std_t.view(-1, 1, 1, 1) if volume else std_t.view(-1, 1, 1)
    return tensor.sub_(mean_t).div_(std_t)


def hflip(image: torch.Tensor) -> torch.Tensor:
    """torchvision's ``F.hflip`` on a tensor."""
    _log_api_usage_once(hflip)
    _assert_image_tensor(image)
    return image.flip(-1)


class Identity:
    """The ``none`` transform: returns the tensor unchanged (the seed passed ``transform=None``)."""

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return image

    def __repr__(self) -> str:
        return "Identity()"


class Normalize(nn.Module):
    """torchvision's ``transforms.Normalize``; ``volume=True`` for ``(C, Z, H, W)`` samples (see the module)."""

    def __init__(
        self, mean: Sequence[float] | float = SEED_MEAN, std: Sequence[float] | float = SEED_STD, inplace: bool = False,
        volume: bool = False,
    ) -> None:
        super().__init__()
        _log_api_usage_once(self)
        self.mean = mean
        self.std = std
        self.inplace = inplace
        self.volume = volume

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:
        return normalize(tensor, self.mean, self.std, self.inplace, volume=self.volume)

    def __repr__(self) -> str:
        volume = ", volume=True" if self.volume else ""
        return f"{self.__class__.__name__}(mean={self.mean}, std={self.std}{volume})"


class RandomHorizontalFlip(nn.Module):
    """torchvision's ``transforms.RandomHorizontalFlip``: flips with probability ``p``, drawn by ``torch.rand(1)``."""

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        _log_api_usage_once(self)
        self.p = p

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if torch.rand(1) < self.p:
            return hflip(image)
        return image

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(p={self.p})"


class RandomCrop(nn.Module):
    """A ``size`` x ``size`` window at a position drawn as torchvision's ``RandomCrop.get_params`` draws it."""

    def __init__(self, size: int) -> None:
        super().__init__()
        if size <= 0:
            raise ValueError(f"augment: crop_size must be > 0, got {size}")
        self.size = int(size)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = image.shape[-2], image.shape[-1]
        if self.size > height or self.size > width:
            raise ValueError(f"augment: crop_size {self.size} is larger than the image ({height}x{width})")
        top = torch.randint(0, height - self.size + 1, size=(1,)).item()
        left = torch.randint(0, width - self.size + 1, size=(1,)).item()
        return image[..., top : top + self.size, left : left + self.size]

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(size={self.size})"


class Compose:
    """torchvision's ``transforms.Compose``."""

    def __init__(self, transforms: list[Callable[[torch.Tensor], torch.Tensor]]) -> None:
        _log_api_usage_once(self)
        self.transforms = transforms

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        for transform in self.transforms:
            image = transform(image)
        return image

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"


def make_transform(name: str, crop_size: int = 0, volume: bool = False) -> Callable[[torch.Tensor], torch.Tensor]:
    """The transform called ``name`` (``none``, ``normalize`` or ``augment``), as the seed built it; ``volume``
    for ``(C, Z, H, W)`` samples (``Normalize`` then broadcasts per channel over Z, H and W)."""
    if crop_size < 0:
        raise ValueError(f"augment: crop_size must be >= 0, got {crop_size}")
    if name == "none":
        return Identity()
    if name == "normalize":
        return Normalize(SEED_MEAN, SEED_STD, volume=volume)
    if name == "augment":
        steps: list[Callable[[torch.Tensor], torch.Tensor]] = [RandomCrop(crop_size)] if crop_size else []
        return Compose([*steps, RandomHorizontalFlip(p=0.5), Normalize(SEED_MEAN, SEED_STD, volume=volume)])
    raise ValueError(f"unknown transform {name!r} (choose from {', '.join(TRANSFORM_NAMES)})")
