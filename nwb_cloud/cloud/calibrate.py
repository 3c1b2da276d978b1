"""How much the shaping proxy itself costs, measured against direct loopback to the embedded endpoint.

The proxy must not be what limits a benchmark: :func:`measure_overhead` times small-request latency and
bulk throughput (one stream and ``parallel`` streams) directly and through an unshaped (``loopback``)
proxy (in-process and in its own process), and the throughput reached through each shaped profile next
to what that profile allows.

On a small machine the embedded server and the proxy run on the reader's cores, so what they spend is CPU
the reader cannot use: :func:`measure_serving_cost` measures it (CPU seconds per request, and per MB under
each profile, from their processes' CPU times while a lean client reads through them), and the bound counts it
(:mod:`nwb_cloud.analysis.bound`) when they share the reader's cores. Nothing is pinned to cores here: on
2 cores there is none to spare.
The client is a lean HTTP range reader (``requests`` with 1 MiB raw reads), so the figures are the
endpoint's and the proxy's, not a read library's. Run ``python -m nwb_cloud.cloud.calibrate``.
"""

from __future__ import annotations

import contextlib
import os
import queue
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import requests

from nwb_cloud.cloud.endpoint import Endpoint
from nwb_cloud.cloud.profiles import PROFILES, Profile
from nwb_cloud.cloud.proxy import ShapingProxy
from nwb_cloud.cloud.proxy_process import ProxyProcess
from nwb_cloud.cloud.store import Store
from nwb_cloud.settings import usable_cores

MiB = 2**20
CALIBRATION_KEY = "calibration/random.bin"


@dataclass(frozen=True)
class PathFigures:
    """One way to reach the endpoint: direct, or through the proxy under one profile."""

    path: str
    small_get_ms: float  # median time of a 100-byte ranged GET on an open connection
    single_stream_mb_s: float  # one connection reading the whole object
    parallel_mb_s: float  # ``parallel`` connections each reading a share of the object
    single_expected_mb_s: float | None = None  # what the profile allows, request latency included (None: unshaped)
    parallel_expected_mb_s: float | None = None


@dataclass(frozen=True)
class Overhead:
    object_mb: float
    parallel: int
    figures: list[PathFigures]
    busy_reader_mb_s: dict[str, float]  # in-region, one stream, reader's process busy: by where the proxy runs
    busy_reader_expected_mb_s: float

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        rows = [f"{'path':<22} {'small GET ms':>12} {'1 stream MB/s':>16} {f'{self.parallel} streams MB/s':>18}"]
        for f in self.figures:
            single = f"{f.single_stream_mb_s:.0f}" + (
                f"/{f.single_expected_mb_s:.0f}" if f.single_expected_mb_s else ""
            )
            parallel = f"{f.parallel_mb_s:.0f}" + (
                f"/{f.parallel_expected_mb_s:.0f}" if f.parallel_expected_mb_s else ""
            )
            rows.append(f"{f.path:<22} {f.small_get_ms:>12.2f} {single:>16} {parallel:>18}")
        allowed = f"{self.busy_reader_expected_mb_s:.0f} MB/s"
        rows.append(f"one in-region stream while the reader's process is busy in Python (allowed {allowed}):")
        rows += [f"  proxy {where:<12} {rate:.0f} MB/s" for where, rate in self.busy_reader_mb_s.items()]
        return "\n".join(rows)


def read_range(session: requests.Session, url: str, start: int, end: int) -> int:
    """GET bytes [start, end) on ``session``'s connection, reading them all; the number read."""
    response = session.get(url, headers={"Range": f"bytes={start}-{end - 1}"}, stream=True, timeout=60)
    response.raise_for_status()
    n = 0
    while block := response.raw.read(MiB):
        n += len(block)
    if n != end - start:
        raise RuntimeError(f"calibration read {n} bytes of {end - start}")
    return n


def _measure_path(store: Store, size: int, parallel: int, small_gets: int) -> tuple[float, float, float]:
    url = store.http_url(CALIBRATION_KEY)
    session = requests.Session()
    read_range(session, url, 0, 100)  # open the connection
    times = []
    for _ in range(small_gets):
        t = time.perf_counter()
        read_range(session, url, 0, 100)
        times.append(time.perf_counter() - t)
    t = time.perf_counter()
    read_range(session, url, 0, size)
    single = size / (time.perf_counter() - t)
    share = size // parallel
    sessions = [requests.Session() for _ in range(parallel)]
    for s in sessions:
        read_range(s, url, 0, 100)
    with ThreadPoolExecutor(parallel) as pool:
        t = time.perf_counter()
        total = sum(pool.map(lambda i: read_range(sessions[i], url, i * share, (i + 1) * share), range(parallel)))
        parallel_rate = total / (time.perf_counter() - t)
    return statistics.median(times) * 1e3, single / 1e6, parallel_rate / 1e6


