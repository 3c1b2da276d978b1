"""The reliability table: every read method under every fault scenario of S3, classified by the probe.

For each method: a control probe without faults (the method must read the asset exactly, or its fault rows
say nothing and are marked "not probed"), then one probe per scenario of
:data:`nwb_cloud.cloud.faults`/:data:`~nwb_cloud.cloud.reliability.SCENARIOS`, each through its own
fault-injecting proxy. The read is the ``ecephys_electrode`` workload with its open (pynwb open + one
electrode's whole trace), checked for exact equality against the local source file.

Choices, and why:

* **Asset.** ``small`` (default): a dedicated 32-channel recording of six NeuroConv-default chunks (~10 MB
  each, gzip), 42 MB, so that the electrode read crosses several ranged GETs for every method, even for
  fsspec's 5 MiB read-ahead; faults then fire inside the read, not only on its first request. ``tiny`` is
  the suite's 2 MB file (one chunk; some methods then read it in a single GET): for tests and smoke runs.
* **Which requests a one-fault scenario hits.** The scenarios hit the first *ranged* GET (a data read).
  A method whose control probe made no ranged GET (hdmf-zarr reads whole chunk objects) gets the same
  scenario on its first GET of any kind instead, and its rows say so (``eligible``); otherwise no fault
  would ever reach it. A method whose open GETs a whole object besides (an index: nwb-index's sidecar on
  a cold open, kerchunk's, a LINDI JSON; remfile's length probe, an aborted GET) also gets every one-fault
  scenario on that first whole-object GET (``<kind>-whole-get``, :func:`whole_get_scenarios`): a cold open
  meets the fault there first. nwb-index is
  probed cold (its headline row: empty cache, sidecar GET) and warm (``nwb-index-warm``: the cached index,
  a HEAD only). Page-buffer variants are left out: the asset is not paged, so they read it as their base.
* **Hang limit.** The stall never ends (:data:`~nwb_cloud.cloud.reliability.STALL_S`: an hour), as on a
  dead connection. A probe is a hang only if it outlasts every reader's own timeout: the longest here is
  aiohttp's 300 s request total (fsspec's HTTPS file system); botocore/s3fs and obstore give up after
  60 s (:data:`nwb_cloud.cloud.store.READ_TIMEOUT_S`), remfile and LINDI (requests) have none.
  :data:`HANG_LIMIT_S` (360 s) leaves a minute for the read before the stall. The same limit applies to
  every scenario: a reader that hangs without a stall is a finding as well.
* **Concurrency.** Each probe runs in a worker process of its own (spawned: no thread or socket of
  another probe is inherited by a reader forked from it; an inherited socket would keep a reset or
  truncated connection open). A new probe starts when the probes' processes (and the endpoint) use less
  than ``jobs`` cores (2: this machine's) and the machine has half a core free, measured from CPU times
  (:class:`_CpuLoad`); and always when none of ours computes. A probe that waits out a stall or a retry
  backoff uses no CPU, so those waits overlap with the other probes instead of adding up. The controls
  run first, the scenarios that can stall next (their waits are the long ones). Outcomes do not depend
  on this; the ``seconds`` of a probe are wall times on a shared machine (indicative only). Spawned
  workers re-import the caller's main module: a script that calls :func:`run_table` needs the usual
  ``if __name__ == "__main__":`` guard (the ``nwb-cloud`` command and notebooks need nothing).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import multiprocessing
import os
import platform
import socket
import subprocess
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from nwb_cloud import processes
from nwb_cloud.access import get_method, nwb_index
from nwb_cloud.cloud.faults import STALL, Faults
from nwb_cloud.cloud.profiles import get_profile
from nwb_cloud.cloud.reliability import EXACT, SCENARIOS, STALL_S, WRONG_DATA, probe
from nwb_cloud.cloud.store import Store
from nwb_cloud.cloud.transfer import upload
from nwb_cloud.datasets.catalog import Asset, Catalog, existing, prepare_embedded
from nwb_cloud.datasets.layouts import get_layout
from nwb_cloud.datasets.modalities import get_modality
from nwb_cloud.datasets.signals import EcephysSpec
from nwb_cloud.datasets.writer import write_recording
from nwb_cloud.errors import NwbCloudError
from nwb_cloud.files import write_text_whole
from nwb_cloud.suite.cell import REFERENCE_METHOD, Cell, CellRun

WORKLOAD = "ecephys_electrode"  # opens the file, then reads one electrode across every chunk of the series
LAYOUT = "neuroconv-default"  # what a lab gets from NeuroConv
SIZES = ("small", "tiny")
SMALL_SPEC = EcephysSpec(n_samples=6 * 156_250, n_channels=32)  # six of NeuroConv's (156250, 32) chunks
SMALL_PREFIX = "reliability"  # object key prefix of the dedicated asset

CONTROL = "no-fault"  # the control probe's scenario name in the table
UNAVAILABLE, NOT_PROBED = "unavailable", "not probed"
HANG_LIMIT_S = 360.0
DEFAULT_JOBS = 2
MAX_WORKERS = 12  # probes in flight at once (most of them waiting out a stall); each worker ~250 MB
POLL_S = 0.25
LOAD_WINDOW_S = 1.0  # CPU use is averaged over this long
RAMP_S = 1.5  # a probe this young counts as one busy core: its CPU use does not show yet
RELIABILITY_DIR = "reliability"


class ReliabilityError(NwbCloudError):
    """The reliability table cannot be run as asked (unknown scenario or size, a broken probe worker)."""


# -- what is probed -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MethodRead:
    """Open the asset with one registered read method and read the workload's selection (runs in the reader).

    Setup, run and close of :class:`CellRun`, not ``once()``: the probe compares the raw result itself, and
    ``once()`` would turn wrong data into a ``WrongRead`` exception, which the probe files as an error.
    """

    catalog: Catalog
    cell: Cell

    def __call__(self, store: Store) -> Any:
        run = CellRun(self.catalog, self.cell, store=store)
        run.setup()
        try:
            return run.run().raw
        finally:
            run.close()


@dataclass(frozen=True)
class Subject:
    """One row of the table: a name and a picklable ``read(store) -> data``; ``skip`` says why it is not probed."""

    name: str
    read: Callable[[Store], Any] | None
    skip: tuple[str, str] | None = None  # (outcome, reason), e.g. ("unavailable", "h5py has no ROS3 driver")


def method_subjects(catalog: Catalog, asset: Asset, methods: list[str], prepare_failures: dict) -> list[Subject]:
    """A subject per read method; unavailable ones and those whose preparation failed are kept, with the reason."""
    subjects = []
    for name in methods:
        method = get_method(name)
        reason = method.unavailable()
        failure = prepare_failures.get(f"{name}|{asset.name}")
        if reason:
            subjects.append(Subject(name, None, (UNAVAILABLE, reason)))
        elif failure:
            subjects.append(Subject(name, None, (NOT_PROBED, f"preparing the method failed: {failure}")))
        else:
            subjects.append(Subject(name, MethodRead(catalog, Cell(WORKLOAD, name, asset.layout))))
    return subjects


def expected_read(catalog: Catalog, asset: Asset) -> Any:
    """The selection as read from the local source file."""
    return CellRun(catalog, Cell(WORKLOAD, REFERENCE_METHOD, asset.layout)).expected().raw


def scenarios_named(names: list[str] | None) -> dict[str, Faults]:
    if not names:
        return dict(SCENARIOS)
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        raise ReliabilityError(f"unknown fault scenario {', '.join(map(repr, unknown))}; known: {', '.join(SCENARIOS)}")
    return {name: SCENARIOS[name] for name in names}


# -- the asset --------------------------------------------------------------------------------------------
def reliability_catalog(store: Store, data_dir: Path, size: str = "small", seed: int = 0, log=print) -> Catalog:
    """A catalog holding the one asset the table reads, generated (cached) and uploaded if the store lacks it."""
    if size == "tiny":
        return prepare_embedded(store, data_dir, "tiny", seed, ["ecephys"], [LAYOUT], progress=False, log=log)
    if size != "small":
        raise ReliabilityError(f"unknown reliability asset size {size!r}; known: {', '.join(SIZES)}")
    base = get_modality("ecephys")
    modality = dataclasses.replace(base, sizes={"small": SMALL_SPEC})
    written = write_recording(modality, get_layout(LAYOUT), "small", seed, Path(data_dir) / "assets")
    key = f"{SMALL_PREFIX}/{written.path.name}"
    local_size = written.path.stat().st_size
    remote = existing(store, key)
    if remote is None or remote["size"] != local_size:
        log(f"uploading the reliability asset ({local_size / 1e6:.0f} MB) to {key}")
        upload(store, written.path, key, progress=False)
        remote = existing(store, key) or {"etag": ""}
    catalog = Catalog(store=store, source="embedded", size="small", seed=seed)
    catalog.add(
        Asset(
            modality=modality.name,
            layout=LAYOUT,
            key=key,
            series=modality.series_path,
            size_bytes=local_size,
            etag=remote["etag"],
            chunk_shape=written.chunk_shape,
            local_path=str(written.path),
            write_seconds=written.seconds or None,
        )
    )
    return catalog


# -- running the probes -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Job:
    """What a worker process needs for one probe (pickled to it)."""

    read: Callable[[Store], Any]
    expected: Any
    store: Store
    upstream_url: str
    faults: Faults
    profile: str
    limit_s: float


def _start_worker(parent: int, index_config: nwb_index.Config) -> None:
    """A probe worker dies with the table's process, and reads with its configuration: a spawned process
    inherits none of this one's module state (the index cache the warm variant was prepared in included)."""
    processes.die_with(parent)
    nwb_index.configure(**{f.name: getattr(index_config, f.name) for f in dataclasses.fields(index_config)})


