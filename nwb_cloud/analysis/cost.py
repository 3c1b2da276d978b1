"""The network cost model: how long moving bytes in requests takes under a :class:`Profile`.

A fluid model, deliberately simple: a new connection costs ``connect_rtts`` round trips, each request one
round trip plus the store's first-byte time, and bytes then flow at ``min(total_bandwidth, streams *
connection_bandwidth)``. TCP slow start, loss and jitter only add time, so leaving them out keeps
:func:`ideal_transfer_s` a lower bound. An unshaped profile (``loopback``) has no latency and moves bytes at
the measured loopback throughput when one is given, else instantly. :func:`cold_read_s` puts slow start back
for given requests: what a reader's own requests cost when every window starts over, as after a pause.
"""

from __future__ import annotations

import math

from nwb_cloud.cloud.profiles import Profile

INF = math.inf


def connect_s(profile: Profile) -> float:
    """Time to open one connection (TCP, and TLS for https) before its first request."""
    return profile.connect_rtts * profile.rtt_s


def request_floor_s(profile: Profile) -> float:
    """The least time from sending a request to its first byte (jitter only ever adds to it)."""
    return profile.rtt_s + profile.first_byte_s


def bandwidth(profile: Profile, streams: float = INF, loopback_throughput: float | None = None) -> float:
    """Bytes/s that ``streams`` parallel connections reach together (``inf``: no limit known)."""
    if profile.connection_bandwidth is None and profile.total_bandwidth is None:
        return loopback_throughput or INF
    per_connection = profile.connection_bandwidth or INF
    total = profile.total_bandwidth or INF
    return min(total, streams * per_connection)


def streams_to_saturate(profile: Profile) -> int:
    """Parallel connections needed to reach the profile's total bandwidth (1 when a single one does)."""
    if profile.connection_bandwidth is None or profile.total_bandwidth is None:
        return 1
    return max(1, math.ceil(profile.total_bandwidth / profile.connection_bandwidth))


def ideal_transfer_s(
    profile: Profile, nbytes: int, warm: bool = False, loopback_throughput: float | None = None
) -> float:
    """The least time to receive ``nbytes`` with the best possible parallelism.

    Assumption: byte ranges can be split freely (a chunk is a byte range, and a range can be fetched as
    several), so the number of parallel streams is unlimited and the total bandwidth is the only cap.
    Every new stream pays ``connect_s`` first. With ``warm`` (the reader already holds an open connection,
    as a handle opened before the timed read does), that one connection starts delivering at
    ``request_floor_s`` at the per-connection rate while the others connect; the model takes the exact
    optimum of that schedule, so it is never above "one warm stream" nor above "all streams new".
    """
    if nbytes <= 0:
        return 0.0
    first_byte = request_floor_s(profile)
    best = bandwidth(profile, INF, loopback_throughput)
    setup = connect_s(profile)
    if not warm:
        return setup + first_byte + nbytes / best
    single = bandwidth(profile, 1, loopback_throughput)
    if setup == 0 or single == best:  # nothing to win by waiting for more connections
        return first_byte + nbytes / best
    early = single * setup  # bytes the warm connection delivers while the others connect
    if nbytes <= early:
        return first_byte + nbytes / single
    return first_byte + setup + (nbytes - early) / best


def sequential_s(
    profile: Profile, requests: int, nbytes: int, warm: bool = False, loopback_throughput: float | None = None
) -> float:
    """What a naive reader pays: one connection, ``requests`` made one after another, mean latency each."""
    if requests <= 0:
        return 0.0
    setup = 0.0 if warm else connect_s(profile)
    return setup + requests * profile.request_latency_s() + nbytes / bandwidth(profile, 1, loopback_throughput)


def cold_window_s(profile: Profile, nbytes: float, loopback_throughput: float | None = None) -> float:
    """Time from a response's first byte to its last on a connection whose window starts at the profile's
    initial window (a new connection, or one idle past a retransmission timeout: RFC 5681): the window
    doubles each round trip until it carries the connection's rate, then the rate alone paces the rest."""
    rate = bandwidth(profile, 1, loopback_throughput)
    window = profile.initial_window_bytes
    if rate == INF:
        return 0.0
    if not window or profile.rtt_s <= 0:
        return nbytes / rate
    full, elapsed, left = rate * profile.rtt_s, 0.0, float(nbytes)
    while left > window and window < full:
        left -= window
        elapsed += profile.rtt_s
        window = min(2 * window, full)
    return elapsed + left / rate


def cold_read_s(
    profile: Profile, requests: int, nbytes: float, connections: int, loopback_throughput: float | None = None
) -> float:
    """The least time ``requests`` equal requests for ``nbytes`` in all take on ``connections`` open connections
    whose windows start over: a request's first byte, then slow start's round trips for its share (see
    :func:`cold_window_s`); when the requests outnumber the connections, each later wave on a grown window
    (full rate). Never below the bytes over the total bandwidth. Beside :func:`ideal_transfer_s` (full rate
    from the first byte) it tells slow start's share of a read's time from the reader's own."""
    if requests <= 0 or nbytes <= 0:
        return 0.0
    share, floor = nbytes / requests, request_floor_s(profile)
    waves = math.ceil(requests / max(1, connections))
    first = floor + cold_window_s(profile, share, loopback_throughput)
    later = (waves - 1) * (floor + share / bandwidth(profile, 1, loopback_throughput))
    return max(first + later, floor + nbytes / bandwidth(profile, INF, loopback_throughput))
