"""Block specs in the seed's grammar, and the block-shuffle order the seed's data pipe used.

Grammar (arrayloader-benchmarks ``BlockSpec.parse``):

- ``'C'``: chunks of ``C`` rows, one chunk per block;
- ``'NxC'``: ``N`` chunks of ``C`` rows per block (block = ``N * C`` rows);
- ``'B / K'``: blocks of ``B`` rows split into ``K`` chunks (``B`` must be a multiple of ``K``);
- ``'B / [a, b]'``: one spec per power of two ``K`` from ``a`` to ``b`` (``'8192 / [1, 512]'`` = 8,192-row blocks in
  1, 2, 4 ... 512 chunks); ``a > b`` lists them in reverse.

Block shuffle (cellxgene-census ``ExperimentDataPipe``): the rows are cut into chunks of ``chunk_size`` contiguous
rows, the chunk order is shuffled, and the rows of every ``chunks_per_block`` consecutive chunks are concatenated and
permuted together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

SHUFFLES = ("none", "block", "random")

_CHUNKS_RGX = re.compile(r"\s*(?:(?P<chunks>\d+)\s*x\s*)?(?P<chunk_size>\d+)\s*")
_BLOCK_RGX = re.compile(
    r"\s*(?P<block_size>\d+)\s*/\s*(?:(?P<chunks>\d+)|\[\s*(?P<start>\d+)\s*,\s*(?P<stop>\d+)\s*\])\s*"
)


class BlockSpecError(ValueError):
    """A block spec that does not parse or does not fit the data."""


@dataclass(frozen=True)
class BlockSpec:
    """``chunks_per_block`` chunks of ``chunk_size`` contiguous rows, shuffled together (``block_size`` rows)."""

    chunk_size: int
    chunks_per_block: int

    @property
    def block_size(self) -> int:
        return self.chunk_size * self.chunks_per_block

    def __str__(self) -> str:
        return f"{self.chunks_per_block}x{self.chunk_size}"

    def check_fits(self, n_rows: int, where: str = "the data") -> None:
        """Raise ``BlockSpecError`` when a chunk is larger than the data (``n_rows`` rows)."""
        if self.chunk_size > n_rows:
            raise BlockSpecError(
                f"block spec {self}: chunk size {self.chunk_size} is larger than {where} ({n_rows} rows)"
            )


def powers_of_two(start: int, stop: int) -> list[int]:
    """``start, 2*start, 4*start ...`` up to ``stop`` (inclusive), as the seed's ``pows``."""
    values = []
    while start <= stop:
        values.append(start)
        start *= 2
    return values


def _make(text: str, chunks: int, *, chunk_size: int = 0, block_size: int = 0) -> BlockSpec:
    if chunks < 1 or chunk_size < 0 or block_size < 0 or (chunk_size == 0 and block_size == 0):
        raise BlockSpecError(f"invalid block spec {text!r}: sizes must be >= 1")
    if block_size:
        if block_size % chunks:
            raise BlockSpecError(
                f"invalid block spec {text!r}: block size {block_size} is not a multiple of {chunks} chunks"
            )
        chunk_size = block_size // chunks
    if chunk_size < 1:
        raise BlockSpecError(f"invalid block spec {text!r}: sizes must be >= 1")
    return BlockSpec(chunk_size=chunk_size, chunks_per_block=chunks)


def parse_block_spec(text: str) -> list[BlockSpec]:
    """The specs one string stands for (see the module docstring); ``BlockSpecError`` naming the string if not."""
    match = _CHUNKS_RGX.fullmatch(text)
    if match:
        return [_make(text, int(match["chunks"] or 1), chunk_size=int(match["chunk_size"]))]
    match = _BLOCK_RGX.fullmatch(text)
    if match:
        block_size = int(match["block_size"])
        if match["chunks"] is not None:
            return [_make(text, int(match["chunks"]), block_size=block_size)]
        start, stop = int(match["start"]), int(match["stop"])
        reverse = start > stop
        low, high = (stop, start) if reverse else (start, stop)
        if low < 1:
            raise BlockSpecError(f"invalid block spec {text!r}: chunk counts must be >= 1")
        specs = [_make(text, k, block_size=block_size) for k in powers_of_two(low, high)]
        return specs[::-1] if reverse else specs
    raise BlockSpecError(
        f"invalid block spec {text!r}: expected 'C' (chunk size), 'NxC' (N chunks of C rows), "
        "'B / K' (B-row blocks in K chunks) or 'B / [a, b]' (K = a, 2a, 4a ... b)"
    )


def parse_block_specs(texts: Iterable[str]) -> list[BlockSpec]:
    """All specs of several strings, in order, without duplicates."""
    specs: list[BlockSpec] = []
    for text in texts:
        for spec in parse_block_spec(text):
            if spec not in specs:
                specs.append(spec)
    return specs


def epoch_rng(seed: int, epoch: int) -> np.random.Generator:
    """The numpy generator of one epoch (seeded by ``seed`` and ``epoch``)."""
    return np.random.default_rng([seed, epoch])


def block_groups(
    n_rows: int, spec: BlockSpec, shuffle: str, seed: int = 0, epoch: int = 0
) -> Iterator[np.ndarray]:
    """The row ids of each block, in the order they are read and yielded.

    ``none``: blocks of ``block_size`` rows in order; ``block``: the seed's block shuffle; ``random``: one global
    permutation cut into ``block_size`` pieces. Every row exactly once.
    """
    if shuffle not in SHUFFLES:
        raise ValueError(f"shuffle must be one of {SHUFFLES}, got {shuffle!r}")
    spec.check_fits(n_rows)
    block = spec.block_size
    if shuffle == "none":
        for start in range(0, n_rows, block):
            yield np.arange(start, min(n_rows, start + block), dtype=np.int64)
        return
    rng = epoch_rng(seed, epoch)
    if shuffle == "random":
        order = rng.permutation(n_rows)
        for start in range(0, n_rows, block):
            yield order[start : start + block]
        return
    starts = np.arange(0, n_rows, spec.chunk_size, dtype=np.int64)
    starts = starts[rng.permutation(len(starts))]
    for first in range(0, len(starts), spec.chunks_per_block):
        chosen = starts[first : first + spec.chunks_per_block]
        rows = np.concatenate([np.arange(s, min(n_rows, s + spec.chunk_size), dtype=np.int64) for s in chosen])
        yield rng.permutation(rows)


def epoch_order(n_rows: int, spec: BlockSpec, shuffle: str, seed: int = 0, epoch: int = 0) -> np.ndarray:
    """The whole epoch's row order (``block_groups`` concatenated)."""
    groups = list(block_groups(n_rows, spec, shuffle, seed, epoch))
    return np.concatenate(groups) if groups else np.empty(0, dtype=np.int64)


def runs(sorted_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, stops)`` of the maximal runs of consecutive integers in sorted unique ``sorted_ids``."""
    if sorted_ids.size == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty
    breaks = np.flatnonzero(np.diff(sorted_ids) != 1) + 1
    starts = sorted_ids[np.concatenate(([0], breaks))]
    stops = sorted_ids[np.concatenate((breaks - 1, [sorted_ids.size - 1]))] + 1
    return starts.astype(np.int64), stops.astype(np.int64)
