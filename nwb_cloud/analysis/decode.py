"""How long this machine takes to read a selection from the local copy: the decode side of the bound.

Reads from the page cache (the first read warms it; the least of the repeats is kept), so what is timed is
decompression, filters and copying out: work every reader must do on the same chunks wherever the bytes
come from. HDF5's chunk cache is turned off so that a repeat never finds a chunk already decoded.
"""

from __future__ import annotations

import time
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - registers the plugin filters (Zstd, Blosc, ...) a layout may use
import zarr

from nwb_cloud.analysis.chunks import ChunkIndexError, is_zarr

BUDGET_S = 20.0  # past this, stop repeating once two reads are timed


def _open_array(local_path: Path, dataset_path: str):
    """(array, closer) for the dataset in a local HDF5 file or Zarr folder."""
    if is_zarr(local_path):
        try:
            return zarr.open_array(str(local_path / dataset_path), mode="r"), lambda: None
        except (ValueError, KeyError, zarr.errors.ArrayNotFoundError) as error:
            raise ChunkIndexError(f"{local_path} has no Zarr array {dataset_path!r}: {error}") from None
    file = h5py.File(local_path, "r", rdcc_nbytes=0)
    dataset = file.get(dataset_path)
    if not isinstance(dataset, h5py.Dataset):
        file.close()
        raise ChunkIndexError(f"{local_path} has no dataset {dataset_path!r}")
    return dataset, file.close


def time_local_read(local_path: str | Path, dataset_path: str, selection, repeats: int = 3) -> tuple[float, int]:
    """(least seconds, reads timed) to read ``selection`` of ``dataset_path`` from the local copy."""
    array, close = _open_array(Path(local_path), dataset_path.strip("/"))
    times: list[float] = []
    try:
        while len(times) < max(1, repeats):
            started = time.perf_counter()
            array[selection]
            times.append(time.perf_counter() - started)
            if len(times) >= 2 and sum(times) > BUDGET_S:
                break
    finally:
        close()
    return min(times), len(times)
