"""The prepared run, as a small JSON file: the catalog (store + assets) and the grid to measure.

``nwb-cloud bench`` writes it; the asv benchmarks (other processes) load it through ``NWB_CLOUD_STATE``.
It holds the embedded endpoint's throw-away credentials, so it is written atomically with owner-only
permissions, and nothing from it but names reaches results.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from nwb_cloud.datasets.catalog import Catalog, CatalogError

NOT_IN_GRID = "not in this run's grid"  # every reason a cell is left out starts so (the report relies on it)


@dataclass
class Block:
    """A named sub-grid: the product of its axes (None: every value of the grid's axis), and the cold samples
    each of its cells takes (None: the grid's ``repeat``; a cell in several blocks takes the most)."""

    name: str
    workloads: list[str] | None = None
    methods: list[str] | None = None
    layouts: list[str] | None = None
    profiles: list[str] | None = None
    samples: int | None = None
    # methods of the grid this block leaves out on purpose, with why (the report's reason for their cells)
    leaves_out: dict[str, str] | None = None

    def contains(self, workload: str, method: str, layout: str, profile: str) -> bool:
        return all(
            values is None or value in values
            for values, value in (
                (self.workloads, workload),
                (self.methods, method),
                (self.layouts, layout),
                (self.profiles, profile),
            )
        )

    def covers(self, workload: str, layout: str) -> bool:
        return (self.workloads is None or workload in self.workloads) and (
            self.layouts is None or layout in self.layouts
        )

    def describe(self) -> str:
        methods = ", ".join(self.methods) if self.methods else "every method"
        profiles = ", ".join(self.profiles) if self.profiles else "every profile"
        return f"the {self.name} block measures {methods} under {profiles}"


@dataclass
class Grid:
    """The values of each axis to measure, which of their combinations are measured, and cold samples per cell.

    Which cells are measured is data, not code paths:

    * a (workload, method, layout) combination must *apply*: the layout is meant for the workload's
      modality (``Layout.modalities``), the method reads the layout's backend (``Method.formats``), and a
      page-buffer variant (``Method.varies == "paged"``) reads a paged layout (``Layout.page_size``);
      the registry facts this needs are frozen into the grid (``facts``) when it is made, so a report
      built later judges the run by the rules it ran with;
    * ``everywhere``/``main_profile``: every method under ``main_profile``, only ``everywhere`` elsewhere;
    * ``blocks``: when given, a cell is measured only if some :class:`Block` contains it (the layout study
      is a union of such sub-grids: shapes, codecs, backends, methods, ...).
    """

    workloads: list[str]
    methods: list[str]
    layouts: list[str]
    profiles: list[str]
    repeat: int = 5  # cold samples per cell, each in a process of its own (a block may ask for more)
    # A quick run measures every method under ``main_profile`` and only the ``everywhere`` methods under the
    # other profiles; None measures every method everywhere.
    everywhere: list[str] | None = None
    main_profile: str | None = None
    blocks: list[Block] | None = None
    facts: dict = field(default_factory=dict)
    # the first use in a fresh process (nwb_cloud.suite.first_use): these read workloads x methods (and the
    # local h5py baseline) x layouts x profiles, ``samples`` fresh processes each; None: not measured
    first_use: Block | None = None

    def __post_init__(self):
        if self.blocks is not None:
            self.blocks = [b if isinstance(b, Block) else Block(**b) for b in self.blocks]
        if isinstance(self.first_use, dict):
            self.first_use = Block(**self.first_use)
        self.facts = _complete_facts(self.facts, self.workloads, self.methods, self.layouts)

    # -- the rules -------------------------------------------------------------------------------------------
    def modality(self, workload: str) -> str | None:
        return self.facts["workload_modality"].get(workload)

    def applies(self, workload: str, method: str, layout: str) -> str | None:
        """Why the combination cannot be measured at all (a layout or backend mismatch), or None."""
        modality = self.modality(workload)
        meant_for = self.facts["layout_modalities"].get(layout)
        if modality is not None and meant_for is not None and modality not in meant_for:
            return (
                f"{NOT_IN_GRID}: layout {layout} does not apply to {modality} data (it is for {', '.join(meant_for)})"
            )
        backend = self.facts["layout_backend"].get(layout, "hdf5")
        formats = self.facts["method_formats"].get(method)
        if formats is not None and backend not in formats:
            return (
                f"{NOT_IN_GRID}: {method} reads {'/'.join(formats)} assets, layout {layout} is {backend}: "
                "the method does not apply"
            )
        if self.facts["method_varies"].get(method) == "paged" and not self.facts["layout_paged"].get(layout):
            return (
                f"{NOT_IN_GRID}: {method} sets an HDF5 page buffer, which acts only on paged files; layout "
                f"{layout} is not paged: the method does not apply"
            )
        return None

    def exclusion(
        self, method: str, profile: str, workload: str | None = None, layout: str | None = None
    ) -> str | None:
        """Why the cell is not measured (a text starting with :data:`NOT_IN_GRID`), or None when it is.

        Without ``workload``/``layout``: why ``method`` is never measured under ``profile``, or None.
        """
        if workload is None or layout is None:
            reasons = [
                self.exclusion(method, profile, w, lay)
                for w in ([workload] if workload else self.workloads)
                for lay in ([layout] if layout else self.layouts)
            ]
            if any(reason is None for reason in reasons):
                return None
            return reasons[0] if reasons else f"{NOT_IN_GRID}: no workload or layout"
        reason = self.applies(workload, method, layout)
        if reason:
            return reason
        if self.everywhere is not None and method not in self.everywhere and profile != self.main_profile:
            return (
                f"{NOT_IN_GRID}: a quick run measures every method under {self.main_profile} and only "
                f"{', '.join(self.everywhere)} under the other profiles"
            )
        if self.blocks is not None and not any(b.contains(workload, method, layout, profile) for b in self.blocks):
            covering = [b for b in self.blocks if b.covers(workload, layout)]
            why = [b.leaves_out[method] for b in covering if method in (b.leaves_out or {})]
            if why:
                return f"{NOT_IN_GRID}: {why[0]}"
            if covering:
                return f"{NOT_IN_GRID}: " + "; ".join(b.describe() for b in covering)
            return f"{NOT_IN_GRID}: no block of the grid measures {workload} on {layout}"
        return None

    def excludes(self, method: str, profile: str, workload: str | None = None, layout: str | None = None) -> bool:
        return self.exclusion(method, profile, workload, layout) is not None

    def add_block(self, block: Block, layouts: dict[str, tuple[str, str, bool]] | None = None) -> None:
        """Measure ``block`` too: its values join the axes; ``layouts`` gives the facts of layouts made for the
        run (name -> (modality, backend, paged)), which the layout registry does not hold."""
        if self.blocks is None and self.layouts:  # a grid of every combination: it stays one, as a block
            self.blocks = [Block("grid", list(self.workloads), list(self.methods), list(self.layouts),
                                 list(self.profiles))]  # fmt: skip
        for name, (modality, backend, paged) in (layouts or {}).items():
            self.facts["layout_modalities"][name] = [modality]
            self.facts["layout_backend"][name] = backend
            self.facts["layout_paged"][name] = bool(paged)
        for axis in ("workloads", "methods", "layouts", "profiles"):
            values = getattr(block, axis)
            if values is None:
                raise ValueError(f"block {block.name!r}: an added block names its {axis}")
            setattr(self, axis, list(dict.fromkeys([*getattr(self, axis), *values])))
        self.blocks = [*(self.blocks or []), block]
        self.facts = _complete_facts(self.facts, self.workloads, self.methods, self.layouts)

    def samples(self, workload: str, method: str, layout: str, profile: str) -> int:
        """Cold samples the cell takes: the most any block containing it asks for, else ``repeat``."""
        asked = [
            b.samples
            for b in self.blocks or []
            if b.samples is not None and b.contains(workload, method, layout, profile)
        ]
        return max(asked, default=self.repeat)

    def rounds(self) -> int:
        """Passes over the grid: the most samples any cell takes (a cell that takes fewer sits out the first)."""
        return max((self.samples(*cell) for cell in self.cells()), default=self.repeat)

    # -- what follows from the rules -------------------------------------------------------------------------
    def layouts_of(self, workload: str) -> list[str]:
        """The grid's layouts that apply to the workload's modality (the asv class's ``layout`` values)."""
        modality = self.modality(workload)
        meant = self.facts["layout_modalities"]
        return [lay for lay in self.layouts if meant.get(lay) is None or modality is None or modality in meant[lay]]

    def axes_of(self, workload: str) -> tuple[list[str], list[str], list[str]]:
        """(methods, layouts, profiles) with at least one measured cell of ``workload``, in the grid's order.

        The generated classes list only these values; the product still holds combinations no cell measures,
        which asv is told not to run (:func:`nwb_cloud.suite.asv_grid.selection`).
        """
        cells = [cell for cell in self.cells() if cell[0] == workload]
        return (
            [m for m in self.methods if any(c[1] == m for c in cells)],
            [lay for lay in self.layouts if any(c[2] == lay for c in cells)],
            [p for p in self.profiles if any(c[3] == p for c in cells)],
        )

    def profiles_of(self, workload: str, layout: str) -> list[str]:
        """The profiles under which some method reads ``layout`` for ``workload`` (where a bound is needed)."""
        return [p for p in self.profiles if any(not self.excludes(m, p, workload, layout) for m in self.methods)]

    def measures(self, method: str, modality: str, layout: str) -> bool:
        """Whether any cell (or first use) reads the asset ``modality/layout`` with ``method`` (else nothing need
        be prepared)."""
        first = self.first_use
        if first is not None and any(
            first.contains(w, method, layout, p)
            for w in first.workloads or self.workloads
            if self.modality(w) == modality
            for p in first.profiles or self.profiles
        ):
            return True
        return any(
            self.exclusion(method, profile, workload, layout) is None
            for workload in self.workloads
            if self.modality(workload) == modality
            for profile in self.profiles
        )

    def assets(self) -> dict[str, list[str]]:
        """modality -> the layouts some measured cell reads: the files the run must write."""
        needed: dict[str, list[str]] = {}
        for workload in self.workloads:
            modality = self.modality(workload) or "?"
            for layout in self.layouts_of(workload):
                if layout in needed.get(modality, []):
                    continue
                if any(
                    self.exclusion(method, profile, workload, layout) is None
                    for method in self.methods
                    for profile in self.profiles
                ):
                    needed.setdefault(modality, []).append(layout)
        return {modality: [lay for lay in self.layouts if lay in chosen] for modality, chosen in needed.items()}

    def cells(self) -> list[tuple[str, str, str, str]]:
        """Every measured (workload, method, layout, profile)."""
        return [
            (workload, method, layout, profile)
            for workload in self.workloads
            for method in self.methods
            for layout in self.layouts_of(workload)
            for profile in self.profiles
            if self.exclusion(method, profile, workload, layout) is None
        ]

    def to_dict(self) -> dict:
        payload = {f.name: getattr(self, f.name) for f in fields(self)}
        payload["blocks"] = None if self.blocks is None else [asdict(b) for b in self.blocks]
        payload["first_use"] = None if self.first_use is None else asdict(self.first_use)
        return payload

    @classmethod
    def from_dict(cls, payload: dict) -> Grid:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in payload.items() if k in names})


