"""Benchmark configuration: presets, TOML files and CLI overrides, validated in one place.

A config is a tree of small dataclasses. ``load_config`` starts from a preset, applies a TOML file, then
CLI overrides; unknown keys and bad values raise ``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ALL_FORMATS = ("parquet", "parquet_duckdb", "lance", "vortex", "duckdb", "tiff", "ome_zarr", "arrow_ipc")
ALL_TRACKS = ("getitem", "dataloader", "end_to_end", "conversion")
# Run only when named (`--tracks sparse`): its own data (cells x genes), not the image formats.
OPTIONAL_TRACKS = ("sparse",)
DTYPES = ("uint8", "uint16", "float32")
ACCESS_PATTERNS = ("sequential", "random")
TRANSFORMS = ("none", "normalize", "augment")
PRESETS = ("quick", "seed", "full")


class ConfigError(ValueError):
    """A configuration value or key that is not valid."""


@dataclass
class DataConfig:
    """What images to generate (the seed: 1,000 x 100x100 uint8, seed 42)."""

    n_images: int = 1000
    sizes: list[list[int]] = field(default_factory=lambda: [[100, 100]])  # [[height, width], ...]
    dtype: str = "uint8"
    channels: int = 1
    seed: int = 42
    max_pixels: int = 0  # cap images per size so that n*C*H*W <= max_pixels (0 = no cap): keeps 1000x1000 in RAM


@dataclass
class GetitemConfig:
    """Track 1: ``Dataset.__getitem__`` latency."""

    repeats: int = 3
    samples: int = 100
    warmup: int = 10
    access: list[str] = field(default_factory=lambda: list(ACCESS_PATTERNS))
    transforms: list[str] = field(default_factory=lambda: list(TRANSFORMS))
    loaders: list[str] = field(default_factory=lambda: ["naive", "preloaded"])
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

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _preset(name: str) -> dict[str, Any]:
    if name == "seed":
        # The seed's configuration exactly: its defaults are this config's (1,000 100x100 uint8 images; Track 1
        # 3 x 100 samples after 10 warm-up; Track 2 batch 1/4/16 x workers 0/2/4 x 50 batches; Track 3 50 steps,
        # batch 16, 2 workers, shuffled, Normalize; Track 4 as Track 1).
        return {}
    if name == "full":
        # The seeds' settings, plus the image sizes the seed's Track 4 discusses.
        return {"data": {"n_images": 1000, "sizes": [[50, 50], [100, 100], [1000, 1000]], "max_pixels": 250_000_000}}
    if name == "quick":
        # A few minutes on 2 cores: fewer images and samples, the interesting corners of each sweep.
        return {
            "data": {"n_images": 256},
            "getitem": {"samples": 50, "warmup": 5, "transforms": ["none", "augment"]},
            "dataloader": {"batch_sizes": [1, 16], "num_workers": [0, 2], "batches": 20},
            "end_to_end": {"steps": 10, "warmup_steps": 2},
            "conversion": {"samples": 50, "warmup": 5},
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
    _check_positive(d.max_pixels, "data.max_pixels", 0)
    _check_choices([d.dtype], DTYPES, "data.dtype")
    if not d.sizes:
        raise ConfigError("data.sizes must name at least one [height, width]")
    for size in d.sizes:
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
            raise ConfigError(f"data.sizes entries must be [height, width] with positive integers, got {size!r}")
    g = cfg.getitem
    for key in ("repeats", "samples"):
        _check_positive(getattr(g, key), f"getitem.{key}")
    _check_positive(g.warmup, "getitem.warmup", 0)
    _check_positive(g.crop_size, "getitem.crop_size", 0)
    _check_choices(g.access, ACCESS_PATTERNS, "getitem.access")
    _check_choices(g.transforms, TRANSFORMS, "getitem.transforms")
    _check_choices(g.loaders, ("naive", "preloaded"), "getitem.loaders")
    if g.crop_size and any(g.crop_size > min(size) for size in d.sizes):
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
    return max(1, min(data.n_images, data.max_pixels // (data.channels * height * width)))


def data_key(data: DataConfig) -> str:
    """A short hash of everything that determines the generated images (the data cache key)."""
    blob = json.dumps(dataclasses.asdict(data), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:12]
