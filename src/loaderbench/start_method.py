"""Calling a library that forces the process-wide multiprocessing start method without letting it stay forced.

LitData's ``optimize`` and the SOMA libraries' ``experiment_dataloader`` call ``set_start_method("spawn", force=True)``
and leave it so: every DataLoader created later in the process then spawns its workers and must pickle its dataset.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.multiprocessing


def call_keeping_start_method(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """``fn(*args, **kwargs)`` with the process's start method put back afterwards (also when ``fn`` raises); returns
    the result and the start method ``fn`` chose (``None`` when it left it alone)."""
    before = torch.multiprocessing.get_start_method()
    chosen = None
    try:
        result = fn(*args, **kwargs)
    finally:
        after = torch.multiprocessing.get_start_method()
        if after != before:
            chosen = after
            torch.multiprocessing.set_start_method(before, force=True)
    return result, chosen
