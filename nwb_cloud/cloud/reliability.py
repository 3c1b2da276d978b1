"""Does a read method survive what S3 does? Run it through the fault-injecting proxy and classify the outcome.

Outcomes, from good to bad: ``exact`` (faults were injected and the method still returned exactly the
right data, so it retried or resumed), ``error`` (it failed and said so), ``crash`` (the reader's process
died, e.g. a segfault in a C library), ``hang`` (no answer within the time limit after
the first injected fault), ``wrong-data`` (it
returned data that differ from the source: the worst, silent corruption). A probe where no fault was
injected proves nothing: ``tested`` is False.

The read runs in a forked child process: a reader that hangs inside h5py holds h5py's lock, and a thread
left like that deadlocks the interpreter's exit (observed with s3fs under a stall), so a hung reader is
killed, never left behind. Fork (not spawn) lets the read be any callable, closures included; the proxy
serves from the parent, where its counters are read.

The child writes to fresh stdio objects (or to /dev/null with ``quiet``): a parent that runs other threads
(the proxy's, a progress display) may hold the lock of ``sys.stderr`` at the fork, and the child's first
warning would then wait for it forever, which the probe would file as a hang of the reader.

Error messages are kept for the report with URL query strings and SigV4 credential/signature parameters
removed (a presigned URL is a credential).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from nwb_cloud.cloud.faults import Faults
from nwb_cloud.cloud.profiles import PROFILES, Profile
from nwb_cloud.cloud.proxy import ShapingProxy
from nwb_cloud.cloud.store import Store

EXACT, ERROR, CRASH, HANG, WRONG_DATA = "exact", "error", "crash", "hang", "wrong-data"
OUTCOMES = (EXACT, ERROR, CRASH, HANG, WRONG_DATA)
DEFAULT_TIMEOUT_S = 60.0
START_ALLOWANCE_S = 120.0  # to reach the first fault: imports and client set-up, slow on a loaded machine
POLL_S = 0.05

# What S3 does. One fault of each kind on the first ranged GET (a data read: some readers begin with a GET
# they abort after its headers, to learn the size, and a fault in a body nobody reads tests nothing), then
# a seeded mix at rates far above S3's normal ones so that a read of a few dozen requests meets several.
# A stall outlasts any read timeout: a reader without one hangs, a reader with one retries or fails,
# provided the probe's time limit is longer than that read timeout (botocore/s3fs here: 60 s).
STALL_S = 3600.0
SCENARIOS: dict[str, Faults] = {
    "slowdown-once": Faults(schedule={1: "slowdown"}, ranged_only=True),
    "reset-once": Faults(schedule={1: "reset"}, ranged_only=True),
    "truncate-once": Faults(schedule={1: "truncate"}, ranged_only=True),
    "stall-once": Faults(schedule={1: "stall"}, stall_s=STALL_S, ranged_only=True),
    "mixed": Faults(
        slowdown_503=0.05, reset_mid_body=0.03, truncate_body=0.03, stall_probability=0.01, stall_s=STALL_S, seed=1
    ),
}


@dataclass(frozen=True)
class ProbeResult:
    outcome: str  # one of OUTCOMES
    seconds: float
    first_fault_s: float | None = None  # when the first fault was injected, from the start (None: never)
    faults_injected: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    responses: dict[int, int] = field(default_factory=dict)  # by status code, as the reader saw them
    requests_by_method: dict[str, int] = field(default_factory=dict)  # GET, HEAD, ...
    error: str | None = None  # exception type and first line of its message, URL queries removed

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
    quiet: bool = False,
) -> ProbeResult:
    """Call ``read(store_through_proxy)`` with ``faults`` injected and classify what it returns.

    ``store`` is the store as seen without the proxy (same bucket and credentials), ``upstream_url`` the
    endpoint the proxy forwards to. ``same`` compares the result with ``expected`` (default: exact
    equality of arrays, bytes, and containers of them). ``quiet`` sends the reader's own output (library
    warnings) to /dev/null.
    """
    same = same or equal
    context = multiprocessing.get_context("fork")
    with ShapingProxy(upstream_url, profile, faults) as proxy:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_read_in_child, args=(read, store.via(proxy.url), sender, quiet), daemon=True)
        start = time.perf_counter()
        child.start()
        sender.close()
        answered, first_fault = _wait(receiver, proxy, start, timeout_s)
        answer = _receive(receiver) if answered else None
        seconds = time.perf_counter() - start
        if answer is None:
            child.kill()
        child.join()
        receiver.close()
        counted = proxy.traffic.snapshot()
    common = dict(
        seconds=seconds,
        first_fault_s=first_fault,
        faults_injected=counted.faults,
        requests=counted.requests_total,
        responses=counted.responses,
        requests_by_method=dict(counted.requests),
    )
    if not answered:
        return ProbeResult(HANG, **common)
    if answer is None:
        return ProbeResult(CRASH, error=f"the reader's process died (exit code {child.exitcode})", **common)
    kind, value = answer
    if kind == "error":
        return ProbeResult(ERROR, error=value, **common)
    try:
        correct = same(value, expected)
    except Exception as error:  # noqa: BLE001 - a result that cannot even be compared is not the data
        return ProbeResult(WRONG_DATA, error=f"result not comparable: {describe(error)}", **common)
    return ProbeResult(EXACT if correct else WRONG_DATA, **common)


def _wait(receiver, proxy: ShapingProxy, start: float, timeout_s: float) -> tuple[bool, float | None]:
    """Whether the reader answered in time, and when the first fault was injected (from ``start``).

    In time: within ``timeout_s`` of the first injected fault (a reader slow to build its client on a loaded
    machine has not met the fault yet and is not hanging on it), or within ``START_ALLOWANCE_S`` of the start
    while no fault has been injected.
    """
    deadline = start + max(timeout_s, START_ALLOWANCE_S)
    faulted_at = None
    while True:
        now = time.perf_counter()
        if faulted_at is None and proxy.traffic.snapshot().faults:
            faulted_at = now
            deadline = now + timeout_s
        first_fault = None if faulted_at is None else faulted_at - start
        if receiver.poll(max(0.0, min(POLL_S, deadline - now))):
            return True, first_fault
        if time.perf_counter() >= deadline:
            return False, first_fault


def _read_in_child(read: Callable[[Store], Any], store: Store, sender, quiet: bool = False) -> None:
    _fresh_stdio(quiet)
    try:
        answer = ("value", read(store))
    except BaseException as error:  # noqa: BLE001 - every failure is an outcome to classify
        answer = ("error", describe(error))
    try:
        sender.send(answer)
    except Exception as error:  # noqa: BLE001 - e.g. a result that does not pickle
        sender.send(("error", f"result cannot be returned: {describe(error)}"))


def _fresh_stdio(quiet: bool) -> None:
    """New stdout/stderr objects over fds 1 and 2 (pointed at /dev/null when ``quiet``); see the module docstring."""
    if quiet:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.close(devnull)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the child
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115


def _receive(receiver):
    """The child's answer, or None if it died without one (its end of the pipe closed)."""
    try:
        return receiver.recv()
    except EOFError:
        return None


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
_SIGV4 = re.compile(r"((?:X-Amz-)?(?:Credential|Signature|Security-Token|SignedHeaders)=)[^\s,&'\")]+", re.IGNORECASE)


def describe(error: BaseException) -> str:
    """``Type: first line of the message``, with the query of every URL and any SigV4 credential or signature
    removed (a presigned URL, or an Authorization header quoted in a message)."""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    message = _SIGV4.sub(r"\1…", _QUERY.sub(r"\1?…", message))
    return f"{type(error).__module__}.{type(error).__qualname__}: {message[:300]}"
