"""Network profiles: what S3 looks like from where the reader sits, in one table with the source of each figure.

A profile is applied by the shaping proxy (:mod:`nwb_cloud.cloud.proxy`) between a reader and the embedded
endpoint, and used by the physical bound (:mod:`nwb_cloud.analysis`). ``loopback`` means no shaping; ``real``
means none either, on the network the host really has (a fleet child on EC2 reading S3), whose figures are
measured at the start of the run (:mod:`nwb_cloud.cloud.realnet`) so the emulated profiles can be checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from nwb_cloud.errors import NwbCloudError


class UnknownProfile(NwbCloudError):
    pass


MB = 1e6


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    rtt_s: float  # network round trip between reader and store
    connect_rtts: int  # round trips a new connection costs before its first request (TCP + TLS)
    first_byte_s: float  # the store's own time to first byte of each request, beyond the round trip
    connection_bandwidth: float | None  # bytes/s one TCP connection sustains; None = unshaped
    total_bandwidth: float | None  # bytes/s of the reader's link, shared by all connections; None = unshaped
    jitter_s: float = 0.0  # uniform extra one-way delay in [0, jitter_s] per request
    # TCP slow start: a new connection may send this many bytes in its first round trip and twice as many
    # in each next one, until the bandwidth cap binds (None: a new connection starts at full rate)
    initial_window_bytes: int | None = None
    sources: str = ""

    @property
    def shaped(self) -> bool:
        """Whether the profile has network figures (a measured ``real`` profile has; ``loopback`` has none)."""
        return bool(self.rtt_s or self.first_byte_s or self.connection_bandwidth or self.total_bandwidth)

    def request_latency_s(self) -> float:
        """Time from sending a request on an open connection to its first byte arriving."""
        return self.rtt_s + self.first_byte_s + self.jitter_s / 2

    def to_dict(self) -> dict:
        return asdict(self)


# Sources cited below:
# [S3-perf] AWS, "Performance guidelines for Amazon S3": about 85-90 MB/s per connection ("make one concurrent
#   request for each 85-90 MB/s of desired network throughput") and byte-range GETs of 8-16 MB.
# [S3-retry] AWS whitepaper "Best Practices Design Patterns: Optimizing Amazon S3 Performance", section
#   "Timeouts and Retries for Latency-Sensitive Applications": for small requests (< 512 KB) "median
#   latencies are often in the range of tens of milliseconds" (retry such a GET after 2 s). Older AWS
#   course material quotes 100-200 ms first-byte-out, which is not used here as the median.
# [S3X] AWS, "S3 Express One Zone": single-digit ms first byte, "up to 10x faster than S3 Standard", which
#   puts S3 Standard's typical first byte at a few tens of ms.
# [EC2-net] AWS, "Amazon EC2 instance network bandwidth": up to 5 Gbit/s per flow outside a placement group,
#   10-25 Gbit/s per instance for common sizes (so one connection, not the NIC, limits a single reader).
# [RTT] AWS inter-region latency dashboards / cloudping: us-east-1 <-> us-west-2 ~60-70 ms, same region
#   EC2 <-> S3 ~1 ms; US university campuses to us-east-1 ~20-40 ms.
# [TLS] RFC 8446 (TLS 1.3): one round trip for a full handshake, after TCP's one.
# [IW10] RFC 6928 (the Linux default since 2.6.39): an initial congestion window of 10 segments, about
#   14.6 kB with a 1460-byte MSS; slow start (RFC 5681) doubles it every round trip.
# [Internet2] University uplinks of 1-10 Gbit/s shared by a campus; a single long-RTT TCP flow to S3 is
#   window-limited to tens of MB/s.
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="loopback",
            description="no shaping: the embedded endpoint as fast as this machine serves it",
            rtt_s=0.0,
            connect_rtts=0,
            first_byte_s=0.0,
            connection_bandwidth=None,
            total_bandwidth=None,
            sources="-",
        ),
        Profile(
            name="real",
            description="no shaping proxy: the network this host really has to the store (real S3 on EC2); its "
            "RTT, first byte and per-connection throughput are measured at the start of every run (run info)",
            rtt_s=0.0,
            connect_rtts=0,
            first_byte_s=0.0,
            connection_bandwidth=None,
            total_bandwidth=None,
            sources="measured: nwb_cloud.cloud.realnet",
        ),
        Profile(
            name="in-region",
            description="EC2 reading S3 in the same region over HTTPS",
            rtt_s=0.001,
            connect_rtts=2,
            first_byte_s=0.020,
            connection_bandwidth=88 * MB,
            total_bandwidth=1250 * MB,
            jitter_s=0.002,
            initial_window_bytes=14_600,
            sources="[S3-perf] 85-90 MB/s per connection; [S3-retry][S3X] ~20 ms first byte; [RTT] ~1 ms; "
            "[TLS] TCP+TLS 1.3 = 2 RTT; [IW10] slow start; [EC2-net] 10 Gbit/s instance link",
        ),
        Profile(
            name="cross-region",
            description="EC2 in us-east-1 reading S3 in us-west-2 over HTTPS",
            rtt_s=0.065,
            connect_rtts=2,
            first_byte_s=0.020,
            connection_bandwidth=40 * MB,
            total_bandwidth=1250 * MB,
            jitter_s=0.004,
            initial_window_bytes=14_600,
            sources="[RTT] 60-70 ms us-east-1<->us-west-2; [S3-retry] ~20 ms first byte; window-limited single flow "
            "~40 MB/s at 65 ms; [IW10] slow start; [EC2-net] 10 Gbit/s",
        ),
        Profile(
            name="lab",
            description="a university network reading S3 in us-east-1 over HTTPS",
            rtt_s=0.030,
            connect_rtts=2,
            first_byte_s=0.020,
            connection_bandwidth=25 * MB,
            total_bandwidth=110 * MB,
            jitter_s=0.006,
            initial_window_bytes=14_600,
            sources="[RTT] 20-40 ms campus to us-east-1; [Internet2] ~1 Gbit/s share of the campus link, "
            "~25 MB/s per flow; [S3-retry] ~20 ms first byte; [IW10] slow start",
        ),
    )
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UnknownProfile(f"unknown network profile {name!r}; known: {', '.join(PROFILES)}") from None
