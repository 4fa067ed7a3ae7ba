"""The zstd roofline binding (benchmarks/native_decode.py's d3): frames given in place as a binary array's buffers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from loaderbench import _core

pytestmark = pytest.mark.skipif(not _core.zstd_bandwidth_available(), reason="this build of the core has no zstd")


def _buffers(array: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(data, offsets) of a large_binary array, in place (its slice offset applied)."""
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=np.int64)[array.offset : array.offset + len(array) + 1]
    return np.frombuffer(buffers[2], dtype=np.uint8), offsets


def test_counts_every_chunk_of_a_sliced_array_once() -> None:
    codec = pa.Codec("zstd")
    raws = [bytes(range(256)) * k for k in (1, 3, 40)]
    chunks = pa.array([codec.compress(r, asbytes=True) for r in raws * 2], type=pa.large_binary()).slice(2, 3)
    data, offsets = _buffers(chunks)
    result = _core.zstd_decompress_bandwidth(data, offsets, threads=2, repeats=3)
    assert result["chunks"] == 3
    assert result["output_bytes"] == len(raws[2]) + len(raws[0]) + len(raws[1])
    assert result["input_bytes"] == int(offsets[-1] - offsets[0])
    assert len(result["output_bytes_per_s"]) == 3 and min(result["output_bytes_per_s"]) > 0
    assert result["threads"] == 2 and result["passes_per_round"] >= 1


def test_refuses_what_is_not_a_zstd_frame() -> None:
    junk = np.full(64, 0xAB, dtype=np.uint8)
    with pytest.raises(ValueError, match="not a zstd frame"):
        _core.zstd_decompress_bandwidth(junk, np.array([0, 64], dtype=np.int64), threads=1)
    with pytest.raises(ValueError, match="outside"):
        _core.zstd_decompress_bandwidth(junk, np.array([0, 65], dtype=np.int64), threads=1)
