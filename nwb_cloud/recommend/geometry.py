"""Chunks touched by a selection, by arithmetic on the chunk grid: the cost model's inputs for any chunk shape.

:mod:`nwb_cloud.analysis.chunks` reads the same figures from a written file's chunk index; here no file
exists yet, so only the counts are computed (a chunk shape that was never written can still be priced).
HDF5 and Zarr store an edge chunk at the full chunk shape, so every touched chunk decodes to the full
``chunk_bytes``.

``runs`` counts the touched chunks' contiguous runs in the chunk grid's C order, the order a file written in
time order stores them: a reader with read-ahead (remfile, fsspec) fetches a run in few requests, while
scattered chunks cost a request each. 500 whole frames are one run; a patch over 4 time chunks is 4 runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from nwb_cloud.analysis.chunks import ChunkIndexError, normalize_selection
from nwb_cloud.recommend.errors import BadChunkShape


@dataclass(frozen=True)
class Geometry:
    chunks: int  # chunks the selection touches
    chunk_bytes: int  # uncompressed bytes of one chunk
    selection_bytes: int  # uncompressed bytes of the selection itself
    runs: int  # contiguous runs of touched chunks in the grid's C order (see the module docstring)

    @property
    def decoded_bytes(self) -> int:
        """Bytes a reader decodes to return the selection: every touched chunk, whole."""
        return self.chunks * self.chunk_bytes


def check_chunk_shape(shape, chunk_shape) -> tuple[int, ...]:
    """``chunk_shape`` as ints, or :class:`BadChunkShape` naming what is wrong with it for data of ``shape``."""
    shape, chunk_shape = tuple(int(s) for s in shape), tuple(chunk_shape)
    if len(chunk_shape) != len(shape):
        raise BadChunkShape(
            f"chunk shape {chunk_shape} has rank {len(chunk_shape)}, the data {shape} has rank {len(shape)}"
        )
    try:
        chunk_shape = tuple(int(c) for c in chunk_shape)
    except (TypeError, ValueError):
        raise BadChunkShape(f"chunk shape {chunk_shape} is not a tuple of integers") from None
    if any(c < 1 for c in chunk_shape):
        raise BadChunkShape(f"chunk shape {chunk_shape} has an extent below 1")
    larger = [axis for axis, (c, s) in enumerate(zip(chunk_shape, shape, strict=True)) if c > s]
    if larger:
        raise BadChunkShape(
            f"chunk shape {chunk_shape} is larger than the data {shape} on axis "
            f"{', '.join(str(a) for a in larger)}: clip it to the data's extent"
        )
    return chunk_shape


def _touched_along(axis: range, chunk: int) -> tuple[int, int]:
    """(chunks touched along one axis, contiguous groups they form)."""
    if len(axis) == 0:
        return 0, 0
    if axis.step == 1 or axis.step < chunk:
        return axis[-1] // chunk - axis.start // chunk + 1, 1
    indexes = np.unique(np.arange(axis.start, axis.stop, axis.step) // chunk)
    return len(indexes), int(np.count_nonzero(np.diff(indexes) > 1)) + 1


def _runs(touched: list[tuple[int, int]], grid: list[int]) -> int:
    """Runs in C order: every axis after the last partly-touched one is whole, so that axis's groups are runs,
    repeated once per touched chunk of the axes before it."""
    partial = [axis for axis, ((count, _), extent) in enumerate(zip(touched, grid, strict=True)) if count < extent]
    if not partial:
        return 1
    last = partial[-1]
    return math.prod(count for count, _ in touched[:last]) * touched[last][1]


def geometry(shape, chunk_shape, itemsize: int, selection) -> Geometry:
    """Chunks that ``selection`` (slices/ints, or a workload's ``select``) touches in a ``chunk_shape`` grid."""
    shape = tuple(int(s) for s in shape)
    chunk_shape = check_chunk_shape(shape, chunk_shape)
    try:
        axes = normalize_selection(selection(shape) if callable(selection) else selection, shape)
    except (ChunkIndexError, ValueError, TypeError, IndexError) as error:
        raise BadChunkShape(f"the selection does not fit data of shape {shape}: {error}") from None
    touched = [_touched_along(axis, c) for axis, c in zip(axes, chunk_shape, strict=True)]
    chunks = math.prod(count for count, _ in touched)
    grid = [-(-s // c) for s, c in zip(shape, chunk_shape, strict=True)]
    return Geometry(
        chunks=chunks,
        chunk_bytes=math.prod(chunk_shape) * int(itemsize),
        selection_bytes=math.prod(len(axis) for axis in axes) * int(itemsize),
        runs=_runs(touched, grid) if chunks else 0,
    )


def chunk_count(shape, chunk_shape) -> int:
    """Chunks in the whole dataset (what its chunk index has to list)."""
    return math.prod(-(-int(s) // int(c)) for s, c in zip(shape, chunk_shape, strict=True))
