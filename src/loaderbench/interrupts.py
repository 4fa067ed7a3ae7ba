"""Ctrl-C: one outcome whatever was running (exit 130, finished tracks kept, no traceback).

A terminal sends SIGINT to the whole process group, the DataLoader workers included. A worker that dies of it makes
torch raise "DataLoader worker exited unexpectedly" (a ``RuntimeError``) in the main process, and some libraries turn
the ``KeyboardInterrupt`` into an error of their own (DuckDB's ``InterruptException``) that a broad
``except Exception`` then takes for an ordinary failure. So the handler remembers that SIGINT came: the CLI reports
any error after it as the interrupt, and code that carries on after a failure calls ``raise_if_interrupted``.
Set-up that must not stop half-way runs under ``deferred()``; what finalizers report after the interrupt (objects
it left half-built) is dropped, since the cause is already reported, and so is what helper threads raise after it
(multiprocessing's resource sharer, which hands tensors' file descriptors to the workers, fails with a broken pipe
when a worker it serves has gone), and the "coroutine was never awaited" warnings of async writers cut off by it
(zarr's ``create_array``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from types import FrameType
from typing import Any

_owner_pid: int | None = None
_received = False
_deferring = 0


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    global _received
    if os.getpid() != _owner_pid:
        # A forked child (a DataLoader worker) inherits this handler: it ignores the signal and is shut down by the
        # main process, which got the same SIGINT. Dying here would print its traceback and fail the main's next().
        return
    _received = True
    # The interrupt leaves async libraries' coroutines unawaited; their RuntimeWarning at collection is its echo.
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited", category=RuntimeWarning)
    if not _deferring:  # else raised when the deferred block ends
        raise KeyboardInterrupt


def received() -> bool:
    """Whether SIGINT reached this process since ``handled()`` was entered."""
    return _received


def raise_if_interrupted() -> None:
    """Raise ``KeyboardInterrupt`` if SIGINT came: for code that would otherwise carry on after a failure."""
    if _received and os.getpid() == _owner_pid:
        raise KeyboardInterrupt


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Ctrl-C within the block takes effect when the block ends: for set-up that must not stop half-way (a
    DataLoader iterator interrupted while it starts its workers cannot shut them down: its ``__del__`` fails)."""
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring:
        raise_if_interrupted()


@contextlib.contextmanager
def handled() -> Iterator[None]:
    """Within the block, SIGINT raises ``KeyboardInterrupt`` (as by default) and is remembered; forked children
    ignore it. The previous handler comes back on exit. A no-op off the main thread (signals need it)."""
    global _owner_pid, _received, _deferring
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    previous_hook = sys.unraisablehook
    previous_thread_hook = threading.excepthook
    previous_except_hook = sys.excepthook
    _owner_pid, _received, _deferring = os.getpid(), False, 0

    def quiet_after_interrupt(report: Any) -> None:
        if not (_received or isinstance(report.exc_value, KeyboardInterrupt)):
            previous_hook(report)

    def thread_quiet_after_interrupt(args: Any) -> None:
        if not (_received or isinstance(args.exc_value, KeyboardInterrupt)):
            previous_thread_hook(args)

    # multiprocessing's resource sharer thread reports through sys.excepthook itself (not threading.excepthook):
    # a DataLoader worker shut down after Ctrl-C resets its connection (ConnectionResetError seen in CI). The same
    # thread runs in a forked worker, whose peer is the interrupted parent: the worker ignores SIGINT, so it never
    # sees _received; a lost connection to the parent is the only news of the interruption it gets.
    def except_quiet_after_interrupt(kind: Any, value: Any, traceback: Any) -> None:
        in_forked_child = os.getpid() != _owner_pid
        if _received or isinstance(value, KeyboardInterrupt):
            return
        if in_forked_child and isinstance(value, (ConnectionError, EOFError)):
            return
        previous_except_hook(kind, value, traceback)

    signal.signal(signal.SIGINT, _on_sigint)
    sys.unraisablehook = quiet_after_interrupt
    threading.excepthook = thread_quiet_after_interrupt
    sys.excepthook = except_quiet_after_interrupt
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)
        if not _received:  # else the interrupted work is freed after this: its finalizers' reports stay quiet
            sys.unraisablehook = previous_hook
            threading.excepthook = previous_thread_hook
            sys.excepthook = previous_except_hook
