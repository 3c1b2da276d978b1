"""h5py over fsspec's HTTPS file system on the object's URL: the NWB benchmarks' "fsspec" method exactly.

nwb_benchmarks opens the asset's HTTPS URL with ``fsspec.filesystem("https")`` (aiohttp, default read-ahead
cache of 5 MiB) rather than through s3fs; the request pattern is the same cache, the client stack is not.
Against a private bucket the URL is presigned; it lives only in this handle.
"""

from __future__ import annotations

import fsspec

from nwb_cloud.access._h5py import h5_file, h5py_methods


def _open_https(store, key, **file_options):
    fs = fsspec.filesystem("https", skip_instance_cache=True)
    fileobj = fs.open(store.http_url(key), "rb")
    return h5_file(fileobj, [fileobj.close], **file_options)


METHODS = h5py_methods(
    "fsspec-https",
    "h5py + fsspec HTTPS file on the object URL, default read-ahead cache (as nwb_benchmarks)",
    _open_https,
)
