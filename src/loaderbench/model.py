"""The seed's Track 3 model: a tiny CNN that turns an image into a 128-d embedding."""

from __future__ import annotations

import torch
from torch import nn


class SimpleEmbeddingModel(nn.Module):
    """Conv2d(C->32, k3), ReLU, Conv2d(32->64, k3), ReLU, global average pool, Linear(64->128).

    Small on purpose: Track 3 asks whether data loading can keep even a cheap model busy.
    """

    def __init__(self, in_channels: int = 1, embedding_dim: int = 128) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 32, kernel_size=3),
            nn.ReLU(),
            nn.Conv2d(32, 64, kernel_size=3),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
        self.head = nn.Linear(64, embedding_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(N, C, H, W)`` float images -> ``(N, embedding_dim)`` embeddings."""
        return self.head(self.features(images))