def _expected(profile: Profile, size: int, streams: int) -> float | None:
    """The rate the profile allows ``streams`` connections reading ``size`` bytes in equal shares (MB/s).

    The connections are open but have carried only a small response, so each still pays slow start.
    """
    caps = [c for c in (profile.connection_bandwidth, (profile.total_bandwidth or 0) / streams) if c]
    if not caps:
        return None
    rate, share = min(caps), size / streams
    seconds = profile.request_latency_s()
    window, sent = profile.initial_window_bytes or float("inf"), 0.0
    while window < rate * profile.rtt_s and sent + window < share:  # slow start: window-limited rounds
        sent, window, seconds = sent + window, 2 * window, seconds + profile.rtt_s
    return size / (seconds + (share - sent) / rate) / 1e6


def _busy(stop: threading.Event) -> None:
    """Pure-Python work that holds the GIL, as a reader decoding or assembling arrays does."""
    while not stop.is_set():
        sum(range(10_000))


def _single_stream_while_busy(store: Store, size: int) -> float:
    """MB/s of one stream read while another thread of this process keeps the GIL busy."""
    stop = threading.Event()
    worker = threading.Thread(target=_busy, args=(stop,), daemon=True)
    worker.start()
    try:
        url, session = store.http_url(CALIBRATION_KEY), requests.Session()
        start = time.perf_counter()
        read_range(session, url, 0, size)
        return size / (time.perf_counter() - start) / 1e6
    finally:
        stop.set()
        worker.join()


def measure_overhead(
    endpoint: Endpoint | None = None,
    size: int = 64 * MiB,
    parallel: int = 8,
    small_gets: int = 50,
    profiles: tuple[str, ...] = ("in-region", "lab"),
) -> Overhead:
    """Direct loopback vs the proxy: unshaped in-process and in its own process, then shaped by ``profiles``.

    The last rows read one stream under in-region while the reader's process is busy in Python: the
    in-process proxy then loses bandwidth to the GIL, the proxy process does not.
    """
    if endpoint is None:
        with tempfile.TemporaryDirectory(prefix="nwb-cloud-calibrate-") as tmp, Endpoint(Path(tmp) / "s3") as ep:
            return measure_overhead(ep, size, parallel, small_gets, profiles)
    store = endpoint.create_bucket()
    store.client().put_object(Bucket=store.bucket, Key=CALIBRATION_KEY, Body=os.urandom(size))
    loopback = PROFILES["loopback"]
    try:
        figures = [PathFigures("direct", *_measure_path(store, size, parallel, small_gets))]
        for label, kind, profile in [
            ("in-process loopback", ShapingProxy, loopback),
            ("process loopback", ProxyProcess, loopback),
            *[(f"process {name}", ProxyProcess, PROFILES[name]) for name in profiles],
        ]:
            with kind(endpoint.url, profile) as proxy:
                measured = _measure_path(store.via(proxy.url), size, parallel, small_gets)
            expected = _expected(profile, size, 1), _expected(profile, size, parallel)
            figures.append(PathFigures(label, *measured, *expected))
        in_region = PROFILES["in-region"]
        busy = {}
        for label, kind in (("in-process", ShapingProxy), ("process", ProxyProcess)):
            with kind(endpoint.url, in_region) as proxy:
                busy[label] = _single_stream_while_busy(store.via(proxy.url), size)
    finally:
        store.client().delete_object(Bucket=store.bucket, Key=CALIBRATION_KEY)
    return Overhead(size / 1e6, parallel, figures, busy, _expected(in_region, size, 1))


@dataclass(frozen=True)
class ServingCost:
    """CPU seconds the embedded server and the shaping proxy spend per request and per MB they serve.

    The per-MB figures depend on how the bytes flow: ``*_per_mb`` are those of an unshaped proxy, and
    ``*_per_mb_under`` those of each shaped profile (pacing a slower stream wakes both processes more often
    per MB). Runs before these were measured have no ``*_under`` figures: the unshaped ones stand in."""

    server_cpu_s_per_request: float
    server_cpu_s_per_mb: float
    proxy_cpu_s_per_request: float
    proxy_cpu_s_per_mb: float
    requests: int  # how many small GETs the per-request figures come from
    mb: float  # how many MB each per-MB figure comes from
    cores: int  # cores the reader, the server and the proxy share
    shares_reader_cores: bool  # True: the bound counts this CPU (nothing is pinned apart)
    server_cpu_s_per_mb_under: dict[str, float] = field(default_factory=dict)  # by shaped profile
    proxy_cpu_s_per_mb_under: dict[str, float] = field(default_factory=dict)
    shape: str = "one GET of the whole object on one connection"  # how the per-MB figures' bytes were read

    def cpu_s(self, requests: int, nbytes: int, profile: str | None = None) -> float:
        """What serving ``requests`` requests of ``nbytes`` bytes under ``profile`` costs the server and the
        proxy together."""
        per_request = self.server_cpu_s_per_request + self.proxy_cpu_s_per_request
        per_mb = self.server_cpu_s_per_mb_under.get(profile, self.server_cpu_s_per_mb)
        per_mb += self.proxy_cpu_s_per_mb_under.get(profile, self.proxy_cpu_s_per_mb)
        return requests * per_request + nbytes / 1e6 * per_mb

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> ServingCost:
        return cls(**{k: payload[k] for k in cls.__dataclass_fields__ if k in payload})


