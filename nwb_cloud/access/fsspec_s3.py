"""h5py over an s3fs file object: what most users do. Each row is one of the cache choices users make.

fsspec's ``cache_type`` decides what one small h5py read costs: ``readahead`` (the default) fetches 5 MiB past
every miss, ``blockcache`` keeps an LRU of aligned 5 MiB blocks, ``first`` keeps only the first block (where
the HDF5 superblock and root metadata usually sit) and sends every other read as its own request, ``none``
sends every read as its own request. The NWB benchmarks' "fsspec, no cache" is the ``readahead`` row (their
"no cache" means no ``CachingFileSystem``). ``CachingFileSystem`` itself is left out on purpose: it copies
blocks to local disk, so every sample after the first would time the local disk, not the cloud. s3fs documents
no other read tuning than the cache type and its block size; every row has its page-buffer variant
(:mod:`nwb_cloud.access._h5py`).
"""

from __future__ import annotations

import s3fs

from nwb_cloud.access._h5py import h5_file, h5py_methods

BLOCK_SIZE = 5 * 2**20  # fsspec's default block size, stated so the rows' descriptions stay true


def _opener(cache_type: str):
    def open_fsspec(store, key, **file_options):
        fs = s3fs.S3FileSystem(**store.s3fs_options())
        fileobj = fs.open(f"{store.bucket}/{key}", "rb", cache_type=cache_type, block_size=BLOCK_SIZE)
        return h5_file(fileobj, [fileobj.close], **file_options)

    return open_fsspec


CACHES = {
    "fsspec": ("readahead", "fsspec's default read-ahead cache: 5 MiB past each miss (= nwb_benchmarks 'no cache')"),
    "fsspec-blockcache": ("blockcache", "LRU of 32 aligned 5 MiB blocks"),
    "fsspec-first": ("first", "caches only the first 5 MiB block; every other read is its own request"),
    "fsspec-none": ("none", "no cache: every h5py read is its own request"),
}

METHODS = [
    row
    for name, (cache_type, description) in CACHES.items()
    for row in h5py_methods(name, f"h5py + s3fs file, {description}", _opener(cache_type))
]
