"""The chunks of one Zarr selection, fetched and decoded ahead of the reader and handed over in order.

zarr 2.18 asks its store for every chunk of a selection at once (``getitems``), then copies them into the
output one after another in the order it asked. :class:`Batch` is the mapping it gets back: building it
plans the range requests (:mod:`nwb_cloud.refs.plan`) and starts them; as the requests holding a chunk
complete, the chunk is decoded on a pool of threads (zlib, zstd and blosc release the GIL, so decoding
runs on every core while later chunks are still on the wire); ``batch[key]`` waits for that one chunk and
lets go of it. zarr thus copies chunk 1 while chunk 5 decodes and chunk 12 downloads. A selection of one
or two chunks (the small reads of read-shaped layouts) is decoded on the fetching thread as its last part
arrives instead.

Requests are started in the order zarr will consume their chunks, at most ``Policy.in_flight`` at once
(a small read more than a large one, see :mod:`nwb_cloud.refs.plan`). Memory is bounded: only while the
compressed bytes started and not yet consumed stay under ``Policy.budget`` (a request the reader is
waiting for is always started, so a pathological plan slows down but never deadlocks). Each chunk is
handed over once; the batch keeps nothing after that.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass

from nwb_cloud.refs.buffers import new_buffer
from nwb_cloud.refs.fetch import RangeReader
from nwb_cloud.refs.inflate import load_libraries
from nwb_cloud.refs.plan import Policy, Request, plan

Decode = Callable[[object], object]
INLINE_CHUNKS = 2  # a selection of at most this many fetched chunks decodes them where they arrive


@dataclass(frozen=True)
class Wanted:
    """One chunk of a selection: stored bytes ``[start, end)`` of the asset, or ``data`` held in the index."""

    key: str
    decode: Decode | None  # None: the stored bytes are what zarr gets
    start: int = 0
    end: int = 0
    data: bytes | None = None


class Batch(Mapping):
    """``{key: decoded chunk}`` for the chunks of one selection, filled in the background (see module)."""

    def __init__(self, wanted: list[Wanted], reader: RangeReader | None, decoders: Executor, policy: Policy):
        self._reader = reader
        self._decoders = decoders
        self._budget = policy.budget
        self._lock = threading.Lock()
        self._slots: dict[str, _Slot] = {w.key: _Slot() for w in wanted}
        self._ranged = [w for w in wanted if w.data is None]
        self._index = {w.key: i for i, w in enumerate(self._ranged)}
        ranges = [(w.start, w.end) for w in self._ranged]
        self._requests = plan(ranges, policy)
        self._most_in_flight = policy.in_flight(sum(end - start for start, end in ranges))
        self._in_flight = 0
        self._requests_of: list[list[int]] = [[] for _ in self._ranged]  # chunk -> its requests (parts)
        for number, request in enumerate(self._requests):
            for member in request.members:
                self._requests_of[member].append(number)
        self._missing_parts = [len(numbers) for numbers in self._requests_of]
        self._unconsumed = [len(r.members) for r in self._requests]  # members not yet handed over
        self._buffers: dict[int, memoryview] = {}  # chunk -> its bytes, while its requests fill them
        self._started = 0  # compressed bytes of started requests not yet released
        self.peak_started = 0  # the most of them at any time (for tests and measurements)
        self._queue: deque[int] = deque(range(len(self._requests)))
        # a read of one or two chunks decodes each on the thread that received its last part: no hand-over to
        # the decoder pool (whose threads then need not exist), and no more decodes at once than chunks
        self._inline = len(self._ranged) <= INLINE_CHUNKS
        for w in wanted:
            if w.data is not None:
                self._decode(w, w.data)
        self._start(until=-1)
        load_libraries()  # while the first requests are on the wire

    # -- zarr's side -----------------------------------------------------------------------------------------
    def __getitem__(self, key: str):
        slot = self._slots[key]
        index = self._index.get(key)
        if index is not None:
            self._start(until=max(self._requests_of[index]))  # never wait on a request the budget holds back
        try:
            return slot.take()
        finally:
            if index is not None:
                self._consumed(index)

    def __contains__(self, key) -> bool:
        return key in self._slots

    def __iter__(self) -> Iterator[str]:
        return iter(self._slots)

    def __len__(self) -> int:
        return len(self._slots)

    # -- requests --------------------------------------------------------------------------------------------
    def _start(self, until: int) -> None:
        """Start queued requests while the budget allows (and in any case up to request number ``until``)."""
        to_start = []
        with self._lock:
            while self._queue:
                number = self._queue[0]
                size = self._requests[number].size
                if number > until and (
                    self._in_flight >= self._most_in_flight or (self._started and self._started + size > self._budget)
                ):
                    break
                self._queue.popleft()
                self._in_flight += 1
                self._started += size
                self.peak_started = max(self.peak_started, self._started)
                to_start.append(number)
        requests = [self._requests[number] for number in to_start]
        futures = self._reader.submit_all([(request.start, self._target(request)) for request in requests])
        for request, future in zip(requests, futures, strict=True):
            future.add_done_callback(lambda done, request=request: self._arrived(request, done))

    def _target(self, request: Request) -> memoryview:
        """Where a body goes: its chunk's buffer (a part of it, for a split chunk) or a buffer of its own."""
        with self._lock:
            if len(request.members) == 1:
                member = request.members[0]
                chunk = self._ranged[member]
                if member not in self._buffers:
                    self._buffers[member] = _buffer(chunk.end - chunk.start)
                return self._buffers[member][request.start - chunk.start : request.end - chunk.start]
            own = _buffer(request.size)
            for member in request.members:
                chunk = self._ranged[member]
                self._buffers[member] = own[chunk.start - request.start : chunk.end - request.start]
            return own

    def _arrived(self, request: Request, done: Future) -> None:
        with self._lock:
            self._in_flight -= 1
        error = done.exception()
        for member in request.members:
            chunk = self._ranged[member]
            if error is not None:
                self._slots[chunk.key].fail(error)
                continue
            with self._lock:
                self._missing_parts[member] -= 1
                data = self._buffers.pop(member) if self._missing_parts[member] == 0 else None
            if data is not None:
                self._decode(chunk, data)
        if self._queue:
            self._start(until=-1)

    def _consumed(self, index: int) -> None:
        released = False
        with self._lock:
            for number in self._requests_of[index]:
                self._unconsumed[number] -= 1
                if self._unconsumed[number] == 0:
                    self._started -= self._requests[number].size
                    released = True
        if released:
            self._start(until=-1)

    # -- decoding --------------------------------------------------------------------------------------------
    def _decode(self, chunk: Wanted, data) -> None:
        slot = self._slots[chunk.key]
        if chunk.decode is None:
            slot.fill(data)
        elif self._inline:
            _run_decode(chunk.decode, data, slot)
        else:
            self._decoders.submit(_run_decode, chunk.decode, data, slot)


