"""Pipeline profiler: where the time of a step goes, what speeding a stage can buy (Amdahl), and whether it did.

For your own pipeline use the stage API (:mod:`loaderbench.profile.stages`, documented in ``docs/profile.md``);
``loaderbench profile`` (:func:`run_profile`) runs it on a generated image pipeline with the seed's A/B experiments
and accelerator utilisation. Everything loads on first use, so registering the CLI command does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from loaderbench import sections

#: the models ``loaderbench profile --model`` can run: Track 3's small one, or a larger stand-in for a backbone
MODELS = ("small", "large")

_LAZY = {
    **dict.fromkeys(("Breakdown", "ProfileError", "SampleTimes", "StageShare", "StageTimer",
                     "accelerator_utilisation", "amdahl_ceiling", "amdahl_speedup", "breakdown"), "stages"),
    "run_profile": "runner",
    "ProfileOptions": "records",
    "profile_sections": "report",
}

__all__ = ["MODELS", *_LAZY]

sections.register("profile", html="loaderbench.profile.report:profile_sections", own_files=("profile_",))


def __getattr__(name: str) -> Any:
    """The stage API (torch), the runner (pandas, matplotlib) and the report section, imported on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"loaderbench.profile.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'loaderbench.profile' has no attribute {name!r}")
