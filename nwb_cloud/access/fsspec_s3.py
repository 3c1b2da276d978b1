"""h5py over an s3fs file object: what most users do. Each row is one of the cache choices users make."""

from __future__ import annotations

import s3fs

from nwb_cloud.access._h5py import open_h5_fileobj
from nwb_cloud.access.base import Method


def _opener(cache_type: str, block_size: int | None = None):
    def open_fsspec(store, key):
        fs = s3fs.S3FileSystem(**store.s3fs_options())
        options = {"cache_type": cache_type}
        if block_size:
            options["block_size"] = block_size
        fileobj = fs.open(f"{store.bucket}/{key}", "rb", **options)
        return open_h5_fileobj(fileobj, [fileobj.close])

    return open_fsspec


METHODS = [
    Method(
        name="fsspec",
        description="h5py + s3fs file, fsspec's default read-ahead cache (5 MiB blocks)",
        open=_opener("readahead"),
    ),
]
