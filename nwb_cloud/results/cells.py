"""The tidy table of the report: one row per benchmark cell (machine x commit x workload x method x layout x
profile), with its median time and spread, the ``track_*`` values measured beside it, and why it has no time
when it has none.

A cell's status comes from its ``time_workload`` result and the run info: ``ok``; ``failed`` (asv stored null:
the benchmark raised, e.g. a wrong read; or any of its samples failed, as the run info's ``cell_failures``
records); ``unsupported`` (asv n/a because the method cannot represent the asset, e.g. an index of an LZF
dataset: the run info's ``unsupported_cells``); ``unavailable`` (asv n/a because the method cannot run on the
machine, e.g. h5py without ROS3); ``excluded`` (asv n/a because the run's grid leaves the cell out);
``skipped`` (asv n/a with no known reason); ``warm`` (timed, but not a cold read: the read received less than
the compressed chunks its selection touches hold, and less than the selection itself (h5py reads only the
selected part of an unfiltered chunk), so the rest was already in the process, fetched by the
untimed open: an HDF5 page buffer keeps the file pages the open read, and on a small paged file those hold
the data too; its time is kept, and left out of every ranking and verdict, as a failed cell's is).
Track values that are absent, NaN or failed are NaN here and read "not measured" in the report.

Columns from the run info's per-sample figures (:mod:`nwb_cloud.suite.run_info`; NaN when the run did not
record them):

``cpu_s``            median client CPU seconds of the timed part of a sample: the reader's process only (the
                     embedded server and the shaping proxy are other processes), all its threads
``decode_cpu_s``     the CPU decoding the touched chunks takes on this machine (the floor's ``decode_cpu_s``:
                     the fastest exact decoder where one applies; a run info without it gives the local
                     single-threaded h5py read, ``local_s``); for an open, the local pynwb open
``cpu_over_decode``  ``cpu_s / decode_cpu_s``: how much CPU the method spends per unit of the unavoidable work
``serving_cpu_measured_s``  median CPU seconds the embedded server and the shaping proxy spent over a sample's
                     timed part, measured (their processes' threads); ``serving_cpu_s`` below is the estimate
``open_s``           median wall time of the untimed fresh open before a read (NaN for the open workloads)
``peak_growth_bytes``  median of the most resident memory the timed part held at once, above what the
                     process held before it (imports and the open handle excluded); ``chunk_bytes``: what the
                     touched chunks decode to (the floor's)
``local_s``          the wall time this machine's h5py takes to do the same from the local file (the floor's
                     ``local_s``: the selection read, or for an open the pynwb open), and ``time_over_local``
                     ``time_s / local_s``: below 1, streaming beat the local disk
``local_fresh_s``    for an open, the local pynwb open as the first of a new process, imports done (the floor's;
                     an open cell is a method's first open, cold, so this is its like-for-like local figure),
                     and ``time_over_local_fresh`` ``time_s / local_fresh_s``; NaN in runs before it

Columns from the run info's ``first_use`` (a fresh ``python`` to the first selection's data, on the read
cells the run measured it on; :mod:`nwb_cloud.suite.first_use`):

``first_use_s``                median, imports included (interpreter, imports, client, index fetch, open, read)
``first_use_after_imports_s``  median, imports excluded
``first_use_local_s``          the same script against the local file with h5py + pynwb (the baseline)
``first_use_over_local``       ``first_use_s / first_use_local_s``

Columns estimated from a cell's own counts and the run's own records (the profile it measured under, the
serving cost it measured), to tell where a time beyond the bound goes (NaN where the run lacks either):

``cold_read_s``      a read's requests (median count, equal shares of its bytes) on its peak connections, every
                     window starting over at the profile's initial window:
                     :func:`~nwb_cloud.analysis.cost.cold_read_s`, plus the workload's processing
                     (``process_s``, the floor's, as the bound adds it). The bound assumes full rate from the first
                     byte; a read after a pause cannot have it (RFC 5681's restart), so a time near this
                     figure is slow start's, not the reader's
``serving_cpu_s``    the CPU the embedded server and the shaping proxy spend serving the cell's requests and
                     bytes (the run's measured cost per request, and per MB under the cell's profile) on the
                     reader's cores: only when the run info says they shared them
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from nwb_cloud.access import METHODS
from nwb_cloud.access.base import PAGED
from nwb_cloud.analysis import cost
from nwb_cloud.cloud.calibrate import ServingCost
from nwb_cloud.results.asv_results import FAILED, MEASURED, SKIPPED, Record, snake_case
from nwb_cloud.results.run_info import grid_excludes, info_profile, info_unavailable, run_info_for
from nwb_cloud.suite.run_info import cell_key
from nwb_cloud.suite.state import NOT_IN_GRID
from nwb_cloud.workloads import WORKLOADS

OK, FAILED_STATUS, UNAVAILABLE, EXCLUDED, SKIPPED_STATUS = "ok", "failed", "unavailable", "excluded", "skipped"
UNSUPPORTED, WARM = "unsupported", "warm"
# A read that received less than this share of the compressed bytes of the chunks it touches did not fetch its
# data: the wire bytes include headers, so an exact reader receives a little more than all of them.
COLD_SHARE = 0.98
TIME_MEASURE = "time_workload"
STREAMING_SUITE = "streaming"  # the benchmark module of the read grid (benchmarks/streaming.py)
# The track benchmarks of the streaming grid; each becomes a column (NaN when not measured).
TRACKS = (
    "requests",
    "bytes_received",
    "peak_connections",
    "connections_opened",
    "bound_s",
    "bound_decode_s",
    "bound_network_s",
    "selection_bytes",
    "touched_bytes",
)
KEY = ["machine", "commit", "env", "suite", "workload", "method", "layout", "profile"]
NOT_RECORDED = "the benchmark raised; asv keeps no message (see the asv run output)"
FAILED_SAMPLE = "a sample failed: "


def cells_frame(records: list[Record], run_infos: list[dict] | None = None) -> pd.DataFrame:
    """The records of :func:`~nwb_cloud.results.asv_results.load_records` as one row per cell."""
    run_infos = run_infos or []
    rows: dict[tuple, dict] = {}
    for record in records:
        params = dict(record.params)
        method, layout, profile = (str(params.pop(name, "-")) for name in ("method", "layout", "profile"))
        workload = snake_case(record.workload_class) if record.workload_class else record.measure
        label = cell_key(workload, [str(value) for value in record.params.values()])  # asv's order, as logged
        if params:  # axes beyond the streaming grid's: part of the workload's name, so cells stay apart
            workload += "[" + ", ".join(f"{k}={v}" for k, v in params.items()) + "]"
        key = (record.machine, record.commit, record.env, record.suite, workload, method, layout, profile)
        row = rows.setdefault(key, _empty_row(key, record, label))
        if record.file_seconds:
            row["run_measuring_s"] = max(row["run_measuring_s"] or 0, record.file_seconds)
        if record.started_at:
            row["run_started"] = max(row["run_started"] or 0, record.started_at)
            row["run_first_started"] = min(row["run_first_started"] or math.inf, record.started_at)
        if record.measure == TIME_MEASURE:
            _set_time(row, record)
        elif record.outcome == MEASURED:
            name = record.measure.removeprefix("track_")
            row[name if record.kind == "track" else f"{name}_s"] = record.value
            if record.suite != STREAMING_SUITE and row["asv_outcome"] == "absent" and row["status"] != FAILED_STATUS:
                row["status"] = OK  # a suite of tracks only (conversion, index build): measured is its time
        elif record.outcome == FAILED and record.suite != STREAMING_SUITE and row["asv_outcome"] == "absent":
            row["status"] = FAILED_STATUS  # a track that raised fails its cell, whatever the other tracks gave
    frame = pd.DataFrame(list(rows.values()))
    if frame.empty:
        return frame
    for column in TRACKS:
        if column not in frame:
            frame[column] = np.nan
    frame["run_started"] = frame.groupby(["machine", "commit", "env"])["run_started"].transform("max")
    frame["run_first_started"] = frame.groupby(["machine", "commit", "env"])["run_first_started"].transform("min")
    frame["run_measuring_s"] = frame.groupby(["machine", "commit", "env"])["run_measuring_s"].transform("max")
    infos = {run: run_info_for(run_infos, *run) or {} for run in set(zip(frame["machine"], frame["commit"]))}
    frame["reason"] = [_reason(row, infos[row["machine"], row["commit"]]) for row in frame.to_dict("records")]
    frame["size"] = [str(infos[m, c].get("size") or "-") for m, c in zip(frame["machine"], frame["commit"])]
    _fill_from_floors(frame, infos)
    _fill_from_samples(frame, infos)
    _fill_estimates(frame, infos)
    return _derive(frame)


# The run info's per-cell sample medians (``samples``) -> the cell columns they give.
SAMPLE_COLUMNS = {"cpu_s": "cpu_s", "open_s": "open_s", "peak_growth_bytes": "peak_growth_bytes",
                  "serving_cpu_measured_s": "serving_cpu_s"}  # fmt: skip


# The run info's ``first_use`` figures -> the cell columns they give (``local``: the baseline's, same cell).
FIRST_USE_COLUMNS = {"first_use_s": "first_use_s", "first_use_after_imports_s": "after_imports_s"}
LOCAL_BASELINE = "local-h5py"  # nwb_cloud.suite.first_use.LOCAL


def _fill_from_samples(frame: pd.DataFrame, infos: dict) -> None:
    for column in [*SAMPLE_COLUMNS, *FIRST_USE_COLUMNS, "first_use_local_s"]:
        if column not in frame:  # the first-use benchmark's own rows carry first_use_s as a track
            frame[column] = np.nan
    filled = _Columns(frame)
    for position, row in enumerate(frame.to_dict("records")):
        info = infos[row["machine"], row["commit"]]
        medians = (info.get("samples") or {}).get(cell_label(row)) or {}
        first = info.get("first_use") or {}
        local = first.get(cell_key(row["workload"], [LOCAL_BASELINE, row["layout"], row["profile"]])) or {}
        for columns, figures in ((SAMPLE_COLUMNS, medians), (FIRST_USE_COLUMNS, first.get(cell_label(row)) or {}),
                                 ({"first_use_local_s": "first_use_s"}, local)):  # fmt: skip
            for column, key in columns.items():
                value = figures.get(key)
                if isinstance(value, int | float):
                    filled.set(position, column, value)
    filled.write()


class _Columns:
    """Values set cell by cell, written into ``frame`` column by column: ``frame.loc`` per cell took ~40 s of a
    report's 2 minutes. A column keeps its dtype unless a value needs another (as ``frame.loc`` does)."""

    def __init__(self, frame: pd.DataFrame):
        self.frame = frame
        self.changes: dict[str, dict[int, object]] = {}

    def get(self, position: int, column: str):
        changed = self.changes.get(column, {})
        return changed[position] if position in changed else self.frame[column].iat[position]

    def set(self, position: int, column: str, value) -> None:
        self.changes.setdefault(column, {})[position] = value

    def write(self) -> None:
        for column, changed in self.changes.items():
            values = self.frame[column].to_numpy(copy=True)
            if values.dtype.kind == "f":
                values[list(changed)] = [np.nan if v is None else v for v in changed.values()]
                self.frame[column] = values
                continue
            for position, value in changed.items():  # another dtype: let pandas decide, as before
                self.frame.iloc[position, self.frame.columns.get_loc(column)] = value


