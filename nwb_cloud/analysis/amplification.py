"""Read amplification: how many bytes a method moved for each byte the workload needed.

Two denominators, both from the file's chunk index: the selection's uncompressed bytes (what the scientist
asked for) and the compressed bytes of the chunks it touches (the least any method can move). The second is
at least 1 for a method that reads nothing twice; above 1 it counts metadata, over-fetch and re-reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from nwb_cloud.analysis.bound import Floor


def ratio(bytes_transferred: int, denominator: int) -> float | None:
    """``bytes_transferred / denominator``; None when the denominator is zero (nothing to compare with)."""
    return bytes_transferred / denominator if denominator > 0 else None


def of_selection(bytes_transferred: int, selection_bytes: int) -> float | None:
    """Bytes transferred per uncompressed byte of the selection."""
    return ratio(bytes_transferred, selection_bytes)


def of_touched_chunks(bytes_transferred: int, compressed_bytes: int) -> float | None:
    """Bytes transferred per compressed byte of the chunks the selection touches."""
    return ratio(bytes_transferred, compressed_bytes)


@dataclass(frozen=True)
class Amplification:
    bytes_transferred: int
    of_selection: float | None  # None for an open (no selection)
    of_needed: float | None  # per touched-chunk byte (read) or per distinct metadata byte (open)


def amplification(bytes_transferred: int, floor: Floor) -> Amplification:
    """Both ratios for a measured transfer, against the bytes recorded in ``floor``."""
    return Amplification(
        bytes_transferred=bytes_transferred,
        of_selection=of_selection(bytes_transferred, floor.selection_bytes),
        of_needed=ratio(bytes_transferred, floor.needed_bytes),
    )