class _Slot:
    """One chunk's outcome: filled (or failed) once by a worker, taken once by the reader."""

    __slots__ = ("_done", "_error", "_taken", "_value")

    def __init__(self):
        self._done = threading.Event()
        self._value = None
        self._error: BaseException | None = None
        self._taken = False

    def fill(self, value) -> None:
        if not self._done.is_set():
            self._value = value
            self._done.set()

    def fail(self, error: BaseException) -> None:
        if not self._done.is_set():
            self._error = error
            self._done.set()

    def take(self):
        if self._taken:
            raise RuntimeError("a chunk of a Batch is handed over once; read it again through the store")
        self._done.wait()
        self._taken = True
        value, self._value = self._value, None  # the batch keeps nothing once zarr has the chunk
        if self._error is not None:
            raise self._error
        return value


def _buffer(size: int) -> memoryview:
    """Room for ``size`` bytes that the response fills: not zeroed first (``bytearray`` would write every
    byte once before the socket writes it again: ~2.5 ms per 10 MB on the reader's thread), and in ordinary
    pages (:func:`~nwb_cloud.refs.buffers.new_buffer`)."""
    return memoryview(new_buffer(size))


def _run_decode(decode: Decode, data, slot: _Slot) -> None:
    try:
        value = decode(data)
    except BaseException as error:  # noqa: BLE001 - handed to the reader, who raises it
        slot.fail(error)
    else:
        slot.fill(value)
