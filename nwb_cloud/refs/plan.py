"""Which HTTP range requests fetch a set of chunks: coalesce nearby ranges, split large ones, fill the connections.

Two forces pull apart. Every request costs a first byte (~20 ms on S3) and a slot on a connection, so
chunks that sit close together in the file are cheaper fetched as one request, reading the small gap
between them for free. But one connection carries only ~85-90 MB/s, so a long run of chunks (or one big
chunk) fetched as one request - what fsspec's reference file system does with adjacent chunks - arrives at
one connection's speed while the others idle. The plan therefore merges chunks whose gap is at most
``max_gap`` bytes, but never into a request longer than a *part size*, and cuts any single chunk longer
than that into equal parts fetched in parallel.

A read that one wave of requests can carry (at most ``concurrency`` requests of ``max_part`` bytes) is
cut into exactly as many requests as there are connections to carry it: parts apportioned to the chunks by
their sizes. Cutting each chunk by a fixed part size instead leaves a remainder - four 7 MB chunks cut at
3.3 MB are twelve requests, eight in a first wave and four in a second that starts only when the first
ends, paying a second first byte. Larger reads take ``max_part`` requests (8-16 MB is what AWS recommends
for large objects) in waves.

A small read (at most ``concurrency * min_part`` bytes) is timed by TCP's slow start instead: a connection
that carried nothing lately sends ``initial_window`` bytes in its first round trip and twice as many in each
next, so a 150 kB request takes four round trips, ~0.26 s across regions. Such a read gets the fewest
requests that each fit in the fewest round trips while one wave of ``connections`` requests carries them
(:func:`slow_start_plan`): 400 kB of one electrode is 10 parts of ~40 kB, two round trips each, where 3
chunk-sized requests took four. Decoding does not bound such a read, so it may use more connections than a
large one (``connections`` against ``concurrency``).

Requests keep chunk boundaries where they can (a chunk is only cut when it alone exceeds its share), so each
chunk can be decoded as soon as the requests holding it have arrived.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from nwb_cloud.settings import usable_cores

MiB = 2**20
RESPONSE_HEAD = 1024  # bytes of a ranged GET's response before its body (S3 sends ~0.4-0.7 kB), rounded up


@dataclass(frozen=True)
class Policy:
    """How a reader fetches chunks: the knobs of the plan and of the fetcher that carries it out."""

    # requests (hence connections) in flight at most: 16 carry ~1.4 GB/s at S3's ~88 MB/s per connection; every
    # request costs CPU, and its bytes are decoded by the same cores. On 2 cores, with bodies read in place and
    # decoded into pooled buffers, 16 read NeuroConv's default layout faster than 8 under every profile (fresh
    # processes, two alternating runs; imaging patch / electrode): in-region 0.50 / 0.12 s against 0.53 / 0.13,
    # cross-region 0.98 / 0.57 against 1.31 / 0.62, lab 1.53 / 0.40 against 1.62 / 0.41 (an earlier reader's 8 had
    # been ~10% faster in-region). So 8 per core, up to 16
    concurrency: int = field(default_factory=lambda: min(16, 8 * usable_cores()))
    # requests in flight for a small read (module docstring): slow start times it, not decoding, and each
    # connection more carries another window (cross-region, 400 kB of one electrode: 0.18 s on 16, 0.24 s on 8)
    connections: int = 16
    max_gap: int = 1 * MiB  # bytes between two chunks that one request still reads through (-1: none)
    # the least bytes worth a request of their own in a large read: a 128 KiB part costs its first byte plus
    # ~1.5 ms at 88 MB/s once the window has grown; smaller ones only add requests. Reads below
    # ``concurrency * min_part`` are planned by slow start's round trips instead (module docstring)
    min_part: int = 128 * 1024
    # 8 MiB, the low end of AWS's 8-16 MB: a chunk is decoded only once its request has arrived, so smaller
    # requests start the decoding sooner (lab, 150 MB patch read: 1.14x of the bound against 1.49x at 16 MiB)
    max_part: int = 8 * MiB
    budget: int = 256 * MiB  # compressed bytes fetched or decoded ahead of the reader, at most
    # connections opened in the background while the index is fetched and read (None: every one a read may
    # use, ``max(concurrency, connections)``): a new connection costs 2 round trips (TCP + TLS), ~60 ms on a
    # campus link, and the plan spreads even a small read over all of them
    warm_connections: int | None = None
    # bytes each warming request reads (0: a HEAD). TCP's window starts at ~14.6 kB and doubles per round trip
    # only while it is filled, so a connection that carried no bytes delivers a 150 kB part in 4 round trips.
    # 0, because warming with bytes measured slower: 128 KiB per connection made the friendly-layout seed
    # reads 1.4x slower under cross-region and lab (the read queued behind warming requests still in flight)
    warm_bytes: int = 0
    retries: int = 3  # extra attempts of a request whose body broke off
    # bytes a connection idle past a retransmission timeout (or new) delivers in its first round trip: Linux's
    # and S3's initial window of 10 segments (RFC 6928), restarted after idle (RFC 5681)
    initial_window: int = 14_600

    @property
    def most_in_flight(self) -> int:
        return max(self.concurrency, self.connections)

    @property
    def warm_count(self) -> int:
        return self.most_in_flight if self.warm_connections is None else self.warm_connections

    def is_small(self, total: int) -> bool:
        """Whether a read of ``total`` bytes is timed by slow start's round trips (module docstring)."""
        return total <= self.concurrency * self.min_part

    def in_flight(self, total: int) -> int:
        """Requests a read of ``total`` bytes keeps in flight."""
        return self.connections if self.is_small(total) else self.concurrency

    def window_bytes(self, rounds: int) -> int:
        """Body bytes one request delivers within ``rounds`` round trips of slow start (its head left out)."""
        return self.initial_window * (2**rounds - 1) - RESPONSE_HEAD

    def part_size(self, total: int) -> int:
        """The largest request for ``total`` bytes: enough requests to keep ``concurrency`` connections busy."""
        return max(self.min_part, min(self.max_part, math.ceil(total / max(1, self.concurrency))))


