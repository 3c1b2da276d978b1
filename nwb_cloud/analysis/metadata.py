"""What opening a file costs in reads: the byte ranges pynwb needs to open it and run an open workload.

h5py reads the local copy through its ``fileobj`` driver from a file object that records every read, so
the count is what HDF5 itself asks for, before any remote reader's block cache merges or splits requests:
the "sequential" cost a naive reader pays is one request per read, and the ideal is one request carrying
the distinct bytes (what a metadata index approaches). Zarr copies are counted the same way, one read per
object through a counting ``DirectoryStore``.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import hdf5plugin  # noqa: F401 - NWB files may use plugin filters for small datasets too
from pynwb import NWBHDF5IO

from nwb_cloud.analysis.chunks import is_zarr


@dataclass(frozen=True)
class OpenReads:
    """The reads an open made: how many, how many bytes requested, and the distinct bytes among them."""

    reads: int
    read_bytes: int  # every read's length summed (bytes re-read count again)
    distinct_bytes: int  # union of the byte ranges read (Zarr: bytes of the distinct objects read)
    ranges: tuple[tuple[int, int], ...] = ()  # the union, as (start, end); empty for Zarr


class CountingFile(io.RawIOBase):
    """A read-only local file that records the offset and length of every read h5py makes."""

    def __init__(self, path: str | Path):
        super().__init__()
        self._file = open(path, "rb")  # noqa: SIM115 - closed by close()
        self.reads: list[tuple[int, int]] = []

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:
        offset = self._file.tell()
        n = self._file.readinto(buffer)
        if n:
            self.reads.append((offset, n))
        return n

    def close(self) -> None:
        self._file.close()
        super().close()

    def summary(self) -> OpenReads:
        merged = merge_ranges((start, start + n) for start, n in self.reads)
        return OpenReads(
            reads=len(self.reads),
            read_bytes=sum(n for _, n in self.reads),
            distinct_bytes=sum(end - start for start, end in merged),
            ranges=tuple(merged),
        )


def merge_ranges(ranges) -> list[tuple[int, int]]:
    """The union of half-open byte ranges, sorted, touching ranges joined."""
    merged: list[list[int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(start, end) for start, end in merged]


def _counting_zarr_store(path: Path):
    from zarr.storage import DirectoryStore

    class CountingStore(DirectoryStore):
        """A Zarr folder that records the key and size of every object read."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.reads: list[tuple[str, int]] = []

        def __getitem__(self, key):
            value = super().__getitem__(key)
            self.reads.append((key, len(value)))
            return value

        def summary(self) -> OpenReads:
            return OpenReads(
                reads=len(self.reads),
                read_bytes=sum(n for _, n in self.reads),
                distinct_bytes=sum(dict(self.reads).values()),
            )

    return CountingStore(str(path))


def count_open_reads(local_path: str | Path, run=None) -> tuple[OpenReads, object]:
    """Open ``local_path`` with pynwb, call ``run(nwbfile)`` if given, and return the reads made and its result."""
    local_path = Path(local_path)
    if is_zarr(local_path):
        from hdmf_zarr.nwb import NWBZarrIO

        store = _counting_zarr_store(local_path)
        with NWBZarrIO(store, mode="r", load_namespaces=True) as nwb_io:
            result = run(nwb_io.read()) if run else None
        return store.summary(), result
    counting = CountingFile(local_path)
    try:
        with h5py.File(counting, "r") as h5, NWBHDF5IO(file=h5, mode="r", load_namespaces=True) as nwb_io:
            result = run(nwb_io.read()) if run else None
        return counting.summary(), result
    finally:
        counting.close()


def time_local_open(local_path: str | Path, run=None, repeats: int = 3) -> float:
    """The least wall time of opening ``local_path`` with pynwb and calling ``run(nwbfile)`` (warm page cache)."""
    local_path = Path(local_path)
    best = float("inf")
    for _ in range(max(1, repeats)):
        if is_zarr(local_path):
            from hdmf_zarr.nwb import NWBZarrIO

            started = time.perf_counter()
            nwb_io = NWBZarrIO(str(local_path), mode="r", load_namespaces=True)
        else:
            started = time.perf_counter()
            nwb_io = NWBHDF5IO(str(local_path), mode="r", load_namespaces=True)
        try:
            nwbfile = nwb_io.read()
            if run:
                run(nwbfile)
            best = min(best, time.perf_counter() - started)
        finally:
            nwb_io.close()
    return best