def _fill_estimates(frame: pd.DataFrame, infos: dict) -> None:
    """``cold_read_s`` and ``serving_cpu_s`` (module docstring), from each run's recorded profiles and cost."""
    frame["cold_read_s"] = np.nan
    frame["serving_cpu_s"] = np.nan
    filled = _Columns(frame)
    for position, row in enumerate(frame.to_dict("records")):
        info = infos[row["machine"], row["commit"]]
        requests, received = row.get("requests"), row.get("bytes_received")
        if not (_positive(requests) and _positive(received)):
            continue
        serving = info.get("serving_cost")
        if isinstance(serving, dict) and serving.get("shares_reader_cores"):
            filled.set(
                position, "serving_cpu_s", ServingCost.from_dict(serving).cpu_s(requests, received, row["profile"])
            )
        profile = info_profile(info, row["profile"])
        workload = WORKLOADS.get(row["workload"])
        if profile is not None and profile.shaped and workload is not None and workload.select is not None:
            connections = row.get("peak_connections")
            connections = int(connections) if _positive(connections) else 1
            process = row.get("process_s")  # the workload's processing after the read, as the bound adds it
            estimate = cost.cold_read_s(profile, round(requests), received, connections)
            filled.set(position, "cold_read_s", estimate + (process if _positive(process) else 0.0))
    filled.write()


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


