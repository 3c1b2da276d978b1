"""What a fleet child measures: its machine, its data, its grid; and where a fleet run keeps its files.

A run folder (``<results place>/.nwb-cloud/fleet/<run id>/``) holds ``plan.json``, one ``children/<name>.json``
per child (all a child reads: its command line names only the folder and the child), ``run.json`` (the jobs,
once submitted) and, per child, ``out/<name>/``: ``status.json``, ``child.log`` and ``results/`` laid out as
asv's results folder (``<machine>/``, ``benchmarks.json``, ``run-info/``).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

from nwb_cloud.fleet.errors import FleetError
from nwb_cloud.settings import SIZES
from nwb_cloud.suite.prepare import MAIN_PROFILE, default_grid
from nwb_cloud.suite.state import Grid

FLEET_RUNS = ".nwb-cloud/fleet"
DATA = "data"  # the generated study, per region, under the bucket's prefix: shared by runs and children
SOURCES = ("generated", "dandi")  # generated: the embedded study's files in the user's bucket; dandi: public
REAL = "real"
BENCH = r"^streaming\."  # the read grid; conversion and index-build throughput are measured by `make bench`
_MACHINE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")


def machine_name(instance_type: str, region: str) -> str:
    """The asv machine of a child: one per instance type and region."""
    return f"{instance_type}-{region}"


def check_machine_name(name: str) -> str:
    if not _MACHINE.match(name):
        raise FleetError(f"machine name {name!r}: letters, digits, '.', '_' or '-', at most 63, starting alnum")
    return name


@dataclass(frozen=True)
class Child:
    """One child of a fleet run: an instance type in a region (or a local process) measuring one grid."""

    name: str  # the asv machine name
    instance_type: str  # "local" for the local executor
    region: str
    size: str
    source: str
    seed: int = 0
    workloads: tuple[str, ...] | None = None  # None: the size's whole grid
    methods: tuple[str, ...] | None = None
    layouts: tuple[str, ...] | None = None
    data: dict | None = field(default=None)  # the data prefix (a place's dict); None for DANDI assets
    market: str = "on-demand"

    def __post_init__(self):
        check_machine_name(self.name)
        if self.size not in SIZES:
            raise FleetError(f"unknown suite size {self.size!r}; known: {', '.join(SIZES)}")
        if self.source not in SOURCES:
            raise FleetError(f"unknown data source {self.source!r}; known: {', '.join(SOURCES)}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Child:
        data = dict(data)
        for key in ("workloads", "methods", "layouts"):
            if data.get(key) is not None:
                data[key] = tuple(data[key])
        try:
            return cls(**data)
        except TypeError as error:
            raise FleetError(f"child specification is not one this version reads: {error}") from None

    @property
    def settings_source(self) -> str:
        return "dandi" if self.source == "dandi" else "embedded"

    def grid(self) -> Grid:
        return child_grid(self.size, self.source, self.workloads, self.methods, self.layouts)


def child_grid(size: str, source: str, workloads=None, methods=None, layouts=None) -> Grid:
    """The size's grid on the ``real`` profile: the cells it measures under in-region (its main profile), no
    emulated profile (nothing is shaped on real S3), restricted to ``workloads``, ``methods`` and ``layouts``
    when given."""
    from nwb_cloud.settings import Settings

    if size not in SIZES:
        raise FleetError(f"unknown suite size {size!r}; known: {', '.join(SIZES)}")
    if source not in SOURCES:
        raise FleetError(f"unknown data source {source!r}; known: {', '.join(SOURCES)}")
    base = default_grid(Settings(size=size, source="dandi" if source == "dandi" else "embedded"))
    measured_profile = base.profiles[0] if source == "dandi" else MAIN_PROFILE
    axes = (("workload", workloads, base.workloads), ("method", methods, base.methods),
            ("layout", layouts, base.layouts))  # fmt: skip
    for name, wanted, known in axes:
        unknown = sorted(set(wanted or ()) - set(known))
        if unknown:
            raise FleetError(f"unknown {name} {', '.join(map(repr, unknown))} for a {size} run; known: "
                             f"{', '.join(known)}")  # fmt: skip

    def keep(values, chosen):
        return [v for v in values if chosen is None or v in chosen] if values is not None else chosen

    blocks = None
    if base.blocks is not None:
        blocks = []
        for block in base.blocks:
            if block.profiles is not None and measured_profile not in block.profiles:
                continue
            block.workloads = keep(block.workloads, workloads and list(workloads))
            block.methods = keep(block.methods, methods and list(methods))
            block.layouts = keep(block.layouts, layouts and list(layouts))
            block.profiles = [REAL]
            blocks.append(block)
    grid = Grid(
        workloads=keep(base.workloads, workloads),
        methods=keep(base.methods, methods),
        layouts=keep(base.layouts, layouts),
        profiles=[REAL],
        repeat=base.repeat,
        blocks=blocks,
        facts=base.facts,
    )
    if not grid.cells():
        chosen = {"workloads": workloads, "methods": methods, "layouts": layouts}
        named = ", ".join(f"{k} {', '.join(v)}" for k, v in chosen.items() if v) or "everything"
        raise FleetError(f"the {size} grid measures no cell of {named}")
    return grid
