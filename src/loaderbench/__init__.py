"""loaderbench: how fast does each storage format and loading strategy feed a PyTorch model, and where does the
time go."""

from __future__ import annotations

__version__ = "0.1.0"
