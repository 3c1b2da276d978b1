"""Opening the HDF5 file an index is built from, so that the build reads only metadata and counts it.

kerchunk's default remote build goes through fsspec's read-ahead cache (tens of MiB per miss): on a large
file that pulls hundreds of MB of chunk data it never looks at. Here a remote file is read in small aligned
blocks that are each fetched at most once (fsspec's ``blockcache`` with room for every block), and a
local file is read directly. :class:`CountingFile` wraps either and counts what HDF5 asked for; for a
remote file the blocks actually fetched are counted too, so a build reports its cost in both terms.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import fsspec

# 256 KiB: on quick-size files (350-480 MB) 64 KiB blocks took 5-34 requests and 0.3-2.2 MB, 256 KiB 3-29
# requests and 0.8-7.6 MB (under 2% of the file), 1 MiB no fewer requests: the B-tree nodes a build needs are
# scattered between the chunks, so past a few hundred KiB a bigger block only adds bytes.
DEFAULT_BLOCK_SIZE = 256 * 2**10


@dataclass
class ReadStats:
    source_bytes: int  # size of the file
    bytes_read: int = 0  # what HDF5 (and the translator) asked for
    reads: int = 0
    bytes_fetched: int = 0  # what came over the network (whole blocks); equals bytes_read for a local file
    fetches: int = 0  # requests made

    @property
    def fraction_fetched(self) -> float:
        return self.bytes_fetched / self.source_bytes if self.source_bytes else 0.0

    def as_dict(self) -> dict:
        return {
            "source_bytes": self.source_bytes,
            "bytes_read": self.bytes_read,
            "reads": self.reads,
            "bytes_fetched": self.bytes_fetched,
            "fetches": self.fetches,
        }


class CountingFile(io.RawIOBase):
    """A read-only binary file that counts the bytes and calls that go through it.

    ``fetched`` counts what the fsspec cache of a remote file fetched (requests and the bytes that came back);
    for a local file the reads are the fetches.
    """

    def __init__(self, raw, source_bytes: int, fetched: _FetchCounter | None = None):
        self._raw = raw
        self._fetched = fetched
        self._stats = ReadStats(source_bytes=source_bytes)

    @property
    def stats(self) -> ReadStats:
        if self._fetched is None:
            self._stats.fetches, self._stats.bytes_fetched = self._stats.reads, self._stats.bytes_read
        else:
            self._stats.fetches, self._stats.bytes_fetched = self._fetched.requests, self._fetched.bytes
        return self._stats

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._raw.seek(offset, whence)

    def tell(self) -> int:
        return self._raw.tell()

    def readinto(self, buffer) -> int:
        data = self._raw.read(len(buffer))
        buffer[: len(data)] = data
        self._stats.reads += 1
        self._stats.bytes_read += len(data)
        return len(data)

    def close(self) -> None:
        try:
            self._raw.close()
        finally:
            super().close()


def is_remote(source) -> bool:
    return isinstance(source, str) and "://" in source and not source.startswith("file://")


def open_source(source, storage_options: dict | None = None, block_size: int = DEFAULT_BLOCK_SIZE) -> CountingFile:
    """``source`` (a local path or an fsspec URL such as ``s3://bucket/key``) as a counting binary file."""
    if not is_remote(source):
        raw = open(Path(str(source).removeprefix("file://")), "rb", buffering=0)  # noqa: SIM115 - owned below
        return CountingFile(raw, source_bytes=os.fstat(raw.fileno()).st_size)
    fs, path = fsspec.core.url_to_fs(source, **(storage_options or {}))
    size = fs.size(path)
    raw = fs.open(
        path,
        "rb",
        cache_type="blockcache",
        block_size=block_size,
        cache_options={"maxblocks": max(1, -(-size // block_size))},
    )
    fetched = _FetchCounter(raw.cache.fetcher)
    raw.cache.fetcher = fetched  # the cache's own count charges a whole block for the short one at the end
    return CountingFile(raw, source_bytes=size, fetched=fetched)


class _FetchCounter:
    """Wraps an fsspec cache's fetcher: the requests it made and the bytes they returned."""

    def __init__(self, fetcher):
        self._fetcher = fetcher
        self.requests = 0
        self.bytes = 0

    def __call__(self, start: int, end: int) -> bytes:
        data = self._fetcher(start, end)
        self.requests += 1
        self.bytes += len(data)
        return data
