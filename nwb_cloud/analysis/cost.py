"""The network cost model: how long moving bytes in requests takes under a :class:`Profile`.

A fluid model, deliberately simple: a new connection costs ``connect_rtts`` round trips, each request one
round trip plus the store's first-byte time, and bytes then flow at ``min(total_bandwidth, streams *
connection_bandwidth)``. TCP slow start, loss and jitter only add time, so leaving them out keeps
:func:`ideal_transfer_s` a lower bound. An unshaped profile (``loopback``) has no latency and moves bytes at
the measured loopback throughput when one is given, else instantly.
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
