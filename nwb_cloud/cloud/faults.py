"""What S3 really does to readers, injected by the shaping proxy: 503 SlowDown, resets, truncations, stalls.

Which request gets a fault is decided from a seed and the request itself (method, path without the query,
Range header, and how many times that same request was seen), not from arrival order: a run with parallel
connections injects the same faults into the same requests whatever the thread scheduling, and a retry of a
failed request is a new draw (as on S3, where a retry usually succeeds). A ``schedule`` instead names the
n-th eligible request in arrival order ("the 3rd GET gets a 503"), for tests that need an exact sequence.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import asdict, dataclass, field
from email.utils import formatdate

from nwb_cloud.cloud.store import StoreError

SLOWDOWN = "slowdown"  # 503 SlowDown with S3's XML error body; the request never reaches the store
RESET = "reset"  # the connection is reset (RST) after half of the response body
TRUNCATE = "truncate"  # the connection is closed cleanly (FIN) after half of a body whose length was promised
STALL = "stall"  # the response stops for ``stall_s`` after half of its body, then completes
FAULT_KINDS = (SLOWDOWN, RESET, TRUNCATE, STALL)


class FaultConfigError(StoreError):
    """A fault configuration that cannot be applied."""


@dataclass(frozen=True)
class Faults:
    """Per-request fault probabilities (at most one fault per request), or an exact schedule."""

    slowdown_503: float = 0.0
    reset_mid_body: float = 0.0
    truncate_body: float = 0.0
    stall_probability: float = 0.0
    stall_s: float = 5.0
    seed: int = 0
    schedule: dict[int, str] = field(default_factory=dict)  # n-th eligible request (1-based) -> fault kind
    methods: tuple[str, ...] = ("GET",)  # requests eligible for faults
    ranged_only: bool = False  # only requests with a Range header (data reads, not a size probe) are eligible
    whole_only: bool = False  # only requests without a Range header (whole objects: an index document)

    def __post_init__(self):
        probabilities = self._probabilities()
        for kind, p in probabilities:
            if not 0.0 <= p <= 1.0:
                raise FaultConfigError(f"fault probability for {kind!r} must be within [0, 1], got {p!r}")
        if sum(p for _, p in probabilities) > 1.0 + 1e-12:
            raise FaultConfigError(
                f"fault probabilities add up to more than 1: {', '.join(f'{k}={p}' for k, p in probabilities)}"
            )
        if self.stall_s < 0:
            raise FaultConfigError(f"stall_s must be >= 0, got {self.stall_s!r}")
        for n, kind in self.schedule.items():
            if kind not in FAULT_KINDS:
                raise FaultConfigError(f"unknown fault {kind!r} in schedule; known: {', '.join(FAULT_KINDS)}")
            if not isinstance(n, int) or n < 1:
                raise FaultConfigError(f"schedule positions count eligible requests from 1, got {n!r}")
        if self.ranged_only and self.whole_only:
            raise FaultConfigError("ranged_only and whole_only exclude each other: no request would be eligible")
        object.__setattr__(self, "methods", tuple(m.upper() for m in self.methods))

    def _probabilities(self) -> list[tuple[str, float]]:
        return [
            (SLOWDOWN, self.slowdown_503),
            (RESET, self.reset_mid_body),
            (TRUNCATE, self.truncate_body),
            (STALL, self.stall_probability),
        ]

    @property
    def active(self) -> bool:
        return bool(self.schedule) or any(p > 0 for _, p in self._probabilities())

    def to_dict(self) -> dict:
        return asdict(self)

    def draw(self, method: str, path: str, byte_range: str, occurrence: int) -> str | None:
        """The fault (or None) for the ``occurrence``-th sight of this request: a pure function of the seed."""
        key = f"{self.seed}|{method}|{path}|{byte_range}|{occurrence}".encode()
        u = int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64
        for kind, p in self._probabilities():
            if u < p:
                return kind
            u -= p
        return None

    def injector(self) -> FaultInjector:
        return FaultInjector(self)


class FaultInjector:
    """The state a proxy keeps to apply :class:`Faults`: how many eligible requests, how often each was seen."""

    def __init__(self, faults: Faults):
        self.faults = faults
        self._lock = threading.Lock()
        self._eligible = 0
        self._seen: Counter[tuple[str, str, str]] = Counter()

    def choose(self, method: str, target: str, byte_range: str = "") -> str | None:
        if not self.faults.active or method.upper() not in self.faults.methods:
            return None
        if (self.faults.ranged_only and not byte_range) or (self.faults.whole_only and byte_range):
            return None
        path = target.split("?", 1)[0]
        with self._lock:
            self._eligible += 1
            n = self._eligible
            self._seen[(method, path, byte_range)] += 1
            occurrence = self._seen[(method, path, byte_range)]
        if self.faults.schedule:
            return self.faults.schedule.get(n)
        return self.faults.draw(method, path, byte_range, occurrence)


def slowdown_response(resource: str, request_id: str) -> tuple[bytes, bytes]:
    """The 503 SlowDown S3 sends when a prefix is over its request rate, as (head, body) in S3's form."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
        f"<Resource>{_xml_escape(resource)}</Resource><RequestId>{request_id}</RequestId>"
        f"<HostId>nwb-cloud-fault-injection</HostId></Error>"
    ).encode()
    head = (
        "HTTP/1.1 503 Slow Down\r\n"
        "Content-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\n"
        f"x-amz-request-id: {request_id}\r\n"
        "x-amz-id-2: nwb-cloud-fault-injection\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n"
        "Server: AmazonS3\r\n"
        "\r\n"
    ).encode()
    return head, body


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