# A floor (nwb_cloud.analysis.bound.Floor as the run info stores it) -> the cell columns it gives.
FLOOR_COLUMNS = {"bound_s": "seconds", "bound_network_s": "network_s", "bound_decode_s": "decode_s",
                 "selection_bytes": "selection_bytes"}  # fmt: skip


def _fill_from_floors(frame: pd.DataFrame, infos: dict) -> None:
    """Bounds the run info recorded (``floors``) for cells whose bound no track benchmark reported, and every
    cell's ``decode_cpu_s``."""
    frame["decode_cpu_s"] = np.nan
    frame["local_s"] = np.nan
    frame["local_fresh_s"] = np.nan
    frame["process_s"] = np.nan
    frame["chunk_bytes"] = np.nan
    layouts = sorted(set(frame["layout"]), key=len, reverse=True)
    floors = {}
    for (machine, commit), info in infos.items():
        for floor in info.get("floors") or []:
            layout = floor.get("layout") or _layout_of(str(floor.get("asset", "")), layouts)
            floors[(machine, commit, floor.get("workload"), floor.get("profile"), layout)] = floor
    if not floors:
        return
    filled = _Columns(frame)
    keys = zip(frame["machine"], frame["commit"], frame["workload"], frame["profile"], frame["layout"])
    for position, key in enumerate(keys):
        floor = floors.get(key)
        if floor is None:
            continue
        filled.set(position, "decode_cpu_s", floor.get("decode_cpu_s") or floor.get("local_s", np.nan))
        filled.set(position, "local_s", floor.get("local_s", np.nan))
        filled.set(position, "local_fresh_s", floor.get("local_fresh_s") or np.nan)
        filled.set(position, "process_s", floor.get("process_s", np.nan))
        filled.set(position, "chunk_bytes", floor.get("chunk_bytes", np.nan))
        if not np.isnan(filled.get(position, "bound_s")):
            continue
        for column, name in FLOOR_COLUMNS.items():
            filled.set(position, column, floor.get(name, np.nan))
        needed = "metadata_bytes" if floor.get("kind") == "open" else "compressed_bytes"
        filled.set(position, "touched_bytes", floor.get(needed, np.nan))
    filled.write()


