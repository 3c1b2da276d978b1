"""h5py over remfile: HTTP range reads that grow on sequential access (flatironinstitute/remfile).

remfile reads in multiples of 100 KiB, growing a run of sequential reads by 1.7x up to 100 MiB. With
``_max_threads`` > 1 a request larger than 4 MiB is split across that many threads (off by default).
"""

from __future__ import annotations

import remfile

from nwb_cloud.access._h5py import open_h5_fileobj
from nwb_cloud.access.base import Method

THREADS = 4


def _opener(**options):
    def open_remfile(store, key):
        # The presigned URL lives only in this handle: it is never logged or stored in results.
        fileobj = remfile.File(store.http_url(key), **options)
        return open_h5_fileobj(fileobj, [fileobj.close])

    return open_remfile


METHODS = [
    Method(
        name="remfile",
        description="h5py + remfile (HTTP range reads, 100 KiB minimum, growing on sequential access)",
        open=_opener(),
    ),
    Method(
        name="remfile-threads",
        description=f"h5py + remfile with _max_threads={THREADS} (requests over 4 MiB split across threads)",
        open=_opener(_max_threads=THREADS),
    ),
]
