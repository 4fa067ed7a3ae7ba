"""The registry through which packages above the report contribute its extra sections (the profiler, the sparse
benchmark): each registers ``module:function`` names when its package is imported, the report resolves them only when
it renders, and ``report/`` never imports the packages themselves. Importing this module costs nothing.

A provider gives ``html(out_dir) -> [(title, html), ...]`` and ``terminal(out_dir) -> [text block, ...]`` (both empty
when ``out_dir`` holds none of its results), and names the prefixes of the result files it lays out itself, so the
generic track sections leave them alone.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SectionProvider:
    name: str
    html: str | None  # "package.module:function"
    terminal: str | None
    own_files: tuple[str, ...]  # prefixes of the result files (``<prefix>*.parquet``) this provider lays out


_PROVIDERS: dict[str, SectionProvider] = {}


def register(name: str, *, html: str | None = None, terminal: str | None = None,
             own_files: tuple[str, ...] = ()) -> None:
    """Add (or replace) provider ``name``; ``html`` and ``terminal`` are ``"module:function"`` names."""
    for ref in (html, terminal):
        if ref is not None and ref.count(":") != 1:
            raise ValueError(f"section provider {name!r}: {ref!r} is not 'module:function'")
    _PROVIDERS[name] = SectionProvider(name, html, terminal, tuple(own_files))


def _resolve(ref: str) -> Callable[[Any], list[Any]]:
    module, function = ref.split(":")
    return getattr(importlib.import_module(module), function)


def providers() -> list[SectionProvider]:
    return list(_PROVIDERS.values())


def html_sections(out_dir: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """Every provider's ``(title, html)`` sections for ``out_dir``, in registration order."""
    return [section for p in _PROVIDERS.values() if p.html for section in _resolve(p.html)(out_dir)]


def terminal_parts(out_dir: str | os.PathLike[str]) -> list[str]:
    """Every provider's text blocks for the terminal summary of ``out_dir``."""
    return [part for p in _PROVIDERS.values() if p.terminal for part in _resolve(p.terminal)(out_dir)]


def own_file_prefixes() -> tuple[str, ...]:
    """The result-file prefixes that some provider lays out in its own sections."""
    return tuple(prefix for p in _PROVIDERS.values() for prefix in p.own_files)
