"""Chunks touched by a selection, by arithmetic on the chunk grid: the cost model's inputs for any chunk shape.

:mod:`nwb_cloud.analysis.chunks` reads the same figures from a written file's chunk index; here no file
exists yet, so only the counts are computed (a chunk shape that was never written can still be priced).
HDF5 and Zarr store an edge chunk at the full chunk shape, so every touched chunk decodes to the full
``chunk_bytes``.
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


def _touched_along(axis: range, chunk: int) -> int:
    if len(axis) == 0:
        return 0
    if axis.step == 1:
        return axis[-1] // chunk - axis.start // chunk + 1
    return len(np.unique(np.arange(axis.start, axis.stop, axis.step) // chunk))


def geometry(shape, chunk_shape, itemsize: int, selection) -> Geometry:
    """Chunks that ``selection`` (slices/ints, or a workload's ``select``) touches in a ``chunk_shape`` grid."""
    shape = tuple(int(s) for s in shape)
    chunk_shape = check_chunk_shape(shape, chunk_shape)
    try:
        axes = normalize_selection(selection(shape) if callable(selection) else selection, shape)
    except (ChunkIndexError, ValueError, TypeError, IndexError) as error:
        raise BadChunkShape(f"the selection does not fit data of shape {shape}: {error}") from None
    chunks = math.prod(_touched_along(axis, c) for axis, c in zip(axes, chunk_shape, strict=True))
    return Geometry(
        chunks=chunks,
        chunk_bytes=math.prod(chunk_shape) * int(itemsize),
        selection_bytes=math.prod(len(axis) for axis in axes) * int(itemsize),
    )


def chunk_count(shape, chunk_shape) -> int:
    """Chunks in the whole dataset (what its chunk index has to list)."""
    return math.prod(-(-int(s) // int(c)) for s, c in zip(shape, chunk_shape, strict=True))
