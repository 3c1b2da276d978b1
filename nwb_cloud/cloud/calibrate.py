"""How much the shaping proxy itself costs, measured against direct loopback to the embedded endpoint.

The proxy must not be what limits a benchmark: :func:`measure_overhead` times small-request latency and
bulk throughput (one stream and ``parallel`` streams) directly and through an unshaped (``loopback``)
proxy (in-process and in its own process), and the throughput reached through each shaped profile next
to what that profile allows.

On a small machine the embedded server and the proxy run on the reader's cores, so what they spend is CPU
the reader cannot use: :func:`measure_serving_cost` measures it (CPU seconds per request and per MB, from
their processes' CPU times while a lean client reads through them), and the bound counts it
(:mod:`nwb_cloud.analysis.bound`) when they share the reader's cores. Nothing is pinned to cores here: on
2 cores there is none to spare.
The client is a lean HTTP range reader (``requests`` with 1 MiB raw reads), so the figures are the
endpoint's and the proxy's, not a read library's. Run ``python -m nwb_cloud.cloud.calibrate``.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
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
    """CPU seconds the embedded server and the shaping proxy spend per request and per MB they serve."""

    server_cpu_s_per_request: float
    server_cpu_s_per_mb: float
    proxy_cpu_s_per_request: float
    proxy_cpu_s_per_mb: float
    requests: int  # how many small GETs the per-request figures come from
    mb: float  # how many MB the per-MB figures come from
    cores: int  # cores the reader, the server and the proxy share
    shares_reader_cores: bool  # True: the bound counts this CPU (nothing is pinned apart)

    def cpu_s(self, requests: int, nbytes: int) -> float:
        """What serving ``requests`` requests of ``nbytes`` bytes costs the server and the proxy together."""
        per_request = self.server_cpu_s_per_request + self.proxy_cpu_s_per_request
        per_mb = self.server_cpu_s_per_mb + self.proxy_cpu_s_per_mb
        return requests * per_request + nbytes / 1e6 * per_mb

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> ServingCost:
        return cls(**{k: payload[k] for k in cls.__dataclass_fields__})


def _cpu_s(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def measure_serving_cost(
    endpoint: Endpoint, requests_n: int = 400, size: int = 32 * MiB, passes: int = 4
) -> ServingCost:
    """The server's and the proxy's CPU per small GET and per MB, through an unshaped proxy in its own process.

    ``requests_n`` 100-byte GETs on one connection give the per-request figure; ``passes`` whole reads of a
    ``size`` object (one GET each) give the per-MB figure, less their requests' share. CPU times come from
    the processes' counters (10 ms ticks), so the totals measured are kept well above that.
    """
    store = endpoint.create_bucket()
    store.client().put_object(Bucket=store.bucket, Key=CALIBRATION_KEY, Body=os.urandom(size))
    try:
        with ProxyProcess(endpoint.url, PROFILES["loopback"]) as proxy:
            url, session = store.via(proxy.url).http_url(CALIBRATION_KEY), requests.Session()
            read_range(session, url, 0, 100)  # open the connection
            server, relay = _cpu_s(endpoint.pid), _cpu_s(proxy.pid)
            for _ in range(requests_n):
                read_range(session, url, 0, 100)
            server_small, relay_small = _cpu_s(endpoint.pid) - server, _cpu_s(proxy.pid) - relay
            server, relay = _cpu_s(endpoint.pid), _cpu_s(proxy.pid)
            for _ in range(passes):
                read_range(session, url, 0, size)
            server_bulk, relay_bulk = _cpu_s(endpoint.pid) - server, _cpu_s(proxy.pid) - relay
    finally:
        store.client().delete_object(Bucket=store.bucket, Key=CALIBRATION_KEY)
    mb = passes * size / 1e6
    per_request = server_small / requests_n, relay_small / requests_n
    return ServingCost(
        server_cpu_s_per_request=per_request[0],
        server_cpu_s_per_mb=max(0.0, server_bulk - passes * per_request[0]) / mb,
        proxy_cpu_s_per_request=per_request[1],
        proxy_cpu_s_per_mb=max(0.0, relay_bulk - passes * per_request[1]) / mb,
        requests=requests_n,
        mb=mb,
        cores=usable_cores(),
        shares_reader_cores=True,
    )


if __name__ == "__main__":
    print(measure_overhead().table())
