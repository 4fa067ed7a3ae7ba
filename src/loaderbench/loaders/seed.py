"""The seed's torch datasets, reproduced faithfully (DESIGN.md §2, §6) as the baselines.

- ``OMEArrowDataset(table, preload=False)``: the seed's naive path — every ``__getitem__`` slices the Arrow table,
  calls ``.as_py()`` on the ``ome_image`` struct and decodes the Python lists with numpy.
- ``OMEArrowDataset(table, preload=True)``: the seed's optimisation — every image decoded once at construction into
  a Python list of numpy arrays; ``__getitem__`` copies one out.
- ``OMEArrowDatasetNumpy``: Track 4's variant, the same loading but the image stays numpy in its *stored* dtype, so
  the conversion to float32 can be timed on its own (the seed converted an array that was already float32).
- ``DirectoryDataset``: TIFF / OME-Zarr, one ``read_item`` decode per ``__getitem__``.

Torch datasets do what the seed's ``__getitem__`` does, step for step: ``torch.from_numpy(image).float()``, then
``if t.max() > 1.0: t = t / 255.0`` (the stored dtype's maximum for uint16 data, which the seed never had), then the
transform (see ``transforms``): float32 ``(C, H, W)``, or ``(C, Z, H, W)`` for volumes (images whose ``size_z`` is
more than 1; a singleton Z is dropped, as the seed's images had none).
Datasets hold the Arrow table or the list of item paths (no open file handles), so they survive fork and pickle.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torch.utils.data import Dataset

from loaderbench.ome_image import OME_COLUMN, SCALE_MAX, decode_struct, to_chw

Transform = Callable[[torch.Tensor], torch.Tensor]

#: loader names per format kind (``make_dataset``)
TABLE_LOADERS = ("naive", "preloaded")
DIRECTORY_LOADERS = ("decode",)


def scale_max(dtype: np.dtype | str) -> float:
    """The stored value that maps to 1.0 (255 for uint8, 65535 for uint16, 1 for float32)."""
    key = np.dtype(dtype)
    try:
        return SCALE_MAX[key]
    except KeyError:
        supported = ", ".join(str(d) for d in SCALE_MAX)
        raise ValueError(f"cannot scale images of dtype {key} to [0, 1] (supported: {supported})") from None


def to_float_tensor(arr: np.ndarray) -> torch.Tensor:
    """The real conversion: a stored-dtype array to a float32 tensor in [0, 1].

    ``torch.from_numpy`` shares ``arr``'s memory; ``.to(float32)`` copies unless ``arr`` is already float32, in
    which case (scale 1) the result still shares ``arr``'s memory — callers that must not alias copy first.
    """
    if not arr.flags.writeable:  # torch.from_numpy warns on read-only arrays (e.g. memory-mapped reads)
        arr = arr.copy()
    tensor = torch.from_numpy(arr).to(torch.float32)
    scale = scale_max(arr.dtype)
    if scale != 1.0:
        tensor.div_(scale)  # in place on the fresh float32 copy
    return tensor


def seed_to_tensor(arr: np.ndarray) -> torch.Tensor:
    """The seed's conversion: ``float()`` then, only if some value exceeds 1, a division (a new tensor)."""
    if not arr.flags.writeable:  # torch.from_numpy warns on read-only arrays (e.g. memory-mapped reads)
        arr = arr.copy()
    tensor = torch.from_numpy(arr).float()
    if tensor.max() > 1.0:
        tensor = tensor / scale_max(arr.dtype)
    return tensor


