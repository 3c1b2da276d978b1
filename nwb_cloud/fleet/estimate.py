"""How long a fleet child will run, and what it will move, from the recorded runs, with the basis of each figure.

The basis is the newest recorded run of the same size and data source, preferring the same machine (an
earlier fleet child of this instance type and region), then the same instance type, then any fleet child,
then any run (the 2-core machine of ``make bench``). From it:

* the suite: per benchmark, asv's recorded time split into a per-cell overhead (a process, setup, the
  untimed open) and the samples (each cell's median sample time, from the run info); the child's cells are
  priced with the same cells' samples under the profile that stands for real in-region S3 (``real`` from a
  fleet child, else the emulated ``in-region``), at the child's number of samples;
* preparing the data: a fleet child's measured preparation, in proportion to the bytes it wrote; else the
  recorded write time of each file (CPU seconds, spread over the cores) plus the upload, times a stated
  factor for the rest (indexes, decode speeds, bounds);
* the requests and bytes of the reads, from the same cells' median traffic per sample.

Core counts are not credited with a speed-up beyond those measured (a read is one stream); fewer cores are
counted proportionally slower for the preparation, which is CPU-bound.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace

from nwb_cloud.fleet.errors import FleetError
from nwb_cloud.fleet.records import RecordedRun
from nwb_cloud.fleet.spec import REAL
from nwb_cloud.suite.prepare import MAIN_PROFILE
from nwb_cloud.suite.run_info import cell_key, split_key
from nwb_cloud.suite.state import Grid

MEASURES = ("time_workload", "track_requests", "track_bytes_received", "track_peak_connections",
            "track_time_over_bound")  # fmt: skip
PRIOR_UPLOAD_RATE = 80e6  # bytes/s, one multipart upload from EC2 to S3 in its region
PRIOR_PREPARE_FACTOR = 1.5  # writing the files is ~2/3 of preparing them (indexes, decode speeds, bounds)
PRIOR_NETWORK_S = 30.0  # measuring the real profile: 20 connects and first bytes, 4 x 32 MB reads
PRIOR_PUSH_S = 15.0  # asv results, run info and log to S3
PRIOR_PROCESS_S = 15.0  # interpreter start, imports
PRIOR_ASV_START_S = 20.0  # asv's benchmark discovery and its forkserver, outside every benchmark's duration
PRIOR_REQUESTS_PER_SAMPLE = 50.0
SAME_MACHINE_RUNS = 5
BATCH_STARTUP_S = 300.0  # an instance launched for the job, the ECS agent, the image pulled (~2 GB)


@dataclass(frozen=True)
class Estimate:
    startup_s: float
    process_s: float
    prepare_s: float
    network_s: float
    suite_s: float
    push_s: float
    data_bytes: int  # the files the grid reads, written once per region
    data_files: int
    requests: float  # GETs of the reads, all samples
    read_bytes: float  # bytes received by the reads, all samples
    basis: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return self.startup_s + self.process_s + self.prepare_s + self.network_s + self.suite_s + self.push_s

    def to_dict(self) -> dict:
        return {**self.__dict__, "seconds": self.seconds}


def choose_basis(
    runs: list[RecordedRun], size: str, source: str, machine: str, instance_type: str, any_size: bool = False
) -> tuple[list[RecordedRun], str]:
    """The recorded runs to estimate from, and what they are ([] when none of this size and source).

    Earlier fleet children of the same machine (else of the same instance type, else any) are all used, up
    to the newest :data:`SAME_MACHINE_RUNS` (their estimates' median stands: one busy run does not decide);
    of the other machines' runs, the newest. ``any_size`` (a local run, which costs nothing) falls back to
    a run of another size: a guess, said so.
    """
    settings_source = "dandi" if source == "dandi" else "embedded"
    same = [r for r in runs if r.size == size and r.source == settings_source]
    other = [r for r in runs if r.source == settings_source] if any_size else []
    generated = [r for r in runs if r.size == size and r.source == "embedded"] if source == "dandi" else []
    for label, chosen, many in (
        (f"earlier fleet runs on {machine}", [r for r in same if r.fleet and r.machine == machine], True),
        (f"earlier fleet runs on {instance_type}", [r for r in same if r.instance_type == instance_type], True),
        ("earlier fleet runs on other machines", [r for r in same if r.fleet], True),
        ("a run of another machine", same, False),
        (f"a run of another size (no {size} run recorded: a guess, which this run calibrates)", other, False),
        (
            "a run of the generated study (no DANDI run recorded: its cells priced as the generated files', which "
            "differ from DANDI's in size and layout: a guess, which this run calibrates)",
            generated,
            False,
        ),
    ):
        if chosen:
            newest = sorted(chosen, key=lambda r: r.run_id, reverse=True)
            return newest[:SAME_MACHINE_RUNS] if many else newest[:1], label
    return [], ""


def estimate_from(
    grid: Grid, runs: list[RecordedRun], label: str, cores: int, batch: bool, bytes_per_cpu_s: float | None = None
) -> Estimate:
    """The median of the estimates from each of ``runs`` (see :func:`estimate_child`)."""
    estimates = sorted(
        (estimate_child(grid, run, f"{label} ({run.machine}, run {run.run_id}, {run.cores or '?'} cores)", cores,
                        batch, bytes_per_cpu_s) for run in runs),
        key=lambda e: e.seconds,
    )  # fmt: skip
    chosen = estimates[(len(estimates) - 1) // 2]
    if len(estimates) > 1:
        spread = (
            f"the median of {len(estimates)} runs' estimates ({estimates[0].seconds:.0f}-{estimates[-1].seconds:.0f} s)"
        )
        chosen = replace(chosen, basis=(spread, *chosen.basis))
    return chosen


def write_rate(runs: list[RecordedRun]) -> float | None:
    """Bytes written per CPU second over every recorded file with a write time (for runs that lack them)."""
    pairs = [(a["size_bytes"], a["write_cpu_seconds"]) for r in runs for a in r.assets.values()
             if a.get("write_cpu_seconds") and a.get("size_bytes")]  # fmt: skip
    return sum(b for b, _ in pairs) / sum(s for _, s in pairs) if pairs else None


def estimate_child(
    grid: Grid, run: RecordedRun, why: str, cores: int, batch: bool, bytes_per_cpu_s: float | None = None
) -> Estimate:
    basis = [f"durations from {why}"]
    recorded_profile = REAL if run.fleet else (MAIN_PROFILE if run.source == "embedded" else "aws")
    suite, requests, read_bytes, notes = _suite(grid, run, recorded_profile)
    basis += notes
    recorded_suite = run.fleet.get("phases", {}).get("suite_s")
    if recorded_suite is not None:  # asv's own start (discovery, its forkserver) is no benchmark's duration
        suite += max(0.0, recorded_suite - run.suite_seconds)
    else:
        suite += PRIOR_ASV_START_S
        basis.append(f"assumed: {PRIOR_ASV_START_S:.0f} s for asv to start (discovery, its forkserver)")
    needed = [f"{modality}/{layout}" for modality, layouts in grid.assets().items() for layout in layouts]
    sizes = {name: (run.assets.get(name) or {}).get("size_bytes") for name in needed}
    known = [s for s in sizes.values() if s]
    typical = statistics.median(known) if known else 0
    data_bytes = int(sum(s or typical for s in sizes.values()))
    if len(known) < len(needed):
        basis.append(f"{len(needed) - len(known)} of {len(needed)} files never written before: sized as the median")
    if grid.layouts == ["as-published"]:  # the DANDI assets: resolved where they are
        prepare = run.fleet.get("phases", {}).get("prepare_s", 10.0)
        basis.append("DANDI assets are read where they are: nothing is written or uploaded")
    else:
        prepare, note = _prepare(run, needed, data_bytes, cores, bytes_per_cpu_s)
        basis.append(note)
    phases = run.fleet.get("phases", {})
    process = phases.get("process_s", PRIOR_PROCESS_S)
    if "total_s" in phases:  # what no phase counts (opening the run, status writes, the run info) is overhead
        named = sum(phases.get(f"{name}_s", 0.0) for name in ("process", "prepare", "network", "suite", "push"))
        process += max(0.0, phases["total_s"] - named)
    network = phases.get("network_s", PRIOR_NETWORK_S)
    push = phases.get("push_s", PRIOR_PUSH_S)
    if not phases:
        basis.append(f"assumed: {process:.0f} s to start, {network:.0f} s to measure the real network, "
                     f"{push:.0f} s to push the results")  # fmt: skip
    return Estimate(
        startup_s=BATCH_STARTUP_S if batch else 0.0,
        process_s=process,
        prepare_s=prepare,
        network_s=network,
        suite_s=suite,
        push_s=push,
        data_bytes=data_bytes,
        data_files=len(needed),
        requests=requests,
        read_bytes=read_bytes,
        basis=tuple(basis),
    )


def _prepare(
    run: RecordedRun, needed: list[str], data_bytes: int, cores: int, bytes_per_cpu_s: float | None
) -> tuple[float, str]:
    recorded_cores = run.cores or cores
    slower = max(1.0, recorded_cores / cores)  # fewer cores write proportionally slower; more earn no credit
    phases = run.fleet.get("phases", {})
    if "prepare_s" in phases and run.fleet.get("data_bytes"):
        seconds = phases["prepare_s"] * data_bytes / run.fleet["data_bytes"] * slower
        return seconds, f"preparing: measured {phases['prepare_s']:.0f} s for {run.fleet['data_bytes'] / 1e6:.0f} MB"
    cpu = [(run.assets.get(name) or {}).get("write_cpu_seconds") for name in needed]
    if all(cpu):
        cpu_s, how = sum(cpu), "the files' recorded write time"
    elif bytes_per_cpu_s:
        cpu_s, how = data_bytes / bytes_per_cpu_s, f"{bytes_per_cpu_s / 1e6:.0f} MB per CPU second (recorded writes)"
    else:
        raise FleetError(f"run {run.run_id} records no write time of its files: the preparation cannot be estimated")
    workers = max(1, min(recorded_cores, len(needed)))
    write = cpu_s / workers * slower
    seconds = write * PRIOR_PREPARE_FACTOR + data_bytes / PRIOR_UPLOAD_RATE
    return seconds, (
        f"preparing: {how}, {write:.0f} s on {workers} cores, x{PRIOR_PREPARE_FACTOR} (assumed: indexes, decode "
        f"speeds, bounds) + upload at {PRIOR_UPLOAD_RATE / 1e6:.0f} MB/s"
    )


def _suite(grid: Grid, run: RecordedRun, recorded_profile: str) -> tuple[float, float, float, list[str]]:
    cells = grid.cells()
    total = requests = read_bytes = 0.0
    notes = []
    fallback = {measure: _per_cell(run, measure) for measure in MEASURES}
    for workload in grid.workloads:
        mine = [(m, lay) for w, m, lay, _ in cells if w == workload]
        if not mine:
            continue
        samples = {(m, lay): run.samples.get(cell_key(workload, [m, lay, recorded_profile])) or {} for m, lay in mine}
        recorded = [figures for key, figures in run.samples.items() if split_key(key)[0] == workload]
        typical_seconds = _median(recorded, "seconds", 1.0)
        typical_requests = _median(recorded, "requests", PRIOR_REQUESTS_PER_SAMPLE)
        typical_bytes = _median(recorded, "bytes_received", 0.0)
        unseen = [c for c, s in samples.items() if "seconds" not in s]
        if unseen:
            notes.append(f"{workload}: {len(unseen)} of {len(mine)} cells never measured under {recorded_profile}: "
                         "their samples are priced as the workload's median cell")  # fmt: skip
        for measure in MEASURES:
            time = run.benchmarks.get((workload, measure))
            if time is None or not time.cells:
                total += len(mine) * fallback[measure]
                continue
            if measure != "time_workload":
                total += len(mine) * time.seconds / len(time.cells)
                continue
            sampled = sum(
                (run.samples.get(cell_key(workload, [m, lay, p])) or {}).get("seconds", typical_seconds)
                for m, lay, p in time.cells
            )
            overhead = max(0.0, (time.seconds - run.repeat * sampled) / len(time.cells))
            total += sum(overhead + grid.repeat * s.get("seconds", typical_seconds) for s in samples.values())
        # every sample's wire traffic: the timed read and its fresh handle's open
        for s in samples.values():
            per_sample = s.get("requests", typical_requests) + s.get("open_requests", 0.0)
            requests += grid.repeat * per_sample
            read_bytes += grid.repeat * (s.get("bytes_received", typical_bytes) + s.get("open_bytes_received", 0.0))
    return total, requests, read_bytes, notes


def _per_cell(run: RecordedRun, measure: str) -> float:
    """The median seconds per cell of ``measure`` over the run's workloads (for a workload it never ran)."""
    values = [t.seconds / len(t.cells) for (_, m), t in run.benchmarks.items() if m == measure and t.cells]
    return statistics.median(values) if values else 1.0


def _median(records: list[dict], name: str, default: float) -> float:
    values = [r[name] for r in records if isinstance(r.get(name), int | float)]
    return statistics.median(values) if values else default
