"""h5py over fsspec's HTTPS file system on the object's URL: the NWB benchmarks' "fsspec" method exactly.

nwb_benchmarks opens the asset's HTTPS URL with ``fsspec.filesystem("https")`` (aiohttp, default read-ahead
cache of 5 MiB) rather than through s3fs; the request pattern is the same cache, the client stack is not.
Against a private bucket the URL is presigned; it lives only in this handle.
"""

from __future__ import annotations

import fsspec

from nwb_cloud.access._h5py import open_h5_fileobj
from nwb_cloud.access.base import Method


def _open_https(store, key):
    fs = fsspec.filesystem("https", skip_instance_cache=True)
    fileobj = fs.open(store.http_url(key), "rb")
    return open_h5_fileobj(fileobj, [fileobj.close])


METHODS = [
    Method(
        name="fsspec-https",
        description="h5py + fsspec HTTPS file on the object URL, default read-ahead cache (as nwb_benchmarks)",
        open=_open_https,
    ),
]
