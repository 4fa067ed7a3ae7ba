"""The native image loader: Arrow buffers read in place by the C++ core, batches assembled on its own threads
(GIL released), handed over as torch tensors by DLPack.

``NativeImageLoader`` is an iterable of ready batches with torch's argument names, usable directly or as
``DataLoader(loader, batch_size=None)``; ``loader[i]`` gives one sample (map-style).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import torch
from torch.utils.data import IterableDataset

from loaderbench import _core
from loaderbench.loaders.arguments import (
    INT32_MAX,
    INT64_MAX,
    MAX_PREFETCH,
    MAX_THREADS,
    UINT64_MAX,
    ForkedWorkersOnly,
    check_batch_memory,
    check_int,
    resolve_rank,
    worker_share,
)
from loaderbench.ome_image import OME_COLUMN

# Threads share each batch, so two batches ahead keep them all busy.
DEFAULT_PREFETCH = 2
_OUTPUT_TYPES = {torch.float32: _core.OutputType.float32, torch.float16: _core.OutputType.float16,
                 torch.uint8: _core.OutputType.uint8}
_SAMPLERS = {"sequential": _core.SamplerKind.sequential, "random": _core.SamplerKind.random,
             "block": _core.SamplerKind.block}


#: directory formats the C++ core reads itself, file by file on its own threads
NATIVE_DIRECTORY_FORMATS = ("tiff", "ome_zarr")


def open_arrow_source(source: Any, format_name: str | None = None, column: str | None = None) -> Any:
    """An ``__arrow_c_stream__`` object for ``source``: itself, or read from a path of an Arrow-backed format (whose
    image column, ``column`` or the one found, is then named ``ome_image``)."""
    if hasattr(source, "__arrow_c_stream__"):
        return source
    if isinstance(source, (str, Path)):
        path, module = _path_format(source, format_name)
        if module.INFO.kind != "table":
            raise ValueError(f"{path}: {module.INFO.label} is not Arrow-backed; the native loader reads Arrow formats")
        return module.read_table(path, column=column)
    raise TypeError(f"expected a path or an object with __arrow_c_stream__, got {type(source).__name__}")


def _path_format(source: str | Path, format_name: str | None) -> tuple[Path, Any]:
    from loaderbench.formats import detect_format, get_format  # noqa: PLC0415

    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    return path, get_format(format_name or detect_format(path))


def open_native_dataset(source: Any, format_name: str | None, column: str | None, max_sample_bytes: int,
                        multiscale_level: int = 0) -> Any:
    """The core's dataset over ``source``: a ``FileImageDataset`` for a TIFF or OME-Zarr directory (its files are
    decoded by the core's threads; OME-Zarr at ``multiscale_level``), else an in-place ``ImageDataset`` over the
    Arrow data."""
    multiscale_level = check_int("multiscale_level", multiscale_level, 0, INT32_MAX)
    if isinstance(source, (str, Path)) and not hasattr(source, "__arrow_c_stream__"):
        path, module = _path_format(source, format_name)
        if module.INFO.kind == "directory":
            if module.INFO.name not in NATIVE_DIRECTORY_FORMATS or not _core.file_format_available(module.INFO.name):
                raise ValueError(f"{path}: the native core does not read {module.INFO.label}")
            if multiscale_level and module.INFO.name != "ome_zarr":
                raise ValueError(f"{path}: multiscale_level applies to OME-Zarr images; {module.INFO.label} has one")
            items = [str(item) for item in module.item_paths(path)]
            return _core.FileImageDataset(module.INFO.name, items, max_sample_bytes, multiscale_level)
    if multiscale_level:
        raise ValueError("multiscale_level applies to OME-Zarr directories; OME-Arrow images have one resolution")
    opened = open_arrow_source(source, format_name, column)
    # A path's image column has been renamed ome_image by its reader; an Arrow object's is looked up.
    return _core.ImageDataset(opened, OME_COLUMN if opened is not source else image_column(source, column),
                              max_sample_bytes)


def image_column(source: Any, column: str | None) -> str:
    """The column the core reads from ``source``: ``column``; else ``ome_image``, or the one OME-Arrow struct column
    when a pyarrow schema shows that there is no ``ome_image`` (other sources: ``ome_image``)."""
    if column is not None:
        return column
    schema = getattr(source, "schema", None)
    if isinstance(schema, pa.Schema) and OME_COLUMN not in schema.names:
        from loaderbench.formats import ome_column  # noqa: PLC0415

        return ome_column(schema, f"the {type(source).__name__}")
    return OME_COLUMN


class NativeImageLoader(ForkedWorkersOnly, IterableDataset):
    """Batches ``[B, C, H, W]`` (``[B, C, Z, H, W]`` for volumes) of an OME-Arrow image column.

    Args mirror torch's: ``batch_size``, ``shuffle`` (random permutation per epoch), ``drop_last`` (drop the
    partial last batch), ``seed``, ``num_threads`` (C++ workers, sharing each batch), ``prefetch`` (batches
    assembled ahead; 0 = only when asked for, the least memory). ``sampler`` overrides ``shuffle`` with
    ``"sequential"``, ``"random"`` or ``"block"`` (contiguous blocks of ``block_size`` rows, the rows of
    ``buffer_blocks`` blocks shuffled together). Conversion: ``dtype`` (float32, float16, uint8; ``None`` = no
    conversion: ``loader[i]`` is a zero-copy view of the stored pixels, batches stay float32), ``scale`` to [0, 1]
    (``True``: by the declared type's maximum — uint8 255, uint16 65535, int16 32767, int32 2**31 - 1, so signed
    data spans [-1, 1]; a number: the value that becomes 1.0, e.g. 4095 for 12-bit data; ``"significant_bits"``:
    2**bits - 1 from ``pixels_meta.significant_bits`` or, for TIFFs, the first file's OME-XML ``SignificantBits``;
    ``"measured"``: 2**bits - 1 for the fewest bits that hold the data's largest value; ``False``: none — uint16
    data whose sampled values all fit a byte gets a warning under ``True``), ``mean``/``std`` per channel,
    ``random_hflip``/``random_vflip``, ``crop_size`` (random crop, or centre crop with ``random_crop=False``,
    placed where torchvision's ``CenterCrop`` places it;
    ``pad_if_needed=True`` pads images smaller than it with zeros, as torchvision's crops do). Images of different
    sizes need a ``crop_size`` (with ``pad_if_needed`` for those smaller than it) or ``batch_size=1`` (each batch
    then has its image's own shape; Arrow sources). TIFF and
    OME-Zarr directories take int16/int32, volumes and a crop of any file size alike. ``max_sample_bytes`` caps one
    image's decoded size (default 1 GiB), checked before anything is allocated for it. ``preload=True`` decodes
    every image once, on ``num_threads`` threads, into memory the loader owns (decompressed, and narrowed back to
    uint8 where pixels_meta declares uint8 but the payload is uint16, as ome-arrow stores it): epochs then
    decompress nothing and read only the declared bytes, and the Arrow
    table is no longer held (memory: pixels x the declared dtype's size). Arrow-backed sources only.
    ``multiscale_level`` picks the OME-Zarr resolution level read (0, full resolution, by default).

    ``source`` is a path of an Arrow-backed format (``format`` names it when the path does not say), a TIFF or
    OME-Zarr directory (every file opened and decoded by the core's threads; ``dtype=None`` views are not possible
    there), or any ``__arrow_c_stream__`` object. ``column`` names the image column; by default it is
    ``ome_image``, or the one OME-Arrow struct column when there is no ``ome_image`` (``ome_arrow.to_ome_parquet``
    writes ``image``), and a table with several is an error listing them. A ``row_id`` column is optional (without
    it: file order).

    Distributed: ``rank``/``world_size`` split the epoch with ``DistributedSampler`` semantics (equal counts per
    rank). Left as ``None`` they come from the initialised ``torch.distributed`` process group, else from the
    ``RANK``/``WORLD_SIZE`` environment variables (set by torchrun), else 0 and 1. The uneven tail is padded by
    wrapping around, as ``DistributedSampler(drop_last=False)`` does, unless ``drop_uneven=True`` (its
    ``drop_last=True``); ``drop_last`` here only drops the partial last batch.

    The same seed gives the same order and augmentations whatever ``num_threads``; each ``iter()`` runs the next
    epoch unless ``set_epoch`` fixes it. An ``IterableDataset``: ``DataLoader(loader, batch_size=None)`` passes
    its batches through; with ``num_workers=N`` each worker process assembles every N-th batch (the DataLoader
    interleaves them back in order, so every sample arrives exactly once). Workers are forked copies, so call
    ``set_epoch(e)`` before each epoch unless ``persistent_workers=True``. One iterator may be shared by several
    consumer threads: each batch goes to exactly one of them, and ``close()`` from any thread ends it for all.
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
        rank: int | None = None,
        world_size: int | None = None,
        drop_uneven: bool = False,
        sampler: str | None = None,
        block_size: int = 1,
        buffer_blocks: int = 1,
        dtype: torch.dtype | None = torch.float32,
        scale: bool | float | str = True,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        random_hflip: bool = False,
        random_vflip: bool = False,
        crop_size: int | tuple[int, int] | None = None,
        random_crop: bool = True,
        pad_if_needed: bool = False,
        column: str | None = None,
        format: str | None = None,  # noqa: A002 - the dataset's format name, as on the CLI
        max_sample_bytes: int = _core.DEFAULT_MAX_SAMPLE_BYTES,
        preload: bool = False,
        multiscale_level: int = 0,
    ) -> None:
        # Every argument is checked before the (possibly long) import of the data.
        batch_size = check_int("batch_size", batch_size, 1, INT32_MAX)
        seed = check_int("seed", seed, 0, UINT64_MAX)
        num_threads = check_int("num_threads", num_threads, 1, MAX_THREADS)
        prefetch = DEFAULT_PREFETCH if prefetch is None else check_int("prefetch", prefetch, 0, MAX_PREFETCH)
        block_size = check_int("block_size", block_size, 1, INT64_MAX)
        buffer_blocks = check_int("buffer_blocks", buffer_blocks, 1, INT64_MAX)
        max_sample_bytes = check_int("max_sample_bytes", max_sample_bytes, 1, INT64_MAX)
        rank, world_size = resolve_rank(rank, world_size)
        if dtype is not None and dtype not in _OUTPUT_TYPES:
            raise ValueError(f"dtype must be one of {list(_OUTPUT_TYPES)} or None, got {dtype}")
        kind = sampler or ("random" if shuffle else "sequential")
        if kind not in _SAMPLERS:
            raise ValueError(f"sampler must be one of {list(_SAMPLERS)}, got {kind!r}")
        check_scale(scale)
        transform = transform_options(dtype or torch.float32, scale is not False, mean, std, random_hflip,
                                      random_vflip, crop_size, random_crop, seed, pad_if_needed)
        self.dataset = open_native_dataset(source, format, column, max_sample_bytes, multiscale_level)
        if preload:
            if not hasattr(self.dataset, "preloaded"):
                raise ValueError("preload=True is for Arrow-backed sources: TIFF and OME-Zarr directories are "
                                 "decoded from their files per sample")
            self.dataset = self.dataset.preloaded(num_threads)
        transform.max_value = resolve_max_value(scale, self.dataset, num_threads)
        self.dtype = dtype
        options = _core.LoaderOptions()
        options.batch_size = batch_size
        options.drop_last = drop_last
        options.num_threads = num_threads
        options.prefetch = prefetch
        sampling = _core.SamplerOptions()
        sampling.kind = _SAMPLERS[kind]
        sampling.seed = seed
        sampling.block_size = block_size
        sampling.buffer_blocks = buffer_blocks
        sampling.rank = rank
        sampling.world_size = world_size
        sampling.drop_last = drop_uneven
        options.sampler = sampling
        self.options = options
        self.transform = transform
        self._rows = self.dataset.rows(transform)  # validates the transform against the images
        if self._rows.shape_mismatch and batch_size != 1:
            raise ValueError(f"{self._rows.shape_mismatch}; batches of {batch_size} need one shape")
        self._batches = self._rows.batches_per_epoch(options)
        self._pool = make_pool(self._rows, options, "images")
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
        return self._rows.epoch(self._pool, worker_options(self.options), epoch)

    def __getitem__(self, row: int) -> torch.Tensor:
        """One sample: a zero-copy view of the stored pixels when ``dtype=None``, else converted (epoch 0 draws)."""
        if self.dtype is None:
            return self.dataset.view(row)
        return self.dataset.sample(row, self.transform, 0)

    @property
    def num_samples(self) -> int:
        return len(self.dataset)


def transform_options(
    dtype: torch.dtype,
    scale: bool,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
    random_hflip: bool,
    random_vflip: bool,
    crop_size: int | tuple[int, int] | None,
    random_crop: bool,
    seed: int,
    pad_if_needed: bool = False,
) -> Any:
    """The core's per-sample conversion and augmentation options (the crop size checked)."""
    if dtype not in _OUTPUT_TYPES:
        raise ValueError(f"dtype must be one of {list(_OUTPUT_TYPES)}, got {dtype}")
    crop_h = crop_w = 0
    if crop_size:
        crop_h, crop_w = (crop_size, crop_size) if isinstance(crop_size, int) else crop_size
        crop_h, crop_w = check_int("crop_size", crop_h, 1, INT32_MAX), check_int("crop_size", crop_w, 1, INT32_MAX)
    transform = _core.TransformOptions()
    transform.output = _OUTPUT_TYPES[dtype]
    transform.scale = scale
    transform.mean = list(mean or [])
    transform.std = list(std or [])
    transform.random_hflip = random_hflip
    transform.random_vflip = random_vflip
    transform.crop_height, transform.crop_width = crop_h, crop_w
    transform.random_crop = random_crop
    if pad_if_needed and not crop_size:
        raise ValueError("pad_if_needed pads images to crop_size; give a crop_size")
    transform.pad_if_needed = pad_if_needed
    transform.seed = seed
    return transform


#: ``scale`` values that name where the maximum comes from (a number gives it directly)
SCALE_MODES = ("dtype", "significant_bits", "measured")
#: rows sampled to recognise uint8 data declared as uint16
_SAMPLED_ROWS = 64


def check_scale(scale: Any) -> None:
    """``scale`` is True/False, a positive number (the value that becomes 1.0) or one of ``SCALE_MODES``."""
    if isinstance(scale, bool):
        return
    if isinstance(scale, str):
        if scale not in SCALE_MODES:
            raise ValueError(f"scale must be True, False, a number > 0 or one of {list(SCALE_MODES)}, got {scale!r}")
        return
    if not isinstance(scale, (int, float)) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be True, False, a number > 0 or one of {list(SCALE_MODES)}, got {scale!r}")


def resolve_max_value(scale: bool | float | str, dataset: Any, num_threads: int) -> float:
    """What [0, 1] scaling divides by: 0 for the declared type's maximum (``True``/``"dtype"``) or no scaling; a
    number as given; ``"significant_bits"``: 2**bits - 1 from ``pixels_meta.significant_bits`` (a TIFF directory:
    the first file's OME-XML ``SignificantBits``); ``"measured"``: the
    smallest 2**bits - 1 that holds the dataset's largest value (12-bit data in uint16: 4095). With the declared
    type's maximum, uint16 data whose sampled values all fit a byte gets a warning: it would come out near-black."""
    if scale is False:
        return 0.0
    if scale is True or scale == "dtype":
        _warn_if_bytes_declared_uint16(dataset, num_threads)
        return 0.0
    if not isinstance(scale, str):
        return float(scale)
    summary = _summary(dataset, scale)
    if scale == "significant_bits":
        bits = summary.get("significant_bits", [])
        if len(bits) != 1:
            found = "none" if not bits else ", ".join(map(str, bits))
            raise ValueError(f"scale='significant_bits' needs one declared bit depth for the dataset "
                             f"(pixels_meta.significant_bits, or an OME-TIFF's SignificantBits); found {found} "
                             "(pass scale=<max value> instead)")
        return float(2 ** bits[0] - 1)
    if "float32" in summary["declared_dtypes"]:
        raise ValueError("scale='measured' takes a bit depth from integer pixels; the data declares float32")
    largest = dataset.max_pixel_value([], num_threads)
    return float(2 ** max(1, math.ceil(math.log2(largest + 1))) - 1) if largest > 0 else 1.0


def _summary(dataset: Any, scale: str) -> dict[str, Any]:
    summary = getattr(dataset, "summary", None)
    if summary is None or not hasattr(dataset, "max_pixel_value"):
        raise ValueError(f"scale={scale!r} is not supported for this source; pass scale=<max value>")
    return summary()


def _warn_if_bytes_declared_uint16(dataset: Any, num_threads: int) -> None:
    summary = getattr(dataset, "summary", None)
    if summary is None or not hasattr(dataset, "max_pixel_value") or summary()["declared_dtypes"] != ["uint16"]:
        return
    n = len(dataset)
    sampled = min(n, _SAMPLED_ROWS)
    rows = [i * n // sampled for i in range(sampled)]  # spread over the dataset, distinct
    try:
        largest = dataset.max_pixel_value(rows, num_threads)
    except ValueError:  # a corrupt chunk: reported where its batch is read, as without this check
        return
    if largest <= 255:
        warnings.warn(
            f"the images are declared uint16 but {len(rows)} sampled of {n} hold no value above {largest:g}: likely "
            "uint8 data that ome_arrow.from_numpy declared uint16 (its default). Divided by 65535 they come out "
            "near-black; pass scale=255 or scale='measured', or write them with dtype_meta='uint8'",
            UserWarning, stacklevel=4)


def make_pool(rows: Any, options: Any, what: str) -> Any:
    """The recycled batch buffers of a loader: sized for its largest batch, as many as can be in flight."""
    sample_bytes = getattr(rows, "max_sample_bytes", rows.sample_bytes)
    batch_bytes = rows.max_batch_rows(options) * sample_bytes
    buffers = options.prefetch + 2  # in flight + handed over + held by the consumer
    check_batch_memory(batch_bytes, buffers, f"{options.batch_size} {what} of {sample_bytes:,} bytes")
    return _core.BufferPool.create(max(batch_bytes, 1), buffers)


def worker_options(options: Any) -> Any:
    """``options`` for this process: inside a DataLoader worker, only its share of the batches."""
    worker, workers = worker_share()
    if workers == 1:
        return options
    share = _core.LoaderOptions()
    for name in ("batch_size", "drop_last", "sampler", "num_threads", "prefetch"):
        setattr(share, name, getattr(options, name))
    share.batch_offset, share.batch_stride = worker, workers
    return share


class _BatchIterator:
    """One epoch; stops the C++ threads when exhausted, closed, or garbage collected. Safe to share between
    threads: the core hands each batch to one caller, and close() from any thread ends the epoch for all."""

    def __init__(self, epoch: Any, with_indices: bool) -> None:
        self._epoch = epoch
        self._with_indices = with_indices

    def __iter__(self) -> _BatchIterator:
        return self

    def __next__(self) -> Any:
        epoch = self._epoch  # one read: another thread may close() meanwhile
        if epoch is None:
            raise StopIteration
        try:
            return epoch.next(self._with_indices)
        except StopIteration:
            self.close()
            raise

    def __len__(self) -> int:
        epoch = self._epoch
        return len(epoch) if epoch is not None else 0

    def close(self) -> None:
        epoch, self._epoch = self._epoch, None
        if epoch is not None:
            epoch.close()