def _layout_of(asset_key: str, layouts: list[str]) -> str | None:
    """The layout an asset key names (``.../ophys-tiny-s0-<layout>-<hash>.nwb``): the longest name it contains."""
    return next((layout for layout in layouts if f"-{layout}-" in asset_key), None)


def _empty_row(key: tuple, record: Record, label: str) -> dict:
    row = dict(zip(KEY, key, strict=True))
    workload = WORKLOADS.get(row["workload"])
    row.update(
        run_info_key=label,  # the cell's key in its run info (cell_label); not a figure, never printed
        commit_date=record.commit_date,
        run_started=record.started_at,
        run_first_started=record.started_at,  # the earliest asv started_at (ms; with rounds, of a last round)
        run_measuring_s=record.file_seconds,  # asv's total duration of the run's benchmarks
        workload_class=record.workload_class,
        modality=workload.modality if workload else None,
        status=SKIPPED_STATUS,
        asv_outcome="absent",  # no time_workload result for this cell
        time_s=np.nan,
        time_q25_s=np.nan,
        time_q75_s=np.nan,
        time_iqr_s=np.nan,
        samples=None,
        n_samples=0,
    )
    return row


def _set_time(row: dict, record: Record) -> None:
    """The cell's time from asv (its failures from the run info are applied in :func:`_reason`/:func:`_derive`)."""
    row["asv_outcome"] = record.outcome
    if record.outcome == FAILED:
        row["status"] = FAILED_STATUS
        return
    if record.outcome == SKIPPED:
        return
    row["status"] = OK
    row["time_s"] = record.value
    if record.samples:
        q25, q75 = np.percentile(record.samples, [25, 75])
        row.update(samples=list(record.samples), n_samples=len(record.samples))
    else:  # recorded without --record-samples: asv's own quartiles
        q25, q75 = record.q25, record.q75
        row["n_samples"] = int(record.repeat or 0)
    if q25 is not None and q75 is not None:
        row.update(time_q25_s=float(q25), time_q75_s=float(q75), time_iqr_s=float(q75) - float(q25))


