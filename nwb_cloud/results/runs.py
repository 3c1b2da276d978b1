"""What a reader must know about the run a figure comes from: its name, its length, and its caveats.

Every published figure (report page, guidance page, README blocks) names its run with :func:`run_facts`, and
states the caveats found here, each read from the run's own record: a run that predates fresh-process
sampling, an index read from a warm cache, paged files read without a page buffer. Nothing here is typed in
about a particular run.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass, field

import pandas as pd

from nwb_cloud.results.cells import OK, cell_label
from nwb_cloud.suite.run_info import split_key

WARM_SUFFIX, PAGE_BUFFER_SUFFIX = "-warm", "-pagebuf"  # the labelled variants' names (nwb_cloud.access)
INDEX_METHOD = "nwb-index"


@dataclass
class RunFacts:
    machine: str
    size: str
    commit: str
    run_id: str | None
    date: str | None  # as the run info wrote it (end of the run)
    cores: int | None
    samples: tuple[int, int]  # fewest and most cold samples of a timed cell
    minutes_total: float | None  # preparing + measuring -> run info (end); see ``from_preparing``
    minutes_measuring: float | None  # asv's total duration of the run's benchmarks (all rounds)
    fresh_process: bool  # every sample in a process of its own (the run info's ``sampling`` says so)
    # minutes_total counts from the start of preparing (recorded since 2026-12-04); else from the run id, which
    # is stamped when preparing ends
    from_preparing: bool = False
    caveats: list[Caveat] = field(default_factory=list)

    @property
    def name(self) -> str:
        """``quick run of commit fc49ec9f on vm (2 cores), 2026-11-24``."""
        cores = f" ({self.cores} cores)" if self.cores else ""
        day = f", {self.date[:10]}" if self.date else ""
        return f"{self.size} run of commit {self.commit[:8]} on {self.machine}{cores}{day}"

    @property
    def samples_text(self) -> str:
        low, high = self.samples
        n = f"{low}" if low == high else f"{low}-{high}"
        return f"{n} cold sample{'' if high == 1 else 's'} per cell"


def run_facts(cells: pd.DataFrame, info: dict | None) -> RunFacts:
    """The facts of the one run whose cells are ``cells`` and whose run info is ``info`` (None: not recorded)."""
    info = info or {}
    first = cells.iloc[0]
    timed = cells[(cells["status"] == OK) & (cells["n_samples"].fillna(0) > 0)]
    counts = sorted(set(timed["n_samples"].astype(int))) or [0]
    machine = info.get("machine")
    sampling = info.get("sampling") or {}
    facts = RunFacts(
        machine=str(first["machine"]),
        size=str(first.get("size", "-")),
        commit=str(first["commit"]),
        run_id=info.get("run_id"),
        date=info.get("date"),
        cores=(machine.get("cores") if isinstance(machine, dict) else None) or info.get("cores"),
        samples=(counts[0], counts[-1]),
        minutes_total=_minutes(_started(info), _date(info.get("date"), utc=True))
        if info.get("prepare_started")
        else _minutes(_run_id_time(info.get("run_id")), _date(info.get("date"))),
        from_preparing=bool(info.get("prepare_started")),
        minutes_measuring=_measuring_minutes(cells),
        fresh_process=bool(sampling) and sampling.get("fresh_process_samples") == sampling.get("samples_taken"),
    )
    facts.caveats = caveats(cells, info)
    return facts


@dataclass(frozen=True)
class Caveat:
    short: str  # beside each figure of the run
    long: str  # where the run is described, with the evidence


def caveats(cells: pd.DataFrame, info: dict) -> list[Caveat]:
    """What this run's figures do not say, each found in the run's own record."""
    found = []
    sampling = info.get("sampling")
    if not sampling:
        found.append(Caveat(
            "samples shared a process, no first open in a fresh process",
            "it predates fresh-process sampling (its run info records no sampling): several samples of a cell ran "
            "one after another in one benchmark process, so a process's first-use cost is mixed into the median "
            "and no first open in a fresh process is reported",
        ))  # fmt: skip
    elif sampling.get("fresh_process_samples") != sampling.get("samples_taken"):
        found.append(Caveat(
            "some samples shared a process",
            f"{sampling.get('fresh_process_samples')} of its {sampling.get('samples_taken')} samples were the first "
            "of their process; the others shared a process with an earlier sample",
        ))  # fmt: skip
    warm = warm_index_opens(cells, info)
    if warm:
        found.append(Caveat(
            f"{INDEX_METHOD} opened from a warm index cache",
            f"{INDEX_METHOD} opened from a warm local index cache: its opens received no body bytes (only {warm} "
            "HEAD requests), the index having been cached when the run prepared it, while the other index readers "
            "(kerchunk, LINDI) fetched their index in every sample",
        ))  # fmt: skip
    grid = info.get("grid") or {}
    paged = [layout for layout in grid.get("layouts") or [] if "paged" in layout]
    buffered = [method for method in grid.get("methods") or [] if method.endswith(PAGE_BUFFER_SUFFIX)]
    if paged and not buffered:
        found.append(Caveat(
            "paged files read without an HDF5 page buffer",
            "its paged HDF5 layouts were read without an HDF5 page buffer (no page-buffer variant in its grid): "
            "what it shows of paging is what a reader left at h5py's default gets",
        ))  # fmt: skip
    return found


def warm_index_opens(cells: pd.DataFrame, info: dict) -> int | None:
    """When the cold ``nwb-index`` row's opens fetched no index body (a warm cache): their median HEAD requests."""
    samples = info.get("samples") or {}
    opens = [
        medians
        for (workload, values), medians in ((split_key(label), medians) for label, medians in samples.items())
        if workload.startswith("open_") and values[:1] == [INDEX_METHOD] and isinstance(medians, dict)
    ]
    if not opens or any(m.get("body_bytes_received", 1) > 0 or m.get("open_body_bytes_received", 0) > 0 for m in opens):
        return None
    heads = sorted(m.get("requests_HEAD", m.get("requests", 0)) for m in opens)
    return int(heads[len(heads) // 2])


def below_bound(cell: pd.Series, info: dict) -> str:
    """Why a cell's time is below its physical bound, from what the run recorded about it."""
    medians = (info.get("samples") or {}).get(cell_label(cell)) or {}
    received = medians.get("body_bytes_received")
    touched = cell.get("touched_bytes")
    is_open = str(cell["workload"]).startswith("open_")
    parts = []
    if isinstance(received, int | float) and not _nan(touched) and received < touched:
        what = "metadata" if is_open else "chunk bytes"
        if received == 0:
            why = "so what it read was already local"
        elif is_open:
            why = "so it needed fewer bytes than the file's HDF5 metadata (an index holds them more compactly)"
        else:
            why = "so part of what it read was already local or it needed fewer bytes than the bound counts"
        parts.append(f"it received {_mb(received)} of body in {int(medians.get('requests', 0))} requests against the "
                     f"{_mb(touched)} of {what} the bound counts, {why}")  # fmt: skip
        if cell["method"] == INDEX_METHOD and is_open and received == 0:
            parts.append("its index came from a warm local cache (the run's preparation built and cached it): a warm "
                         "open, not the cold one a user's first open pays")  # fmt: skip
    if is_open and cell.get("binds") == "decode":
        parts.append("the bound of an open is set by this machine's local h5py/pynwb open of the file, which a "
                     "reader that does not parse HDF5 metadata (an index) does not perform")  # fmt: skip
    return "; ".join(parts) or "the run recorded nothing that explains it"


def _started(info: dict) -> datetime.datetime | None:
    """When the run began preparing (UTC, naive, like the run info's ``date``)."""
    return datetime.datetime.fromtimestamp(float(info["prepare_started"]), tz=datetime.UTC).replace(tzinfo=None)


def _measuring_minutes(cells: pd.DataFrame) -> float | None:
    """asv's total duration of the run's benchmarks, in minutes. Not the first ``started_at`` to the run's end:
    with rounds > 1 asv keeps each benchmark's last round's start, which put a 25-minute measurement at 11."""
    seconds = cells["run_measuring_s"].max() if "run_measuring_s" in cells else None
    return None if _nan(seconds) else float(seconds) / 60


def _mb(value: float) -> str:
    return f"{value / 1e6:.2f} MB" if value >= 1e4 else f"{int(value)} bytes"


def _nan(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _run_id_time(run_id: str | None) -> datetime.datetime | None:
    try:
        return datetime.datetime.strptime(str(run_id).split("-")[0], "%Y%m%dT%H%M%S")
    except ValueError:
        return None


def _date(text: str | None, utc: bool = False) -> datetime.datetime | None:
    """The run info's ``date`` (``2026-11-24 22:14:24 UTC``), naive, in the run's own clock (``utc``: only when
    that clock is UTC, to compare with asv's epoch times)."""
    if utc and not str(text).endswith(" UTC"):
        return None
    try:
        return datetime.datetime.strptime(str(text)[:19], "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def _minutes(start: datetime.datetime | None, end: datetime.datetime | None) -> float | None:
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 60
