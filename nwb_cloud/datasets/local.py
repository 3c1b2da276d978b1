"""Opening the local source copy of an asset with pynwb, whatever its backend (HDF5 file or Zarr folder)."""

from __future__ import annotations

from pathlib import Path

import hdf5plugin  # noqa: F401 - layouts may use plugin filters (Blosc, Zstd)
from pynwb import NWBHDF5IO


def open_local(path: str | Path):
    """A pynwb IO (a context manager) reading the local NWB file or NWB Zarr folder at ``path``."""
    if Path(path).is_dir():
        from hdmf_zarr.nwb import NWBZarrIO

        return NWBZarrIO(str(path), mode="r", load_namespaces=True)
    return NWBHDF5IO(str(path), mode="r", load_namespaces=True)
