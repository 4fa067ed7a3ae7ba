"""Benchmark configuration: presets, TOML files and CLI overrides, validated in one place.

A config is a tree of small dataclasses. ``load_config`` starts from a preset, applies a TOML file, then
CLI overrides; unknown keys and bad values raise ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALL_FORMATS = ("parquet", "parquet_duckdb", "lance", "vortex", "duckdb", "tiff", "ome_zarr", "arrow_ipc")
ALL_TRACKS = ("getitem", "dataloader", "end_to_end", "conversion")
# Run only when named: ``peers`` (the other loaders users could pick, each in a fresh process: minutes) and
# ``sparse`` (its own data, cells x genes, not the image formats).
OPTIONAL_TRACKS = ("peers", "sparse")
#: the tracks that read the generated (or the user's) image datasets
IMAGE_TRACKS = (*ALL_TRACKS, "peers")
DTYPES = ("uint8", "uint16", "float32")
ACCESS_PATTERNS = ("sequential", "random")
TRANSFORMS = ("none", "normalize", "augment")
PRESETS = ("quick", "seed", "full")
#: the out-of-core loaders of Tracks 2 and 3 (``streaming.loaders``)
STREAMING_LOADERS = ("native_streaming", "block_torch")
PAGE_CACHE_STATES = ("warm", "cold")
#: data.layout: the pixel layouts of the generated OME-Arrow tables (loaderbench.ome_batch.LAYOUTS)
LAYOUTS = ("ome-arrow", "planes", "chunks", "bytes", "bytes-zstd", "bytes-lz4")
#: data.content: what the generated pixels look like. "random": uniform noise over the dtype's range, as the seed
#: generates it (no codec can compress it). "smooth": a slowly varying field plus a little noise, which compresses
#: about as microscopy does, so codec layouts (bytes-zstd, bytes-lz4, compressed TIFF) decode real work.
CONTENTS = ("random", "smooth")


class ConfigError(ValueError):
    """A configuration value or key that is not valid."""


@dataclass
class DataConfig:
    """What images to generate (the seed: 1,000 x 100x100 uint8, seed 42)."""

    n_images: int = 1000
    sizes: list[list[int]] = field(default_factory=lambda: [[100, 100]])  # [[height, width], ...]
    dtype: str = "uint8"
    channels: int = 1
    # Z planes per image: 1 = 2-D images (C, H, W); more = volumes (C, Z, H, W), batches [B, C, Z, H, W]
    depth: int = 1
    seed: int = 42
    max_pixels: int = 0  # cap images per size so that n*C*Z*H*W <= max_pixels (0 = no cap): keeps 1000x1000 in RAM
    # rows per read unit (Parquet row group, Lance fragment, ...) the writers use; None = each writer's choice
    rows_per_unit: int | None = None
    # how the table formats store the pixels (LAYOUTS): ome-arrow's default (planes + chunks as uint16 lists), one of
    # the two, or byte chunks raw / zstd / lz4 (ome-arrow's recommended layout for large images is bytes-zstd)
    layout: str = "ome-arrow"
    # what the pixels look like (CONTENTS): the seed's uniform noise, or smooth images that compress
    content: str = "random"
    # further datasets, each of one size with its own image count and formats (see DATASET_KEYS); [] = none
    datasets: list[dict[str, Any]] = field(default_factory=list)


#: the keys of one ``data.datasets`` entry
DATASET_KEYS = {
    "size": "[height, width] (required)",
    "n_images": "at least this many images (default: data.n_images; data.max_pixels does not apply)",
    "ram_fraction": "at least enough images that their pixels (N*C*Z*H*W*itemsize bytes: the size of images.npy, "
    "and a lower bound on every format's file, since random pixels do not compress) exceed this fraction of this "
    "machine's memory (default 0: no such minimum)",
    "formats": "the formats to write it in, among those configured (default: all configured)",
}


@dataclass
class GetitemConfig:
    """Track 1: ``Dataset.__getitem__`` latency."""

    repeats: int = 3
    samples: int = 100
    warmup: int = 10
    access: list[str] = field(default_factory=lambda: list(ACCESS_PATTERNS))
    transforms: list[str] = field(default_factory=lambda: list(TRANSFORMS))
    # random_access: one row per call through the format's own random access (formats with block reads)
    loaders: list[str] = field(default_factory=lambda: ["naive", "preloaded", "random_access"])
    crop_size: int = 0  # augment: random crop to this size (0 = no crop)


@dataclass
class DataLoaderConfig:
    """Track 2: ``torch.utils.data.DataLoader`` throughput."""

    repeats: int = 3
    batch_sizes: list[int] = field(default_factory=lambda: [1, 4, 16])
    num_workers: list[int] = field(default_factory=lambda: [0, 2, 4])
    batches: int = 50  # timed batches per repeat (after warm-up); capped by the dataset length
    warmup_batches: int = 2
    pin_memory: bool = False
    persistent_workers: bool = False
    prefetch_factor: int = 2
    native_threads: list[int] = field(default_factory=lambda: [1, 2])  # C++ threads of the native rows ([] = none)


@dataclass
class EndToEndConfig:
    """Track 3: data loading + ``SimpleEmbeddingModel`` step (defaults: the seed's Normalize, shuffle, 2 workers)."""

    repeats: int = 3
    steps: int = 50
    warmup_steps: int = 3
    batch_size: int = 16
    num_workers: int = 2
    shuffle: bool = True
    transform: str = "normalize"
    train: bool = False  # False: inference; True: loss + backward + optimizer step


@dataclass
class StreamingConfig:
    """The out-of-core rows: Track 1's ``random_access`` loader, and in Tracks 2 and 3 the native streaming loader
    and the torch baseline that reads the same blocks (``block_torch``), on every format with block reads."""

    loaders: list[str] = field(default_factory=lambda: list(STREAMING_LOADERS))  # [] = none
    chunk_size: int = 0  # contiguous rows per chunk (the seed's block scheme); 0 = the format's read unit
    chunks_per_block: int = 4  # chunks read together and shuffled together
    memory_budget_mb: int = 256  # blocks held at once by the native streaming loader
    io_threads: int = 2
    # each disk-reading row is measured in each state: "cold" evicts the dataset's pages before every repeat
    page_cache: list[str] = field(default_factory=lambda: ["warm"])


@dataclass
class PeersConfig:
    """``--tracks peers``: the loaders users could pick instead, on each image dataset's Parquet file, each peer x
    variant in a fresh process (``loaderbench.loaders.peers``)."""

    names: list[str] = field(default_factory=list)  # [] = every registered peer
    batch_size: int = 256
    epochs: int = 3  # timed epochs, after one warm-up epoch
    shuffle: bool = True
    timeout_s: int = 900  # per peer x variant: a peer that takes longer is a row with status "error"


@dataclass
class ConversionConfig:
    """Track 4: numpy load vs the torch conversion from the stored dtype."""

    repeats: int = 3
    samples: int = 100
    warmup: int = 10
    batch_size: int = 16


@dataclass
class Config:
    """Everything that defines one ``loaderbench run``."""

    preset: str = "quick"
    out: str = "results"
    data_dir: str = "data"
    formats: list[str] = field(default_factory=lambda: list(ALL_FORMATS))
    tracks: list[str] = field(default_factory=lambda: list(ALL_TRACKS))
    inputs: list[str] = field(default_factory=list)  # user datasets: "PATH" or "FORMAT:PATH"
    column: str = ""  # the inputs' OME-Arrow image column ("": ome_image, else the one OME-Arrow struct column)
    data: DataConfig = field(default_factory=DataConfig)
    getitem: GetitemConfig = field(default_factory=GetitemConfig)
    dataloader: DataLoaderConfig = field(default_factory=DataLoaderConfig)
    end_to_end: EndToEndConfig = field(default_factory=EndToEndConfig)
    conversion: ConversionConfig = field(default_factory=ConversionConfig)
    streaming: StreamingConfig = field(default_factory=StreamingConfig)
    peers: PeersConfig = field(default_factory=PeersConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _preset(name: str) -> dict[str, Any]:
    if name == "seed":
        # The seed's configuration exactly: its defaults are this config's (1,000 100x100 uint8 images; Track 1
        # 3 x 100 samples after 10 warm-up; Track 2 batch 1/4/16 x workers 0/2/4 x 50 batches; Track 3 50 steps,
        # batch 16, 2 workers, shuffled, Normalize; Track 4 as Track 1). The out-of-core rows are ours: left out.
        return {"getitem": {"loaders": ["naive", "preloaded"]}, "streaming": {"loaders": []}}
    if name == "full":
        # The seeds' settings, plus the image sizes the seed's Track 4 discusses; then two datasets at scale, in
        # Parquet only (every format of a million images would not fit a 64 GB disk): a million 100x100 images
        # (10 GB of pixels, ~20 GB of Parquet) and 1000x1000 images whose Parquet file is larger than half of this
        # machine's memory. Parquet holds each pixel twice (OME-Arrow's planes and chunks, as uint16 lists that
        # zstd takes back to about a byte), so pixels of 0.3 x RAM make a file of about 0.6 x RAM: on a 24 GB
        # machine 7,600 images, 7.6 GB of images.npy and 15 GB of Parquet.
        return {
            "data": {
                "n_images": 1000,
                "sizes": [[50, 50], [100, 100], [1000, 1000]],
                "max_pixels": 250_000_000,
                "datasets": [
                    {"size": [100, 100], "n_images": 1_000_000, "formats": ["parquet"]},
                    {"size": [1000, 1000], "ram_fraction": 0.3, "formats": ["parquet"]},
                ],
            }
        }
    if name == "quick":
        # A few minutes on 2 cores: fewer images and samples, the interesting corners of each sweep.
        return {
            "data": {"n_images": 256, "rows_per_unit": 32},  # read units of 32 images: 8 per file
            "getitem": {"samples": 50, "warmup": 5, "transforms": ["none", "augment"]},
            "dataloader": {"batch_sizes": [1, 16], "num_workers": [0, 2], "batches": 20},
            "end_to_end": {"steps": 10, "warmup_steps": 2},
            "conversion": {"samples": 50, "warmup": 5},
            "streaming": {"chunks_per_block": 2},  # chunks of one unit: 4 blocks of 64 images
            "peers": {"batch_size": 32},  # 8 batches an epoch of 256 images
        }
    raise ConfigError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")


def _apply(obj: Any, values: dict[str, Any], where: str) -> None:
    """Set dataclass fields from a dict, recursing into sections; reject unknown keys and wrong types."""
    fields = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        path = f"{where}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key {path!r} (known: {', '.join(fields)})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"config key {path!r} must be a table/section")
            _apply(current, value, path + ".")
            continue
        setattr(obj, key, _coerce(value, current, path))


def _coerce(value: Any, current: Any, path: str) -> Any:
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"config key {path!r} must be true or false, got {value!r}")
        return value
    if isinstance(current, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key {path!r} must be an integer, got {value!r}")
        return value
    if isinstance(current, str):
        if not isinstance(value, str):
            raise ConfigError(f"config key {path!r} must be a string, got {value!r}")
        return value
    if isinstance(current, list):
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if not isinstance(value, list):
            raise ConfigError(f"config key {path!r} must be a list, got {value!r}")
        return list(value)
    return value


def _check_choices(values: list[Any], allowed: tuple[str, ...], key: str) -> None:
    if not values:
        raise ConfigError(f"{key} must name at least one of {', '.join(allowed)}, got an empty list")
    bad = [v for v in values if v not in allowed]
    if bad:
        raise ConfigError(f"{key}: unknown value(s) {', '.join(map(repr, bad))} (choose from {', '.join(allowed)})")


def _check_positive(value: int, key: str, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key} must be an integer, got {value!r}")
    if value < minimum:
        raise ConfigError(f"{key} must be >= {minimum}, got {value}")


def _check_size(size: Any, key: str) -> None:
    if not (isinstance(size, list) and len(size) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size
    )):
        raise ConfigError(f"{key} must be [height, width] with positive integers, got {size!r}")


def _check_dataset(spec: Any, key: str) -> None:
    """One ``data.datasets`` entry: a table of ``DATASET_KEYS``."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{key} must be a table with {', '.join(DATASET_KEYS)}, got {spec!r}")
    unknown = [k for k in spec if k not in DATASET_KEYS]
    if unknown:
        raise ConfigError(f"unknown config key {key}.{unknown[0]!r} (known: {', '.join(DATASET_KEYS)})")
    if "size" not in spec:
        raise ConfigError(f"{key} needs a size = [height, width]")
    _check_size(spec["size"], f"{key}.size")
    if "n_images" in spec:
        _check_positive(spec["n_images"], f"{key}.n_images")
    fraction = spec.get("ram_fraction", 0)
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 <= fraction <= 16:
        raise ConfigError(f"{key}.ram_fraction must be a number from 0 to 16, got {fraction!r}")
    formats = spec.get("formats", [])
    if not isinstance(formats, list):
        raise ConfigError(f"{key}.formats must be a list of format names, got {formats!r}")
    if formats:
        _check_choices(formats, ALL_FORMATS, f"{key}.formats")


def _check_depth(depth: Any) -> None:
    """``data.depth``: a whole number of Z planes, 1 for 2-D images (the message says what a value means, since a
    depth of 0 reads naturally as "flat")."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ConfigError(f"data.depth must be an integer >= 1 (Z planes per image: 1 = 2-D images, more = "
                          f"volumes), got {depth!r}")


def _check_not_empty(values: list[Any], key: str) -> None:
    if not values:
        raise ConfigError(f"{key} must have at least one value, got an empty list")


def validate(cfg: Config) -> Config:
    """Check every value; raise ``ConfigError`` with the key and the reason."""
    if cfg.preset not in PRESETS:
        raise ConfigError(f"unknown preset {cfg.preset!r} (choose from {', '.join(PRESETS)})")
    _check_choices(cfg.formats, ALL_FORMATS, "formats")
    _check_choices(cfg.tracks, ALL_TRACKS + OPTIONAL_TRACKS, "tracks")
    d = cfg.data
    _check_positive(d.n_images, "data.n_images")
    _check_positive(d.channels, "data.channels")
    _check_depth(d.depth)
    _check_positive(d.max_pixels, "data.max_pixels", 0)
    _check_choices([d.dtype], DTYPES, "data.dtype")
    _check_choices([d.layout], LAYOUTS, "data.layout")
    _check_choices([d.content], CONTENTS, "data.content")
    if d.dtype == "float32" and d.layout in ("planes", "chunks"):
        raise ConfigError(f"data.layout {d.layout!r} cannot hold float32 pixels (ome-arrow's lists are uint16): "
                          "use a bytes layout")
    if d.rows_per_unit is not None:
        _check_positive(d.rows_per_unit, "data.rows_per_unit")
    if not d.sizes:
        raise ConfigError("data.sizes must name at least one [height, width]")
    for size in d.sizes:
        _check_size(size, "data.sizes entries")
    if not isinstance(d.datasets, list):
        raise ConfigError(f"data.datasets must be a list of tables, got {d.datasets!r}")
    for i, spec in enumerate(d.datasets):
        _check_dataset(spec, f"data.datasets[{i}]")
    g = cfg.getitem
    for key in ("repeats", "samples"):
        _check_positive(getattr(g, key), f"getitem.{key}")
    _check_positive(g.warmup, "getitem.warmup", 0)
    _check_positive(g.crop_size, "getitem.crop_size", 0)
    _check_choices(g.access, ACCESS_PATTERNS, "getitem.access")
    _check_choices(g.transforms, TRANSFORMS, "getitem.transforms")
    _check_choices(g.loaders, ("naive", "preloaded", "random_access"), "getitem.loaders")
    if g.crop_size and any(g.crop_size > min(size) for size in d.sizes + [s["size"] for s in d.datasets]):
        raise ConfigError(f"getitem.crop_size {g.crop_size} is larger than an image size in data.sizes")
    dl = cfg.dataloader
    _check_positive(dl.repeats, "dataloader.repeats")
    _check_positive(dl.batches, "dataloader.batches")
    _check_positive(dl.warmup_batches, "dataloader.warmup_batches", 0)
    _check_positive(dl.prefetch_factor, "dataloader.prefetch_factor")
    _check_not_empty(dl.batch_sizes, "dataloader.batch_sizes")
    _check_not_empty(dl.num_workers, "dataloader.num_workers")
    for b in dl.batch_sizes:
        _check_positive(b, "dataloader.batch_sizes")
    for w in dl.num_workers:
        _check_positive(w, "dataloader.num_workers", 0)
    for t in dl.native_threads:
        _check_positive(t, "dataloader.native_threads")
    e = cfg.end_to_end
    for key in ("repeats", "steps", "batch_size"):
        _check_positive(getattr(e, key), f"end_to_end.{key}")
    _check_positive(e.warmup_steps, "end_to_end.warmup_steps", 0)
    _check_positive(e.num_workers, "end_to_end.num_workers", 0)
    _check_choices([e.transform], TRANSFORMS, "end_to_end.transform")
    st = cfg.streaming
    if st.loaders:
        _check_choices(st.loaders, STREAMING_LOADERS, "streaming.loaders")
    for key in ("chunks_per_block", "memory_budget_mb", "io_threads"):
        _check_positive(getattr(st, key), f"streaming.{key}")
    _check_positive(st.chunk_size, "streaming.chunk_size", 0)
    _check_choices(st.page_cache, PAGE_CACHE_STATES, "streaming.page_cache")
    p = cfg.peers
    if not isinstance(p.names, list) or not all(isinstance(n, str) for n in p.names):
        raise ConfigError(f"peers.names must be a list of peer names, got {p.names!r}")
    for key in ("batch_size", "epochs", "timeout_s"):
        _check_positive(getattr(p, key), f"peers.{key}")
    c = cfg.conversion
    for key in ("repeats", "samples", "batch_size"):
        _check_positive(getattr(c, key), f"conversion.{key}")
    _check_positive(c.warmup, "conversion.warmup", 0)
    return cfg


def load_config(
    preset: str = "quick", config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> Config:
    """Preset, then TOML file, then CLI overrides (each a nested dict like the TOML)."""
    cfg = Config(preset=preset)
    _apply(cfg, _preset(preset), "")
    if config_file is not None:
        path = Path(config_file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
        except UnicodeDecodeError as exc:  # TOML is UTF-8 by definition
            raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start}): not a TOML file") from exc
        try:
            values = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        if "preset" in values and values["preset"] != preset:
            file_preset = values.pop("preset")
            cfg = Config(preset=file_preset)
            _apply(cfg, _preset(file_preset), "")
        _apply(cfg, values, "")
    if overrides:
        _apply(cfg, overrides, "")
    return validate(cfg)


def images_for_size(data: DataConfig, height: int, width: int) -> int:
    """How many images to generate at one size: ``n_images``, capped by ``max_pixels`` (at least one)."""
    if not data.max_pixels:
        return data.n_images
    return max(1, min(data.n_images, data.max_pixels // (data.channels * data.depth * height * width)))


def data_key(data: DataConfig) -> str:
    """A short hash of everything that determines the generated images and their files (the data cache key).

    ``datasets`` is left out (each of them has its own key), and ``rows_per_unit``, ``layout``, ``content`` and
    ``depth`` are hashed only when not the default, so the keys of configs without them are those they had before
    these keys existed.
    """
    values = dataclasses.asdict(data)
    values.pop("datasets")
    if values["depth"] == 1:
        values.pop("depth")
    if values["rows_per_unit"] is None:
        values.pop("rows_per_unit")
    if values["layout"] == "ome-arrow":
        values.pop("layout")
    if values["content"] == "random":
        values.pop("content")
    blob = json.dumps(values, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]


def machine_memory_bytes() -> int:
    """This machine's physical memory in bytes."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


@dataclass(frozen=True)
class DatasetPlan:
    """One generated dataset to prepare: its images (``data``, with ``n_images`` resolved) and its formats."""

    data: DataConfig
    size: tuple[int, int]  # height, width
    formats: list[str]


def dataset_plans(cfg: Config, memory_bytes: int | None = None) -> list[DatasetPlan]:
    """The generated datasets of a run: one per ``data.sizes`` entry in every configured format, then one per
    ``data.datasets`` entry in its formats (those also configured; an entry left with none is not generated).
    ``ram_fraction`` is taken of ``memory_bytes`` (default: this machine's memory)."""
    d = cfg.data
    plans = [
        DatasetPlan(dataclasses.replace(d, n_images=images_for_size(d, h, w)), (h, w), list(cfg.formats))
        for h, w in d.sizes
    ]
    itemsize = {"uint8": 1, "uint16": 2, "float32": 4}[d.dtype]
    for spec in d.datasets:
        h, w = spec["size"]
        formats = [f for f in cfg.formats if f in (spec.get("formats") or cfg.formats)]
        if not formats:
            continue
        n = int(spec.get("n_images", d.n_images))
        fraction = float(spec.get("ram_fraction", 0))
        if fraction:
            memory = machine_memory_bytes() if memory_bytes is None else memory_bytes
            n = max(n, math.floor(fraction * memory / (d.channels * d.depth * h * w * itemsize)) + 1)
        data = dataclasses.replace(d, n_images=n, sizes=[[h, w]], max_pixels=0, datasets=[])
        plans.append(DatasetPlan(data, (h, w), formats))
    return plans