def _complete_facts(facts: dict, workloads, methods, layouts) -> dict:
    """The registry facts the rules need, for every named value; facts already given (a past run's) win."""
    from nwb_cloud.access import METHODS
    from nwb_cloud.datasets.layouts import LAYOUTS
    from nwb_cloud.workloads import WORKLOADS

    facts = {key: dict(facts.get(key) or {}) for key in _FACT_KEYS}
    for name in workloads:
        if name not in facts["workload_modality"] and name in WORKLOADS:
            facts["workload_modality"][name] = WORKLOADS[name].modality
    for name in methods:
        if name not in facts["method_formats"] and name in METHODS:
            facts["method_formats"][name] = list(METHODS[name].formats)
        if name not in facts["method_varies"] and name in METHODS and METHODS[name].variant_of:
            facts["method_varies"][name] = METHODS[name].varies
    for name in layouts:
        if name in LAYOUTS:
            layout = LAYOUTS[name]
            facts["layout_modalities"].setdefault(name, None if layout.modalities is None else list(layout.modalities))
            facts["layout_backend"].setdefault(name, layout.backend)
            facts["layout_paged"].setdefault(name, layout.page_size is not None)
    return facts


_FACT_KEYS = ("workload_modality", "method_formats", "method_varies", "layout_modalities", "layout_backend",
              "layout_paged")  # fmt: skip


@dataclass
class RunState:
    catalog: Catalog
    grid: Grid
    data_dir: str
    run_id: str
    extra: dict = field(default_factory=dict)  # per-layer additions (e.g. proxy calibration figures)

    def save(self, path: Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {
            "catalog": self.catalog.to_dict(),
            "grid": self.grid.to_dict(),
            "data_dir": self.data_dir,
            "run_id": self.run_id,
            "extra": self.extra,
        }
        partial = path.with_name(path.name + ".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(payload, handle, indent=1)
        partial.replace(path)

    @classmethod
    def load(cls, path: Path) -> RunState:
        path = Path(path)
        if not path.exists():
            raise CatalogError(
                f"no prepared run at {path}: run `nwb-cloud bench` (which prepares it) or "
                "`nwb-cloud prepare`, or point NWB_CLOUD_STATE at an existing state file"
            )
        try:
            payload = json.loads(path.read_text())
            return cls(
                catalog=Catalog.from_dict(payload["catalog"]),
                grid=Grid.from_dict(payload["grid"]),
                data_dir=payload["data_dir"],
                run_id=payload["run_id"],
                extra=payload.get("extra", {}),
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CatalogError(
                f"state file {path} is corrupt ({type(error).__name__}: {error}); prepare again"
            ) from None
