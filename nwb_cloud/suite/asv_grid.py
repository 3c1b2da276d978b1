"""The asv benchmark classes, generated from the registries: one class per workload, params = the other axes.

``benchmarks/`` only imports :func:`benchmark_classes`. The prepared run is found through ``NWB_CLOUD_STATE``
(or the settings' default state path); when it is missing, importing the benchmarks fails with a message,
so an unprepared ``asv run`` stops loudly instead of skipping everything.

Each sample is a cold read in a process of its own, through the shaping proxy of its network profile (a
separate process, so the proxy never competes with the reader for the GIL). asv's ``forkserver`` launch forks
one process per benchmark run from a server that imported the suite once; a run takes ``repeat`` samples in
that process, and ``rounds`` runs per cell, one per pass over the whole grid (asv runs round N of every
benchmark, then round N-1, ...). So ``repeat = 1`` and ``rounds`` = the samples a cell takes make every sample
a fresh process: no client, connection, fsspec instance, h5py object or in-memory cache survives from one
sample to the next, and nwb-index's local index cache is an empty directory of each open's own (its warm-cache
variant is the labelled row ``nwb-index-warm``). A class's ``rounds`` is the most samples any of its cells takes
(:meth:`~nwb_cloud.suite.state.Grid.samples`); a cell that takes fewer sits out the first passes (asv merges a
skipped round with the later ones, never a later skip with earlier samples).

``time_workload`` is timed by asv; each timed sample is appended to the run's sample log
(:mod:`nwb_cloud.suite.samples`: its time, its client CPU, its traffic, its process and grid pass), and the
``track_*`` benchmarks (asv runs them once, after the last pass) report medians of those same samples, beside
the physical bound of the cell (the bound's parts, which do not depend on the read method, are in the
run-info file that ``nwb-cloud bench`` writes beside the results).

A cell the method cannot represent (``access.Unsupported``, e.g. an index of an LZF dataset) is skipped with
the reason ("unsupported": asv's n/a), never failed; a read that raises or returns wrong data fails.
"""

from __future__ import annotations

import atexit
import gc
import os
import re
import resource
import time
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import psutil
from asv_runner.benchmarks.mark import SkipNotImplemented

from nwb_cloud.access import MethodUnavailable, Unsupported, get_method, load_methods, nwb_index
from nwb_cloud.analysis import floor_for
from nwb_cloud.analysis.errors import AnalysisError
from nwb_cloud.cloud.calibrate import cpu_s
from nwb_cloud.cloud.endpoint import require_answering
from nwb_cloud.cloud.profiles import get_profile
from nwb_cloud.cloud.proxy_process import ProxyClient, ProxyProcess
from nwb_cloud.settings import Settings
from nwb_cloud.suite.cell import Cell, CellRun
from nwb_cloud.suite.memory import PeakGrowth
from nwb_cloud.suite.proxies import PROXIES, SERVER_PID
from nwb_cloud.suite.samples import failure_log, sample_log, unsupported_log, visit_log
from nwb_cloud.suite.state import Grid, RunState
from nwb_cloud.workloads import get_workload

NAN = float("nan")
UNSUPPORTED = "unsupported"  # the first word of the skip reason of a cell the method cannot represent
METHOD_FILES = "method_files"  # state.extra: Python files whose METHODS rows the run measures too


@cache
def load_state() -> RunState:
    """The prepared run, whose endpoint must be answering: a stopped one fails the discovery, loudly."""
    state = RunState.load(Settings.from_env().state_path)
    if state.catalog.store.endpoint_url:
        require_answering(state.catalog.store.endpoint_url)
    for path in state.extra.get(METHOD_FILES, []):  # read methods from outside the package (see access)
        load_methods(path)
    # the warm-index variant reads the cache prepare filled, wherever this process's environment points
    nwb_index.configure(cache_dir=Path(state.data_dir) / nwb_index.CACHE_FOLDER)
    return state


