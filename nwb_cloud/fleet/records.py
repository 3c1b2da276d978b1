"""What earlier runs took: per benchmark, the time asv recorded and the cells it measured; per cell, the
median sample time and traffic of the run info; per fleet child, its measured phases.

One :class:`RecordedRun` per run info whose asv results file is in the results folder (same machine and
commit). asv records one duration per benchmark (all its parameter combinations, both rounds); where
rounds overlap, the durations are scaled so that they add up to the run's span, what it took on the clock.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from asv.results import Results

from nwb_cloud.results.asv_results import SKIPPED, load_machines, load_records, snake_case
from nwb_cloud.results.errors import ResultsError
from nwb_cloud.results.run_info import info_cores, info_machine, load_run_infos


@dataclass(frozen=True)
class BenchmarkTime:
    seconds: float  # on the clock, all its cells
    cells: tuple[tuple, ...]  # (method, layout, profile) of every combination asv ran (not skipped)


@dataclass
class RecordedRun:
    machine: str
    commit: str
    run_id: str
    size: str
    source: str
    cores: int | None
    repeat: int
    benchmarks: dict[tuple[str, str], BenchmarkTime]  # (workload, measure) -> time
    samples: dict[str, dict]  # "workload|method|layout|profile" -> medians (seconds, requests, bytes_received...)
    assets: dict[str, dict]  # "modality/layout" -> size_bytes, write_cpu_seconds...
    fleet: dict = field(default_factory=dict)  # a fleet child's own record: instance type, phases

    @property
    def instance_type(self) -> str | None:
        return self.fleet.get("instance_type")

    @property
    def suite_seconds(self) -> float:
        return sum(b.seconds for b in self.benchmarks.values())


def load_recorded_runs(results_dir: Path) -> list[RecordedRun]:
    """Every run of ``results_dir`` with both its run info and its asv results (others are left out)."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        return []
    machines = load_machines(results_dir)
    records, _ = load_records(results_dir)
    outcomes: dict[tuple[str, str, str], list] = {}
    for record in records:
        outcomes.setdefault((record.machine, record.commit, record.benchmark), []).append(record)
    runs = []
    for info in load_run_infos(results_dir):
        machine, commit = info_machine(info), str(info.get("commit") or "")
        if machine not in machines or not commit:
            continue
        files = sorted(machines[machine].folder.glob(f"{commit[:8]}-*.json"))
        if not files:
            continue
        times = _benchmark_times(files[-1], machine, outcomes)
        if not times:
            continue
        grid = info.get("grid") or {}
        runs.append(
            RecordedRun(
                machine=machine,
                commit=commit,
                run_id=str(info.get("run_id", "")),
                size=str(info.get("size", "")),
                source=str(info.get("source", "")),
                cores=info_cores(info),
                repeat=int(grid.get("repeat") or 1),
                benchmarks=times,
                samples=info.get("samples") or {},
                assets=info.get("assets") or {},
                fleet=info.get("fleet") or {},
            )
        )
    return runs


def _benchmark_times(path: Path, machine: str, outcomes: dict) -> dict[tuple[str, str], BenchmarkTime]:
    try:
        results = Results.load(str(path), machine_name=machine)
    except Exception as error:  # asv's reader raises several types for a damaged file
        raise ResultsError(f"asv results file {path} cannot be read: {error}") from None
    durations = {k: float(v) for k, v in results.duration.items() if not k.startswith("<") and v}
    started = {k: float(v) / 1000 for k, v in results.started_at.items() if k in durations and v}
    if not durations:
        return {}
    span = max(started[k] + durations[k] for k in started) - min(started.values()) if started else None
    total = sum(durations.values())
    scale = min(1.0, span / total) if span and total else 1.0  # two rounds interleave: their durations overlap
    times = {}
    for benchmark, seconds in durations.items():
        parts = benchmark.split(".")
        if len(parts) < 3:
            continue
        measured = [r for r in outcomes.get((machine, results.commit_hash, benchmark), []) if r.outcome != SKIPPED]
        cells = tuple((r.params.get("method"), r.params.get("layout"), r.params.get("profile")) for r in measured)
        times[(snake_case(parts[-2]), parts[-1])] = BenchmarkTime(seconds * scale, cells)
    return times


def median_or(values, default: float) -> float:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else default


def read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ResultsError(f"{path} cannot be read: {error}") from None
