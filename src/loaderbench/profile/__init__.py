"""Pipeline profiler: where the time of a step goes, what speeding a stage can buy (Amdahl), and whether it did.

For your own pipeline use the stage API (:mod:`loaderbench.profile.stages`, documented in ``docs/profile.md``);
``loaderbench profile`` (:func:`run_profile`) runs it on a generated image pipeline with the seed's A/B experiments
and accelerator utilisation. Only the light stage API is imported here; the runner loads on first use.
"""

from __future__ import annotations

from typing import Any

from loaderbench.profile.stages import (
    Breakdown,
    ProfileError,
    SampleTimes,
    StageShare,
    StageTimer,
    accelerator_utilisation,
    amdahl_ceiling,
    amdahl_speedup,
    breakdown,
)

__all__ = [
    "Breakdown",
    "ProfileError",
    "ProfileOptions",
    "SampleTimes",
    "StageShare",
    "StageTimer",
    "accelerator_utilisation",
    "amdahl_ceiling",
    "amdahl_speedup",
    "breakdown",
    "profile_sections",
    "run_profile",
]


def __getattr__(name: str) -> Any:
    """``run_profile``/``ProfileOptions``/``profile_sections`` on first use (they pull in pandas and matplotlib)."""
    if name in ("run_profile", "ProfileOptions"):
        from loaderbench.profile import runner  # noqa: PLC0415

        return getattr(runner, name)
    if name == "profile_sections":
        from loaderbench.profile.report import profile_sections  # noqa: PLC0415

        return profile_sections
    raise AttributeError(f"module 'loaderbench.profile' has no attribute {name!r}")