def _probe_in_worker(job: _Job) -> dict:
    profile = get_profile(job.profile)
    result = probe(job.read, job.expected, job.store, job.upstream_url, job.faults, profile, job.limit_s, quiet=True)
    return {**result.to_dict(), "tested": result.tested}


@dataclass(order=True)
class _Task:
    priority: tuple
    subject: Subject = field(compare=False)
    scenario: str = field(compare=False)
    faults: Faults = field(compare=False)
    eligible: str = field(compare=False, default="")


class _CpuLoad:
    """Cores in use lately: by this process's descendants (probe workers, their readers, the endpoint), and by
    the whole machine (other work shares it: our probes must not be started into a saturated machine)."""

    def __init__(self, window_s: float = LOAD_WINDOW_S):
        self.window_s = window_s
        self._me = psutil.Process()
        self._cpu: dict[int, float] = {}
        self._machine = _machine_busy_seconds()
        self._samples: deque[tuple[float, float, float]] = deque()  # (when, ours, machine) CPU s since the last
        self._read()
        self._samples.append((time.monotonic(), 0.0, 0.0))

    def _read(self) -> tuple[float, float]:
        ours, current = 0.0, {}
        for process in self._me.children(recursive=True):
            try:
                times = process.cpu_times()
            except psutil.Error:  # ended meanwhile
                continue
            current[process.pid] = times.user + times.system
            ours += max(0.0, current[process.pid] - self._cpu.get(process.pid, 0.0))
        self._cpu = current
        machine, self._machine = self._machine, _machine_busy_seconds()
        return ours, max(0.0, self._machine - machine)

    def cores(self) -> tuple[float, float]:
        """(ours, the machine's), averaged over the last ``window_s`` or so."""
        now = time.monotonic()
        self._samples.append((now, *self._read()))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self.window_s:
            self._samples.popleft()
        span = now - self._samples[0][0]
        recent = list(self._samples)[1:]
        if span <= 0:
            return 0.0, 0.0
        return sum(s[1] for s in recent) / span, sum(s[2] for s in recent) / span


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def _may_start(ours: float, machine: float, ramping: int, jobs: int) -> bool:
    """Start another probe? While ours use under ``jobs`` cores and the machine has half a core free; and
    always when none of ours is computing (all wait on a stall or a backoff), so that the table progresses
    on a machine others keep busy."""
    if ours + ramping < 0.25:
        return True
    return ours + ramping + 0.5 <= jobs and (psutil.cpu_count() or 1) - machine - ramping >= 0.5


