"""loaderbench: how fast does each storage format and loading strategy feed a PyTorch model, and where does the
time go."""

from __future__ import annotations

__version__ = "0.1.0"

# The packages that add sections to the report register them here (cheap: their __init__ holds names only).
from loaderbench import profile as _profile  # noqa: E402, F401
from loaderbench import sparse as _sparse  # noqa: E402, F401
