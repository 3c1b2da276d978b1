"""The run's logs, one JSON line per record, one file per run (``data_dir/samples/<run_id>*.jsonl``).

asv runs each benchmark in its own process and keeps one number per benchmark and cell, so what else a
sample measured is appended here and read back by the ``track_*`` benchmarks (medians of the very samples
asv timed) and by the run info (:mod:`nwb_cloud.suite.run_info`):

``<run_id>.jsonl`` - one line per timed cold sample that passed its check:
    ``cell``              the cell label, ``workload[method, layout, profile]``
    ``seconds``           wall time of the timed part (the read, or the open for an open workload)
    ``cpu_s``             client CPU seconds of the timed part: this reader process only, all its threads
                          (``time.process_time``); the embedded server and the shaping proxy are other processes
    ``system_cpu_s``      the part of it spent in the kernel (``getrusage``): page faults and memory compaction
                          show here, e.g. a sample whose CPU jumps while its work does not
    ``serving_cpu_s``     CPU seconds the embedded server and the profile's shaping proxy spent over the timed part
                          (their threads' run times; absent on real S3): the other processes on the reader's cores
    ``open_s``/``open_cpu_s``  wall and CPU time of the untimed fresh open before a read (0-ish for an open
                          workload, whose open is the timed part)
    ``peak_growth_bytes`` the most resident memory the timed part held at once above what the process held
                          before it (:mod:`nwb_cloud.suite.memory`; absent where the kernel does not say)
    ``sample``            1 .. the cell's samples
    ``grid_pass``         which pass over the whole grid took it (1 = the first; asv runs every cell once per
                          pass), so two passes can be compared (rank stability, see the run info)
    ``pid``, ``process_samples``  the process that took it, and how many samples that process had taken
                          (1: it was the process's first, i.e. a fresh process, as every sample should be)
    the traffic of the timed part counted at the shaping proxy (``requests``, ``bytes_received``,
    ``peak_connections``, ...; see :mod:`nwb_cloud.cloud.traffic`) and of the untimed open (``open_*``)
    an index build (``cell`` ``index_build[tool, asset, profile]``, :data:`INDEX_BUILD`) is logged here too,
    once per cell: its figures, ``pid`` and ``process_samples``, and no ``sample``; it is not a read sample
``<run_id>-failures.jsonl`` - ``cell``, ``error``: a sample that raised or read wrong data (the cell failed)
``<run_id>-unsupported.jsonl`` - ``cell``, ``reason``: the method cannot represent the cell's asset (a skip)
``<run_id>-visits.jsonl`` - ``cell``, ``pid``: every run of a cell's timed benchmark, skipped passes included
``<run_id>-first-use.jsonl`` - ``cell`` (``first_use_<workload>[method, layout, profile]``), ``sample`` and the
    figures of one first use in a fresh process (:mod:`nwb_cloud.suite.first_use`)
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
from pathlib import Path

INDEX_BUILD = "index_build"  # the label of an index build's record: index_build[tool, asset, profile]


class SampleLog:
    def __init__(self, path: Path):
        self.path = Path(path)

    def append(self, cell_label: str, record: dict) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"cell": cell_label, **record}, sort_keys=True) + "\n"
        descriptor = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(descriptor, line.encode())  # one write per line: appends from processes do not interleave
        finally:
            os.close(descriptor)

    def count_and_append(self, cell_label: str) -> int:
        """Append a record of ``cell_label`` and return how many it now has (1 for the first), atomically."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            handle.seek(0)
            count = sum(1 for line in handle if _cell_of(line) == cell_label) + 1
            handle.write(json.dumps({"cell": cell_label, "pid": os.getpid()}, sort_keys=True) + "\n")
        return count

    def all_records(self) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def records(self, cell_label: str) -> list[dict]:
        return [record for record in self.all_records() if record.get("cell") == cell_label]

    def median(self, cell_label: str, field: str) -> float | None:
        values = [r[field] for r in self.records(cell_label) if r.get(field) is not None]
        return statistics.median(values) if values else None


def _cell_of(line: str) -> str | None:
    try:
        return json.loads(line).get("cell")
    except ValueError:
        return None


def _log(state, suffix: str) -> SampleLog:
    return SampleLog(Path(state.data_dir) / "samples" / f"{state.run_id}{suffix}.jsonl")


def sample_log(state) -> SampleLog:
    return _log(state, "")


def failure_log(state) -> SampleLog:
    return _log(state, "-failures")


def unsupported_log(state) -> SampleLog:
    return _log(state, "-unsupported")


def visit_log(state) -> SampleLog:
    return _log(state, "-visits")


def first_use_log(state) -> SampleLog:
    return _log(state, "-first-use")
