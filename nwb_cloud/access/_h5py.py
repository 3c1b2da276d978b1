"""Opening an NWB HDF5 file from any file-like (or h5py-like) object: the step every h5py-based method shares."""

from __future__ import annotations

import h5py
import hdf5plugin  # noqa: F401 - registers the HDF5 filter plugins (Zstd, Blosc, ...) that layouts may use
from pynwb import NWBHDF5IO

from nwb_cloud.access.base import Opened


def open_h5_fileobj(fileobj, closers: list) -> Opened:
    """pynwb over h5py over ``fileobj``; ``closers`` already holds what closes ``fileobj`` and its source."""
    try:
        h5 = h5py.File(fileobj, "r")
    except BaseException:
        Opened(nwbfile=None, closers=closers).close()
        raise
    closers.append(h5.close)
    return read_nwb(h5, closers)


def read_nwb(h5file, closers: list) -> Opened:
    """pynwb over an open ``h5py.File`` or look-alike (LINDI's); on failure everything in ``closers`` is closed."""
    try:
        io = NWBHDF5IO(file=h5file, mode="r", load_namespaces=True)
        closers.append(io.close)
        nwbfile = io.read()
    except BaseException:
        Opened(nwbfile=None, closers=closers).close()
        raise
    return Opened(nwbfile=nwbfile, closers=closers)
