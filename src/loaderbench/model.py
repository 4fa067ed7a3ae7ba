"""The models fed by the benchmarks: the seed's Track 3 CNN (an image -> a 128-d embedding), its 3-D counterpart for
volumes, and a heavier stand-in for a real backbone that ``loaderbench profile --model large`` runs."""

from __future__ import annotations

import torch
from torch import nn


class _ConvEmbedding(nn.Module):
    """Conv(C->32, k3, padding 1), ReLU, Conv(32->64, k3, padding 1), ReLU, global average pool, Linear(64->128),
    with the convolution and pooling of one dimensionality (2-D images or 3-D volumes)."""

    def __init__(self, conv: type[nn.Module], pool: type[nn.Module], in_channels: int, embedding_dim: int) -> None:
        super().__init__()
        self.features = nn.Sequential(
            conv(in_channels, 32, kernel_size=3, padding=1),
            nn.ReLU(),
            conv(32, 64, kernel_size=3, padding=1),
            nn.ReLU(),
            pool(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(64, embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` images (``(N, C, Z, H, W)`` volumes) -> ``(N, embedding_dim)`` embeddings."""
        return self.head(self.features(images))


class SimpleEmbeddingModel(_ConvEmbedding):
    """The seed's model: Conv2d(C->32, k3, padding 1), ReLU, Conv2d(32->64, k3, padding 1), ReLU, global average
    pool, Linear(64->128) (same-size feature maps: 100x100 for the seed's images).

    Small on purpose: Track 3 asks whether data loading can keep even a cheap model busy.
    """

    def __init__(self, in_channels: int = 1, embedding_dim: int = 128) -> None:
        super().__init__(nn.Conv2d, nn.AdaptiveAvgPool2d, in_channels, embedding_dim)


class SimpleEmbeddingModel3d(_ConvEmbedding):
    """The seed's model for volumes: the same layers in 3-D (Conv3d, AdaptiveAvgPool3d), so that Track 3 on
    ``[B, C, Z, H, W]`` batches asks the seed's question of a model that reads them as they come (a Conv2d cannot
    take a Z axis)."""

    def __init__(self, in_channels: int = 1, embedding_dim: int = 128) -> None:
        super().__init__(nn.Conv3d, nn.AdaptiveAvgPool3d, in_channels, embedding_dim)


def embedding_model_class(volume: bool) -> type[SimpleEmbeddingModel] | type[SimpleEmbeddingModel3d]:
    """Track 3's model for a dataset: ``SimpleEmbeddingModel``, or ``SimpleEmbeddingModel3d`` for volumes."""
    return SimpleEmbeddingModel3d if volume else SimpleEmbeddingModel


class LargeConvNet(nn.Module):
    """A heavier stand-in for a real backbone (about 4x the small model's compute at 224x224): a strided 7x7 stem,
    two 3x3 convolutions at half resolution, a strided 3x3, global average pool, a 128-d head."""

    def __init__(self, in_channels: int = 3, embedding_dim: int = 128) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3),
            nn.ReLU(),
            nn.Conv2d(64, 128, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(128, 128, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(128, 256, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(256, embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` float images -> ``(N, embedding_dim)`` embeddings."""
        return self.head(self.features(images))
