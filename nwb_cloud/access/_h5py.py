"""Opening an NWB HDF5 file from any file-like (or h5py-like) object: the step every h5py-based method shares,
and the page-buffer variant every h5py-based method gets.

The page buffer (h5py ``File(..., page_buf_size=...)``, HDF5's ``H5Pset_page_buffer_size``) caches whole file
pages of a file written with paged file space: the setting that makes paged aggregation pay off remotely in the
published cloud-optimized HDF5 studies (NSIDC's ICESat-2 study: 8 MiB pages read with a 16 MiB page buffer,
23-26x faster than without; paging without it can be slower, pages are over-read). A comparison of paged layouts
against h5py readers without it would be a comparison against a misconfigured peer, so :func:`h5py_methods`
gives every h5py-based row a ``-pagebuf`` variant (``Method.varies == PAGED``: measured on paged layouts only).

``PAGE_BUFFER_BYTES`` = 2 pages of :data:`nwb_cloud.datasets.layouts.PAGE_SIZE` (16 MiB for 8 MiB pages), the
study's setting: HDF5 needs at least one page, and two keep a metadata page while a raw-data page passes through.
The chunk cache (``rdcc_nbytes``) is left at h5py's default: every workload reads each chunk once.
"""

from __future__ import annotations

from collections.abc import Callable

import h5py
import hdf5plugin  # noqa: F401 - registers the HDF5 filter plugins (Zstd, Blosc, ...) that layouts may use
from pynwb import NWBHDF5IO

from nwb_cloud.access.base import PAGED, Method, Opened
from nwb_cloud.datasets.layouts import PAGE_SIZE

PAGE_BUFFER_BYTES = 2 * PAGE_SIZE
PAGE_BUFFER_SUFFIX = "-pagebuf"

# (store, key, **h5py.File options) -> (an open h5py.File, what closes it and its source, in order)
OpenFile = Callable[..., tuple[h5py.File, list]]


def open_h5_fileobj(fileobj, closers: list, **file_options) -> Opened:
    """pynwb over h5py over ``fileobj``; ``closers`` already holds what closes ``fileobj`` and its source."""
    return read_nwb(*h5_file(fileobj, closers, **file_options))


def h5_file(fileobj, closers: list, **file_options) -> tuple[h5py.File, list]:
    """``h5py.File`` over ``fileobj`` (``closers`` close it on failure, and its close is appended)."""
    try:
        h5 = h5py.File(fileobj, "r", **file_options)
    except BaseException:
        Opened(nwbfile=None, closers=closers).close()
        raise
    closers.append(h5.close)
    return h5, closers


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


def h5py_methods(name: str, description: str, open_file: OpenFile, **fields) -> list[Method]:
    """The row of an h5py-based method and its page-buffer variant (see the module docstring)."""

    def plain(store, key):
        return read_nwb(*open_file(store, key))

    def paged(store, key):
        return read_nwb(*open_file(store, key, page_buf_size=PAGE_BUFFER_BYTES))

    buffered = f"{description}; HDF5 page buffer of {PAGE_BUFFER_BYTES // 2**20} MiB (paged files)"
    return [
        Method(name=name, description=description, open=plain, **fields),
        Method(name=name + PAGE_BUFFER_SUFFIX, description=buffered, open=paged, variant_of=name, varies=PAGED,
               **fields),
    ]  # fmt: skip
