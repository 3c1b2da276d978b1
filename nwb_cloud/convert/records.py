"""Measured throughput: one JSON line per step of every session ever run, the estimator's only evidence.

Every run appends what it measured (interface, bytes, cores, seconds, cost, instance type, peak memory), so
estimates and the instance choice rest on real runs and improve as records accumulate. The file is plain
JSON lines, easy to inspect, merge and share between machines.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from nwb_cloud.convert.errors import ConvertError


@dataclass(frozen=True)
class Record:
    step: str  # transfer | convert | upload
    interface: str  # NeuroConv interface classes of the session, '+'-joined
    bytes: int  # the session's source bytes (what is known before a run, so what estimates are fed)
    cores: int
    seconds: float  # wall time of the step, process start included for a job
    cost: float = 0.0  # dollars, 0 for a local run
    instance_type: str = "local"
    peak_memory: int = 0  # bytes, the step process's maximum resident set
    output_bytes: int = 0
    run_id: str = ""
    session: str = ""
    job_seconds: float = 0.0  # the executor's view of the job, launch to exit (local runs); 0: not observed
    cpu_seconds: float = 0.0  # user + system CPU of the step's process and the children it waited for
    when: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.run_id, self.session, self.step)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Record:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def cpu_seconds() -> float:
    """CPU time of this process and its waited-for children so far: what a step costs whatever the machine's load."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def peak_memory_bytes() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024  # Linux reports KiB


def load_records(path: Path) -> list[Record]:
    path = Path(path)
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(Record.from_dict(json.loads(line)))
        except (ValueError, TypeError) as error:
            raise ConvertError(f"{path}:{number} is not a throughput record: {error}") from None
    return records


def append_records(path: Path, records: list[Record]) -> int:
    """Append the records not already in the file (same run, session and step); returns how many were new."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    known = {r.key for r in load_records(path) if r.run_id}
    new = [r for r in records if not r.run_id or r.key not in known]
    with open(path, "a") as out:
        for record in new:
            out.write(json.dumps(record.to_dict(), sort_keys=True) + "\n")
    return len(new)
