"""The asv benchmark classes, generated from the registries: one class per workload, params = the other axes.

``benchmarks/`` only imports :func:`benchmark_classes`. The prepared run is found through ``NWB_CLOUD_STATE``
(or the settings' default state path); when it is missing, importing the benchmarks fails with a message,
so an unprepared ``asv run`` stops loudly instead of skipping everything.

Each sample is a cold read through the shaping proxy of its network profile (a separate process, so the
proxy never competes with the reader for the GIL). ``time_workload`` is timed by asv; the traffic of each
timed sample is appended to the run's sample log, and the ``track_*`` benchmarks report medians of those
same samples, beside the physical bound of the cell (the bound's parts, which do not depend on the read
method, are in the run-info file that ``nwb-cloud bench`` writes beside the results).
"""

from __future__ import annotations

import atexit
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path

from nwb_cloud.access import MethodUnavailable, get_method
from nwb_cloud.analysis import floor_for
from nwb_cloud.analysis.errors import AnalysisError
from nwb_cloud.cloud.endpoint import require_answering
from nwb_cloud.cloud.profiles import get_profile
from nwb_cloud.cloud.proxy_process import ProxyProcess
from nwb_cloud.settings import Settings
from nwb_cloud.suite.cell import Cell, CellRun
from nwb_cloud.suite.samples import SampleLog
from nwb_cloud.suite.state import RunState
from nwb_cloud.workloads import get_workload

NAN = float("nan")


@cache
def load_state() -> RunState:
    """The prepared run, whose endpoint must be answering: a stopped one fails the discovery, loudly."""
    state = RunState.load(Settings.from_env().state_path)
    if state.catalog.store.endpoint_url:
        require_answering(state.catalog.store.endpoint_url)
    return state


@cache
def proxy_for(profile_name: str) -> ProxyProcess | None:
    """The shaping proxy of a profile, started once per benchmark process; None when reading real AWS."""
    store = load_state().catalog.store
    if store.endpoint_url is None:
        return None
    proxy = ProxyProcess(store.endpoint_url, get_profile(profile_name)).start()
    atexit.register(proxy.stop)
    return proxy


def sample_log(state: RunState) -> SampleLog:
    return SampleLog(Path(state.data_dir) / "samples" / f"{state.run_id}.jsonl")


def failure_log(state: RunState) -> SampleLog:
    return SampleLog(Path(state.data_dir) / "samples" / f"{state.run_id}-failures.jsonl")


class PausableClock:
    """asv's timer for the grid: wall time minus the intervals spent in :meth:`paused`.

    Opening a fresh handle happens inside the timed call (so the ``track_*`` benchmarks, which share the
    class's ``setup``, never pay for an open they do not use) but is excluded from the time.
    """

    def __init__(self):
        self.paused_total = 0.0

    def __call__(self) -> float:
        return time.perf_counter() - self.paused_total

    @contextmanager
    def paused(self):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.paused_total += time.perf_counter() - started


CLOCK = PausableClock()


