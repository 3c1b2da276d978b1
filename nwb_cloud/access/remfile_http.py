"""h5py over remfile: HTTP range reads that grow on sequential access (flatironinstitute/remfile).

remfile reads in multiples of 100 KiB, growing a run of sequential reads by 1.7x up to 100 MiB. With
``_max_threads`` > 1 a request larger than 4 MiB is split across that many threads (off by default).
remfile's README documents no read tuning besides its disk cache (which would make every sample after the
first a local read), so ``remfile`` is remfile as documented; ``remfile-threads`` is its private thread option.
Both have a page-buffer variant (:mod:`nwb_cloud.access._h5py`).
"""

from __future__ import annotations

import remfile

from nwb_cloud.access._h5py import h5_file, h5py_methods

THREADS = 4


def _opener(**options):
    def open_remfile(store, key, **file_options):
        # The presigned URL lives only in this handle: it is never logged or stored in results.
        fileobj = remfile.File(store.http_url(key), **options)
        return h5_file(fileobj, [fileobj.close], **file_options)

    return open_remfile


METHODS = [
    *h5py_methods(
        "remfile", "h5py + remfile (HTTP range reads, 100 KiB minimum, growing on sequential access)", _opener()
    ),
    *h5py_methods(
        "remfile-threads",
        f"h5py + remfile with _max_threads={THREADS} (requests over 4 MiB split across threads)",
        _opener(_max_threads=THREADS),
    ),
]
