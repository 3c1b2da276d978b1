"""Does a read method survive what S3 does? Run it through the fault-injecting proxy and classify the outcome.

Four outcomes, from good to bad: ``exact`` (faults were injected and the method still returned exactly the
right data, so it retried or resumed), ``error`` (it failed and said so), ``hang`` (no answer within the
time limit), ``wrong-data`` (it returned data that differs from the source: the worst, silent corruption).
A probe where no fault was injected proves nothing; its ``faults_injected`` is 0 and it is marked so.

Error messages are kept for the report with URL query strings removed (a presigned URL is a credential).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nwb_cloud.cloud.faults import Faults
from nwb_cloud.cloud.profiles import PROFILES, Profile
from nwb_cloud.cloud.proxy import ShapingProxy
from nwb_cloud.cloud.store import Store

EXACT, ERROR, HANG, WRONG_DATA = "exact", "error", "hang", "wrong-data"
OUTCOMES = (EXACT, ERROR, HANG, WRONG_DATA)
DEFAULT_TIMEOUT_S = 60.0
GRACE_S = 5.0  # after a hang, how long the reader gets to notice its connections were closed

# What S3 does, one scenario per fault kind, each strong enough to hit a read of a few dozen requests.
# The stall outlasts any sensible read timeout: a reader without one hangs, a reader with one retries.
SCENARIOS: dict[str, Faults] = {
    "slowdown": Faults(slowdown_503=0.2, seed=1),
    "reset": Faults(reset_mid_body=0.1, seed=2),
    "truncate": Faults(truncate_body=0.1, seed=3),
    "stall": Faults(stall_probability=0.1, stall_s=3600.0, seed=4),
}


@dataclass(frozen=True)
class ProbeResult:
    outcome: str  # one of OUTCOMES
    seconds: float
    faults_injected: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    error: str | None = None  # exception type and first line of its message, URL queries removed
    reader_still_running: bool = False  # after a hang: the reader did not stop when its connections closed

    @property
    def tested(self) -> bool:
        """False when no fault reached the reader: the outcome then says nothing about reliability."""
        return bool(self.faults_injected)

    def to_dict(self) -> dict:
        return asdict(self)


def probe(
    read: Callable[[Store], Any],
    expected: Any,
    store: Store,
    upstream_url: str,
    faults: Faults,
    profile: Profile = PROFILES["loopback"],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    same: Callable[[Any, Any], bool] | None = None,
) -> ProbeResult:
    """Call ``read(store_through_proxy)`` with ``faults`` injected and classify what it returns.

    ``store`` is the store as seen without the proxy (same bucket and credentials), ``upstream_url`` the
    endpoint the proxy forwards to. ``same`` compares the result with ``expected`` (default: exact
    equality of arrays, bytes, and containers of them).
    """
    same = same or equal
    outcome: dict[str, Any] = {}

    def run(via: Store) -> None:
        try:
            outcome["value"] = read(via)
        except BaseException as error:  # noqa: BLE001 - every failure is an outcome to classify
            outcome["error"] = error

    with ShapingProxy(upstream_url, profile, faults) as proxy:
        worker = threading.Thread(target=run, args=(store.via(proxy.url),), name="reliability-probe", daemon=True)
        start = time.perf_counter()
        worker.start()
        worker.join(timeout_s)
        seconds = time.perf_counter() - start
        hung = worker.is_alive()
        counted = proxy.traffic.snapshot()
    # Leaving the block stopped the proxy and closed every connection: a hung reader may now notice.
    if hung:
        worker.join(GRACE_S)
    common = dict(seconds=seconds, faults_injected=counted.faults, requests=counted.requests_total)
    if hung:
        return ProbeResult(HANG, reader_still_running=worker.is_alive(), **common)
    if "error" in outcome:
        return ProbeResult(ERROR, error=describe(outcome["error"]), **common)
    try:
        correct = same(outcome["value"], expected)
    except Exception as error:  # noqa: BLE001 - a result that cannot even be compared is not the data
        return ProbeResult(WRONG_DATA, error=f"result not comparable: {describe(error)}", **common)
    return ProbeResult(EXACT if correct else WRONG_DATA, **common)


def equal(a: Any, b: Any) -> bool:
    """Exact equality for what readers return: numpy arrays (dtype and shape too), bytes, containers."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return type(a) is type(b) and len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


_QUERY = re.compile(r"(https?://[^\s?'\"]*)\?[^\s'\")]*")


def describe(error: BaseException) -> str:
    """``Type: first line of the message``, with the query of every URL removed (presigned signatures)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = _QUERY.sub(r"\1?…", message)
    return f"{type(error).__module__}.{type(error).__qualname__}: {message[:300]}"
