"""``fleet plan``: the children (instance types x regions, or local machines), their run time and their price.

Nothing is created to make a plan. :func:`make_plan` checks what needs no AWS (names, sizes, the price table,
a recorded run to estimate from); :func:`check_environment` then asks AWS (and DANDI) what only they know:
credentials, each bucket's region and write access, the DANDI assets, the image in its registry. Every
figure states its basis (:mod:`nwb_cloud.fleet.estimate`) and the dated price table it uses.
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import asdict, dataclass, field

from nwb_cloud.batch.plan import HOURS_PER_MONTH, ROOT_DISK_GIB
from nwb_cloud.batch.prices import INSTANCE_TYPES, PriceTable
from nwb_cloud.cloud.transfer import TRANSFER
from nwb_cloud.fleet.errors import FleetError
from nwb_cloud.fleet.estimate import Estimate, choose_basis, estimate_from, write_rate
from nwb_cloud.fleet.records import RecordedRun
from nwb_cloud.fleet.spec import DATA, Child, child_grid, machine_name
from nwb_cloud.settings import usable_cores

GIB = 2**30
DANDI_REGION = "us-east-2"  # where the dandiarchive bucket lives
RESULT_OBJECTS = 12  # PUTs of one child: status (x4), log, run info, asv results, machine, benchmarks list
DATA_KEPT_HOURS = 24.0  # the study stays in the bucket after the run until `fleet cleanup --data`
DISK_PER_DATA = 3.0  # the local copies, their raw sources and the expected answers, per byte of study
MARKETS = ("on-demand", "spot")


@dataclass(frozen=True)
class Cost:
    compute: float
    storage: float  # the instance's EBS volume for the run
    requests: float  # the reads' GETs and the results' PUTs
    transfer: float  # DANDI's bucket read from another region; in-region S3 is free
    data_upload: float  # the study's PUTs and its storage while it is kept (once per region)

    @property
    def total(self) -> float:
        return self.compute + self.storage + self.requests + self.transfer + self.data_upload


FREE = Cost(0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class ChildPlan:
    child: Child
    vcpus: int
    memory_gib: float
    hourly: float
    disk_gib: int
    estimate: Estimate
    cost: Cost

    def to_dict(self) -> dict:
        data = asdict(self)
        data["child"] = self.child.to_dict()
        data["estimate"] = self.estimate.to_dict()
        data["cost"]["total"] = self.cost.total
        return data


@dataclass(frozen=True)
class FleetPlan:
    run_id: str
    executor: str  # batch | local
    size: str
    source: str
    market: str
    children: tuple[ChildPlan, ...]
    results: object  # the place the run folder lives under (its bucket is the first region's)
    buckets: dict = field(default_factory=dict)  # region -> the place of its data and results
    image: str | None = None
    prices_as_of: str = ""
    assumptions: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return sum(c.cost.total for c in self.children)

    @property
    def wall_seconds(self) -> float:
        """The children run at once (one instance each), so the run lasts as long as the slowest."""
        return max((c.estimate.seconds for c in self.children), default=0.0)

    @property
    def regions(self) -> list[str]:
        return sorted({c.child.region for c in self.children})

    def to_dict(self) -> dict:
        return {
            "run_id": self.run_id,
            "executor": self.executor,
            "size": self.size,
            "source": self.source,
            "market": self.market,
            "children": [c.to_dict() for c in self.children],
            "results": self.results.to_dict(),
            "buckets": {region: place.to_dict() for region, place in self.buckets.items()},
            "image": self.image,
            "prices_as_of": self.prices_as_of,
            "assumptions": list(self.assumptions),
            "total": self.total,
            "wall_seconds": self.wall_seconds,
        }


def make_plan(
    runs: list[RecordedRun],
    prices: PriceTable,
    buckets: dict,
    size: str = "quick",
    source: str = "generated",
    instance_types: list[str] | None = None,
    regions: list[str] | None = None,
    machines: list[str] | None = None,
    market: str = "on-demand",
    executor: str = "batch",
    workloads=None,
    methods=None,
    layouts=None,
    image: str | None = None,
    seed: int = 0,
) -> FleetPlan:
    """The children and their estimates; raises on any input that is wrong, before anything is asked of AWS.

    ``buckets`` maps each region to the place (``s3://bucket/prefix``) of its data and results; the first
    region's holds the run folder. ``machines`` names the local executor's children.
    """
    if executor not in ("batch", "local"):
        raise FleetError(f"unknown executor {executor!r}: batch or local")
    if market not in MARKETS:
        raise FleetError(f"unknown market {market!r}: {' or '.join(MARKETS)}")
    grid = child_grid(size, source, workloads, methods, layouts)  # unknown sizes, sources and names fail here
    regions = list(dict.fromkeys(regions or ["us-east-1"]))
    if executor == "batch":
        if not instance_types:
            raise FleetError("name at least one --instance-type (e.g. c7i.large, m7i.xlarge)")
        if machines:
            raise FleetError("--machine names local children; AWS Batch children are named by instance type")
        targets = []
        for region in regions:
            for itype in dict.fromkeys(instance_types):
                prices.hourly(region, itype, market)  # an unknown region or type fails here, naming the known
                targets.append((machine_name(itype, region), itype, region))
    else:
        if instance_types:
            raise FleetError("--instance-type is for AWS Batch; name local children with --machine")
        if len(regions) > 1:
            raise FleetError("the local executor runs in one place: give at most one --region")
        targets = [(name, "local", regions[0]) for name in dict.fromkeys(machines or ["local"])]
    needs_bucket = regions if source == "generated" or executor == "local" else regions[:1]  # results: first's
    missing = [r for r in needs_bucket if r not in buckets]
    if missing:
        raise FleetError(f"no --bucket for {', '.join(missing or regions)}: the study and the results need an "
                         "s3://bucket/prefix in each region")  # fmt: skip
    basis_runs = list(runs)
    if executor == "batch" and not any(r.size == size for r in basis_runs):
        raise FleetError(
            f"no recorded run of a {size} suite to estimate from: run `make bench SIZE={size}` once (its asv "
            "results and run info in --results), or a local fleet (`fleet submit --executor local`)"
        )
    rate = write_rate(basis_runs)
    children = []
    first_in_region: set[str] = set()
    for name, itype, region in targets:
        data = buckets[region].child(DATA).to_dict() if source == "generated" and region in buckets else None
        child = Child(name, itype, region, size, source, seed, _tuple(workloads), _tuple(methods), _tuple(layouts),
                      data, market)  # fmt: skip
        if itype == "local":
            vcpus, memory, hourly = usable_cores(), 0.0, 0.0
        else:
            spec = INSTANCE_TYPES[itype]
            vcpus, memory, hourly = spec.vcpus, spec.memory_gib, prices.hourly(region, itype, market)
        chosen, why = choose_basis(basis_runs, size, source, name, itype, any_size=executor == "local")
        if not chosen:
            raise FleetError(f"no recorded {size} run with the {source} data source to estimate from")
        estimate = estimate_from(grid, chosen, why, vcpus, batch=executor == "batch", bytes_per_cpu_s=rate)
        disk = ROOT_DISK_GIB + math.ceil(DISK_PER_DATA * estimate.data_bytes / GIB)
        uploads = source == "generated" and region not in first_in_region
        first_in_region.add(region)
        cost = _cost(estimate, hourly, disk, prices, region, source, uploads) if executor == "batch" else FREE
        children.append(ChildPlan(child, vcpus, memory, hourly, disk, estimate, cost))
    return FleetPlan(
        run_id=time.strftime("f%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:4],
        executor=executor,
        size=size,
        source=source,
        market=market,
        children=tuple(children),
        results=buckets[regions[0]],
        buckets=dict(buckets),
        image=image,
        prices_as_of=prices.as_of,
        assumptions=tuple(_assumptions(prices, market, executor, source, grid)),
    )


def _tuple(values):
    return tuple(values) if values else None


def _cost(estimate: Estimate, hourly: float, disk_gib: int, prices: PriceTable, region: str, source: str,
          uploads: bool) -> Cost:  # fmt: skip
    hours = max(estimate.seconds, 60.0) / 3600  # per-second billing, one minute at least
    gets = estimate.requests + RESULT_OBJECTS
    puts = RESULT_OBJECTS
    transfer = 0.0
    if source == "dandi" and region != DANDI_REGION:
        transfer = estimate.read_bytes / 1e9 * prices.inter_region_gb
    data_upload = 0.0
    if uploads:
        parts = estimate.data_files + math.ceil(estimate.data_bytes / TRANSFER.multipart_chunksize)
        kept = hours + DATA_KEPT_HOURS
        data_upload = parts / 1000 * prices.s3_put_per_1000[region] + estimate.data_bytes / 1e9 * kept * (
            prices.s3_gb_month[region] / HOURS_PER_MONTH
        )
    return Cost(
        compute=hours * hourly,
        storage=hours * disk_gib * prices.ebs_gp3_gb_month[region] / HOURS_PER_MONTH,
        requests=gets / 1000 * prices.s3_get_per_1000[region] + puts / 1000 * prices.s3_put_per_1000[region],
        transfer=transfer,
        data_upload=data_upload,
    )


def _assumptions(prices: PriceTable, market: str, executor: str, source: str, grid) -> list[str]:
    cells = grid.cells()
    lines = [
        f"each child measures {len(cells)} cells x {grid.repeat} cold samples on the real profile (no proxy), "
        "after measuring the real network (RTT, first byte, per-connection throughput)",
    ]
    if executor == "local":
        return [*lines, "local run: no charges; each child is a process on this machine reading the given endpoint"]
    lines += [
        f"prices: {prices.source}, as of {prices.as_of}; {market} instances, one per child, billed per second "
        "(one minute at least) from launch to the end of the push",
        "each child has its instance to itself (all its vCPUs and 90 % of its memory), so cells do not share it",
        f"EBS gp3 per instance: {ROOT_DISK_GIB} GiB root + {DISK_PER_DATA:g}x the study (local copies, raw "
        "sources, expected answers)",
        f"an instance's launch, the ECS agent and the image pull: {300 / 60:.0f} min (assumed), billed",
    ]
    if source == "generated":
        lines.append(
            f"the study is written by each child and uploaded once per region (kept {DATA_KEPT_HOURS:.0f} h after "
            "the run: `fleet cleanup --data` deletes it); S3 to EC2 in one region moves for free"
        )
    else:
        lines.append(
            f"DANDI assets are read anonymously from {DANDI_REGION}: from another region each GB costs "
            f"${prices.inter_region_gb}/GB of inter-region transfer (billed to the reader's account)"
        )
    if market == "spot":
        lines.append("spot: a reclaimed instance is retried (up to 3 attempts), which the estimate excludes")
    return [*lines, *prices.notes]
