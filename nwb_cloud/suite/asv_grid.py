"""The asv benchmark classes, generated from the registries: one class per workload, params = the other axes.

``benchmarks/`` only imports :func:`benchmark_classes`. The prepared run is found through ``NWB_CLOUD_STATE``
(or the settings' default state path); when it is missing, importing the benchmarks fails with a message,
so an unprepared ``asv run`` stops loudly instead of skipping everything.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from nwb_cloud.access import MethodUnavailable, get_method
from nwb_cloud.settings import Settings
from nwb_cloud.suite.cell import Cell, CellRun
from nwb_cloud.suite.state import RunState
from nwb_cloud.workloads import get_workload


@cache
def load_state() -> RunState:
    return RunState.load(Settings.from_env().state_path)


class StreamingBenchmark:
    """A cold read per sample: a fresh handle in setup, the workload timed, the result checked in teardown."""

    workload: str
    param_names = ["method", "layout", "profile"]
    number = 1  # one call per sample: setup (a fresh handle) runs before every timed call
    warmup_time = 0
    min_run_count = 1
    timeout = 1800

    def setup(self, method: str, layout: str, profile: str) -> None:
        state = load_state()
        reason = get_method(method).unavailable()
        if reason:
            raise NotImplementedError(f"{method} unavailable here: {reason}")
        failure = state.extra.get("prepare_failures", {}).get(
            f"{method}|{get_workload(self.workload).modality}/{layout}"
        )
        if failure:
            raise MethodUnavailable(f"{method} could not be prepared for {layout}: {failure}")
        self.cell_run = CellRun(
            state.catalog,
            Cell(self.workload, method, layout, profile),
            expected_dir=Path(state.data_dir) / "expected",
        )
        self.cell_run.setup()

    def teardown(self, method: str, layout: str, profile: str) -> None:
        cell_run = getattr(self, "cell_run", None)
        if cell_run is not None and cell_run.result is not None:
            cell_run.finish()  # raises WrongRead: a wrong read fails the benchmark
        elif cell_run is not None:
            cell_run.close()

    def time_workload(self, method: str, layout: str, profile: str) -> None:
        self.cell_run.run()


def _class_name(workload: str) -> str:
    return "".join(part.title() for part in workload.split("_"))


def benchmark_classes() -> dict[str, type]:
    state = load_state()
    grid = state.grid
    classes = {}
    for workload in grid.workloads:
        description = get_workload(workload).description
        classes[_class_name(workload)] = type(
            _class_name(workload),
            (StreamingBenchmark,),
            {
                "__doc__": description,
                "workload": workload,
                "params": [list(grid.methods), list(grid.layouts), list(grid.profiles)],
                "repeat": grid.repeat,
            },
        )
    return classes