class StreamingBenchmark:
    """A cold read per sample: a fresh handle (untimed), the workload (timed), the result checked in teardown."""

    workload: str
    param_names = ["method", "layout", "profile"]
    number = 1  # one call per sample, each with its own fresh handle
    # one process per cell: asv's default of 2 rounds runs every cell twice (2 x repeat samples), doubling a
    # run whose samples are already independent cold reads
    rounds = 1
    warmup_time = 0
    min_run_count = 1
    timeout = 1800
    timer = CLOCK

    def setup(self, method: str, layout: str, profile: str) -> None:
        self.state = state = load_state()
        self.cell = Cell(self.workload, method, layout, profile)
        self.cell_run = None
        reason = get_method(method).unavailable()
        if reason:
            raise NotImplementedError(f"{method} unavailable here: {reason}")
        excluded = state.grid.exclusion(method, profile, self.workload, layout)
        if excluded:  # a layout for another modality, a method that cannot read the backend, or a grid rule
            raise NotImplementedError(excluded)
        modality = get_workload(self.workload).modality
        failure = state.extra.get("prepare_failures", {}).get(f"{method}|{modality}/{layout}")
        if failure:
            error = MethodUnavailable(f"{method} could not be prepared for {modality}/{layout}: {failure}")
            failure_log(state).append(self.cell.label, {"error": f"prepare: {error}"})
            raise error
        self.traffic = None

    def _cell_run(self) -> CellRun:
        """The cell's runner behind its profile's proxy, made on first use (the bound tracks never need it)."""
        if self.cell_run is None:
            proxy = proxy_for(self.cell.profile)
            store = self.state.catalog.store.via(proxy.url) if proxy else self.state.catalog.store
            self.traffic = proxy.traffic if proxy else None
            expected_dir = Path(self.state.data_dir) / "expected"
            self.cell_run = CellRun(self.state.catalog, self.cell, store=store, expected_dir=expected_dir)
        return self.cell_run

    def time_workload(self, method: str, layout: str, profile: str) -> None:
        with CLOCK.paused(), self._failures("open"):
            cell_run = self._cell_run()  # made first: it sets ``self.traffic`` (the profile's proxy counters)
            opening = self.traffic.mark() if self.traffic else None
            cell_run.setup()  # a fresh handle, unless opening is the workload itself
            # what the untimed open cost on the wire (a read-ahead cache may fetch the selection here)
            self.open_cost = (self.traffic.snapshot() - opening).to_dict() if self.traffic else {}
            self.before = self.traffic.mark() if self.traffic else None
        with self._failures("run"):
            started = CLOCK()
            self.cell_run.run()
            self.seconds = CLOCK() - started

    def teardown(self, method: str, layout: str, profile: str) -> None:
        cell_run = getattr(self, "cell_run", None)
        if cell_run is None:
            return
        if cell_run.result is None:
            cell_run.close()
            return
        record = {"seconds": self.seconds}
        if self.traffic is not None:
            record.update((self.traffic.snapshot() - self.before).to_dict())
            record.update({f"open_{name}": value for name, value in self.open_cost.items()})
        with self._failures("check"):
            cell_run.finish()  # raises WrongRead: a wrong read fails the benchmark and is not logged
        sample_log(self.state).append(self.cell.label, record)

    @contextmanager
    def _failures(self, stage: str):
        """asv keeps no message for a failed benchmark: keep it in the run's failure log for the report."""
        try:
            yield
        except Exception as error:
            message = f"{stage}: {type(error).__name__}: {error}".splitlines()[0][:400]
            failure_log(self.state).append(self.cell.label, {"error": message})
            raise

    # -- what the timed samples cost on the wire (medians over this run's samples of this cell) -----------
    def _median(self, field: str) -> float:
        log = sample_log(self.state)
        if not log.records(self.cell.label):  # asv ran this track first: take one cold sample now
            self.time_workload(*self._params())
            self.teardown(*self._params())
        value = log.median(self.cell.label, field)
        return NAN if value is None else float(value)

    def _params(self) -> tuple[str, str, str]:
        return self.cell.method, self.cell.layout, self.cell.profile

    def track_requests(self, method, layout, profile) -> float:
        return self._median("requests")

    def track_bytes_received(self, method, layout, profile) -> float:
        return self._median("bytes_received")

    def track_peak_connections(self, method, layout, profile) -> float:
        return self._median("peak_connections")

    # -- the physical bound of the cell, and the median sample as a multiple of it ------------------------
    def _floor(self):
        asset = self.state.catalog.asset(get_workload(self.workload).modality, self.cell.layout)
        try:
            return floor_for(asset, self.workload, self.cell.profile, self.state.data_dir)
        except AnalysisError:
            return None

    def track_time_over_bound(self, method, layout, profile) -> float:
        floor = self._floor()
        seconds = self._median("seconds")
        return seconds / floor.seconds if floor and floor.seconds > 0 else NAN


_UNITS = {
    "track_requests": "requests",
    "track_bytes_received": "bytes",
    "track_peak_connections": "connections",
    "track_time_over_bound": "x bound",
}
for _name, _unit in _UNITS.items():
    getattr(StreamingBenchmark, _name).unit = _unit


def _class_name(workload: str) -> str:
    return "".join(part.title() for part in workload.split("_"))


def benchmark_classes() -> dict[str, type]:
    state = load_state()
    grid = state.grid
    classes = {}
    for workload in grid.workloads:
        methods, layouts, profiles = grid.axes_of(workload)  # the values some measured cell needs
        if not methods:
            continue
        classes[_class_name(workload)] = type(
            _class_name(workload),
            (StreamingBenchmark,),
            {
                "__doc__": get_workload(workload).description,
                "workload": workload,
                "params": [methods, layouts, profiles],
                "repeat": grid.repeat,
            },
        )
    return classes
