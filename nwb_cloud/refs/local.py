"""Byte ranges of a local file with :class:`~nwb_cloud.refs.fetch.RangeReader`'s interface.

An index built from a local copy (``templates.u`` a path) is read through the same store and decoding as one
of an S3 object (:class:`~nwb_cloud.refs.zarr_store.IndexStore`): per-chunk filter masks, the index's codecs
and its attribute types then hold for local reads too, and the tests compare exactly what users read.
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from nwb_cloud.refs.errors import RefsError
from nwb_cloud.refs.plan import Policy


class FileReader:
    """Reads byte ranges of the file at ``path``; up to ``policy.concurrency`` reads at once."""

    def __init__(self, path, policy: Policy | None = None):
        self.url = str(path)
        self.policy = policy or Policy()
        self.expected_etag: str | None = None  # the interface's; a local file has no ETag
        try:
            self._fd = os.open(Path(self.url), os.O_RDONLY)
        except FileNotFoundError:
            raise RefsError(f"the index points at {self.url}, which does not exist") from None
        self._pool = ThreadPoolExecutor(self.policy.concurrency, thread_name_prefix="nwb-index-file")

    def read_into(self, start: int, view: memoryview) -> None:
        filled = 0
        while filled < len(view):
            count = os.preadv(self._fd, [view[filled:]], start + filled)
            if not count:
                raise RefsError(f"{self.url} ends before byte {start + len(view) - 1}: is it the indexed file?")
            filled += count

    def submit_all(self, ranges: list[tuple[int, memoryview]]) -> list[Future]:
        return [self._pool.submit(self.read_into, start, view) for start, view in ranges]

    def read(self, start: int, end: int) -> bytearray:
        buffer = bytearray(end - start)
        self.read_into(start, memoryview(buffer))
        return buffer

    def warm(self, connections: int | None = None) -> None:
        """Nothing to warm up for a local file."""

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
