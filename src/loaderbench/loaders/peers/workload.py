"""The one workload every image peer loads: an OME-Arrow Parquet file (and optionally the same rows in Lance), the
batch size, shuffle, seed and epochs, passed to each peer's fresh process as JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from loaderbench.config import PAGE_CACHE_STATES
from loaderbench.ome_image import OME_COLUMN, SCALE_MAX, decode_column


@dataclass(frozen=True)
class ImageWorkload:
    """What to load and how: every peer yields float32 ``[B, C, H, W]`` in [0, 1] batches of these rows."""

    name: str  # e.g. "uncompressed_100x100", "zstd_chunks_100x100"
    parquet: str  # an OME-Arrow Parquet file (column "ome_image"): every peer's source
    lance: str | None  # the same rows as a Lance dataset, None if not written
    n: int
    channels: int
    height: int
    width: int
    dtype: str  # the images' logical dtype ("uint8" / "uint16")
    batch_size: int = 256
    shuffle: bool = True  # a fresh random permutation of all rows every epoch (seeded by seed + epoch)
    seed: int = 0
    epochs: int = 3  # timed epochs, after one untimed warm-up epoch
    num_workers: tuple[int, ...] = (0, 2)  # DataLoader worker counts a peer's variants may use
    workdir: str = ""  # cache folder for the peers' converted copies (one sub-folder per peer)
    # "cold": the files a peer reads are evicted from the page cache before its loader is built and before every
    # timed epoch, and only peers that stream from disk run (one that holds the dataset in memory never reads it
    # again after its build); "warm": nothing is evicted
    page_cache: str = "warm"

    def __post_init__(self) -> None:
        if self.dtype not in ("uint8", "uint16"):
            raise ValueError(f"dtype must be uint8 or uint16, got {self.dtype!r}")
        if self.page_cache not in PAGE_CACHE_STATES:
            raise ValueError(f"page_cache must be one of {', '.join(PAGE_CACHE_STATES)}, got {self.page_cache!r}")
        for name in ("n", "channels", "height", "width", "batch_size", "epochs"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        object.__setattr__(self, "num_workers", tuple(int(w) for w in self.num_workers))

    @property
    def scale(self) -> float:
        """The stored value that maps to 1.0 (255 for uint8, 65535 for uint16)."""
        return SCALE_MAX[np.dtype(self.dtype)]

    @property
    def shape(self) -> tuple[int, int, int]:
        """One image's ``(C, H, W)``."""
        return self.channels, self.height, self.width

    def cache_dir(self, peer: str) -> Path:
        """The peer's own sub-folder of ``workdir`` (created)."""
        if not self.workdir:
            raise ValueError("the workload has no workdir for the peers' converted copies")
        path = Path(self.workdir) / peer
        path.mkdir(parents=True, exist_ok=True)
        return path

    def source_paths(self, peer: str) -> list[Path]:
        """Every file or folder peer ``peer`` may read: the Parquet file, the Lance copy and its own cache folder
        (what a cold epoch evicts)."""
        paths = [Path(self.parquet), *([Path(self.lance)] if self.lance else [])]
        return [*paths, self.cache_dir(peer)]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ImageWorkload:
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown workload fields: {', '.join(unknown)}")
        values["num_workers"] = tuple(values.get("num_workers", (0, 2)))
        return cls(**values)


def source_stamp(workload: ImageWorkload) -> dict[str, object]:
    """What a peer's converted copy was made from: when any of it changes, the copy is converted again."""
    source = Path(workload.parquet)
    stat = source.stat()
    return {"parquet": str(source.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns, "n": workload.n,
            "shape": list(workload.shape), "dtype": workload.dtype}


def stored_images(workload: ImageWorkload) -> np.ndarray:
    """Every image of ``workload.parquet`` as ``(N, C, H, W)`` in its logical dtype (one vectorised decode)."""
    import pyarrow.parquet as pq  # noqa: PLC0415

    images = decode_column(pq.read_table(workload.parquet, columns=[OME_COLUMN])[OME_COLUMN])
    if images.shape[2] != 1:
        raise ValueError(f"{workload.parquet}: volumes (Z={images.shape[2]}) are not image workloads")
    images = images[:, :, 0]
    expected = (workload.n, *workload.shape)
    if images.shape != expected or images.dtype != np.dtype(workload.dtype):
        raise ValueError(f"{workload.parquet}: holds {images.shape} {images.dtype}, the workload says "
                         f"{expected} {workload.dtype}")
    return images


def reference_images(workload: ImageWorkload) -> np.ndarray:
    """``(N, C, H, W)`` float32 in [0, 1], decoded from the Parquet file: what every peer's epoch must equal."""
    images = stored_images(workload)
    return (images.astype(np.float32) / np.float32(workload.scale)).astype(np.float32)