def cpu_s(pid: int) -> float:
    """CPU seconds process ``pid`` has spent: the sum of its threads' run times (Linux's ``schedstat``, in
    nanoseconds) where the system gives them, else psutil's user + system times (10 ms ticks).

    The threads are those alive now: measure around work whose threads outlive it (the calibration keeps its
    connections, and so the proxy's threads for them, open until it has measured)."""
    total, tasks = 0, Path(f"/proc/{pid}/task")
    try:
        for task in tasks.iterdir():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # a thread that just ended
                total += int((task / "schedstat").read_text().split()[0])
    except OSError:
        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    return total / 1e9


def measure_serving_cost(
    endpoint: Endpoint,
    requests_n: int = 400,
    size: int = 64 * MiB,
    connections: int = 8,
    piece: int = 4 * MiB,
    passes: int = 2,
) -> ServingCost:
    """The server's and the proxy's CPU per small GET and per MB, through the proxy in its own process.

    ``requests_n`` 100-byte GETs on one connection through an unshaped proxy give the per-request figures.
    The per-MB figures come from reads shaped like a reader's: ranged GETs of ``piece`` bytes covering a
    ``size`` object, on ``connections`` connections at once, through an unshaped proxy and through each
    shaped profile's; each is the least of ``passes`` reads, less its requests' share. (One GET of a whole
    object is no stand-in: rclone spent 1.8-2.2 ms per MB on it here against 0.6-0.9 on ranged GETs, and an
    unshaped proxy 0.5-0.7 against 0.8-1.3 when it paces.)
    """
    store = endpoint.create_bucket()
    store.client().put_object(Bucket=store.bucket, Key=CALIBRATION_KEY, Body=os.urandom(size))
    try:
        with ProxyProcess(endpoint.url, PROFILES["loopback"]) as proxy:
            url, session = store.via(proxy.url).http_url(CALIBRATION_KEY), requests.Session()
            read_range(session, url, 0, 100)  # open the connection
            server, relay = cpu_s(endpoint.pid), cpu_s(proxy.pid)
            for _ in range(requests_n):
                read_range(session, url, 0, 100)
            per_request = (cpu_s(endpoint.pid) - server) / requests_n, (cpu_s(proxy.pid) - relay) / requests_n
        per_mb = {}
        for profile in [PROFILES["loopback"], *(p for p in PROFILES.values() if p.shaped)]:
            with ProxyProcess(endpoint.url, profile) as proxy:
                reads = [_ranged_read_cpu_s(store.via(proxy.url), size, connections, piece, endpoint.pid, proxy.pid)
                         for _ in range(passes)]  # fmt: skip
            pieces = -(-size // piece)
            per_mb[profile.name] = tuple(
                max(0.0, min(spent[i] for spent in reads) - pieces * per_request[i]) / (size / 1e6) for i in (0, 1)
            )
    finally:
        store.client().delete_object(Bucket=store.bucket, Key=CALIBRATION_KEY)
    unshaped = per_mb.pop("loopback")
    return ServingCost(
        server_cpu_s_per_request=per_request[0],
        server_cpu_s_per_mb=unshaped[0],
        proxy_cpu_s_per_request=per_request[1],
        proxy_cpu_s_per_mb=unshaped[1],
        requests=requests_n,
        mb=size / 1e6,
        cores=usable_cores(),
        shares_reader_cores=True,
        server_cpu_s_per_mb_under={name: figures[0] for name, figures in per_mb.items()},
        proxy_cpu_s_per_mb_under={name: figures[1] for name, figures in per_mb.items()},
        shape=f"ranged GETs of {piece / MiB:g} MiB on {connections} connections at once",
    )


def _ranged_read_cpu_s(
    store: Store, size: int, connections: int, piece: int, server_pid: int, proxy_pid: int
) -> tuple[float, float]:
    """(server, proxy) CPU seconds while ``connections`` open connections read the calibration object in
    ranged GETs of ``piece`` bytes, as a reader's fetch threads do."""
    url = store.http_url(CALIBRATION_KEY)
    sessions = [requests.Session() for _ in range(connections)]
    idle = queue.SimpleQueue()
    for session in sessions:
        idle.put(session)

    def read(start: int, end: int) -> int:
        session = idle.get()
        try:
            return read_range(session, url, start, min(size, end))
        finally:
            idle.put(session)

    with ThreadPoolExecutor(connections) as pool:
        # every connection (and the proxy's thread for it) opens before measuring
        list(pool.map(lambda session: read_range(session, url, 0, 100), sessions))
        server, relay = cpu_s(server_pid), cpu_s(proxy_pid)
        received = sum(pool.map(read, range(0, size, piece), range(piece, size + piece, piece)))
        spent = cpu_s(server_pid) - server, cpu_s(proxy_pid) - relay
    for session in sessions:
        session.close()
    if received != size:
        raise RuntimeError(f"calibration read {received} bytes of {size}")
    return spent


if __name__ == "__main__":
    print(measure_overhead().table())
