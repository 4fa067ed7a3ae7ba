"""The native image loader: Arrow buffers read in place by the C++ core, batches assembled on its own threads
(GIL released), handed over as torch tensors by DLPack.

``NativeImageLoader`` is an iterable of ready batches with torch's argument names, usable directly or as
``DataLoader(loader, batch_size=None)``; ``loader[i]`` gives one sample (map-style).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import IterableDataset

from loaderbench import _core

# Threads share each batch, so two batches ahead keep them all busy.
DEFAULT_PREFETCH = 2
_OUTPUT_TYPES = {torch.float32: _core.OutputType.float32, torch.float16: _core.OutputType.float16,
                 torch.uint8: _core.OutputType.uint8}
_SAMPLERS = {"sequential": _core.SamplerKind.sequential, "random": _core.SamplerKind.random,
             "block": _core.SamplerKind.block}


def open_arrow_source(source: Any, format_name: str | None = None) -> Any:
    """An ``__arrow_c_stream__`` object for ``source``: itself, or read from a path of an Arrow-backed format."""
    if hasattr(source, "__arrow_c_stream__"):
        return source
    if isinstance(source, (str, Path)):
        from loaderbench.formats import detect_format, get_format  # noqa: PLC0415

        path = Path(source)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file or directory")
        module = get_format(format_name or detect_format(path))
        if module.INFO.kind != "table":
            raise ValueError(f"{path}: {module.INFO.label} is not Arrow-backed; the native loader reads Arrow formats")
        return module.read_table(path)
    raise TypeError(f"expected a path or an object with __arrow_c_stream__, got {type(source).__name__}")


class NativeImageLoader(IterableDataset):
    """Batches ``[B, C, H, W]`` (``[B, C, Z, H, W]`` for volumes) of an OME-Arrow image column.

    Args mirror torch's: ``batch_size``, ``shuffle`` (random permutation per epoch), ``drop_last``, ``seed``,
    ``num_threads`` (C++ workers, sharing each batch), ``prefetch`` (batches assembled ahead; 0 = only when asked
    for, the least memory), ``rank``/``world_size`` (``DistributedSampler`` semantics: equal counts per rank,
    padded unless ``drop_last``). ``sampler`` overrides
    ``shuffle`` with ``"sequential"``, ``"random"`` or ``"block"`` (contiguous blocks of ``block_size`` rows, the rows
    of ``buffer_blocks`` blocks shuffled together). Conversion: ``dtype`` (float32, float16, uint8; ``None`` = no
    conversion, samples are zero-copy views of the stored pixels), ``scale`` to [0, 1], ``mean``/``std`` per
    channel, ``random_hflip``/``random_vflip``, ``crop_size`` (random crop, or centre crop with
    ``random_crop=False``). The same seed gives the same order and augmentations whatever ``num_threads``; each
    ``iter()`` runs the next epoch unless ``set_epoch`` fixes it. An ``IterableDataset``, so
    ``DataLoader(loader, batch_size=None, num_workers=0)`` passes its batches through unchanged.
    """

    def __init__(
        self,
        source: Any,
        *,
        batch_size: int = 1,
        shuffle: bool = False,
        drop_last: bool = False,
        seed: int = 0,
        num_threads: int = 1,
        prefetch: int | None = None,
        rank: int = 0,
        world_size: int = 1,
        sampler: str | None = None,
        block_size: int = 1,
        buffer_blocks: int = 1,
        dtype: torch.dtype | None = torch.float32,
        scale: bool = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        random_hflip: bool = False,
        random_vflip: bool = False,
        crop_size: int | tuple[int, int] | None = None,
        random_crop: bool = True,
        column: str = "ome_image",
        format: str | None = None,  # noqa: A002 - the dataset's format name, as on the CLI
    ) -> None:
        self.dataset = _core.ImageDataset(open_arrow_source(source, format), column)
        if dtype is not None and dtype not in _OUTPUT_TYPES:
            raise ValueError(f"dtype must be one of {list(_OUTPUT_TYPES)} or None, got {dtype}")
        kind = sampler or ("random" if shuffle else "sequential")
        if kind not in _SAMPLERS:
            raise ValueError(f"sampler must be one of {list(_SAMPLERS)}, got {kind!r}")
        self.dtype = dtype
        options = _core.LoaderOptions()
        options.batch_size = batch_size
        options.drop_last = drop_last
        options.num_threads = num_threads
        options.prefetch = DEFAULT_PREFETCH if prefetch is None else prefetch
        sampling = _core.SamplerOptions()
        sampling.kind = _SAMPLERS[kind]
        sampling.seed = seed
        sampling.block_size = block_size
        sampling.buffer_blocks = buffer_blocks
        sampling.rank = rank
        sampling.world_size = world_size
        sampling.drop_last = drop_last
        options.sampler = sampling
        transform = _core.TransformOptions()
        transform.output = _OUTPUT_TYPES[dtype or torch.float32]
        transform.scale = scale
        transform.mean = list(mean or [])
        transform.std = list(std or [])
        transform.random_hflip = random_hflip
        transform.random_vflip = random_vflip
        if crop_size:
            crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
            transform.crop_height, transform.crop_width = crop_h, crop_w
        transform.random_crop = random_crop
        transform.seed = seed
        self.options = options
        self.transform = transform
        self._rows = self.dataset.rows(transform)  # validates the transform against the images
        self._batches = self._rows.batches_per_epoch(options)
        self._pool = _core.BufferPool.create(options.batch_size * self._rows.sample_bytes,
                                             options.prefetch + 2)  # in flight + handed over + held
        self._epoch = 0
        self._epoch_fixed = False

    def __len__(self) -> int:
        """Batches per epoch for this rank."""
        return self._batches

    def set_epoch(self, epoch: int) -> None:
        """Fix the epoch the next ``iter()`` runs (as ``DistributedSampler.set_epoch``)."""
        self._epoch = epoch
        self._epoch_fixed = True

    def __iter__(self) -> Iterator[torch.Tensor]:
        return _BatchIterator(self._start_epoch(), with_indices=False)

    def iter_with_indices(self) -> Iterator[tuple[torch.Tensor, list[int]]]:
        """Like ``iter()``, yielding ``(batch, dataset_rows)``."""
        return _BatchIterator(self._start_epoch(), with_indices=True)

    def _start_epoch(self) -> Any:
        epoch = self._epoch
        if not self._epoch_fixed:
            self._epoch += 1
        # Threads start here, never in __init__: they would not survive a fork.
        return self._rows.epoch(self._pool, self.options, epoch)

    def __getitem__(self, row: int) -> torch.Tensor:
        """One sample: a zero-copy view of the stored pixels when ``dtype=None``, else converted (epoch 0 draws)."""
        if self.dtype is None:
            return self.dataset.view(row)
        return self.dataset.sample(row, self.transform, 0)

    @property
    def num_samples(self) -> int:
        return len(self.dataset)


class _BatchIterator:
    """One epoch; stops the C++ threads when exhausted, closed, or garbage collected."""

    def __init__(self, epoch: Any, with_indices: bool) -> None:
        self._epoch = epoch
        self._with_indices = with_indices

    def __iter__(self) -> _BatchIterator:
        return self

    def __next__(self) -> Any:
        if self._epoch is None:
            raise StopIteration
        try:
            return self._epoch.next(self._with_indices)
        except StopIteration:
            self.close()
            raise

    def __len__(self) -> int:
        return len(self._epoch) if self._epoch is not None else 0

    def close(self) -> None:
        if self._epoch is not None:
            self._epoch.close()
            self._epoch = None
