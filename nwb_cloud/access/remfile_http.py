"""h5py over remfile: HTTP range reads that grow on sequential access (flatironinstitute/remfile)."""

from __future__ import annotations

import remfile

from nwb_cloud.access._h5py import open_h5_fileobj
from nwb_cloud.access.base import Method


def _open_remfile(store, key):
    # The presigned URL lives only in this handle: it is never logged or stored in results.
    fileobj = remfile.File(store.http_url(key))
    return open_h5_fileobj(fileobj, [fileobj.close])


METHODS = [
    Method(
        name="remfile",
        description="h5py + remfile (HTTP range reads, 100 KiB minimum, growing on sequential access)",
        open=_open_remfile,
    ),
]
