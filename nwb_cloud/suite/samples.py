"""Per-sample records (time and traffic) that the timed benchmark writes and the track benchmarks read.

asv runs each benchmark in its own process and keeps one number per ``track_*`` benchmark, so the traffic of
the very samples it timed is appended here (one JSON line per sample, one file per run) and the tracks
report medians of those samples: requests and bytes describe the same cold reads as the times beside them.
"""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path


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

    def records(self, cell_label: str) -> list[dict]:
        if not self.path.exists():
            return []
        out = []
        for line in self.path.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("cell") == cell_label:
                out.append(record)
        return out

    def median(self, cell_label: str, field: str) -> float | None:
        values = [r[field] for r in self.records(cell_label) if r.get(field) is not None]
        return statistics.median(values) if values else None
