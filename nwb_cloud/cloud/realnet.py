"""The ``real`` profile, measured: what the network between this host and the store really is, at the run's start.

The emulated profiles (:mod:`nwb_cloud.cloud.profiles`) state their figures from public sources; a fleet child
on EC2 reads real S3 with no proxy, and records the same figures measured, so the two can be compared:

* round trip: the median time of a TCP connect to the store's host (one SYN / SYN-ACK exchange);
* first byte: the median time from sending a 1-byte ranged GET on an open connection to its answer, less the
  round trip (the store's own latency);
* per-connection throughput: one connection reading ``size`` bytes, after its first byte (median of
  ``streams`` reads); total throughput: ``parallel`` connections each reading a share at once.

The reads are plain HTTP range requests (``requests``), so the figures are the network's and the store's,
not a read library's. A presigned URL used here is dropped at once: only the figures are returned.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from urllib.parse import urlsplit

import requests

from nwb_cloud.cloud.calibrate import read_range
from nwb_cloud.cloud.profiles import PROFILES, Profile
from nwb_cloud.cloud.store import Store, StoreError

MiB = 2**20
CONNECT_TIMEOUT_S = 5


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def _connect_s(host: str, port: int) -> float:
    started = time.perf_counter()
    with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
        return time.perf_counter() - started


def _first_byte_s(session: requests.Session, url: str) -> float:
    started = time.perf_counter()
    read_range(session, url, 0, 1)
    return time.perf_counter() - started


def _stream_rate(url: str, start: int, end: int, first_byte_s: float) -> float:
    """Bytes/s of one new connection reading [start, end), its request latency taken out."""
    session = requests.Session()
    read_range(session, url, 0, 1)  # the connection is open (TCP + TLS) before the timed read
    started = time.perf_counter()
    read_range(session, url, start, end)
    return (end - start) / max(time.perf_counter() - started - first_byte_s, 1e-9)


def measure_real_profile(
    store: Store,
    key: str | None = None,
    size: int = 32 * MiB,
    samples: int = 20,
    streams: int = 3,
    parallel: int = 8,
    scratch_prefix: str = "",
) -> Profile:
    """The ``real`` profile with this host's measured figures for ``store``.

    ``key`` names an object of at least ``size`` bytes to read (a DANDI asset on a read-only store); without
    it a random object of ``size`` bytes is written under a unique key below ``scratch_prefix`` and deleted
    afterwards.
    """
    written = key is None
    if written:
        key = f"{scratch_prefix}nwb-cloud-realnet/{uuid.uuid4().hex}.bin"
        try:
            store.client().put_object(Bucket=store.bucket, Key=key, Body=os.urandom(size))
        except Exception as error:  # botocore's errors: a store that refuses the write is named
            raise StoreError(f"cannot write the network probe object to {store.s3_url(key)}: {error}") from None
    try:
        length = int(store.head(key)["size"])
        size = min(size, length)
        url = store.http_url(key)
        host, port = _host_port(url)
        rtts = [_connect_s(host, port) for _ in range(samples)]
        session = requests.Session()
        read_range(session, url, 0, 1)  # open the connection
        latencies = [_first_byte_s(session, url) for _ in range(samples)]
        rtt = statistics.median(rtts)
        first_byte = max(statistics.median(latencies) - rtt, 0.0)
        one = statistics.median(_stream_rate(url, 0, size, statistics.median(latencies)) for _ in range(streams))
        share = size // parallel
        with ThreadPoolExecutor(parallel) as pool:
            started = time.perf_counter()
            total = sum(pool.map(lambda i: read_range(requests.Session(), url, i * share, (i + 1) * share),
                                 range(parallel)))  # fmt: skip
            aggregate = total / (time.perf_counter() - started)
        quantiles = statistics.quantiles(latencies, n=10) if len(latencies) > 1 else [latencies[0]] * 9
    finally:
        if written:
            store.client().delete_object(Bucket=store.bucket, Key=key)
    return replace(
        PROFILES["real"],
        description=f"measured {time.strftime('%Y-%m-%d %H:%M:%S %Z')} from {socket.gethostname()} to "
        f"{store.label}: {samples} connects and first bytes, {streams} x {size / 1e6:.0f} MB on one connection, "
        f"{parallel} connections at once",
        rtt_s=rtt,
        connect_rtts=2 if url.startswith("https") else 1,  # TCP (+ TLS 1.3): counted, not measured
        first_byte_s=first_byte,
        connection_bandwidth=one,
        total_bandwidth=max(aggregate, one),
        jitter_s=max(quantiles[-1] - quantiles[0], 0.0),  # p90 - p10 of the request latency
        initial_window_bytes=PROFILES["in-region"].initial_window_bytes,
    )