def _reason(row: dict, info: dict) -> str:
    recorded = _track_reason(row, info) if row["suite"] not in (STREAMING_SUITE, None) else None
    if recorded:
        return recorded
    failed_sample = (info.get("cell_failures") or {}).get(cell_label(row))
    if row["status"] == OK:
        # a sample that failed in an earlier pass fails the cell, even if later passes read it exactly
        return f"{FAILED_SAMPLE}{failed_sample}" if failed_sample else ""
    if row["status"] == FAILED_STATUS:
        recorded = (info.get("cell_failures") or {}).get(cell_label(row))
        if recorded:
            return str(recorded)
        for asset, failure in (info.get("prepare_failures") or {}).items():
            method, _, asset_name = asset.partition("|")
            if method == row["method"] and _asset_matches(asset_name, row):
                return f"could not be prepared for {asset_name}: {failure}"
        return NOT_RECORDED
    unsupported = (info.get("unsupported_cells") or {}).get(cell_label(row))
    if unsupported:
        return str(unsupported)
    recorded = info_unavailable(info).get(row["method"])  # the grid checks availability first, then the grid
    if recorded:
        return f"unavailable on {row['machine']}: {recorded}"
    excluded = grid_excludes(info, row["method"], row["profile"], row["workload"], row["layout"])
    if excluded:
        return excluded
    method = METHODS.get(row["method"])
    recorded_any = "unavailable_methods" in info or "unavailable" in info
    reason = method.unavailable() if method and not recorded_any else None  # the run's own record wins
    if reason:
        return f"unavailable: {reason}"
    if row["asv_outcome"] == "absent":
        return "not run: no time result in this results file"
    return "skipped by asv (n/a) with no reason recorded; the method is available on the machine building this report"


def _track_reason(row: dict, info: dict) -> str | None:
    """Why a cell of another suite (an index build, a first use) has no figure, as its run info keeps it: a
    failure (the streaming grid's rules do not apply to it) or a skip's recorded reason; None: no record."""
    if row["status"] == FAILED_STATUS:
        return str((info.get("cell_failures") or {}).get(cell_label(row)) or NOT_RECORDED)
    if row["status"] == OK:
        return None
    return (info.get("unsupported_cells") or {}).get(cell_label(row))


def _asset_matches(asset_name: str, row: dict) -> bool:
    modality, _, layout = asset_name.partition("/")
    return layout == row["layout"] and (row["modality"] is None or modality == row["modality"])


def cell_label(row) -> str:
    """The run info's key of a cell (a row of the cells' frame), made from its asv parameters when the row was
    built (:func:`~nwb_cloud.suite.run_info.cell_key`: ``index_build|lindi|ophys/x|in-region`` for the row
    ``index_build[tool=lindi, asset=ophys/x]``)."""
    return row["run_info_key"]


def _ratio(numerator: pd.Series, denominator: pd.Series) -> pd.Series:
    """numerator / denominator, NaN where either is missing or the denominator is not positive."""
    denominator = denominator.where(denominator > 0)
    return numerator / denominator