def can_stall(faults: Faults) -> bool:
    return STALL in faults.schedule.values() or faults.stall_probability > 0


def run_table(
    subjects: list[Subject],
    expected: Any,
    store: Store,
    upstream_url: str,
    scenarios: dict[str, Faults],
    profile: str = "in-region",
    limit_s: float = HANG_LIMIT_S,
    jobs: int = DEFAULT_JOBS,
    on_row: Callable[[dict, int, int], None] | None = None,
) -> list[dict]:
    """Probe every subject under the control and every scenario; one row (a dict) per subject x scenario.

    ``on_row(row, done, total)`` is called as rows come in (progress). Rows come back in subject, then
    scenario order (control first).
    """
    get_profile(profile)  # an unknown name fails here, before any worker starts
    if jobs < 1:
        raise ReliabilityError(f"jobs must be at least 1, got {jobs}")
    order = {name: i for i, name in enumerate([CONTROL, *scenarios])}
    total = len(subjects) * len(order)
    rows: list[dict] = []

    def add(row: dict) -> None:
        rows.append(row)
        if on_row:
            on_row(row, len(rows), total)

    sequence = itertools.count()
    pending: list[_Task] = []
    for subject in subjects:
        if subject.skip:
            outcome, reason = subject.skip
            for scenario in order:
                add({"method": subject.name, "fault": scenario, "outcome": outcome, "tested": False, "error": reason})
        else:
            pending.append(_Task((0, next(sequence)), subject, CONTROL, Faults()))
    heapq.heapify(pending)

    def after_control(task: _Task, row: dict) -> None:
        nonlocal total
        whole_faults = whole_get_scenarios(scenarios) if _whole_object_gets(row) > 0 else {}
        if row["outcome"] != EXACT:
            reason = f"fails without faults ({row['outcome']}): {row.get('error') or 'no message'}"
            for scenario in scenarios:
                add({"method": task.subject.name, "fault": scenario, "outcome": NOT_PROBED, "tested": False,
                     "error": reason})  # fmt: skip
            return
        ranged = bool(row["responses"].get("206"))  # the proxy answers every ranged GET with S3's 206
        for scenario, faults in scenarios.items():
            eligible = "every GET" if not faults.ranged_only else "ranged GETs"
            if faults.ranged_only and not ranged:
                faults = dataclasses.replace(faults, ranged_only=False)
                eligible = "every GET (the method made no ranged GET)"
            priority = (1 if can_stall(faults) else 2, next(sequence))  # long waits start first, to overlap
            heapq.heappush(pending, _Task(priority, task.subject, scenario, faults, eligible))
        for scenario, faults in whole_faults.items():
            priority = (1 if can_stall(faults) else 2, next(sequence))
            eligible = "the first whole-object GET (an index the open fetches, or a length probe)"
            heapq.heappush(pending, _Task(priority, task.subject, scenario, faults, eligible))
            total += 1

    context = multiprocessing.get_context("spawn")
    workers = max(1, min(MAX_WORKERS, len(pending) * len(order)))
    running: dict[Future, tuple[_Task, float]] = {}
    load = _CpuLoad()
    startup = (os.getpid(), nwb_index.configure())
    executor = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker, initargs=startup)
    try:
        while pending or running:
            now = time.monotonic()
            ours, machine = load.cores()
            ramping = sum(1 for _, started in running.values() if now - started < RAMP_S)
            while pending and len(running) < workers and _may_start(ours, machine, ramping, jobs):
                task = heapq.heappop(pending)
                job = _Job(task.subject.read, expected, store, upstream_url, task.faults, profile, limit_s)
                running[executor.submit(_probe_in_worker, job)] = (task, time.monotonic())
                ramping += 1
            done, _ = wait(list(running), timeout=POLL_S, return_when=FIRST_COMPLETED)
            for future in done:
                task, _ = running.pop(future)
                try:
                    result = future.result()
                except Exception as error:  # the worker, not the reader, failed: no outcome to report
                    raise ReliabilityError(
                        f"the probe of {task.subject.name} under {task.scenario} failed in its worker: "
                        f"{type(error).__name__}: {error}"
                    ) from error
                row = _row(task, result, limit_s, store)
                add(row)
                if task.scenario == CONTROL:
                    after_control(task, row)
    finally:
        if running:  # interrupted: end the workers now (their readers' connections die with their proxies)
            for process in list((executor._processes or {}).values()):  # no public way before Python 3.14
                process.terminate()
        executor.shutdown(wait=True, cancel_futures=True)
    names = {s.name: i for i, s in enumerate(subjects)}
    order.update({name: len(order) + i for i, name in enumerate(whole_get_scenarios(scenarios))})
    return sorted(rows, key=lambda r: (names[r["method"]], order[r["fault"]]))


