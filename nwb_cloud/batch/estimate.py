"""How long a step will take, learned from the throughput records, with the basis of every figure stated.

For a step of a session (its interface and source bytes) on a machine with a given number of cores, the
estimator uses the records of the same step and interface, preferring the same instance type, then the
same core count. With two or more sizes measured it fits ``seconds = overhead + bytes / rate``; with one,
time in proportion to bytes. Core counts never measured are not credited with a speed-up: more cores are
estimated as fast as the most cores measured, fewer as proportionally slower, so a bigger instance is
chosen only once records show it pays. Without records, a stated prior is used.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from nwb_cloud.convert.records import Record

GIB = 2**30
# Priors for a step without any record (bytes/s of source, seconds of start-up per job).
PRIOR_RATE = {"transfer": 40e6, "convert": 15e6, "upload": 80e6}
PRIOR_OVERHEAD_S = {"transfer": 20.0, "convert": 30.0, "upload": 15.0}
PRIOR_MEMORY_BYTES = 4 * GIB  # NeuroConv's own recommendation for a worker
PRIOR_OUTPUT_RATIO = 1.0  # output bytes per source byte


@dataclass(frozen=True)
class StepEstimate:
    seconds: float
    basis: str  # what the figure rests on, in words


class Estimator:
    def __init__(self, records: list[Record]):
        self.records = list(records)

    def _matching(self, step: str, interface: str, instance_type: str) -> tuple[list[Record], str]:
        same = [r for r in self.records if r.step == step and r.interface == interface and r.seconds > 0]
        on_type = [r for r in same if r.instance_type == instance_type]
        if on_type:
            return on_type, f"on {instance_type}"
        return same, "on other machines" if same else ""

    def step(self, step: str, interface: str, nbytes: int, cores: int, instance_type: str) -> StepEstimate:
        records, where = self._matching(step, interface, instance_type)
        if not records:
            rate, overhead = PRIOR_RATE[step], PRIOR_OVERHEAD_S[step]
            return StepEstimate(
                overhead + nbytes / rate,
                f"no records: assumed {overhead:.0f} s + {rate / 1e6:.0f} MB/s",
            )
        measured_cores = sorted({r.cores for r in records})
        at_or_below = [c for c in measured_cores if c <= cores]
        basis_cores = max(at_or_below) if at_or_below else min(measured_cores)
        slowdown = basis_cores / cores if basis_cores > cores else 1.0
        chosen = [r for r in records if r.cores == basis_cores]
        seconds, model = _fit([(r.bytes, r.seconds) for r in chosen], nbytes)
        seconds *= slowdown
        credit = "" if basis_cores == cores else f" at {basis_cores} cores, scaled to {cores}"
        return StepEstimate(seconds, f"{len(chosen)} record(s) {where}{credit}: {model}")

    def cpu_seconds(self, step: str, interface: str, nbytes: int, instance_type: str) -> float | None:
        """The CPU time a step's job will use, from the records that measured it (None without any): unlike its
        wall time, it does not depend on what else the machine runs meanwhile."""
        records, _ = self._matching(step, interface, instance_type)
        measured = [(r.bytes, r.cpu_seconds) for r in records if r.cpu_seconds > 0]
        return _fit(measured, nbytes)[0] if measured else None

    def memory_bytes(self, interface: str) -> tuple[int, str]:
        peaks = [r.peak_memory for r in self.records if r.interface == interface and r.peak_memory > 0]
        if not peaks:
            return PRIOR_MEMORY_BYTES, f"no records: {PRIOR_MEMORY_BYTES / GIB:.0f} GiB assumed"
        need = int(max(peaks) * 1.5) + GIB
        return need, f"peak {max(peaks) / GIB:.2f} GiB measured, x1.5 + 1 GiB"

    def output_ratio(self, interface: str) -> float:
        ratios = [
            r.output_bytes / r.bytes
            for r in self.records
            if r.interface == interface and r.step == "convert" and r.bytes and r.output_bytes
        ]
        return statistics.median(ratios) if ratios else PRIOR_OUTPUT_RATIO


def _fit(measured: list[tuple[int, float]], nbytes: int) -> tuple[float, str]:
    """``overhead + bytes / rate`` by least squares when sizes differ, else seconds in proportion to bytes."""
    xs = [float(x) for x, _ in measured]
    ys = [float(y) for _, y in measured]
    if len(set(xs)) >= 2:
        mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
        slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
        overhead = mean_y - slope * mean_x
        if slope > 0 and overhead >= 0:
            return overhead + slope * nbytes, f"{overhead:.1f} s + {1 / slope / 1e6:.1f} MB/s (fit)"
    per_byte = statistics.median(y / x for x, y in zip(xs, ys) if x > 0) if any(xs) else 0.0
    if per_byte <= 0:
        return statistics.median(ys), f"median {statistics.median(ys):.1f} s"
    return per_byte * nbytes, f"{1 / per_byte / 1e6:.2f} MB/s (median, proportional)"
