"""A realistic image pipeline to profile, generated locally and seeded.

On disk: ``n`` encoded RGB images (JPEG or PNG, default 640x640) with smooth multi-scale content plus a little noise,
so they compress like photos, and per image a pre-processed artefact as in the seed: a compressed ``.npz`` of float32
maps (default 3x160x160: a probability map, a threshold map and a binary mask derived from the image).

:class:`PipelineDataset` runs, per sample, the stages ``read`` (file bytes) -> ``decode`` -> ``transform`` (resize,
seeded random horizontal flip, per-channel normalisation, HWC -> CHW) -> ``map_load`` (``np.load`` of the ``.npz``, or
a lookup in the RAM pre-load) and returns ``({"image", "maps"}, SampleTimes)``. The main loop then runs the model
(:func:`make_model`).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Dataset

from loaderbench.memory import process_tree_memory_mb
from loaderbench.model import LargeConvNet, SimpleEmbeddingModel
from loaderbench.profile import MODELS
from loaderbench.profile.decoders import FORMATS, Decode, make_decoder
from loaderbench.profile.stages import SampleTimes, StageTimer
from loaderbench.results import atomic_write_bytes

MANIFEST = "manifest.json"
#: ImageNet statistics, the usual normalisation of an RGB pipeline
MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32) * 255
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32) * 255
_SUFFIX = {"jpeg": ".jpg", "png": ".png"}


@dataclass(frozen=True)
class PipelineSpec:
    """What to generate: image count, size (H, W), encoding, the maps' shape, and the seed."""

    n_images: int = 64
    height: int = 640
    width: int = 640
    image_format: str = "jpeg"
    map_shape: tuple[int, int, int] = (3, 160, 160)
    jpeg_quality: int = 90
    seed: int = 0

    def key(self) -> str:
        """A short hash of the spec: generated data is cached under it."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class PipelineData:
    """Generated files: image paths and map paths (index-aligned), and the spec that made them."""

    root: Path
    spec: PipelineSpec
    images: tuple[Path, ...]
    maps: tuple[Path, ...]
    image_bytes: int
    map_bytes: int
    generate_s: float

    def __len__(self) -> int:
        return len(self.images)


def synth_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 image: three octaves of smooth random colour plus mild noise (compresses like a photo)."""
    acc = np.full((height, width, 3), 128.0, dtype=np.float32)
    for cells, amplitude in ((4, 90.0), (16, 50.0), (64, 25.0)):
        low = rng.integers(0, 256, (cells, cells, 3), dtype=np.uint8)
        up = np.asarray(Image.fromarray(low).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
        acc += (up - 128.0) * (amplitude / 128.0)
    acc += rng.normal(0.0, 3.0, acc.shape).astype(np.float32)
    return np.clip(acc, 0, 255).astype(np.uint8)


def synth_maps(image: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """``shape`` float32 maps derived from ``image``: probability, threshold and binary mask, like a text detector's."""
    channels, height, width = shape
    gray = np.asarray(Image.fromarray(image).convert("L").resize((width, height), Image.Resampling.BILINEAR))
    prob = gray.astype(np.float32) / 255.0
    layers = [prob, np.clip(0.3 + 0.4 * (1.0 - prob), 0.0, 1.0), (prob > 0.5).astype(np.float32)]
    while len(layers) < channels:
        layers.append(prob * (len(layers) % 2))
    return np.stack(layers[:channels]).astype(np.float32)


def _encode(image: np.ndarray, image_format: str, quality: int) -> bytes:
    import io  # noqa: PLC0415

    buffer = io.BytesIO()
    if image_format == "jpeg":
        Image.fromarray(image).save(buffer, "JPEG", quality=quality)
    else:
        Image.fromarray(image).save(buffer, "PNG")
    return buffer.getvalue()


def ensure_pipeline_data(spec: PipelineSpec, data_dir: str | Path) -> PipelineData:
    """The files of ``spec`` under ``data_dir/<format>-<n>-<H>x<W>-<hash>/``, generated when missing.

    A manifest written last (atomically) marks a complete set, so an interrupted generation is redone.
    """
    if spec.n_images < 1:
        raise ValueError("empty dataset: the pipeline needs at least 1 image")
    if spec.image_format not in FORMATS:
        raise ValueError(f"unknown image format {spec.image_format!r} (choose from {', '.join(FORMATS)})")
    if min(spec.height, spec.width) < 16:
        raise ValueError(f"images must be at least 16x16, got {spec.height}x{spec.width}")
    root = Path(data_dir) / f"{spec.image_format}-{spec.n_images}-{spec.height}x{spec.width}-{spec.key()}"
    suffix = _SUFFIX[spec.image_format]
    images = tuple(root / f"img_{i:06d}{suffix}" for i in range(spec.n_images))
    maps = tuple(root / f"maps_{i:06d}.npz" for i in range(spec.n_images))
    manifest = root / MANIFEST
    start = time.perf_counter()
    if not manifest.is_file() or not all(p.is_file() for p in (*images, *maps)):
        rng = np.random.default_rng(spec.seed)
        root.mkdir(parents=True, exist_ok=True)
        for image_path, map_path in zip(images, maps, strict=True):
            pixels = synth_image(rng, spec.height, spec.width)
            atomic_write_bytes(image_path, _encode(pixels, spec.image_format, spec.jpeg_quality))
            np.savez_compressed(map_path, maps=synth_maps(pixels, spec.map_shape))
        atomic_write_bytes(manifest, json.dumps(asdict(spec), indent=2).encode())
    generate_s = time.perf_counter() - start
    return PipelineData(
        root=root,
        spec=spec,
        images=images,
        maps=maps,
        image_bytes=sum(p.stat().st_size for p in images),
        map_bytes=sum(p.stat().st_size for p in maps),
        generate_s=generate_s,
    )


def flip_for(index: int, seed: int) -> bool:
    """The seeded coin of sample ``index``: the same in every configuration, whatever process draws it."""
    return bool(((index + 1) * 2654435761 + seed * 40503) >> 7 & 1)


class PipelineDataset(Dataset):
    """read -> decode -> transform -> map_load per sample, each stage timed by ``timer``.

    ``decoder`` is ``pil`` or ``turbo`` (see :mod:`loaderbench.profile.decoders`). Maps come from the ``.npz`` files
    unless :meth:`preload_maps` has loaded them all into RAM (the seed's optimisation).
    """

    def __init__(
        self, data: PipelineData, timer: StageTimer, decoder: str = "pil", out_size: int = 224, seed: int = 0
    ) -> None:
        if len(data) == 0:
            raise ValueError("empty dataset: no images to profile")
        self.data = data
        self.timer = timer
        self.decoder = decoder
        self.out_size = int(out_size)
        self.seed = int(seed)
        self.maps_in_ram: dict[int, np.ndarray] | None = None
        self._decode: Decode = make_decoder(decoder, data.spec.image_format)  # fails early when unavailable

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_decode"] = None  # a ctypes-backed decoder does not pickle; rebuilt in the worker
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._decode = make_decoder(self.decoder, self.data.spec.image_format)

    def __len__(self) -> int:
        return len(self.data)

    def preload_maps(self) -> tuple[float, float, float]:
        """Load every map into RAM: ``(seconds, MB of arrays, MB of USS the process grew by)``."""
        uss_before = process_tree_memory_mb()[0]
        start = time.perf_counter()
        cache = {}
        for index, path in enumerate(self.data.maps):
            with np.load(path) as archive:
                cache[index] = archive["maps"]
        seconds = time.perf_counter() - start
        self.maps_in_ram = cache
        uss_after = process_tree_memory_mb()[0]
        return seconds, sum(a.nbytes for a in cache.values()) / 2**20, uss_after - uss_before

    def transform(self, image: Image.Image, index: int) -> torch.Tensor:
        """Resize to ``out_size`` square (bilinear), flip by the seeded coin, normalise, HWC uint8 -> CHW float32."""
        resized = image.resize((self.out_size, self.out_size), Image.Resampling.BILINEAR)
        pixels = np.asarray(resized, dtype=np.float32)
        if flip_for(index, self.seed):
            pixels = pixels[:, ::-1]
        pixels = (pixels - MEAN) / STD
        return torch.from_numpy(np.ascontiguousarray(pixels.transpose(2, 0, 1)))

    def load_maps(self, index: int) -> torch.Tensor:
        """The sample's maps, from RAM when pre-loaded, else decompressed from its ``.npz``."""
        if self.maps_in_ram is not None:
            return torch.from_numpy(self.maps_in_ram[index])
        with np.load(self.data.maps[index]) as archive:
            return torch.from_numpy(archive["maps"])

    def __getitem__(self, index: int) -> tuple[dict[str, torch.Tensor], SampleTimes]:
        timer = self.timer
        with timer.sample() as times:
            with timer.stage("read"):
                raw = self.data.images[index].read_bytes()
            with timer.stage("decode"):
                image = self._decode(raw)
            with timer.stage("transform"):
                tensor = self.transform(image, index)
            with timer.stage("map_load"):
                maps = self.load_maps(index)
        return {"image": tensor, "maps": maps}, times


def make_model(name: str) -> nn.Module:
    """``small``: Track 3's ``SimpleEmbeddingModel`` on RGB; ``large``: :class:`LargeConvNet`. Seeded, eval mode."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r} (choose from {', '.join(MODELS)})")
    torch.manual_seed(0)
    model = SimpleEmbeddingModel(in_channels=3) if name == "small" else LargeConvNet(in_channels=3)
    return model.eval()