def _derive(frame: pd.DataFrame) -> pd.DataFrame:
    frame["status"] = [_status(s, r) for s, r in zip(frame["status"], frame["reason"], strict=True)]
    frame["cpu_over_decode"] = _ratio(frame["cpu_s"], frame["decode_cpu_s"])
    frame["first_use_over_local"] = _ratio(frame["first_use_s"], frame["first_use_local_s"])
    frame["time_over_local"] = _ratio(frame["time_s"], frame["local_s"])
    frame["time_over_local_fresh"] = _ratio(frame["time_s"], frame["local_fresh_s"])
    computed = _ratio(frame["time_s"], frame["bound_s"])  # the same median as the time shown beside it
    frame["time_over_bound"] = computed.fillna(frame["time_over_bound"]) if "time_over_bound" in frame else computed
    frame["amp_selection"] = _ratio(frame["bytes_received"], frame["selection_bytes"])
    frame["amp_touched"] = _ratio(frame["bytes_received"], frame["touched_bytes"])
    decode, network = frame["bound_decode_s"], frame["bound_network_s"]
    frame["binds"] = np.where(decode.isna() | network.isna(), None, np.where(decode >= network, "decode", "network"))
    _mark_warm(frame)
    return frame


def _mark_warm(frame: pd.DataFrame) -> None:
    """A timed read that received less than the chunks its selection touches: not a cold read (see module)."""
    reads = frame["workload"].map(lambda w: getattr(WORKLOADS.get(w), "select", None) is not None)
    # the least a cold read receives: the compressed chunks it touches, or, where chunks are stored unfiltered
    # (h5py then reads only the selected part of each), the selection itself: the smaller of the two
    least = np.fmin(frame["touched_bytes"], frame["selection_bytes"])
    warm = reads & (frame["status"] == OK) & (frame["bytes_received"] < COLD_SHARE * least)
    for index in frame.index[warm]:
        received, needed = frame.loc[index, "bytes_received"], least[index]
        buffer = (
            " (an HDF5 page buffer keeps the pages the open read)" if _page_buffer(frame.loc[index, "method"]) else ""
        )
        frame.loc[index, "status"] = WARM
        frame.loc[index, "reason"] = (
            f"warm, not a cold read: it received {received / 1e6:.2f} MB of the {needed / 1e6:.2f} MB a cold read of "
            f"its selection receives at least; the rest was fetched by the untimed open{buffer}"
        )


def _page_buffer(method: str) -> bool:
    row = METHODS.get(method)
    return bool(row and row.varies == PAGED)


def _status(status: str, reason: str) -> str:
    """A skipped cell with a known reason: the method cannot run there, or the grid left it out."""
    if status == OK and reason.startswith(FAILED_SAMPLE):
        return FAILED_STATUS
    if status != SKIPPED_STATUS:
        return status
    if reason.startswith(UNSUPPORTED):
        return UNSUPPORTED
    if reason.startswith("unavailable"):
        return UNAVAILABLE
    if reason.startswith(NOT_IN_GRID):
        return EXCLUDED
    return status


def latest_runs(frame: pd.DataFrame) -> pd.DataFrame:
    """Per machine and data size, the cells of the most recent run (the results file whose benchmarks ran last):
    a quick run and the full-size study are different experiments, and one does not replace the other."""
    if frame.empty:
        return frame
    if "size" not in frame:
        frame = frame.assign(size="-")
    runs = frame.groupby(["machine", "size", "commit", "env"], as_index=False)["run_started"].max()
    newest = runs.sort_values("run_started").groupby(["machine", "size"]).tail(1)
    # a run without run info (no size) is shown only while it is its machine's newest run
    machine_newest = runs.groupby("machine")["run_started"].transform("max")
    unsized = runs[(runs["size"] == "-") & (runs["run_started"] == machine_newest)]
    newest = pd.concat([newest[newest["size"] != "-"], unsized])
    return frame.merge(newest[["machine", "size", "commit", "env"]], on=["machine", "size", "commit", "env"])
