"""From a file's own chunk index to the physical bound on a read: chunks touched, bytes needed, the floor.

* :mod:`~nwb_cloud.analysis.chunks`: which stored chunks a selection touches, where, and how big;
* :mod:`~nwb_cloud.analysis.cost`: the network cost model (latency, connections, bandwidth) of a profile;
* :mod:`~nwb_cloud.analysis.decode`, :mod:`~nwb_cloud.analysis.metadata`: local measurements (decode time,
  the reads an open makes);
* :mod:`~nwb_cloud.analysis.bound`: max(network, decode) as a :class:`Floor`;
* :mod:`~nwb_cloud.analysis.floors`: :func:`floor_for`, cached on disk for the benchmark processes;
* :mod:`~nwb_cloud.analysis.amplification`: bytes transferred over bytes needed.
"""

from nwb_cloud.analysis.amplification import Amplification, amplification, of_selection, of_touched_chunks
from nwb_cloud.analysis.bound import Floor, Measured, bound
from nwb_cloud.analysis.chunks import ChunkIndexError, ChunkRef, Touched, touched
from nwb_cloud.analysis.errors import AnalysisError, FloorUnavailable
from nwb_cloud.analysis.floors import floor_for, measured
from nwb_cloud.analysis.loopback import measure_loopback_throughput, stored_loopback_throughput
from nwb_cloud.analysis.metadata import OpenReads, count_open_reads

__all__ = [
    "Amplification",
    "AnalysisError",
    "ChunkIndexError",
    "ChunkRef",
    "Floor",
    "FloorUnavailable",
    "Measured",
    "OpenReads",
    "Touched",
    "amplification",
    "bound",
    "count_open_reads",
    "floor_for",
    "measure_loopback_throughput",
    "measured",
    "of_selection",
    "of_touched_chunks",
    "stored_loopback_throughput",
    "touched",
]