@dataclass(frozen=True)
class Request:
    """One ranged GET: bytes ``[start, end)`` of the object, serving the chunks ``members`` (indices)."""

    start: int
    end: int
    members: tuple[int, ...]

    @property
    def size(self) -> int:
        return self.end - self.start


def coalesce(ranges: Sequence[tuple[int, int]], max_gap: int, max_size: int) -> list[Request]:
    """Group ``ranges`` (``(start, end)``, any order) into requests: a range joins the request before it in
    file order when the gap is at most ``max_gap`` and the request stays within ``max_size`` bytes."""
    order = sorted(range(len(ranges)), key=lambda i: (ranges[i][0], ranges[i][1]))
    requests: list[Request] = []
    start = end = 0
    members: list[int] = []
    for index in order:
        lo, hi = ranges[index]
        if members and lo - end <= max_gap and max(end, hi) - start <= max_size:
            end = max(end, hi)
            members.append(index)
            continue
        if members:
            requests.append(Request(start, end, tuple(members)))
        start, end, members = lo, hi, [index]
    if members:
        requests.append(Request(start, end, tuple(members)))
    return requests


def split(start: int, end: int, max_size: int) -> list[tuple[int, int]]:
    """``[start, end)`` cut into the fewest equal parts (the first ones one byte longer) of at most ``max_size``."""
    length = end - start
    parts = max(1, math.ceil(length / max_size))
    base, extra = divmod(length, parts)
    pieces, position = [], start
    for part in range(parts):
        size = base + (1 if part < extra else 0)
        pieces.append((position, position + size))
        position += size
    return pieces


def plan(ranges: Sequence[tuple[int, int]], policy: Policy) -> list[Request]:
    """The requests that fetch ``ranges``: coalesced, and split so that they fill the connections.

    A split range becomes several requests with that one member each. Requests come in the order of their
    first member (the order the reader needs the chunks in), not in file order.
    """
    if not ranges:
        return []
    total = sum(hi - lo for lo, hi in ranges)
    if policy.is_small(total):
        small = slow_start_plan(ranges, policy)
        if small is not None:
            return small
    part = policy.part_size(total)
    coalesced = coalesce(ranges, policy.max_gap, part)
    if total <= policy.concurrency * policy.max_part:  # one wave carries it: as many requests as connections
        wanted = max(len(coalesced), min(policy.concurrency, math.ceil(total / policy.min_part)))
        shares = apportion([r.size if len(r.members) == 1 else 0 for r in coalesced], wanted)
        counts = [min(n, max(1, r.size // policy.min_part)) for n, r in zip(shares, coalesced)]
    else:
        counts = [math.ceil(r.size / part) if len(r.members) == 1 else 1 for r in coalesced]
    requests: list[Request] = []
    for request, count in zip(coalesced, counts):
        if count > 1:
            pieces = split(request.start, request.end, math.ceil(request.size / count))
            requests.extend(Request(lo, hi, request.members) for lo, hi in pieces)
        else:
            requests.append(request)
    return sorted(requests, key=lambda r: (min(r.members), r.start))


def slow_start_plan(ranges: Sequence[tuple[int, int]], policy: Policy) -> list[Request] | None:
    """The fewest requests for ``ranges`` whose every part arrives within the fewest round trips of slow start
    that one wave (``connections`` requests) allows; None when no number of round trips fits in one wave
    (more far-apart chunks than connections)."""
    total = sum(hi - lo for lo, hi in ranges)
    rounds = 1
    while True:
        most = max(1, policy.window_bytes(rounds))
        coalesced = coalesce(ranges, policy.max_gap, most)
        counts = [math.ceil(r.size / most) for r in coalesced]  # a coalesced request is within ``most``
        if sum(counts) <= policy.connections:
            break
        if most >= total:
            return None
        rounds += 1
    requests: list[Request] = []
    for request, count in zip(coalesced, counts):
        requests.extend(
            Request(lo, hi, request.members)
            for lo, hi in split(request.start, request.end, math.ceil(request.size / count))
        )
    return sorted(requests, key=lambda r: (min(r.members), r.start))


def apportion(sizes: Sequence[int], slots: int) -> list[int]:
    """Requests per range: one each, and the ``slots`` left over shared by size (largest remainder) among the
    ranges of non-zero size (zero: a range that is not to be split)."""
    counts = [1] * len(sizes)
    spare = slots - len(sizes)
    total = sum(sizes)
    if spare <= 0 or total == 0:
        return counts
    shares = [spare * size / total for size in sizes]
    extra = [math.floor(share) for share in shares]
    left = spare - sum(extra)
    for index in sorted(range(len(sizes)), key=lambda i: shares[i] - extra[i], reverse=True)[:left]:
        extra[index] += 1
    return [count + more for count, more in zip(counts, extra)]
