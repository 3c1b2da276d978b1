"""``batch plan``: the sessions and their sizes, the cheapest instance that fits, and what the run will cost.

Sizes come from the source itself (one rclone listing), runtimes from the throughput records (see
:mod:`nwb_cloud.batch.estimate`), prices from the dated table (see :mod:`nwb_cloud.batch.prices`). Each
session is three jobs: transfer (1 vCPU), convert (the whole instance) and upload (1 vCPU); between them the
data waits in S3 staging under the destination, so no volume outlives its job. What the executor costs before
a job does any work (instance boot, image pull, queue wait; the local executor's launch of each job) is added
as separate lines with their sources (:mod:`nwb_cloud.batch.fixed_costs`). The estimate lists every assumption
it rests on, and nothing is created to make it.
"""

from __future__ import annotations

import heapq
import math
import time
import uuid
from dataclasses import asdict, dataclass, field

from nwb_cloud.batch.errors import BatchError, PriceError
from nwb_cloud.batch.estimate import GIB, Estimator, StepEstimate
from nwb_cloud.batch.fixed_costs import (
    AWS_BATCH,
    FixedCost,
    local_fixed_costs,
    per_instance_seconds,
    per_job_seconds,
)
from nwb_cloud.batch.prices import INSTANCE_TYPES, PriceTable
from nwb_cloud.cloud.transfer import TRANSFER
from nwb_cloud.convert.pipeline import SessionSize, preflight
from nwb_cloud.convert.records import Record
from nwb_cloud.convert.spec import ConversionSpec
from nwb_cloud.convert.steps import STEPS, session_state
from nwb_cloud.settings import usable_cores

HOURS_PER_MONTH = 730
SIDE_JOB_VCPUS = 1  # transfer and upload are I/O bound
SIDE_JOB_MEMORY_GIB = 2
ROOT_DISK_GIB = 30  # the ECS-optimised AMI's own root volume
STAGING_HOURS_MARGIN = 1.0
MARKER_REQUESTS = {"put": 8, "get": 12}  # step markers, job spec, records, probes: per session


@dataclass(frozen=True)
class Machine:
    instance_type: str  # or "local"
    vcpus: int
    memory_gib: float
    hourly: float  # $/hour of the whole instance in the chosen market (0 locally)


@dataclass(frozen=True)
class PlannedSession:
    name: str
    interface: str
    bytes: int
    files: int
    output_bytes: int
    steps: dict[str, StepEstimate]
    fixed_seconds: float = 0.0  # the executor's per-job fixed costs, for every step (see fixed_costs)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.steps.values()) + self.fixed_seconds


@dataclass(frozen=True)
class Cost:
    compute: float
    ebs: float
    s3_requests: float
    s3_staging: float
    transfer: float
    monthly_storage: float  # what the outputs cost per month once there: not part of the run

    @property
    def total(self) -> float:
        return self.compute + self.ebs + self.s3_requests + self.s3_staging + self.transfer


@dataclass(frozen=True)
class Plan:
    run_id: str
    spec_text: str
    source: str
    destination: object  # a Place
    executor: str  # batch | local
    region: str
    market: str
    machine: Machine
    disk_gib: int
    memory_need_gib: float
    parallel: int  # session chains running at once
    sessions: tuple[PlannedSession, ...]
    finished: tuple[str, ...]  # sessions already at the destination: not planned again
    cost: Cost
    wall_seconds: float
    assumptions: tuple[str, ...]
    layout: str | None = None
    alternatives: tuple[tuple[str, float], ...] = field(default=())  # (instance type, total $) next best
    fixed_costs: tuple[FixedCost, ...] = field(default=())  # what the executor adds before a job does any work

    @property
    def job_seconds(self) -> float:
        return sum(s.seconds for s in self.sessions)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["destination"] = self.destination.to_dict()
        data["cost"]["total"] = self.cost.total
        return data


