"""Progress for long work, on stderr so stdout stays the summary.

``Progress`` prints ``[elapsed] message`` lines; ``progress.task(label, total)`` follows a counted piece of work: a
tqdm bar with counts, rate and remaining time when stderr is a terminal, else a plain line at the start, at every
tenth and at the end (each with the count and the estimated time left). ``quiet=True`` silences both (tests,
``--quiet``). Code that is handed a bare callable instead of a ``Progress`` uses ``task(progress, ...)``, which
falls back to the plain lines through that callable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Task:
    """A counted piece of work in progress: ``advance(n)`` as items finish."""

    def __init__(self, label: str, total: int, unit: str, say: Callable[[str], None] | None, bar: Any = None) -> None:
        self.label, self.total, self.unit = label, max(0, int(total)), unit
        self.done = 0
        self._say, self._bar = say, bar
        self._start = time.perf_counter()
        self._next_tenth = 1
        if self._say is not None and self._bar is None:
            self._say(f"{label}: 0/{self.total} {unit}")

    def eta_s(self) -> float | None:
        """Seconds left at the rate so far (``None`` before the first item)."""
        if self.done <= 0 or self.total <= 0:
            return None
        elapsed = time.perf_counter() - self._start
        return elapsed / self.done * max(0, self.total - self.done)

    def advance(self, n: int = 1) -> None:
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        if self._say is None or self.total <= 0:
            return
        tenth = min(10, self.done * 10 // self.total)
        if tenth >= self._next_tenth and self.done < self.total:
            eta = self.eta_s()
            left = f", about {_duration(eta)} left" if eta is not None else ""
            self._say(f"{self.label}: {self.done}/{self.total} {self.unit} ({tenth * 10}%){left}")
            self._next_tenth = tenth + 1

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
        elif self._say is not None:
            took = _duration(time.perf_counter() - self._start)
            self._say(f"{self.label}: {self.done}/{self.total} {self.unit} in {took}")


class Progress:
    """Progress lines and counted tasks; ``quiet=True`` silences it (tests, ``--quiet``); ``bars`` forces the tqdm
    bars on or off (default: on when the stream is a terminal)."""

    def __init__(self, quiet: bool = False, stream: TextIO | None = None, bars: bool | None = None) -> None:
        self.quiet = quiet
        self.start = time.perf_counter()
        self.stream = stream
        self._bars = bars
        self._active_bars = 0

    def _out(self) -> TextIO:
        return self.stream if self.stream is not None else sys.stderr

    def _use_bars(self) -> bool:
        if self._bars is not None:
            return self._bars
        isatty = getattr(self._out(), "isatty", None)
        return bool(isatty and isatty())

    def __call__(self, message: str) -> None:
        if self.quiet:
            return
        elapsed = time.perf_counter() - self.start
        line = f"[{elapsed:7.1f}s] {message}"
        if self._active_bars:
            from tqdm import tqdm  # noqa: PLC0415 - only with a bar on screen

            tqdm.write(line, file=self._out())  # above the bar, which is redrawn below it
        else:
            print(line, file=self._out(), flush=True)

    @contextmanager
    def task(self, label: str, total: int, unit: str = "items") -> Iterator[Task]:
        """Follow ``total`` items of work labelled ``label`` until the block ends."""
        if self.quiet:
            item = Task(label, total, unit, None)
        elif self._use_bars():
            from tqdm import tqdm  # noqa: PLC0415 - keeps `loaderbench --help` fast

            bar = tqdm(total=total, desc=label, unit=f" {unit}", file=self._out(), leave=True, dynamic_ncols=True,
                       bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{unit} "
                                  "[{elapsed}<{remaining}, {rate_fmt}]")
            item = Task(label, total, unit, self, bar)
            self._active_bars += 1
        else:
            item = Task(label, total, unit, self)
        try:
            yield item
        finally:
            item.close()
            if item._bar is not None:
                self._active_bars -= 1


@contextmanager
def task(progress: Callable[[str], None] | None, label: str, total: int, unit: str = "items") -> Iterator[Task]:
    """``progress.task(...)`` for a ``Progress``; plain lines through any other callable; nothing for ``None``."""
    if isinstance(progress, Progress):
        with progress.task(label, total, unit) as item:
            yield item
        return
    item = Task(label, total, unit, progress)
    try:
        yield item
    finally:
        item.close()
