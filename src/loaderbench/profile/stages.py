"""Stage timing for any PyTorch input pipeline: where the time of a step goes, and what speeding a stage can buy.

A :class:`StageTimer` measures named stages with ``perf_counter_ns``:

- inside ``Dataset.__getitem__``, ``with timer.sample() as times:`` opens a per-sample record and every
  ``with timer.stage("decode"):`` (or a ``@timer.timed("decode")`` function) inside it adds to that record; the
  dataset returns ``(sample, times)`` so the timings travel back with the sample, from DataLoader worker processes
  too (a worker's copy of the timer cannot report to the main process any other way);
- ``collate_fn=timer.collate`` (or ``timer.collate_with(fn)``) strips the timings from the samples, collates the
  rest and times the collate itself;
- ``for batch in timer.iterate(loader):`` times each step: the wait in ``next()`` (the data wait) and the stages
  the loop body runs in the main process (``forward``, ...). A step lasts from one ``next()`` to the next.

:meth:`StageTimer.breakdown` turns the steps into each stage's share of the step and its Amdahl ceiling
``1 / (1 - share)`` (the most that making the stage free could gain). With ``num_workers=0`` every stage runs in the
step (serial) and the shares add up to the step time, the remainder named ``loader_overhead`` (inside ``next()``
but in no stage) and ``other`` (in the loop body but in no stage). With workers the per-sample stages run in parallel
in the workers: their shares are of the *worker* time per batch (scope ``worker``) and the main process sees them
only as ``data_wait`` (scope ``step``).
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ParamSpec, TypeVar

import numpy as np
from torch.utils.data import default_collate, get_worker_info

P = ParamSpec("P")
R = TypeVar("R")

#: bucket names the breakdown computes itself; a user stage may not take them
DATA_WAIT, LOADER_OVERHEAD, COLLATE, OTHER = "data_wait", "loader_overhead", "collate", "other"
RESERVED = (DATA_WAIT, LOADER_OVERHEAD, COLLATE, OTHER)
#: scopes of a share: of the main-process step, or of the workers' time per batch
STEP, WORKER = "step", "worker"


class ProfileError(ValueError):
    """A profile that cannot be measured or computed; the message says why in words."""


class SampleTimes(dict[str, int]):
    """One sample's stage durations in ns. Return it as the last element of ``__getitem__``'s tuple."""


@dataclass
class TimedBatch:
    """What ``timer.collate`` hands the main loop: the collated data and the timings that came with it."""

    data: Any
    samples: list[dict[str, int]]
    collate_ns: int | None
    worker_id: int | None
    size: int


@dataclass
class StepRecord:
    """One step of the main loop: its wall time, the ``next()`` wait, and the stages that made the batch and used it."""

    step_ns: int
    wait_ns: int
    samples: list[dict[str, int]]
    collate_ns: int | None
    main: dict[str, int]
    worker_id: int | None
    size: int


@dataclass(frozen=True)
class StageShare:
    """One stage's part of the step (scope ``step``) or of the workers' time per batch (scope ``worker``).

    ``kind`` is ``sample`` (timed per sample), ``batch`` (once per batch: collate, main-loop stages) or ``residual``
    (time no stage covers: ``loader_overhead``, ``other``, ``data_wait``).
    """

    stage: str
    scope: str
    kind: str
    total_ms: float
    per_batch_ms: float
    per_sample_mean_ms: float
    per_sample_p50_ms: float
    share: float
    amdahl_ceiling: float


def amdahl_ceiling(share: float) -> float:
    """``1 / (1 - share)``: the speedup of the whole if a stage taking ``share`` of it became free (inf at 1)."""
    if not 0.0 <= share <= 1.0 or math.isnan(share):
        raise ProfileError(f"a stage's share must lie in [0, 1], got {share!r}")
    return math.inf if share >= 1.0 else 1.0 / (1.0 - share)


def amdahl_speedup(share: float, stage_speedup: float) -> float:
    """Amdahl's law: the whole's speedup when a stage taking ``share`` of it runs ``stage_speedup`` times faster."""
    amdahl_ceiling(share)  # validates the share
    if not stage_speedup > 0:
        raise ProfileError(f"a stage speedup must be > 0, got {stage_speedup!r}")
    return 1.0 / ((1.0 - share) + share / stage_speedup)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ProfileError(f"a stage needs a non-empty name, got {name!r}")
    if name in RESERVED:
        raise ProfileError(f"stage name {name!r} is reserved (the breakdown computes {', '.join(RESERVED)} itself)")
    return name


def breakdown(stage_ns: Mapping[str, float], total_ns: float | None = None) -> list[StageShare]:
    """Shares and Amdahl ceilings of stages given as total durations (ns), e.g. measured by your own timers.

    ``total_ns`` is the whole they are part of (default: their sum); time in no stage becomes an ``other`` row.
    Raises :class:`ProfileError` for no stages, a stage with zero (or negative) time, or stages longer than the total.
    """
    if not stage_ns:
        raise ProfileError("no stage timings to break down (nothing was measured: is the dataset empty?)")
    for name, value in stage_ns.items():
        _check_name(name)
        if not value > 0:
            raise ProfileError(f"stage {name!r} has zero recorded time: it never ran, or ran faster than the clock")
    summed = float(sum(stage_ns.values()))
    total = summed if total_ns is None else float(total_ns)
    if total < summed * (1 - 1e-9):
        raise ProfileError(f"the stages add up to {summed / 1e6:.3f} ms, more than the total {total / 1e6:.3f} ms")
    rows = [(name, float(value), "batch") for name, value in stage_ns.items()]
    if total - summed > 0:
        rows.append((OTHER, total - summed, "residual"))
    return [_share(name, STEP, kind, value, total, 1, 0, []) for name, value, kind in rows]


def _share(
    name: str, scope: str, kind: str, total_ns: float, whole_ns: float, batches: int, samples: int,
    per_sample_ns: Sequence[int],
) -> StageShare:  # fmt: skip
    share = min(max(total_ns / whole_ns, 0.0), 1.0)
    per_sample = np.asarray(per_sample_ns, dtype=np.float64) / 1e6
    return StageShare(
        stage=name,
        scope=scope,
        kind=kind,
        total_ms=total_ns / 1e6,
        per_batch_ms=total_ns / 1e6 / max(batches, 1),
        per_sample_mean_ms=total_ns / 1e6 / samples if samples else math.nan,
        per_sample_p50_ms=float(np.median(per_sample)) if per_sample.size else math.nan,
        share=share,
        amdahl_ceiling=amdahl_ceiling(share),
    )


@dataclass(frozen=True)
class Breakdown:
    """Where the time of the recorded steps went.

    ``parallel`` is true when batches came from DataLoader workers. ``coverage`` is the part of the step time that
    named stages (and, in parallel mode, the data wait) explain; ``rows`` hold the shares (see :class:`StageShare`).
    """

    parallel: bool
    steps: int
    samples: int
    step_total_ms: float
    step_mean_ms: float
    step_p50_ms: float
    data_wait_share: float
    worker_total_ms: float
    coverage: float
    rows: tuple[StageShare, ...] = field(default_factory=tuple)

    def share(self, stage: str, scope: str = STEP) -> float:
        """The share of ``stage`` in ``scope`` (``step`` or ``worker``); raises when it was not measured there."""
        for row in self.rows:
            if row.stage == stage and row.scope == scope:
                return row.share
        raise ProfileError(f"stage {stage!r} was not measured in scope {scope!r}")

    def row(self, stage: str, scope: str = STEP) -> StageShare:
        """The :class:`StageShare` of ``stage`` in ``scope``."""
        for row in self.rows:
            if row.stage == stage and row.scope == scope:
                return row
        raise ProfileError(f"stage {stage!r} was not measured in scope {scope!r}")

    def records(self) -> list[dict[str, Any]]:
        """The rows as plain dicts (one per stage and scope), for a DataFrame."""
        return [row.__dict__.copy() for row in self.rows]

    def format(self) -> str:
        """A plain-text table: stage, scope, per-sample and per-batch ms, share and Amdahl ceiling."""
        mode = "parallel (DataLoader workers)" if self.parallel else "serial (num_workers=0)"
        lines = [
            f"{self.steps} steps, {self.samples} samples, step p50 {self.step_p50_ms:.2f} ms, {mode}",
            f"{'stage':<16} {'scope':<7} {'ms/sample':>10} {'ms/batch':>10} {'share':>7} {'ceiling':>8}",
        ]
        for row in self.rows:
            per_sample = "-" if math.isnan(row.per_sample_mean_ms) else f"{row.per_sample_mean_ms:.3f}"
            lines.append(
                f"{row.stage:<16} {row.scope:<7} {per_sample:>10} {row.per_batch_ms:>10.3f} "
                f"{row.share * 100:>6.1f}% {row.amdahl_ceiling:>7.2f}x"
            )
        return "\n".join(lines)


def _check_nonzero(totals: Mapping[str, int], where: str) -> None:
    for name, value in totals.items():
        if value <= 0:
            raise ProfileError(
                f"stage {name!r} has zero recorded time {where}: it never ran, or ran faster than the clock"
            )


def breakdown_steps(steps: Sequence[StepRecord]) -> Breakdown:
    """The :class:`Breakdown` of recorded steps (see the module docstring for serial vs parallel)."""
    if not steps:
        raise ProfileError("no steps were recorded: the loader yielded no batch (is the dataset empty?)")
    step_ns = np.asarray([s.step_ns for s in steps], dtype=np.int64)
    step_total = int(step_ns.sum())
    if step_total <= 0:
        raise ProfileError("the recorded steps took no time at all")
    parallel = any(s.worker_id is not None for s in steps)
    n_samples = sum(s.size for s in steps)
    per_sample: dict[str, list[int]] = {}
    for step in steps:
        for sample in step.samples:
            for name, value in sample.items():
                per_sample.setdefault(name, []).append(value)
    sample_totals = {name: sum(values) for name, values in per_sample.items()}
    main_totals: dict[str, int] = {}
    for step in steps:
        for name, value in step.main.items():
            main_totals[name] = main_totals.get(name, 0) + value
    _check_nonzero(sample_totals, "in the samples")
    _check_nonzero(main_totals, "in the main loop")
    collated = any(s.collate_ns is not None for s in steps)
    collate_total = sum(s.collate_ns or 0 for s in steps)
    wait_total = sum(s.wait_ns for s in steps)
    data_total = sum(sample_totals.values()) + collate_total
    main_sum = sum(main_totals.values())
    other = max(step_total - wait_total - main_sum, 0)
    batches = len(steps)

    def share(name: str, scope: str, kind: str, total: float, whole: float, values: Sequence[int] = ()) -> StageShare:
        return _share(name, scope, kind, total, whole, batches, n_samples, values)

    rows: list[StageShare] = []
    if not parallel:
        for name, total in sample_totals.items():
            rows.append(share(name, STEP, "sample", total, step_total, per_sample[name]))
        if collated:
            rows.append(share(COLLATE, STEP, "batch", collate_total, step_total))
        rows.append(share(LOADER_OVERHEAD, STEP, "residual", max(wait_total - data_total, 0), step_total))
        named = data_total + main_sum
    else:
        rows.append(share(DATA_WAIT, STEP, "residual", wait_total, step_total))
        named = wait_total + main_sum
    for name, total in main_totals.items():
        rows.append(share(name, STEP, "batch", total, step_total))
    rows.append(share(OTHER, STEP, "residual", other, step_total))
    if parallel and data_total > 0:
        for name, total in sample_totals.items():
            rows.append(share(name, WORKER, "sample", total, data_total, per_sample[name]))
        if collated:
            rows.append(share(COLLATE, WORKER, "batch", collate_total, data_total))
    return Breakdown(
        parallel=parallel,
        steps=batches,
        samples=n_samples,
        step_total_ms=step_total / 1e6,
        step_mean_ms=step_total / 1e6 / batches,
        step_p50_ms=float(np.median(step_ns)) / 1e6,
        data_wait_share=wait_total / step_total,
        worker_total_ms=data_total / 1e6,
        coverage=min(named / step_total, 1.0),
        rows=tuple(rows),
    )


def accelerator_utilisation(steps: Sequence[StepRecord], compute_stage: str = "compute", skip_first: int = 1) -> float:
    """AU as DLIO / MLPerf Storage define it: total compute time / wall time, excluding the first ``skip_first`` steps.

    Steps recorded by :meth:`StageTimer.iterate` follow each other without gaps, so their summed durations are the
    wall time from the end of the first step to the end of the last.
    """
    timed = list(steps[skip_first:])
    if not timed:
        raise ProfileError(f"AU needs at least one step after the first {skip_first} (got {len(steps)} in all)")
    wall = sum(s.step_ns for s in timed)
    compute = sum(s.main.get(compute_stage, 0) for s in timed)
    if compute <= 0:
        raise ProfileError(f"no {compute_stage!r} stage was timed in the main loop: nothing to call compute time")
    return compute / wall


class _TimedCollate:
    """A picklable collate_fn (workers may be spawned): strips ``SampleTimes`` off the samples, collates the rest."""

    def __init__(self, fn: Callable[[list[Any]], Any]) -> None:
        self.fn = fn

    def __call__(self, batch: list[Any]) -> TimedBatch:
        samples: list[dict[str, int]] = []
        data: list[Any] = []
        for item in batch:
            if isinstance(item, tuple) and item and isinstance(item[-1], SampleTimes):
                samples.append(dict(item[-1]))
                rest = item[:-1]
                data.append(rest[0] if len(rest) == 1 else rest)
            else:
                data.append(item)
        start = time.perf_counter_ns()
        collated = self.fn(data)
        collate_ns = time.perf_counter_ns() - start
        info = get_worker_info()
        return TimedBatch(collated, samples, collate_ns, info.id if info is not None else None, len(batch))


def _batch_size(data: Any) -> int:
    from loaderbench.tracks.common import batch_len  # noqa: PLC0415 - only for batches that did not come via collate

    try:
        return batch_len(data)
    except (TypeError, StopIteration, IndexError):
        return 1


class StageTimer:
    """Times named stages per sample (in ``Dataset.__getitem__``, also in DataLoader workers) and per step.

    Thread-safe: the open sample, step and stage are per thread; finished steps are appended under a lock.
    Stages must not nest (their time would count twice). A stage run outside any sample or step is kept in
    ``loose`` (name -> list of ns), e.g. a decorated function called on its own.
    """

    def __init__(self) -> None:
        self.steps: list[StepRecord] = []
        self.loose: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    # Workers started by spawn pickle the dataset and its timer: locks and thread-locals are rebuilt there.
    def __getstate__(self) -> dict[str, Any]:
        return {"steps": [], "loose": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__()  # type: ignore[misc]

    def reset(self) -> None:
        """Forget every recorded step and loose stage."""
        with self._lock:
            self.steps = []
            self.loose = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time the ``with`` body as stage ``name`` (added to the open sample, else the open step, else ``loose``)."""
        _check_name(name)
        local = self._local
        active = getattr(local, "active", None)
        if active is not None:
            raise ProfileError(f"stage {name!r} opened inside stage {active!r}: stages must not nest")
        local.active = name
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            elapsed = time.perf_counter_ns() - start
            local.active = None
            target = getattr(local, "sample", None)
            if target is None:
                target = getattr(local, "step", None)
            if target is not None:
                target[name] = target.get(name, 0) + elapsed
            else:
                with self._lock:
                    self.loose.setdefault(name, []).append(elapsed)

    def timed(self, name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
        """Decorator: every call of the function is timed as stage ``name``."""
        _check_name(name)

        def decorate(fn: Callable[P, R]) -> Callable[P, R]:
            @functools.wraps(fn)
            def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
                with self.stage(name):
                    return fn(*args, **kwargs)

            return wrapper

        return decorate

    @contextmanager
    def sample(self) -> Iterator[SampleTimes]:
        """Open one sample's record; return it from ``__getitem__`` as the last element: ``return x, times``."""
        local = self._local
        if getattr(local, "sample", None) is not None:
            raise ProfileError("timer.sample() opened inside another sample")
        times = SampleTimes()
        local.sample = times
        try:
            yield times
        finally:
            local.sample = None

    @property
    def collate(self) -> Callable[[list[Any]], TimedBatch]:
        """A ``collate_fn`` using torch's ``default_collate`` for the data (see :meth:`collate_with`)."""
        return _TimedCollate(default_collate)

    def collate_with(self, fn: Callable[[list[Any]], Any]) -> Callable[[list[Any]], TimedBatch]:
        """A ``collate_fn`` that strips the ``SampleTimes`` off each sample, then times ``fn`` on the rest."""
        return _TimedCollate(fn)

    def iterate(self, loader: Iterable[Any]) -> Iterator[Any]:
        """Yield the data of each batch of ``loader`` and record one :class:`StepRecord` per batch.

        The step runs from the ``next()`` that fetched its batch to the ``next()`` after the loop body (or the end
        of the loop); stages the body runs are added to the step.
        """
        step_start = time.perf_counter_ns()  # the first step includes starting the iterator (workers)
        iterator = iter(loader)
        local = self._local
        while True:
            try:
                item = next(iterator)
            except StopIteration:
                return
            got = time.perf_counter_ns()
            if isinstance(item, TimedBatch):
                data, samples, collate_ns, worker_id, size = (
                    item.data, item.samples, item.collate_ns, item.worker_id, item.size,
                )  # fmt: skip
            else:
                data, samples, collate_ns, worker_id, size = item, [], None, None, _batch_size(item)
            main: dict[str, int] = {}
            local.step = main
            try:
                yield data
            finally:
                end = time.perf_counter_ns()
                local.step = None
                record = StepRecord(end - step_start, got - step_start, samples, collate_ns, main, worker_id, size)
                with self._lock:
                    self.steps.append(record)
                step_start = end

    def breakdown(self, skip_first: int = 0) -> Breakdown:
        """The :class:`Breakdown` of the recorded steps, leaving out the first ``skip_first`` (warm-up)."""
        with self._lock:
            steps = list(self.steps)
        if steps and len(steps) <= skip_first:
            raise ProfileError(f"only {len(steps)} step(s) recorded, all of them skipped as warm-up ({skip_first})")
        return breakdown_steps(steps[skip_first:])


__all__ = [
    "COLLATE",
    "DATA_WAIT",
    "LOADER_OVERHEAD",
    "OTHER",
    "Breakdown",
    "ProfileError",
    "SampleTimes",
    "StageShare",
    "StageTimer",
    "StepRecord",
    "TimedBatch",
    "accelerator_utilisation",
    "amdahl_ceiling",
    "amdahl_speedup",
    "breakdown",
    "breakdown_steps",
]
