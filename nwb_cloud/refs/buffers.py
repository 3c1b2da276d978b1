"""Memory for chunks: new buffers without numpy's huge-page advice, and buffers for decoded chunks used again once
nothing refers to them.

numpy advises the kernel to back every array of 4 MiB or more with huge pages (``madvise(MADV_HUGEPAGE)``).
Where the kernel compacts memory for advised regions on the fault (``transparent_hugepage/defrag`` =
``madvise``, Debian's and Ubuntu's default), a fault can wait for compaction: on this machine a cold read of
an imaging patch (150 MB of 5.5 MB chunks) spent 0.1 s of system time in one process and 0.4-0.7 s in the
next. :func:`new_buffer` maps anonymous memory itself, so the kernel gives it ordinary pages, zeroed on first
touch, without compaction. The mapping is private: Python's ``mmap.mmap(-1, n)`` maps *shared* anonymous
memory, which Linux backs with shmem, and each first touch then also puts the page in shmem's page cache
(~35 ms of kernel time per 100 MB here, against ~25 ms for private pages; the imaging patch read's client
CPU, medians of 7 fresh processes in each of 4 alternating runs, went from 0.67-0.73 s to 0.65-0.69 s).

A chunk decoded into new memory pays for that memory's pages: the kernel zeroes each page the first time it
is written (and, after a large free, hands the pages back and zeroes new ones for the next chunk). On this
machine that was a fifth of the CPU of inflating NeuroConv's 10 MB chunks (libdeflate into new bytes: 0.61
s for 27 chunks of an imaging patch read; into one reused buffer: 0.49 s). A :class:`BufferPool` keeps up to
``most_bytes`` of buffers and hands a kept one out again when its reference count says that nothing holds it
any more: every numpy view, memoryview and zarr chunk made of a buffer refers to it, so a buffer in use is
never handed out twice. When every kept buffer is in use, a new one is made (kept if there is room).
"""

from __future__ import annotations

import mmap
import sys
import threading

import numpy as np

HUGE_PAGE_ADVICE_BYTES = 4 * 2**20  # numpy advises huge pages for arrays of this size and larger
DECODED_BYTES = 64 * 2**20  # decoded-chunk buffers a process keeps between reads, at most


def new_buffer(size: int) -> np.ndarray:
    """A writable ``uint8`` array of ``size`` bytes in ordinary pages (module docstring), not zeroed by us.

    Below numpy's huge-page size it is numpy's (from the heap, whose pages are used again): a mapping of
    its own for every small response would cost two system calls and new pages each."""
    if size < HUGE_PAGE_ADVICE_BYTES:
        return np.empty(size, dtype=np.uint8)
    return np.frombuffer(mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS), dtype=np.uint8)


def _references(buffers: list[np.ndarray]) -> list[int]:
    return [sys.getrefcount(buffer) for buffer in buffers]


_UNUSED = _references([new_buffer(1)])[0]  # the count of a buffer only the pool holds


class BufferPool:
    """Byte buffers of exact sizes, handed out again once unreferenced (module docstring)."""

    def __init__(self, most_bytes: int):
        self.most_bytes = most_bytes
        self.kept_bytes = 0
        self._kept: dict[int, list[np.ndarray]] = {}
        self._lock = threading.Lock()

    def take(self, size: int) -> np.ndarray:
        """A writable ``uint8`` array of ``size`` bytes, with whatever bytes it held before."""
        with self._lock:
            kept = self._kept.setdefault(size, [])
            for position, count in enumerate(_references(kept)):
                if count <= _UNUSED:
                    return kept[position]
            buffer = new_buffer(size)
            if self.kept_bytes + size <= self.most_bytes:
                kept.append(buffer)
                self.kept_bytes += size
            return buffer


DECODED = BufferPool(DECODED_BYTES)
