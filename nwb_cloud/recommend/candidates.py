"""Chunk shapes worth pricing: powers of two on every axis (or the whole axis), between ~100 KB and ~20 MB.

Every extent is a power of two or the axis' full length, so chunks tile frames and channel groups evenly;
shapes outside the size band are dropped (too small: one request and one index entry per few KB; too
large: a small read decodes megabytes it does not need). Data smaller than the band's floor is one chunk.
"""

from __future__ import annotations

import itertools
import math

from nwb_cloud.recommend.geometry import check_chunk_shape

MIN_CHUNK_BYTES = 100_000
MAX_CHUNK_BYTES = 20_000_000


def axis_extents(size: int) -> list[int]:
    """1, 2, 4, ... below ``size``, and ``size`` itself."""
    extents = [2**k for k in range(max(1, math.ceil(math.log2(max(size, 1))))) if 2**k < size]
    return [*extents, int(size)]


def chunk_candidates(shape, itemsize: int, min_bytes: int = MIN_CHUNK_BYTES, max_bytes: int = MAX_CHUNK_BYTES,
                     include=()) -> list[tuple[int, ...]]:  # fmt: skip
    """Candidate chunk shapes for data of ``shape``, plus ``include`` (e.g. NeuroConv's default), sorted."""
    shape = tuple(int(s) for s in shape)
    total = math.prod(shape) * itemsize
    if total <= min_bytes:
        found = {shape}
    else:
        found = {
            combo
            for combo in itertools.product(*(axis_extents(s) for s in shape))
            if min_bytes <= math.prod(combo) * itemsize <= max_bytes
        }
    found |= {check_chunk_shape(shape, extra) for extra in include}
    return sorted(found, key=lambda c: (math.prod(c), c))
