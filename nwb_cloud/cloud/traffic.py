"""What a reader sent over the wire: requests, bytes and connections, counted at the shaping proxy.

Counting at the proxy needs no packet capture and no root, and it counts HTTP requests (what S3 bills and
what costs round trips) rather than packets. Byte counts are application bytes on the TCP stream: response
heads and bodies as forwarded to the client (``bytes_received``), request heads and bodies from the client
(``bytes_sent``); TCP/IP framing and TLS overhead are not included. ``body_bytes_received`` is the response
bodies alone, the figure to compare with the bytes a selection needs.

A benchmark reads one workload run's cost with :meth:`Traffic.measure`::

    with proxy.traffic.measure() as cost:
        run_workload()
    cost.requests_total, cost.bytes_received, cost.peak_connections
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class TrafficSnapshot:
    """Counters at one moment (totals since the proxy started), or the difference of two moments.

    ``peak_connections`` is not a total: it is the most connections open at once since the last
    :meth:`Traffic.mark` (in a difference, the later snapshot's value).
    """

    requests: dict[str, int] = field(default_factory=dict)  # by HTTP method
    responses: dict[int, int] = field(default_factory=dict)  # by status code, as the client saw them
    faults: dict[str, int] = field(default_factory=dict)  # injected faults by kind
    bytes_received: int = 0  # server -> client: response heads + bodies
    body_bytes_received: int = 0  # server -> client: response bodies only
    bytes_sent: int = 0  # client -> server: request heads + bodies
    connections: int = 0  # client connections accepted
    peak_connections: int = 0

    @property
    def requests_total(self) -> int:
        return sum(self.requests.values())

    def __sub__(self, earlier: TrafficSnapshot) -> TrafficSnapshot:
        values = {}
        for f in fields(self):
            mine, theirs = getattr(self, f.name), getattr(earlier, f.name)
            if f.name == "peak_connections":
                values[f.name] = mine
            elif isinstance(mine, dict):
                values[f.name] = {k: v for k, v in (Counter(mine) - Counter(theirs)).items() if v}
            else:
                values[f.name] = mine - theirs
        return TrafficSnapshot(**values)

    def to_dict(self) -> dict:
        """Flat numbers for results files and asv ``track_*`` benchmarks."""
        return {
            "requests": self.requests_total,
            **{f"requests_{method}": n for method, n in sorted(self.requests.items())},
            "bytes_received": self.bytes_received,
            "body_bytes_received": self.body_bytes_received,
            "bytes_sent": self.bytes_sent,
            "connections": self.connections,
            "peak_connections": self.peak_connections,
            **{f"fault_{kind}": n for kind, n in sorted(self.faults.items())},
        }


class TrafficReader:
    """Reading counters: what :class:`Traffic` and a proxy process's remote view have in common."""

    def snapshot(self) -> TrafficSnapshot:
        raise NotImplementedError

    def mark(self) -> TrafficSnapshot:
        """A snapshot, after which the peak restarts from the connections open now."""
        raise NotImplementedError

    @property
    def open_connections(self) -> int:
        raise NotImplementedError

    @contextmanager
    def measure(self) -> Iterator[TrafficDelta]:
        """What the block cost: the yielded object is filled in when the block ends."""
        delta = TrafficDelta()
        before = self.mark()
        try:
            yield delta
        finally:
            delta._set(self.snapshot() - before)


class Traffic(TrafficReader):
    """Thread-safe counters shared by every connection of one proxy."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: Counter[str] = Counter()
        self._responses: Counter[int] = Counter()
        self._faults: Counter[str] = Counter()
        self._bytes_received = 0
        self._body_bytes_received = 0
        self._bytes_sent = 0
        self._connections = 0
        self._open = 0
        self._peak = 0

    # -- counting, called by the proxy ---------------------------------------------------------------
    def connection_opened(self) -> None:
        with self._lock:
            self._connections += 1
            self._open += 1
            self._peak = max(self._peak, self._open)

    def connection_closed(self) -> None:
        with self._lock:
            self._open -= 1

    def request(self, method: str) -> None:
        with self._lock:
            self._requests[method] += 1

    def response(self, status: int) -> None:
        with self._lock:
            self._responses[status] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def sent(self, n: int) -> None:
        with self._lock:
            self._bytes_sent += n

    def received(self, n: int, body: bool) -> None:
        with self._lock:
            self._bytes_received += n
            if body:
                self._body_bytes_received += n

    # -- reading -----------------------------------------------------------------------------------
    @property
    def open_connections(self) -> int:
        with self._lock:
            return self._open

    def snapshot(self) -> TrafficSnapshot:
        with self._lock:
            return TrafficSnapshot(
                requests=dict(self._requests),
                responses=dict(self._responses),
                faults=dict(self._faults),
                bytes_received=self._bytes_received,
                body_bytes_received=self._body_bytes_received,
                bytes_sent=self._bytes_sent,
                connections=self._connections,
                peak_connections=self._peak,
            )

    def mark(self) -> TrafficSnapshot:
        with self._lock:
            self._peak = self._open
        return self.snapshot()


class TrafficDelta:
    """The cost of one measured block; its attributes are those of :class:`TrafficSnapshot`."""

    _snapshot: TrafficSnapshot | None = None

    def _set(self, snapshot: TrafficSnapshot) -> None:
        self._snapshot = snapshot

    @property
    def snapshot(self) -> TrafficSnapshot:
        if self._snapshot is None:
            raise RuntimeError("the traffic of a block is known only after the block ends")
        return self._snapshot

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.snapshot, name)

    def __repr__(self) -> str:
        return f"TrafficDelta({self._snapshot!r})"