class _StoredImageDataset(Dataset):
    """Shared ``__getitem__``: load the stored-dtype image, convert as the seed did, apply the transform."""

    transform: Transform | None

    def load_stored(self, idx: int) -> np.ndarray:
        """Image ``idx`` as ``(C, H, W)`` (``(C, Z, H, W)`` for a volume) in its stored dtype; a fresh array the
        caller may modify."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError

    def _check_index(self, idx: int) -> int:
        n = len(self)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f"index {idx} out of range for a dataset of {n} images")
        return int(idx)

    def __getitem__(self, idx: int) -> torch.Tensor:
        tensor = seed_to_tensor(self.load_stored(self._check_index(idx)))
        if self.transform is not None:
            tensor = self.transform(tensor)
        return tensor

    def numpy_view(self) -> _StoredImageDataset:
        """The numpy variant of this dataset, sharing its table / cache / paths (no second pre-load)."""
        view = object.__new__(_NUMPY_VARIANT[type(self)])
        view.__dict__.update(self.__dict__)
        view.transform = None
        return view


class OMEArrowDataset(_StoredImageDataset):
    """The seed's dataset over an OME-Arrow table (columns ``row_id``, ``ome_image``).

    ``preload=False`` decodes on every access through ``.as_py()`` (the seed's original, slow path);
    ``preload=True`` decodes every image once here and keeps them in a Python list (the seed's optimisation,
    whose cost shows up as construction time and as memory copied into each DataLoader worker).
    """

    def __init__(self, table: pa.Table, preload: bool = False, transform: Transform | None = None) -> None:
        if OME_COLUMN not in table.column_names:
            raise ValueError(f"table has no {OME_COLUMN!r} column (columns: {', '.join(table.column_names)})")
        self.table = table
        self.preload = preload
        self.transform = transform
        self._length = table.num_rows
        self.pixel_cache: list[np.ndarray] | None = None
        if preload:
            self._preload_pixels()

    def _preload_pixels(self) -> None:
        column = self.table[OME_COLUMN]
        self.pixel_cache = [to_chw(decode_struct(column[i].as_py())) for i in range(self._length)]

    def __len__(self) -> int:
        return self._length

    def load_stored(self, idx: int) -> np.ndarray:
        if self.pixel_cache is not None:
            return self.pixel_cache[idx].copy()  # the seed copies so callers cannot alter the cache
        row = self.table.slice(idx, 1)
        return to_chw(decode_struct(row[OME_COLUMN][0].as_py()))


class DirectoryDataset(_StoredImageDataset):
    """One image per file (TIFF) or per group (OME-Zarr): ``read_item`` decodes it on every access."""

    def __init__(self, format_module: ModuleType | Any, path: Path | str, transform: Transform | None = None) -> None:
        self.format_name = format_module.INFO.name
        self.path = Path(path)
        self.items = [Path(p) for p in format_module.item_paths(self.path)]
        self._read_item = format_module.read_item  # module-level function: pickles by reference
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def load_stored(self, idx: int) -> np.ndarray:
        return np.asarray(self._read_item(self.items[idx]))


class _NumpyMixin:
    """Return the stored-dtype numpy image: no scaling, no torch, no transform (Track 4's numpy side)."""

    def __getitem__(self, idx: int) -> np.ndarray:
        return self.load_stored(self._check_index(idx))  # type: ignore[attr-defined]


class OMEArrowDatasetNumpy(_NumpyMixin, OMEArrowDataset):
    """``OMEArrowDataset`` that returns numpy arrays in the stored dtype (the seed's Track 4 variant)."""

    def __init__(self, table: pa.Table, preload: bool = False) -> None:
        super().__init__(table, preload=preload, transform=None)


class DirectoryDatasetNumpy(_NumpyMixin, DirectoryDataset):
    """``DirectoryDataset`` that returns numpy arrays in the stored dtype."""

    def __init__(self, format_module: ModuleType | Any, path: Path | str) -> None:
        super().__init__(format_module, path, transform=None)


_NUMPY_VARIANT: dict[type, type] = {
    OMEArrowDataset: OMEArrowDatasetNumpy,
    OMEArrowDatasetNumpy: OMEArrowDatasetNumpy,
    DirectoryDataset: DirectoryDatasetNumpy,
    DirectoryDatasetNumpy: DirectoryDatasetNumpy,
}


def loaders_for(format_module: ModuleType | Any) -> tuple[str, ...]:
    """The loader names a format supports: ``naive``/``preloaded`` for tables, ``decode`` for directories."""
    kind = format_module.INFO.kind
    if kind == "table":
        return TABLE_LOADERS
    if kind == "directory":
        return DIRECTORY_LOADERS
    raise ValueError(f"format {format_module.INFO.name!r} has unknown kind {kind!r}")


def make_dataset(
    format_module: ModuleType | Any,
    path: Path | str,
    loader: str,
    transform: Transform | None = None,
    column: str | None = None,
) -> _StoredImageDataset:
    """The seed dataset for ``loader`` over the dataset at ``path`` in ``format_module``'s format.

    Construction reads the table (table formats; ``column`` names its image column, by default ``ome_image`` or the
    one OME-Arrow struct column) or lists the items (directory formats); with ``preloaded`` it also decodes every
    image, so time this call to get the set-up cost.
    """
    allowed = loaders_for(format_module)
    if loader not in allowed:
        info = format_module.INFO
        raise ValueError(
            f"loader {loader!r} is not available for {info.label} ({info.kind} format); "
            f"choose from {', '.join(allowed)}"
        )
    if format_module.INFO.kind == "table":
        table = format_module.read_table(Path(path), column=column)
        return OMEArrowDataset(table, preload=loader == "preloaded", transform=transform)
    return DirectoryDataset(format_module, path, transform=transform)