@cache
def proxy_for(profile_name: str) -> ProxyProcess | ProxyClient | None:
    """The shaping proxy of a profile: the run's own (``nwb-cloud bench`` starts one per profile for the whole
    run, see :mod:`nwb_cloud.suite.proxies`), else one started for this process; None when reading real AWS."""
    state = load_state()
    shared = state.extra.get(PROXIES, {}).get(profile_name)
    if shared:
        return ProxyClient.from_dict(shared)
    store = state.catalog.store
    if store.endpoint_url is None:
        return None
    proxy = ProxyProcess(store.endpoint_url, get_profile(profile_name)).start()
    atexit.register(proxy.stop)
    return proxy


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
    """A cold read per sample, in a process of its own: a fresh handle (untimed), the workload (timed), the
    result checked in teardown (see the module docstring)."""

    workload: str
    param_names = ["method", "layout", "profile"]
    number = 1  # one call per sample, each with its own fresh handle
    repeat = 1  # one sample per process ...
    rounds = 1  # ... and one process per sample: set per class to the most samples a cell of it takes
    grid_rounds = 1  # passes over the whole grid (the most rounds of any class)
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
        unsupported = state.extra.get("prepare_unsupported", {}).get(f"{method}|{modality}/{layout}")
        if unsupported:
            raise NotImplementedError(f"{UNSUPPORTED}: {unsupported}")
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

    def _visit(self) -> dict:
        """This process's place among the cell's samples; skips a pass the cell sits out (asv's n/a)."""
        visit = visit_log(self.state).count_and_append(self.cell.label)  # 1: the class's first round
        taken = self.state.grid.samples(*self._cell_axes())
        sits_out = self.rounds - taken
        if visit <= sits_out:
            raise SkipNotImplemented(f"{self.cell.label} takes {taken} of {self.rounds} rounds")
        return {
            "sample": visit - sits_out,  # 1 .. the cell's samples
            "grid_pass": self.grid_rounds - self.rounds + visit,  # 1 .. the run's passes over the grid
            **process_facts(),
        }

    def _cell_axes(self) -> tuple[str, str, str, str]:
        return self.workload, self.cell.method, self.cell.layout, self.cell.profile

    def time_workload(self, method: str, layout: str, profile: str) -> None:
        with CLOCK.paused():
            self.sample = self._visit()
            with self._failures("open"):
                cell_run = self._cell_run()  # made first: it sets ``self.traffic`` (the profile's proxy counters)
                opening = self.traffic.mark() if self.traffic else None
                open_cpu, open_started = time.process_time(), time.perf_counter()
                cell_run.setup()  # a fresh handle, unless opening is the workload itself
                self.sample.update(open_s=time.perf_counter() - open_started, open_cpu_s=time.process_time() - open_cpu)
                # what the untimed open cost on the wire (a read-ahead cache may fetch the selection here)
                self.open_cost = (self.traffic.snapshot() - opening).to_dict() if self.traffic else {}
                self.before = self.traffic.mark() if self.traffic else None
            memory = PeakGrowth()  # what the timed part holds at most, above the open handle
            memory.start()
            serving = _ServingCpu(self.state, self.cell.profile)
        with self._failures("run"):
            started, cpu, system = CLOCK(), time.process_time(), _system_cpu()
            self.cell_run.run()
            self.seconds, self.cpu_s = CLOCK() - started, time.process_time() - cpu
            self.system_cpu_s = _system_cpu() - system
        with CLOCK.paused():
            self.serving_cpu_s = serving.spent()
        self.peak_growth = memory.bytes()
        took_sample(self.cell.label)

    def teardown(self, method: str, layout: str, profile: str) -> None:
        cell_run = getattr(self, "cell_run", None)
        if cell_run is None:
            return
        # The process ends after this sample, so the handle's reference cycles need never be collected. Closing
        # it runs a full collection (``access.Opened.close``), which would walk every object the forkserver
        # imported and copy their pages (~90 ms a sample, ~1 min of a quick run); frozen, they are skipped.
        gc.freeze()
        if cell_run.result is None:
            cell_run.close()
            return
        record = {"seconds": self.seconds, "cpu_s": self.cpu_s, "system_cpu_s": self.system_cpu_s, **self.sample}
        if getattr(self, "peak_growth", None) is not None:
            record["peak_growth_bytes"] = self.peak_growth
        if getattr(self, "serving_cpu_s", None) is not None:
            record["serving_cpu_s"] = self.serving_cpu_s
        if self.traffic is not None:
            record.update((self.traffic.snapshot() - self.before).to_dict())
            record.update({f"open_{name}": value for name, value in self.open_cost.items()})
        with self._failures("check"):
            cell_run.finish()  # raises WrongRead: a wrong read fails the benchmark and is not logged
        sample_log(self.state).append(self.cell.label, record)

    def _failures(self, stage: str):
        return recorded_outcome(self.state, self.cell.label, stage, Unsupported)

    # -- what the timed samples cost on the wire (medians over this run's samples of this cell) -----------
    def _median(self, field: str) -> float:
        """asv runs the tracks after the last pass: NaN when no sample of the cell succeeded."""
        value = sample_log(self.state).median(self.cell.label, field)
        return NAN if value is None else float(value)

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


