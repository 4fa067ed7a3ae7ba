"""Progress lines for long work, on stderr so stdout stays the summary."""

from __future__ import annotations

import sys
import time


class Progress:
    """Prints ``[elapsed] message`` lines; ``quiet=True`` silences it (tests, ``--quiet``)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.perf_counter() - self.start
            print(f"[{elapsed:7.1f}s] {message}", file=sys.stderr, flush=True)
