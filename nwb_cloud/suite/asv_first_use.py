"""The first-use benchmark: a fresh ``python`` to the first selection's data (see :mod:`nwb_cloud.suite.first_use`).

One class per read workload of the grid's ``first_use`` block, params = method (and the local h5py baseline
:data:`~nwb_cloud.suite.first_use.LOCAL`) x layout x profile. ``track_first_use_s`` takes the cell's samples
(each a fresh process, through the profile's shaping proxy; every answer checked against the source) and
reports their median; the other tracks report medians of the same samples from the run's first-use log
(``<run_id>-first-use.jsonl``: one line per sample with every figure), which the run info summarises.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from nwb_cloud.access import get_method, method_source
from nwb_cloud.suite.asv_grid import NAN, load_state, proxy_for
from nwb_cloud.suite.cell import REFERENCE_METHOD, Cell, CellRun
from nwb_cloud.suite.first_use import LOCAL, first_use
from nwb_cloud.suite.samples import first_use_log
from nwb_cloud.workloads import get_workload

PREFIX = "FirstUse"


class FirstUseBenchmark:
    workload: str
    param_names = ["method", "layout", "profile"]
    timeout = 3600

    def setup(self, method: str, layout: str, profile: str) -> None:
        self.state = state = load_state()
        block = state.grid.first_use
        if block is None or not block.contains(self.workload, method if method != LOCAL else block.methods[0],
                                               layout, profile):  # fmt: skip
            raise NotImplementedError("not in this run's grid: no first use of this cell")
        if method != LOCAL:
            reason = get_method(method).unavailable()
            if reason:
                raise NotImplementedError(f"{method} unavailable here: {reason}")
        self.label = f"first_use_{self.workload}[{method}, {layout}, {profile}]"

    def _job(self, method: str, layout: str, profile: str) -> dict:
        state = self.state
        workload = get_workload(self.workload)
        asset = state.catalog.asset(workload.modality, layout)
        proxy = proxy_for(profile) if method != LOCAL else None
        store = state.catalog.store.via(proxy.url) if proxy else state.catalog.store
        expected = CellRun(
            state.catalog, Cell(self.workload, REFERENCE_METHOD, layout), expected_dir=Path(state.data_dir) / "expected"
        ).expected_file()  # the read cells' expected answer, from the local source
        return {
            "method": method,
            "module": None if method == LOCAL else method_source(method),
            "workload": self.workload,
            "series": asset.series,
            "key": asset.key,
            "local_path": asset.local_path,
            "store": store.to_dict(),
            "expected": str(expected),
        }

    def _samples(self, method: str, layout: str, profile: str) -> list[dict]:
        log = first_use_log(self.state)
        taken = log.records(self.label)
        if not taken:
            job = self._job(method, layout, profile)
            for sample in range(1, (self.state.grid.first_use.samples or self.state.grid.repeat) + 1):
                figures = first_use(job)
                log.append(self.label, {**figures, "sample": sample})
            taken = log.records(self.label)
        return taken

    def _median(self, method, layout, profile, field: str) -> float:
        values = [r[field] for r in self._samples(method, layout, profile) if isinstance(r.get(field), int | float)]
        return statistics.median(values) if values else NAN

    def track_first_use_s(self, method, layout, profile) -> float:
        return self._median(method, layout, profile, "first_use_s")

    def track_after_imports_s(self, method, layout, profile) -> float:
        return self._median(method, layout, profile, "after_imports_s")

    def track_imports_s(self, method, layout, profile) -> float:
        return self._median(method, layout, profile, "imports_s")

    def track_cpu_s(self, method, layout, profile) -> float:
        return self._median(method, layout, profile, "cpu_s")

    track_first_use_s.unit = track_after_imports_s.unit = track_imports_s.unit = track_cpu_s.unit = "seconds"


def first_use_classes() -> dict[str, type]:
    state = load_state()
    block = state.grid.first_use
    if block is None:
        return {}
    classes = {}
    for workload in block.workloads or []:
        name = PREFIX + "".join(part.title() for part in workload.split("_"))
        classes[name] = type(
            name,
            (FirstUseBenchmark,),
            {"workload": workload, "params": [[*(block.methods or []), LOCAL], block.layouts, block.profiles]},
        )
    return classes
