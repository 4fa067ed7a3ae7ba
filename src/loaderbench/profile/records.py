"""What a profile run measured, as plain records: the options, each loop's spec and repeats, and the run.

Both the runner (which fills them) and the analysis and output (which read them) import this module, so neither
needs the other: runner -> output -> analysis -> records, with no cycle.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from loaderbench.profile import MODELS
from loaderbench.profile.decoders import DECODERS, FORMATS
from loaderbench.profile.pipeline import PipelineData, PipelineSpec
from loaderbench.profile.stages import Breakdown, ProfileError, StepRecord, breakdown_steps

MODEL, SLEEP = "model", "sleep"
DISK, RAM = "disk", "ram"
#: the main-loop stage names of the two kinds of loop
FORWARD, COMPUTE = "forward", "compute"


@dataclass(frozen=True)
class ProfileOptions:
    """Everything ``loaderbench profile`` can be told. The defaults finish in about 1-2 minutes on 2 cores."""

    out: Path = Path("results")  # beside `loaderbench run`: one report.html for both
    data_dir: Path = Path("data/profile")
    n_images: int = 64
    height: int = 640
    width: int = 640
    image_format: str = "jpeg"
    resize: int = 224
    batch_size: int = 8
    workers: tuple[int, ...] = (0, 2)
    prefetch: tuple[int, ...] = (2, 4)
    compute_ms: float = 50.0
    au_threshold_pct: float = 90.0
    model: str = "small"
    decoder: str = "pil"
    steps: int = 5
    warmup_steps: int = 1
    repeats: int = 3
    seed: int = 0

    @classmethod
    def quick(cls, **overrides: Any) -> ProfileOptions:
        """A smoke-test size (well under a minute): smaller images, fewer steps; same experiments."""
        base = {"n_images": 24, "height": 320, "width": 320, "resize": 112, "batch_size": 4, "steps": 4}
        return cls(**{**base, **overrides})

    def validated(self) -> tuple[ProfileOptions, list[str]]:
        """A checked copy (workers sorted, 0 added: the serial baseline is needed) and notes on what was changed.

        Raises :class:`ProfileError` with one clear sentence for a value that cannot work.
        """
        checks = (
            (self.n_images >= 1, "empty dataset: --n-images must be at least 1"),
            (min(self.height, self.width) >= 16, "--size must be at least 16x16"),
            (self.resize >= 8, "--resize must be at least 8"),
            (self.batch_size >= 1, "--batch-size must be at least 1"),
            (self.steps >= 1, "--steps must be at least 1 (timed steps after the warm-up)"),
            (self.warmup_steps >= 1, "at least 1 warm-up step is needed (AU excludes the first step)"),
            (self.repeats >= 1, "--repeats must be at least 1"),
            (all(w >= 0 for w in self.workers) and self.workers, "--workers must be counts >= 0"),
            (all(p >= 1 for p in self.prefetch) and self.prefetch, "--prefetch must be counts >= 1"),
            (self.compute_ms > 0, "--compute-ms must be > 0 (the emulated accelerator's time per step)"),
            (0 < self.au_threshold_pct <= 100, "--au-threshold is a percentage in (0, 100]"),
            (self.image_format in FORMATS, f"--format must be one of {', '.join(FORMATS)}"),
            (self.model in MODELS, f"--model must be one of {', '.join(MODELS)}"),
            (self.decoder in DECODERS, f"--decoder must be one of {', '.join(DECODERS)}"),
        )
        for ok, message in checks:
            if not ok:
                raise ProfileError(message)
        notes = []
        workers = tuple(sorted(set(self.workers) | {0}))
        if 0 not in self.workers:
            notes.append("num_workers=0 added: the serial baseline gives the stage shares the predictions use")
        return replace(self, workers=workers, prefetch=tuple(sorted(set(self.prefetch)))), notes

    def spec(self) -> PipelineSpec:
        """The generated data's spec."""
        return PipelineSpec(self.n_images, self.height, self.width, self.image_format, seed=self.seed)

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly (paths as text)."""
        out = asdict(self)
        out.update(out=str(self.out), data_dir=str(self.data_dir))
        return out


@dataclass(frozen=True)
class LoopSpec:
    """One measured configuration."""

    label: str
    compute: str  # MODEL or SLEEP
    num_workers: int = 0
    prefetch_factor: int | None = None
    maps: str = DISK
    decoder: str = "pil"
    cached: bool = False


@dataclass
class RepeatResult:
    """One repeat of a loop: its breakdown (timed steps only) and the figures around it."""

    breakdown: Breakdown
    steps: list[StepRecord]
    first_step_ms: float
    samples_per_s: float
    au: float
    preload_s: float = math.nan
    cache_mb: float = math.nan
    preload_uss_mb: float = math.nan
    peak_uss_mb: float = math.nan
    peak_pss_mb: float = math.nan
    worker_uss_mb: float = math.nan
    worker_pss_mb: float = math.nan


@dataclass
class LoopResult:
    """A loop's repeats and the breakdown of all their timed steps pooled."""

    spec: LoopSpec
    repeats: list[RepeatResult]
    seconds: float
    pooled: Breakdown = field(init=False)

    def __post_init__(self) -> None:
        self.pooled = breakdown_steps([s for r in self.repeats for s in r.steps])

    def values(self, name: str) -> np.ndarray:
        """The per-repeat values of a ``RepeatResult`` attribute."""
        return np.asarray([getattr(r, name) for r in self.repeats], dtype=np.float64)

    def median(self, name: str) -> float:
        """Median across repeats of a ``RepeatResult`` attribute (NaN when never measured)."""
        values = self.values(name)
        values = values[~np.isnan(values)]
        return float(np.median(values)) if values.size else math.nan

    def shares(self, stage: str, scope: str = "step") -> np.ndarray:
        """Per-repeat shares of ``stage`` (NaN where a repeat did not measure it)."""
        out = []
        for r in self.repeats:
            try:
                out.append(r.breakdown.share(stage, scope))
            except ProfileError:
                out.append(math.nan)
        return np.asarray(out, dtype=np.float64)


@dataclass
class ProfileRun:
    """Everything ``run_profile`` measured, before it is turned into tables."""

    options: ProfileOptions
    data: PipelineData
    loops: dict[str, LoopResult]
    decoders: dict[str, dict[str, Any]]
    roles: dict[str, str]
    notes: list[str]
    usable_cores: int
    seconds: float = 0.0