WHOLE_GET_SUFFIX = "-whole-get"


def whole_get_scenarios(scenarios: dict[str, Faults]) -> dict[str, Faults]:
    """Each one-fault scenario again, on the first GET of a whole object (what a cold open fetches beside
    ranges: an index document, or a length probe)."""
    return {
        name.removesuffix("-once") + WHOLE_GET_SUFFIX: dataclasses.replace(faults, ranged_only=False, whole_only=True)
        for name, faults in scenarios.items()
        if faults.schedule
    }


def _whole_object_gets(row: dict) -> int:
    """GETs of a whole object in a probe: answered 200 (a ranged GET gets 206), HEADs (also 200) set apart."""
    return int(row["responses"].get("200", 0)) - int(row.get("requests_by_method", {}).get("HEAD", 0))


def _row(task: _Task, result: dict, limit_s: float, store: Store) -> dict:
    row = {
        "method": task.subject.name,
        "fault": task.scenario,
        "outcome": result["outcome"],
        "tested": result["tested"],
        "seconds": round(result["seconds"], 3),
        "faults_injected": result["faults_injected"],
        "requests": result["requests"],
        "requests_by_method": result.get("requests_by_method", {}),
        "responses": {str(k): v for k, v in sorted(result["responses"].items())},
        "error": _scrub(result["error"], store),
        "limit_s": limit_s,
    }
    if task.scenario != CONTROL:
        row["eligible"] = task.eligible
    return row