def make_plan(
    spec: ConversionSpec,
    source: str,
    destination,
    rclone,
    records: list[Record],
    prices: PriceTable,
    region: str = "us-east-1",
    market: str = "spot",
    instance_type: str | None = None,
    max_vcpus: int = 64,
    layout: str | None = None,
    executor: str = "batch",
    parallel: int = 1,
) -> Plan:
    """Check everything, size the sessions, pick the machine, estimate. Raises before anything is created."""
    if executor not in ("batch", "local"):
        raise BatchError(f"unknown executor {executor!r}: batch or local")
    if executor == "batch":
        if instance_type is not None:
            prices.hourly(region, instance_type, market)  # an unknown type fails here, first
        else:
            prices.instance_types(region)
    estimator = Estimator(records)
    memory_need, memory_basis = max(estimator.memory_bytes(s.interface_key) for s in spec.sessions)
    if executor == "batch" and instance_type is not None:
        _fits(INSTANCE_TYPES[instance_type], memory_need, memory_basis)
    sizes = preflight(spec, source, destination, rclone, layout, write=False)
    states = {s.session.name: session_state(destination, s.session, s.fingerprint) for s in sizes}
    pending = [s for s in sizes if not states[s.session.name][0]]
    finished = tuple(s.session.name for s in sizes if s not in pending)
    assumptions = [
        f"memory per conversion: {memory_need / GIB:.1f} GiB ({memory_basis})",
        f"destination {destination.label} is reachable; write access is proved when the work starts (a plan writes "
        "nothing)",
    ]
    assumptions += [f"{name}: converted again: {change}" for name, (_, change) in states.items() if change]
    if executor == "local":
        fixed = local_fixed_costs(records)
        machine = Machine("local", usable_cores(), 0.0, 0.0)
        planned = [_plan_session(s, estimator, machine, fixed) for s in pending]
        disk_gib, cost, alternatives = 0, Cost(0, 0, 0, 0, 0, 0), ()
        assumptions.append("local run: no charges")
    else:
        fixed = AWS_BATCH
        disk_gib = ROOT_DISK_GIB + math.ceil(2.5 * max((s.bytes for s in pending), default=0) / GIB)
        machine, planned, alternatives = _cheapest(
            estimator, pending, prices, region, market, instance_type, disk_gib, memory_need, fixed, max_vcpus
        )
        parallel = max(1, max_vcpus // machine.vcpus)
        cost = _cost(planned, machine, disk_gib, prices, region, _booted_seconds(fixed, parallel, planned))
        assumptions += _batch_assumptions(prices, market, machine, disk_gib, parallel, max_vcpus)
    for session in planned:
        for step, estimate in session.steps.items():
            assumptions.append(f"{session.name} {step}: {estimate.seconds:.1f} s ({estimate.basis})")
    return Plan(
        run_id=time.strftime("r%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4],
        spec_text=spec.text,
        source=source,
        destination=destination,
        executor=executor,
        region=region,
        market=market,
        machine=machine,
        disk_gib=disk_gib,
        memory_need_gib=round(memory_need / GIB, 2),
        parallel=parallel,
        sessions=tuple(planned),
        finished=finished,
        cost=cost,
        wall_seconds=makespan([s.seconds for s in planned], parallel) + (per_instance_seconds(fixed) if planned else 0),
        assumptions=tuple(assumptions),
        layout=layout,
        alternatives=alternatives,
        fixed_costs=fixed,
    )


def _booted_seconds(fixed, parallel: int, planned: list) -> float:
    """Instance time billed before any job runs: each instance the run starts boots and pulls the image once."""
    return min(parallel, len(planned)) * per_instance_seconds(fixed)


def _cheapest(estimator, pending, prices, region, market, instance_type, disk_gib, memory_need, fixed, max_vcpus):
    """The instance type with the lowest estimated total cost among those with the memory a conversion needs."""
    candidates = []
    for itype in prices.instance_types(region) if instance_type is None else [INSTANCE_TYPES[instance_type]]:
        if itype.memory_gib * GIB * 0.9 < memory_need:
            continue
        machine = Machine(itype.name, itype.vcpus, itype.memory_gib, prices.hourly(region, itype.name, market))
        planned = [_plan_session(s, estimator, machine, fixed) for s in pending]
        booted = _booted_seconds(fixed, max(1, max_vcpus // machine.vcpus), planned)
        candidates.append((_cost(planned, machine, disk_gib, prices, region, booted).total, machine, planned))
    if not candidates:
        raise PriceError(f"no instance type in the table has the {memory_need / GIB:.1f} GiB a conversion needs")
    candidates.sort(key=lambda c: (c[0], c[1].vcpus))
    _, machine, planned = candidates[0]
    alternatives = tuple((m.instance_type, round(total, 4)) for total, m, _ in candidates[1:4])
    return machine, planned, alternatives


def _batch_assumptions(prices, market, machine, disk_gib, parallel, max_vcpus) -> list[str]:
    assumptions = [
        f"prices: {prices.source}, as of {prices.as_of}; {market} {machine.instance_type} ${machine.hourly:.4f}/h",
        f"convert jobs take the whole instance ({machine.vcpus} vCPU); transfer and upload take {SIDE_JOB_VCPUS} "
        "vCPU and are billed that share of it",
        f"EBS gp3 {disk_gib} GiB per instance (root {ROOT_DISK_GIB} GiB + 2.5x the largest session)",
        f"S3 staging under the destination, {TRANSFER.multipart_chunksize // 2**20} MiB parts",
        f"at most {parallel} sessions at once (max {max_vcpus} vCPUs); per-second billing, minimum charges ignored",
        *prices.notes,
    ]
    if market == "spot":
        assumptions.append("spot: an interrupted job is retried (up to 3 attempts), which the estimate excludes")
    return assumptions


def _fits(itype, memory_need: int, memory_basis: str) -> bool:
    """Whether a conversion fits (about 10 % of an instance goes to the OS and the ECS agent)."""
    if itype.memory_gib * GIB * 0.9 >= memory_need:
        return True
    raise PriceError(
        f"{itype.name} has {itype.memory_gib:g} GiB, too little for the {memory_need / GIB:.1f} GiB a conversion "
        f"needs ({memory_basis})"
    )


def _plan_session(size: SessionSize, estimator: Estimator, machine: Machine, fixed=()) -> PlannedSession:
    interface = size.session.interface_key
    steps = {}
    for step in STEPS:
        steps[step] = estimator.step(step, interface, size.bytes, job_cores(step, machine), machine.instance_type)
    output = int(size.bytes * estimator.output_ratio(interface))
    fixed_seconds = per_job_seconds(fixed) * len(steps)
    return PlannedSession(size.session.name, interface, size.bytes, size.files, output, steps, fixed_seconds)


def job_cores(step: str, machine: Machine) -> int:
    """The vCPUs a step's job gets: the whole instance to convert, one to move data (all of them locally)."""
    return machine.vcpus if step == "convert" or machine.instance_type == "local" else SIDE_JOB_VCPUS


def job_share(step: str, machine: Machine) -> float:
    """The fraction of the instance a step's job occupies (and is billed for)."""
    return job_cores(step, machine) / machine.vcpus


def _cost(
    planned: list[PlannedSession], machine: Machine, disk_gib: int, prices: PriceTable, region: str, booted_s=0.0
) -> Cost:
    compute = booted_s / 3600 * machine.hourly  # instances booting and pulling the image are billed
    ebs = puts = gets = staged_gb_hours = out_gb = 0.0
    part = TRANSFER.multipart_chunksize
    for session in planned:
        for step, estimate in session.steps.items():
            hours = estimate.seconds / 3600 * job_share(step, machine)
            compute += hours * machine.hourly
            ebs += hours * disk_gib * prices.ebs_gp3_gb_month[region] / HOURS_PER_MONTH
        source_parts = session.files + math.ceil(session.bytes / part)
        output_parts = math.ceil(session.output_bytes / part) + 1
        puts += source_parts + 2 * output_parts + MARKER_REQUESTS["put"]  # stage in, stage out, copy out
        gets += source_parts + MARKER_REQUESTS["get"]
        staged_hours = session.seconds / 3600 + STAGING_HOURS_MARGIN
        staged_gb_hours += (session.bytes + session.output_bytes) / 1e9 * staged_hours
        out_gb += session.output_bytes / 1e9
    return Cost(
        compute=compute,
        ebs=ebs,
        s3_requests=puts / 1000 * prices.s3_put_per_1000[region] + gets / 1000 * prices.s3_get_per_1000[region],
        s3_staging=staged_gb_hours * prices.s3_gb_month[region] / HOURS_PER_MONTH,
        transfer=0.0,
        monthly_storage=out_gb * prices.s3_gb_month[region],
    )


def makespan(durations: list[float], parallel: int) -> float:
    """Wall time of independent chains on ``parallel`` slots, longest first (what a queue does in practice)."""
    slots = [0.0] * max(1, min(parallel, len(durations) or 1))
    for duration in sorted(durations, reverse=True):
        heapq.heapreplace(slots, slots[0] + duration)
    return max(slots)
