"""The physical bound on a workload's time under a network profile: the headline denominator of the suite.

bound = max(network, decode[, decode+serving]) + processing, because fetching and decoding can overlap but
neither can be skipped, and the workload's own processing of the selection (a read's filter or mean, timed
in every cell) starts when the selection is complete:

* network (:mod:`nwb_cloud.analysis.cost`): the least time to receive the bytes that must cross the wire,
  with the best possible parallelism (byte ranges split freely, so only the total bandwidth caps it);
  for a read these are the touched chunks' compressed bytes and the handle's connection is warm (it was
  opened before the timed read); for an open they are the distinct metadata bytes in one request on a new
  connection (the ideal a metadata index approaches). The chunk index itself is assumed known, as a
  reference index gives it; an HDF5 reader that has to fetch B-tree nodes shows that as amplification.
* decode: the least time this machine takes to decode the touched chunks, divided by the cores that could
  share it (``min(cores, stored chunks touched)``: chunks decode independently): for deflate (with or
  without shuffle) the CPU of the fastest exact decoder installed (:func:`~nwb_cloud.analysis.decode.
  fastest_decode_s`), otherwise the measured h5py read of the selection from the page cache. h5py's own
  term (zlib, and HDF5's read path) is kept beside it as ``decode_h5py_s``: being faster than h5py is the
  user's gain, being near the fastest decoder's term is the reader's. For an open, the measured local pynwb
  open (metadata parsing and object construction, single-threaded, not divided).
* serving, on a shared machine: the embedded S3 server and the shaping proxy run on the reader's cores and
  spend CPU on every request and byte they serve (measured per request, and per MB under each profile, at the
  start of a run: :class:`~nwb_cloud.cloud.calibrate.ServingCost`). When they share the reader's cores, the
  machine must do the decode's CPU and theirs on ``cores``: ``shared_cpu_s = (decode_cpu_s + serving_cpu_s) /
  cores`` is a third term of the max (``binding == "decode+serving"`` when it binds). The ideal reader's
  requests are one per range of touched chunks (READ) or one (OPEN). Without a measured cost the term is 0.

* processing (READ): the least time the workload takes on its selection once it is in memory
  (:func:`~nwb_cloud.analysis.decode.time_local_processing`); 0 for an open, whose local time includes it.

Beside the bound, ``local_pynwb_s`` is what a user pays locally for the same work: h5py + pynwb running the
workload on the local file (the open excluded, as in a read cell), the denominator of "time / local h5py". For
an open, ``local_fresh_s`` is the local open as a new script's first (:mod:`nwb_cloud.analysis.fresh_open`),
which an open cell, cold, is compared with; the bound keeps the warm one, the least an open takes.

:class:`Measured` holds what the local copy says (profile-independent, cached on disk); :func:`bound` turns
it into a :class:`Floor` for one profile with arithmetic alone.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from nwb_cloud.analysis import cost
from nwb_cloud.cloud.calibrate import ServingCost
from nwb_cloud.cloud.profiles import Profile

READ, OPEN = "read", "open"
SHARED = "decode+serving"  # the binding when the decode and the serving CPU together bind


@dataclass(frozen=True)
class Measured:
    """What the local copy of an asset says about one workload, for every profile alike."""

    asset: str  # object key
    workload: str
    kind: str  # READ or OPEN
    cores: int  # cores of this machine available to the process
    local_s: float  # least measured local time: the selection read (READ) or pynwb open + workload (OPEN)
    local_runs: int = 1
    fast_decode_s: float | None = None  # CPU of the fastest exact decoder on the touched chunks (deflate only)
    decoder: str | None = None  # which decoder that was
    local_pynwb_s: float | None = None  # h5py + pynwb running the workload locally, open excluded (READ)
    local_fresh_s: float | None = None  # OPEN: the local pynwb open and workload as a new script's first open
    process_s: float = 0.0  # the workload's processing of its selection in memory (READ; measured since v4)
    chunks: int = 0  # stored chunks the selection touches
    missing_chunks: int = 0  # touched chunks never written (fill value): nothing to fetch
    ranges: int = 0  # byte ranges of the stored touched chunks, adjacent ones merged
    compressed_bytes: int = 0  # stored bytes of the touched chunks
    selection_bytes: int = 0  # uncompressed bytes of the selection
    chunk_bytes: int = 0  # uncompressed bytes the touched chunks decode to
    metadata_reads: int = 0  # reads HDF5 (or Zarr) made to open the file and run the workload
    metadata_read_bytes: int = 0  # their lengths summed
    metadata_bytes: int = 0  # distinct bytes among them

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, payload: dict) -> Measured:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in names})


@dataclass(frozen=True)
class Floor:
    """The least time any read method can take for one workload on one asset under one profile."""

    seconds: float  # max(network_s, decode_s, shared_cpu_s) + process_s
    network_s: float
    decode_s: float
    binding: str  # "network" or "decode"
    kind: str  # READ or OPEN
    asset: str
    workload: str
    profile: str
    cores: int
    decode_cores: int  # cores the measured local time is shared among
    local_s: float  # the measured local time before sharing
    bandwidth: float | None  # bytes/s the network part assumes; None: unlimited (unmeasured loopback)
    streams: int  # parallel connections that bandwidth needs
    sequential_s: float  # a naive reader: one connection, one request per chunk (READ) or per read (OPEN)
    chunks: int
    missing_chunks: int
    ranges: int
    compressed_bytes: int
    selection_bytes: int
    chunk_bytes: int
    metadata_reads: int
    metadata_bytes: int
    decode_h5py_s: float = 0.0  # h5py's local read shared by the cores (the decode term before the fastest decoder)
    decoder: str | None = None  # the decoder of decode_s; None: h5py's own filters
    decode_cpu_s: float = 0.0  # decode_s before sharing: the CPU a reader's decoding needs ("CPU / decode CPU")
    local_pynwb_s: float | None = None  # what h5py + pynwb take locally for the same workload (READ)
    local_fresh_s: float | None = None  # OPEN: the same local open as the first of a new process (fresh_open)
    serving_cpu_s: float = 0.0  # CPU the embedded server + proxy spend serving the needed requests and bytes
    shared_cpu_s: float = 0.0  # (decode CPU + serving CPU) / cores when they share the reader's cores, else 0
    process_s: float = 0.0  # the workload's processing after its read (the filter, the mean): added, not maxed

    @property
    def needed_bytes(self) -> int:
        """The bytes the network part moves: touched chunks (READ) or distinct metadata (OPEN)."""
        return self.compressed_bytes if self.kind == READ else self.metadata_bytes

    def multiple(self, seconds: float) -> float:
        """A measured time as a multiple of this floor (the suite's headline figure)."""
        return seconds / self.seconds if self.seconds > 0 else float("inf")

    def to_dict(self) -> dict:
        return asdict(self)


def bound(
    measured: Measured, profile: Profile, loopback_throughput: float | None = None, serving: ServingCost | None = None
) -> Floor:
    """The :class:`Floor` of ``measured`` under ``profile``.

    ``loopback_throughput`` (bytes/s, see :mod:`nwb_cloud.analysis.loopback`) prices bytes on an unshaped
    profile; without it the unshaped network costs nothing and the bound is the decode time. ``serving``:
    what the embedded server and proxy cost in CPU (see the module docstring); None on real S3.
    """
    if measured.kind == READ:
        nbytes, warm = measured.compressed_bytes, True
        decode_cores = max(1, min(measured.cores, measured.chunks))
        naive = cost.sequential_s(profile, measured.chunks, nbytes, warm=True, loopback_throughput=loopback_throughput)
    else:
        nbytes, warm = measured.metadata_bytes, False
        decode_cores = 1
        naive = cost.sequential_s(
            profile,
            measured.metadata_reads,
            measured.metadata_read_bytes,
            warm=False,
            loopback_throughput=loopback_throughput,
        )
    network_s = cost.ideal_transfer_s(profile, nbytes, warm=warm, loopback_throughput=loopback_throughput)
    decode_h5py_s = measured.local_s / decode_cores
    fastest = measured.fast_decode_s if measured.kind == READ else None
    decode_cpu_s = min(fastest, measured.local_s) if fastest is not None else measured.local_s
    decode_s = decode_cpu_s / decode_cores
    best = cost.bandwidth(profile, cost.INF, loopback_throughput)
    requests = max(1, measured.ranges) if measured.kind == READ else 1
    serving_cpu_s = serving.cpu_s(requests, nbytes, profile.name) if serving is not None else 0.0
    shared = serving is not None and serving.shares_reader_cores
    shared_cpu_s = (decode_cpu_s + serving_cpu_s) / max(1, measured.cores) if shared else 0.0
    terms = {"decode": decode_s, "network": network_s, SHARED: shared_cpu_s}  # a tie binds the first
    process_s = measured.process_s if measured.kind == READ else 0.0
    return Floor(
        seconds=max(terms.values()) + process_s,
        network_s=network_s,
        decode_s=decode_s,
        binding=max(terms, key=terms.get),
        kind=measured.kind,
        asset=measured.asset,
        workload=measured.workload,
        profile=profile.name,
        cores=measured.cores,
        decode_cores=decode_cores,
        local_s=measured.local_s,
        bandwidth=None if best == cost.INF else best,
        streams=cost.streams_to_saturate(profile),
        sequential_s=naive,
        chunks=measured.chunks,
        missing_chunks=measured.missing_chunks,
        ranges=measured.ranges,
        compressed_bytes=measured.compressed_bytes,
        selection_bytes=measured.selection_bytes,
        chunk_bytes=measured.chunk_bytes,
        metadata_reads=measured.metadata_reads,
        metadata_bytes=measured.metadata_bytes,
        decode_h5py_s=decode_h5py_s,
        decode_cpu_s=decode_cpu_s,
        decoder=measured.decoder if fastest is not None else None,
        local_pynwb_s=measured.local_pynwb_s,
        local_fresh_s=measured.local_fresh_s,
        serving_cpu_s=serving_cpu_s,
        shared_cpu_s=shared_cpu_s,
        process_s=process_s,
    )