_PROCESS_SAMPLES: list[str] = []  # the samples this process took (a forked process starts with none)


@contextmanager
def recorded_outcome(state, label: str, stage: str, unsupported: type[Exception]):
    """asv keeps no message for a failed benchmark: keep it in the run's failure log for the report.

    ``unsupported`` (the method or tool cannot represent the asset) is a skip with its reason, not a failure."""
    try:
        yield
    except unsupported as error:
        message = f"{UNSUPPORTED}: {error}".splitlines()[0][:400]
        unsupported_log(state).append(label, {"reason": message})
        raise SkipNotImplemented(message) from None
    except Exception as error:
        message = f"{stage}: {type(error).__name__}: {error}".splitlines()[0][:400]
        failure_log(state).append(label, {"error": message})
        raise


class _ServingCpu:
    """The CPU the embedded server and the profile's proxy spend from now to :meth:`spent` (their threads'
    run times, :func:`~nwb_cloud.cloud.calibrate.cpu_s`): what serving a sample's timed part cost the cores the
    reader shares, measured, beside the run's estimate from its calibration. None where either process is not
    known (real S3, a proxy started by this process) or cannot be read."""

    def __init__(self, state: RunState, profile: str):
        proxy = proxy_for(profile)
        pids = (state.extra.get(SERVER_PID), getattr(proxy, "pid", None))
        self._pids = pids if all(isinstance(pid, int) for pid in pids) else ()
        self._before = self._now()

    def _now(self) -> float | None:
        try:
            return sum(cpu_s(pid) for pid in self._pids) if self._pids else None
        except (OSError, psutil.Error):
            return None

    def spent(self) -> float | None:
        now = self._now()
        return None if now is None or self._before is None else now - self._before


def _system_cpu() -> float:
    """CPU seconds this process has spent in the kernel (page faults, memory compaction, system calls)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def process_facts() -> dict:
    """The process taking a measurement, and how many it took before (``process_samples`` 1: none)."""
    return {"pid": os.getpid(), "process_samples": 1 + len(_PROCESS_SAMPLES)}


def took_sample(label: str) -> None:
    """Count a measurement this process took (the next one's ``process_samples`` says so)."""
    _PROCESS_SAMPLES.append(label)


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


BENCHMARK_MODULE = "streaming"  # benchmarks/streaming.py publishes benchmark_classes(): asv names them so


def selection(grid: Grid, within: str | None = None) -> list[str]:
    """asv ``--bench`` patterns selecting the grid's measured cells, and every benchmark outside its classes.

    asv forks a process for every combination of a class's params, pass after pass, even for one whose
    ``setup`` skips it (~11 ms each): a quick run's classes held ~3,500 such runs for 138 measured cells.
    A combination no pattern selects is the only kind asv does not fork for. ``within`` is the caller's own
    pattern (asv ``--bench``), which every selected benchmark must match as well.
    """
    scope = f"(?=.*(?:{within}))" if within else ""
    by_class: dict[str, list[str]] = {}
    for workload, method, layout, profile in grid.cells():
        params = ", ".join(re.escape(repr(value)) for value in (method, layout, profile))
        by_class.setdefault(_class_name(workload), []).append(params)
    patterns = [
        rf"^{scope}{BENCHMARK_MODULE}\.{name}\.\w+\((?:{'|'.join(cells)})\)$" for name, cells in by_class.items()
    ]
    return [*patterns, rf"^{scope}(?!{BENCHMARK_MODULE}\.)"]


def benchmark_classes() -> dict[str, type]:
    state = load_state()
    grid = state.grid
    classes = {}
    cells, rounds = grid.cells(), grid.rounds()
    for workload in grid.workloads:
        methods, layouts, profiles = grid.axes_of(workload)  # the values some measured cell needs
        if not methods:
            continue
        samples = [grid.samples(*cell) for cell in cells if cell[0] == workload]
        classes[_class_name(workload)] = type(
            _class_name(workload),
            (StreamingBenchmark,),
            {
                "__doc__": get_workload(workload).description,
                "workload": workload,
                "params": [methods, layouts, profiles],
                "rounds": max(samples),
                "grid_rounds": rounds,
            },
        )
    return classes