def _scrub(text: str | None, store: Store) -> str | None:
    """The probe already drops URL queries and SigV4 parameters; the store's own keys never pass either."""
    if text is None:
        return None
    for secret in (store.access_key, store.secret_key):
        if secret:
            text = text.replace(secret, "…")
    return text


# -- the results file --------------------------------------------------------------------------------------
def table_payload(
    rows: list[dict],
    catalog: Catalog,
    scenarios: dict[str, Faults],
    profile: str,
    limit_s: float,
    jobs: int,
    seconds: dict[str, float],
) -> dict:
    """The results file: context the report reads (profile, workload, layout) and one row per method x fault."""
    asset = next(iter(catalog.assets.values()))
    return {
        "run_id": f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}",
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "commit": _commit(),
        "machine": {"host": socket.gethostname(), "cores": os.cpu_count(), "python": platform.python_version()},
        "profile": profile,
        "workload": WORKLOAD,
        "layout": asset.layout,
        "size": catalog.size,
        "asset": {"key": asset.key, "size_bytes": asset.size_bytes, "chunk_shape": asset.chunk_shape},
        "control": CONTROL,
        "scenarios": {n: faults.to_dict() for n, faults in {**scenarios, **whole_get_scenarios(scenarios)}.items()},
        "stall_s": STALL_S,
        "limit_s": limit_s,
        "jobs": jobs,
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "wrong_data": sorted({r["method"] for r in rows if r["outcome"] == WRONG_DATA}),
        "rows": rows,
    }


def write_table(payload: dict, results_dir: Path) -> Path:
    """``results_dir/reliability/<run_id>.json``, written whole or not at all."""
    path = Path(results_dir) / RELIABILITY_DIR / f"{payload['run_id']}.json"
    return write_text_whole(path, json.dumps(payload, indent=1) + "\n")


def _commit() -> str | None:
    try:
        answer = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, cwd=Path(__file__).parent
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if answer.returncode != 0:
        return None
    return answer.stdout.strip() or None
