"""Opening an NWB HDF5 file from any file-like object: the step every h5py-based method shares."""

from __future__ import annotations

import h5py
from pynwb import NWBHDF5IO

from nwb_cloud.access.base import Opened


def open_h5_fileobj(fileobj, closers: list) -> Opened:
    """pynwb over h5py over ``fileobj``; ``closers`` already holds what closes ``fileobj`` and its source."""
    try:
        h5 = h5py.File(fileobj, "r")
        closers.append(h5.close)
        io = NWBHDF5IO(file=h5, mode="r", load_namespaces=True)
        closers.append(io.close)
        nwbfile = io.read()
    except BaseException:
        Opened(nwbfile=None, closers=closers).close()
        raise
    return Opened(nwbfile=nwbfile, closers=closers)
