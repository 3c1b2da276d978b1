"""Which stored chunks a selection touches, read from the file's own chunk index (HDF5) or Zarr metadata.

The answer is what any reader must at least fetch and decode to return the selection: the touched chunks'
byte offsets and compressed sizes (HDF5: ``get_chunk_info_by_coord`` on the local file; Zarr 2: ``.zarray``
plus the chunk objects' sizes), their total, and the uncompressed sizes to compare against.

Edge chunks: HDF5 and Zarr 2 both store a chunk at the array's edge at the full chunk shape (padded), so a
decoder produces ``chunk_nbytes`` for it whatever the extent; ``data_bytes`` counts only the part inside the
array. Chunks never written (all fill value) have no stored bytes: they are counted in ``missing`` and cost
nothing to fetch.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - the chunk index needs no filters, but opening a plugin-filtered file may
import numpy as np

from nwb_cloud.analysis.errors import AnalysisError


class ChunkIndexError(AnalysisError):
    """The dataset or selection cannot be mapped to stored chunks."""


@dataclass(frozen=True)
class ChunkRef:
    """One stored chunk: its grid index, where its bytes are, and how many (compressed) there are.

    HDF5: ``offset`` is the byte offset in the file, ``key`` is None. Zarr: ``key`` is the chunk object's key
    relative to the array (``"3.0"``), ``offset`` is 0 (a whole object). ``nbytes`` is 0 for a missing chunk.
    """

    index: tuple[int, ...]
    nbytes: int
    offset: int | None = None
    key: str | None = None

    @property
    def stored(self) -> bool:
        return self.nbytes > 0


@dataclass(frozen=True)
class Touched:
    """The chunks a selection touches, and the byte counts a bound and an amplification figure need."""

    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    itemsize: int
    chunks: tuple[ChunkRef, ...]
    selection_bytes: int  # uncompressed bytes of the selection itself
    data_bytes: int  # uncompressed bytes of the touched chunks inside the array (edge chunks clipped)

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunk_shape) * self.itemsize

    @property
    def compressed_bytes(self) -> int:
        """Bytes stored for the touched chunks: the least any reader must transfer."""
        return sum(c.nbytes for c in self.chunks)

    @property
    def chunk_bytes(self) -> int:
        """Bytes the decoder produces for the stored touched chunks (full chunk shape, edge chunks included)."""
        return self.chunk_nbytes * sum(1 for c in self.chunks if c.stored)

    @property
    def stored(self) -> int:
        return sum(1 for c in self.chunks if c.stored)

    @property
    def missing(self) -> int:
        return len(self.chunks) - self.stored

    def ranges(self) -> list[tuple[int, int]]:
        """Byte ranges ``(start, end)`` of the stored touched chunks in one file, adjacent chunks merged.

        The fewest requests that fetch exactly the needed bytes (HDF5). Zarr chunks are separate objects:
        one range per stored chunk, reported as ``(0, nbytes)``.
        """
        stored = [c for c in self.chunks if c.stored]
        if any(c.key is not None for c in stored):
            return [(0, c.nbytes) for c in stored]
        merged: list[list[int]] = []
        for chunk in sorted(stored, key=lambda c: c.offset):
            start, end = chunk.offset, chunk.offset + chunk.nbytes
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        return [(start, end) for start, end in merged]


def normalize_selection(selection, shape) -> tuple[range, ...]:
    """Each axis of ``selection`` (slices or ints, missing trailing axes = all) as a ``range`` of indices.

    ``selection`` may also be a callable ``shape -> selection`` (a workload's ``select``).
    """
    if callable(selection):
        selection = selection(tuple(shape))
    if not isinstance(selection, tuple):
        selection = (selection,)
    if len(selection) > len(shape):
        raise ChunkIndexError(
            f"selection {selection} has {len(selection)} axes, the dataset {tuple(shape)} has {len(shape)}"
        )
    axes = []
    for axis, (item, size) in enumerate(itertools.zip_longest(selection, shape, fillvalue=slice(None))):
        if isinstance(item, slice):
            axes.append(range(*item.indices(size)))
        elif isinstance(item, (int, np.integer)) and -size <= int(item) < size:
            start = int(item) % size
            axes.append(range(start, start + 1))
        else:
            raise ChunkIndexError(
                f"axis {axis} of the selection is {item!r}: only slices and in-range ints are supported"
            )
    return tuple(axes)


def _touched_indices(axis: range, chunk: int) -> np.ndarray:
    """Chunk indices along one axis that hold at least one selected element."""
    if len(axis) == 0:
        return np.empty(0, dtype=np.int64)
    if axis.step == 1:
        return np.arange(axis.start // chunk, (axis[-1]) // chunk + 1)
    return np.unique(np.arange(axis.start, axis.stop, axis.step) // chunk)


def _grid(shape, chunk_shape, selection) -> tuple[list[tuple[int, ...]], int, int]:
    """The touched chunk grid indices, the selection's element count, the in-array elements of those chunks."""
    axes = normalize_selection(selection, shape)
    per_axis = [_touched_indices(axis, c) for axis, c in zip(axes, chunk_shape, strict=True)]
    # Elements of each touched chunk inside the array, per axis (the edge chunk is shorter).
    extents = [[min(c, s - i * c) for i in idx] for idx, c, s in zip(per_axis, chunk_shape, shape, strict=True)]
    data_elements = math.prod(sum(e) for e in extents)
    indices = [tuple(int(i) for i in combo) for combo in itertools.product(*per_axis)]
    return indices, math.prod(len(axis) for axis in axes), data_elements


def touched_hdf5(dataset: h5py.Dataset, selection) -> Touched:
    """The chunks of an open HDF5 ``dataset`` that ``selection`` touches, from the file's chunk index."""
    if dataset.chunks is None:
        raise ChunkIndexError(
            f"{dataset.name} is stored {'contiguously' if dataset.id.get_offset() is not None else 'compact'}, "
            "not chunked: there is no chunk index to read"
        )
    shape, chunk_shape = tuple(dataset.shape), tuple(dataset.chunks)
    indices, selected, data_elements = _grid(shape, chunk_shape, selection)
    refs = []
    for index in indices:
        info = dataset.id.get_chunk_info_by_coord(tuple(i * c for i, c in zip(index, chunk_shape, strict=True)))
        if info.byte_offset is None:
            refs.append(ChunkRef(index=index, nbytes=0))
        else:
            refs.append(ChunkRef(index=index, nbytes=int(info.size), offset=int(info.byte_offset)))
    itemsize = dataset.dtype.itemsize
    return Touched(shape, chunk_shape, itemsize, tuple(refs), selected * itemsize, data_elements * itemsize)


def touched_zarr(array_dir: Path, selection) -> Touched:
    """The chunks of the Zarr 2 array stored in folder ``array_dir`` that ``selection`` touches."""
    array_dir = Path(array_dir)
    try:
        meta = json.loads((array_dir / ".zarray").read_text())
        shape, chunk_shape = tuple(meta["shape"]), tuple(meta["chunks"])
        itemsize = np.dtype(meta["dtype"]).itemsize
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ChunkIndexError(f"{array_dir} is not a Zarr 2 array ({type(error).__name__}: {error})") from None
    separator = meta.get("dimension_separator") or "."
    indices, selected, data_elements = _grid(shape, chunk_shape, selection)
    refs = []
    for index in indices:
        key = separator.join(str(i) for i in index) if index else "0"
        path = array_dir / key
        refs.append(ChunkRef(index=index, nbytes=path.stat().st_size if path.is_file() else 0, offset=0, key=key))
    return Touched(shape, chunk_shape, itemsize, tuple(refs), selected * itemsize, data_elements * itemsize)


def is_zarr(path: Path) -> bool:
    return Path(path).is_dir()


def touched(local_path: str | Path, dataset_path: str, selection) -> Touched:
    """Chunks touched by ``selection`` of ``dataset_path`` in a local HDF5 file or Zarr folder.

    ``selection`` is a tuple of slices/ints, or a callable ``shape -> selection`` such as ``Workload.select``.
    """
    local_path = Path(local_path)
    if not local_path.exists():
        raise ChunkIndexError(f"no local copy at {local_path}")
    dataset_path = dataset_path.strip("/")
    if is_zarr(local_path):
        array_dir = local_path / dataset_path
        if not (array_dir / ".zarray").is_file():
            raise ChunkIndexError(f"{local_path} has no Zarr array {dataset_path!r}")
        return touched_zarr(array_dir, selection)
    try:
        file = h5py.File(local_path, "r")
    except OSError as error:
        raise ChunkIndexError(f"{local_path} is not a readable HDF5 file: {error}") from None
    with file:
        dataset = file.get(dataset_path)
        if not isinstance(dataset, h5py.Dataset):
            raise ChunkIndexError(f"{local_path} has no dataset {dataset_path!r}")
        return touched_hdf5(dataset, selection)
