"""The report page: how to read it, the headline, one section per workload, what has no time, reliability.

Sections take the tables of :mod:`nwb_cloud.results.tables` and the figures already written, and return HTML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from nwb_cloud.access import METHODS
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.report import format as fmt
from nwb_cloud.report.html import Td, anchor_id, bullets, esc, figure, key_values, paragraph, section, table
from nwb_cloud.report.order import in_registry_order, layout_order, profile_order, workload_order
from nwb_cloud.results.cells import EXCLUDED, FAILED_STATUS, OK, STREAMING_SUITE, UNSUPPORTED, WARM
from nwb_cloud.results.run_info import EXACT, LOUD, OUTCOME_ORDER, WRONG_DATA, info_cores, raised_by
from nwb_cloud.results.runs import INDEX_METHOD, RunFacts, below_bound, run_facts
from nwb_cloud.results.tables import (
    BASELINE_LAYOUT,
    MAIN_PROFILE,
    headline_cells,
    headline_ratios,
    headline_summary,
    measured_profiles,
    problems,
    rank_methods,
    side_by_side,
)
from nwb_cloud.suite.run_info import rank_stability as measure_rank_stability
from nwb_cloud.suite.state import NOT_IN_GRID
from nwb_cloud.workloads import WORKLOADS

_SECRET = re.compile(r"secret|token|password|credential|access_key|auth", re.IGNORECASE)
# Run-info keys the page shows in their own place; every other key goes to "other run details".
RUN_INFO_SHOWN = {"run_id", "commit", "machine", "date", "size", "source", "seed", "store", "profiles", "grid",
                  "assets", "proxy_overhead", "prepare_failures", "cores", "unavailable", "unavailable_methods",
                  "cell_failures", "_path", "_matched", "samples", "cell_samples", "rank_stability", "sampling",
                  "serving_cost", "unsupported_cells", "prepare_unsupported"}  # fmt: skip
# per-cell records shown through the cells (times, samples, traffic), not as run details
STATUS_LABEL = {EXCLUDED: "not in the grid"}
TRACK_COLUMNS = [  # (header, column, formatter) of the ranking tables beside the time; shown where measured
    ("time / bound", "time_over_bound", fmt.ratio),
    ("time / local h5py", "time_over_local", fmt.ratio),
    ("open before the read", "open_s", fmt.seconds),
    ("client CPU", "cpu_s", fmt.seconds),
    ("decode CPU", "decode_cpu_s", fmt.seconds),
    ("CPU / decode", "cpu_over_decode", fmt.ratio),
    ("requests", "requests", fmt.count),
    ("received", "bytes_received", fmt.size),
    ("peak conn.", "peak_connections", fmt.count),
    ("conn. opened", "connections_opened", fmt.count),
    ("bytes / selection", "amp_selection", fmt.ratio),
    ("bytes / touched", "amp_touched", fmt.ratio),
]


@dataclass
class Run:
    """One machine's latest run: its cells, its asv machine info, its run info, and the figures drawn for it."""

    machine: str
    machine_info: dict
    commit: str
    started: float | None
    cells: pd.DataFrame
    info: dict | None = None
    earlier_runs: int = 0
    figures: dict[tuple[str, str], str] = field(default_factory=dict)  # (workload, kind) -> src of the SVG
    size: str = "-"

    @property
    def label(self) -> str:
        """The machine, and the data size when the run names one: ``vm, full``."""
        return self.machine if self.size in ("", "-") else f"{self.machine}, {self.size}"

    @property
    def key(self) -> str:
        return anchor_id(self.label)

    @cached_property
    def facts(self) -> RunFacts:
        """Its name, length and caveats, from its cells and its run info."""
        return run_facts(self.cells, self.info)

    def workloads(self) -> list[str]:
        """The read grid's workloads (the suites of tracks only have :func:`tracks_section`)."""
        return workload_order(self.cells[self.cells["suite"] == STREAMING_SUITE])


def _num(text: str, cls: str = "") -> Td:
    return Td(text, cls="num muted" if text == fmt.NOT_MEASURED else f"num {cls}".strip())


def _count_of(cells: pd.DataFrame, status: str) -> int:
    return int((cells["status"] == status).sum())


# -- how to read this ------------------------------------------------------------------------------------------
def how_to_read(run: Run) -> str:
    info = run.info or {}
    cells = run.cells
    measured = cells[cells["status"] == OK]
    timed = measured[measured["n_samples"].fillna(0) > 0]  # a track-only suite (conversion) records no sample
    samples = sorted(set(timed["n_samples"].astype(int)))
    data = f"size {info.get('size', 'not recorded')}, source {info.get('source', 'not recorded')}"
    if info.get("store"):
        data += f", {info['store']}"
    if info.get("seed") is not None:
        data += f", seed {info['seed']}"
    facts = [
        ("machine", _describe_machine(run.machine, run.machine_info, info_cores(info))),
        ("commit", run.commit[:12] or "unknown"),
        ("run", fmt.timestamp(run.started) + (f" (run id {info['run_id']})" if info.get("run_id") else "")),
        ("data", data),
        ("cold samples per cell", ", ".join(map(str, samples)) or "none"),
        ("cells", f"{len(cells)}: {len(timed)} timed, {len(measured) - len(timed)} tracked, "
                  f"{_count_of(cells, FAILED_STATUS)} failed, {_count_of(cells, WARM)} warm (not cold reads: ranked "
                  f"nowhere), {_count_of(cells, UNSUPPORTED)} unsupported, "
                  f"{_count_of(cells, 'unavailable')} unavailable, "
                  f"{_count_of(cells, EXCLUDED)} not in the grid, {_count_of(cells, 'skipped')} skipped"),
    ]  # fmt: skip
    if run.info is None:
        facts.append(("run info", "none found in results/run-info/ for this run: size and source are not "
                                  "recorded; profile values below come from this checkout's code"))  # fmt: skip
    else:
        how = "its commit" if info.get("_matched") == "commit" else "the machine (it names no commit; the newest)"
        facts.append(("run info", f"{Path(info['_path']).name}, matched by {how}"))
    if run.earlier_runs:
        facts.append(("earlier runs", f"{run.earlier_runs} earlier results file(s) of this machine: see the asv "
                                      "pages for their history"))  # fmt: skip
    explain = bullets(
        [
            "<b>Cold sample</b>: every sample reads through a fresh file handle (new connections) and times one "
            "run of the workload; opening the handle is timed only in the open workloads. Where a run's samples "
            "were not cold (a shared process, a warm index cache), its caveats at the top of its headline say so, "
            "from the run's own record. A read that received less than any cold read of its selection must (the "
            "compressed chunks it touches, or the selection itself where chunks are unfiltered) is <b>warm</b>: "
            "the untimed open had fetched its data (a page buffer keeps the pages the open read); its time is "
            "shown with why, and ranked nowhere. <b>time</b> is the median of the samples, <b>IQR</b> their "
            "25th–75th percentile, <b>n</b> their number.",
            "<b>bound</b>: the least time any method could take for the selection under that network "
            "profile, max(network, decode, decode+serving), plus, in runs that measured it, the workload's own "
            "processing of its selection (the filter, the mean: timed in every cell after its read), from the "
            "file's own chunk index; <b>time / bound</b> is the "
            "headline figure (1× = at the physical limit); <b>set by</b> names the larger term. <b>time / local "
            "h5py</b>: the time over this machine's h5py doing the same from a local copy of the file (the "
            "selection read; for an open, the pynwb open): below 1×, streaming beat the local disk.",
            "<b>requests, received, peak conn., conn. opened</b>: HTTP requests, bytes received, most "
            "concurrent connections and connections opened in one sample (median over samples), counted at the "
            "shaping proxy.",
            "<b>bytes / selection</b>: bytes received per uncompressed byte the workload asked for; "
            "<b>bytes / touched</b>: per compressed byte of the chunks the selection touches (1× for a method "
            "that reads nothing twice; above it: metadata, over-fetch, re-reads). For the open workloads the "
            "touched bytes are the distinct metadata bytes the open needs.",
            "<b>not measured</b>: the run did not record that figure (older run, no proxy, or the track "
            "failed). <b>failed</b>: the benchmark raised, a wrong read included. <b>unsupported</b>: the method "
            "cannot represent the asset (e.g. an index of an LZF dataset), a skip with its reason, not a failure. "
            "<b>unavailable</b>: the "
            "method cannot run on that machine. <b>not in the grid</b>: the run does not measure that cell (a "
            "quick run leaves some to the study, the study leaves out what does not apply); each reason, with "
            "its count of cells, is under <i>Cells without a time</i>.",
        ],
        raw=True,
    )
    return (
        key_values(facts)
        + explain
        + _profiles_table(run)
        + _grid(info)
        + _assets(info)
        + _titled("Shaping proxy overhead (measured against direct loopback)", info.get("proxy_overhead"))
        + _titled("What serving costs on this machine (the embedded server and the proxy)", info.get("serving_cost"))
        + _titled("How the samples were taken", info.get("sampling"))
    )


def _describe_machine(name: str, machine: dict, cores) -> str:
    ram = str(machine.get("ram", ""))
    text = f"{name} — {machine.get('cpu', '?')}, {machine.get('num_cpu', '?')} CPUs"
    if cores:
        text += f" ({cores} available to the run)"
    return text + f", {fmt.size(float(ram)) if ram.isdigit() else '?'} RAM, {machine.get('os', '?')}"


def _profiles_table(run: Run) -> str:
    recorded = (run.info or {}).get("profiles") or {}
    rows = []
    for name in [p for p in profile_order(run.cells) if p != "-"]:  # "-": the suites without a profile
        values = recorded.get(name) if isinstance(recorded, dict) else None
        if values is None and name in PROFILES:
            values = PROFILES[name].to_dict()
        if not isinstance(values, dict):
            rows.append([name, Td("no values recorded", cls="muted", colspan=6)])
            continue
        rows.append([
            name,
            _num(fmt.seconds(values.get("rtt_s"))),
            _num(fmt.count(values.get("connect_rtts"))),
            _num(fmt.seconds(values.get("first_byte_s"))),
            _num(fmt.bandwidth(values.get("connection_bandwidth"))),
            _num(fmt.bandwidth(values.get("total_bandwidth"))),
            Td(values.get("sources", ""), cls="muted"),
        ])  # fmt: skip
    headers = ["profile", "round trip", "connect (round trips)", "first byte", "per connection", "total", "sources"]
    source = "as recorded by the run" if recorded else "from this checkout's profile table"
    return f"<h4>Network profiles ({source})</h4>" + table(headers, rows)


def _grid(info: dict) -> str:
    grid = info.get("grid")
    if not isinstance(grid, dict):
        return ""
    pairs = [
        (axis, ", ".join(map(str, grid.get(axis) or []))) for axis in ("workloads", "methods", "layouts", "profiles")
    ]
    pairs.append(("repeat", grid.get("repeat", "?")))
    if grid.get("everywhere") is not None:
        pairs.append(("quick grid", f"every method under {grid.get('main_profile')}; under the other profiles "
                                    f"only {', '.join(grid['everywhere'])}"))  # fmt: skip
    return "<h4>Grid of this run</h4>" + key_values(pairs)


def _assets(info: dict) -> str:
    assets = info.get("assets")
    if not isinstance(assets, dict) or not assets:
        return ""
    rows = []
    for name, asset in sorted(assets.items()):
        asset = asset if isinstance(asset, dict) else {}
        shape = asset.get("chunk_shape")
        rows.append([
            name,
            _num(fmt.size(asset.get("size_bytes"))),
            "×".join(map(str, shape)) if isinstance(shape, list | tuple) else fmt.NOT_MEASURED,
            _num(fmt.seconds(asset.get("write_seconds"))),
            _num(fmt.seconds(asset.get("write_cpu_seconds"))),
        ])  # fmt: skip
    return "<h4>Assets (file size and write time per layout)</h4>" + table(
        ["asset", "file size", "chunk shape", "write time", "write CPU time"], rows
    )


def _titled(title: str, value) -> str:
    return f"<h4>{esc(title)}</h4>" + generic(value) if value else ""


def generic(value) -> str:
    """Any JSON value as readable HTML: objects as key/value tables (keys that look like secrets left out),
    lists of objects as one table."""
    if isinstance(value, dict):
        return key_values((k, Td(generic(v), raw=True)) for k, v in value.items() if not _SECRET.search(str(k)))
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        keys = [k for k in dict.fromkeys(k for v in value for k in v) if not _SECRET.search(str(k))]
        return table(keys, [[Td(generic(v.get(k, "")), raw=True) for k in keys] for v in value])
    if isinstance(value, list):
        return esc(", ".join(map(str, value)))
    if isinstance(value, float):
        return esc(f"{value:.4g}")
    return esc(value)


# -- the summary line at the top ------------------------------------------------------------------------------------
def alerts(runs: list[Run], reliability: pd.DataFrame) -> str:
    """One line under the title: what went wrong, counted, with links; the details are in their sections."""
    parts = []
    for run in runs:
        failed = run.cells[run.cells["status"] == FAILED_STATUS]
        if len(failed):
            parts.append(f'<a href="#{run.key}-problems">{len(failed)} failed cell(s)</a> on {esc(run.label)} '
                         f"({esc(', '.join(sorted(set(failed['method']))))})")  # fmt: skip
    if not reliability.empty:
        loud = reliability[reliability["outcome"].isin(LOUD)]
        for outcome, rows in loud.groupby("outcome", sort=False):
            parts.append(f'<a href="#reliability"><strong>{esc(outcome)}</strong></a> under a fault: '
                         f"{esc(', '.join(sorted(set(rows['method']))))}")  # fmt: skip
    if not parts:
        return ""
    return '<p class="summary"><b>Alarms</b>: ' + " · ".join(parts) + ".</p>"


def _loud_details(reliability: pd.DataFrame) -> str:
    """Each probe that hung, crashed or returned wrong data, in full (the reliability section's top)."""
    rows = []
    for _, row in reliability[reliability["outcome"].isin(LOUD)].iterrows():
        text = f"<strong>{esc(row['outcome'])}</strong>: {esc(row['method'])} under fault <b>{esc(row['fault'])}</b>"
        if row["detail"]:
            text += f" — {esc(row['detail'])}"
        if row["still_running"]:
            text += " (the reader was still running after its connections were closed)"
        rows.append(f'<div class="alert">{text}</div>')
    return "\n".join(rows)


# -- headline ------------------------------------------------------------------------------------------------------
def headline(run: Run) -> str:
    """The run's figures first: which run, the methods table, the layout gains, then the per-group winners."""
    body = run_line(run) + methods_table(run) + reader_goals(run) + rank_stability(run) + _layout_gains(run)
    return body + _closest(run)


def run_line(run: Run) -> str:
    """Which run the section's figures come from, and what they do not say (from the run's own record)."""
    facts = run.facts
    text = f"From the {esc(facts.name)}" + (f" (run {esc(facts.run_id)})" if facts.run_id else "")
    text += f", {esc(facts.samples_text)}."
    if facts.caveats:
        text += " <b>Caveats of this run</b>: " + "; ".join(esc(c.long) for c in facts.caveats) + "."
    return f'<p class="note">{text}</p>'


def _method_label(method: str) -> str:
    row = METHODS.get(method)
    base = row.variant_of if row is not None else None
    return f"{method} (variant of {base})" if base else method


def methods_table(run: Run) -> str:
    """Every method on the headline grid (the two reads on the default and the read-shaped layout, the opens):
    median, time / bound, IQR and n per cell; the open before a read and CPU where the run measured them."""
    if not (run.cells["profile"] == MAIN_PROFILE).any():
        return ""
    cells, columns, methods = headline_cells(run.cells)
    if not columns:
        return ""
    keyed = {(r["workload"], r["layout"], r["method"]): r for _, r in cells.iterrows()}
    extra = [(label, column) for label, column, _ in HEADLINE_EXTRA if _recorded(cells, column)]
    rows = []
    for method in methods:
        row = [Td(_method_label(method))]
        for workload, layout in columns:
            cell = keyed.get((workload, layout, method))
            if cell is None:
                row.append(Td("not in run", cls="muted"))
            elif cell["status"] != OK:
                row.append(Td(STATUS_LABEL.get(cell["status"], cell["status"]), cls=cell["status"],
                              title=cell["reason"]))  # fmt: skip
            else:
                spread = f"IQR {fmt.seconds_range(cell['time_q25_s'], cell['time_q75_s'])} · n={int(cell['n_samples'])}"
                row.append(Td(f"{esc(fmt.seconds(cell['time_s']))} ({esc(fmt.ratio(cell['time_over_bound']))})"
                              f'<br><span class="muted small">{esc(spread)}</span>', cls="num", raw=True))  # fmt: skip
        first = keyed.get((*columns[0], method))
        for _, column in extra:
            shown = fmt.ratio if column == "cpu_over_decode" else fmt.seconds
            row.append(_num(shown(first[column]) if first is not None else fmt.NOT_MEASURED))
        rows.append(row)
    headers = ["method", *(f"{w} · {'default' if layout == BASELINE_LAYOUT else layout}" for w, layout in columns)]
    headers += [f"{label} ({columns[0][0]} · default)" for label, _ in extra]
    missing = [label for label, column, _ in HEADLINE_EXTRA if not _recorded(cells, column)]
    note = paragraph(
        f"Under {MAIN_PROFILE}: median time of the cold samples (time / bound in brackets), their interquartile "
        "range and their number. " + (f"Not recorded by this run: {', '.join(missing)}." if missing else ""),
        "muted",
    )
    decode = cells[(cells["workload"] == columns[0][0]) & (cells["layout"] == columns[0][1])]
    decode = decode["decode_cpu_s"].dropna() if "decode_cpu_s" in decode else decode.iloc[0:0]
    if len(decode):
        note += paragraph(f"Decode CPU of {columns[0][0]} on the default layout (a local single-threaded read of "
                          f"the same selection, the CPU every method must spend): {fmt.seconds(decode.iloc[0])}.",
                          "muted")  # fmt: skip
    return "<h3>Read methods</h3>" + note + table(headers, rows)


# The reader's goals (issue 13), each (figure, column, the cells it applies to, the most it may be, where the time
# or CPU went, from the cell's own figures): small reads at the network bound on the read-shaped layout,
# decode-bound reads at half the local h5py read on NeuroConv's default, client CPU near the decoder's, opening
# faster than the local pynwb open, first use near the local script's.
def _beyond_bound(c: pd.Series, cores: int | None) -> str:
    text = f"bound {fmt.seconds(c['bound_s'])}, set by {fmt.text(c['binds'])}" + _slow_start(c)
    if _finite(c.get("cold_read_s")) and _finite(c.get("cpu_s")):
        serial = c["cold_read_s"] + c["cpu_s"]  # a small read's CPU runs before its requests and after its bytes
        text += f", {fmt.seconds(serial)} with the client CPU after it ({fmt.ratio(serial / c['time_s'])})"
    return text + _cores_busy(c, cores)


def _beyond_local(c: pd.Series, cores: int | None) -> str:
    return f"local h5py read {fmt.seconds(c['local_s'])}" + _slow_start(c) + _cores_busy(c, cores)


def _slow_start(c: pd.Series) -> str:
    """The least time the read's own requests take when every window starts over (``cold_read_s``)."""
    if not _finite(c.get("cold_read_s")):
        return ""
    share, part = c["bytes_received"] / c["requests"], fmt.ratio(c["cold_read_s"] / c["time_s"])
    return (f"; slow start: its {fmt.count(c['requests'])} requests of ~{fmt.size(share)} on "
            f"{fmt.count(c['peak_connections'])} connections take {fmt.seconds(c['cold_read_s'])} at least "
            f"when every window starts over ({part} of the time)")  # fmt: skip


def _cores_busy(c: pd.Series, cores: int | None) -> str:
    """The CPU the read put on the machine's cores: the client's, and the server's and proxy's beside it
    (measured over the samples where the run did; else the run's estimate from its calibration)."""
    if not _finite(c.get("cpu_s")):
        return ""
    measured, estimated = c.get("serving_cpu_measured_s"), c.get("serving_cpu_s")
    serving = measured if _finite(measured) else estimated
    both = c["cpu_s"] + (serving if _finite(serving) else 0.0)
    text = f"; CPU: client {fmt.seconds(c['cpu_s'])}"
    if _finite(measured):
        text += f", embedded server and proxy {fmt.seconds(measured)} measured"
        text += f" ({fmt.seconds(estimated)} estimated)" if _finite(estimated) else ""
    elif _finite(serving):
        text += f", embedded server and proxy {fmt.seconds(serving)}"
    return text + (f", i.e. all {cores} cores busy for {fmt.seconds(both / cores)}" if cores else "")


def _beyond_decode(c: pd.Series, cores: int | None) -> str:
    text = f"client CPU {fmt.seconds(c['cpu_s'])}, decode CPU {fmt.seconds(c['decode_cpu_s'])}"
    process = c.get("process_s")
    if _finite(process) and process >= 0.0005:  # the workload's own filter or mean, timed with the read
        text += f", the workload processing {fmt.seconds(process)}"
    else:
        process = 0.0
    extra = c["cpu_s"] - c["decode_cpu_s"] - process
    return text + f": {fmt.seconds(extra)} beyond them, for {fmt.count(c['requests'])} requests"


def _beyond_open(c: pd.Series, cores: int | None) -> str:
    cpu = f"; client CPU {fmt.seconds(c['cpu_s'])}" if _finite(c.get("cpu_s")) else ""
    local = f"local pynwb open {fmt.seconds(c['local_s'])}"
    if _finite(c.get("local_fresh_s")):
        fresh, warm = fmt.seconds(c["local_fresh_s"]), fmt.seconds(c["local_s"])
        local = f"local pynwb open {fresh} as a new script's first ({warm} warm)"
    network = ""
    if _finite(c.get("bound_network_s")):  # the bound's network term: a first open cannot start building before it
        network = (
            f", one request of the file's metadata on a new connection {fmt.seconds(c['bound_network_s'])} at least"
        )
    return f"{local}{cpu}; {fmt.count(c['requests'])} requests, {fmt.size(c['bytes_received'])} received{network}"


def _warm_open(c: pd.Series) -> str:
    """An open against the local open warm (pynwb's caches filled by earlier opens in its process): shown beside
    the goal, not judged, since the cell is a first open (cold)."""
    if not (_finite(c.get("time_over_local_fresh")) and _finite(c.get("time_over_local"))):
        return ""
    return f", {fmt.ratio(c['time_over_local'])} the local open warm (the floor's)"


def _memory(c: pd.Series) -> str:
    """The read's peak memory beside the data it touched: shown, not judged (it holds the workload's own
    processing too, e.g. the band-pass filter's float copies; that it does not grow with the file is tested)."""
    if not _finite(c.get("peak_growth_bytes")):
        return ""
    return (f", peak memory {fmt.size(c['peak_growth_bytes'])} above the open (selection "
            f"{fmt.size(c['selection_bytes'])}; touched chunks {fmt.size(c['touched_bytes'])} stored, "
            f"{fmt.size(c['chunk_bytes'])} decoded)")  # fmt: skip


def _beyond_first_use(c: pd.Series, cores: int | None) -> str:
    return f"first use {fmt.seconds(c['first_use_s'])}, local {fmt.seconds(c['first_use_local_s'])}"


def _out_of_reach(c: pd.Series, workload, column: str, most: float) -> str | None:
    """Why a read's goal against the local h5py read cannot be met under its profile: its own bound (the
    network's least time with this machine's decoders) is already above it. None: the goal is within reach."""
    if column != "time_over_local" or workload.select is None:
        return None
    if not (_finite(c.get("bound_s")) and _finite(c.get("local_s"))) or c["bound_s"] <= most * c["local_s"]:
        return None
    return (
        f"out of the network's reach: the bound, {fmt.seconds(c['bound_s'])}, is "
        f"{fmt.ratio(c['bound_s'] / c['local_s'])} the local h5py read"
    )


def _finite(value) -> bool:
    return isinstance(value, int | float) and bool(np.isfinite(value))


READER_GOALS = [
    ("time / bound", "time_over_bound", lambda w, c: w.select is not None and c["layout"] != BASELINE_LAYOUT, 1.3,
     _beyond_bound),
    ("time / local h5py", "time_over_local", lambda w, c: w.select is not None and c["layout"] == BASELINE_LAYOUT,
     0.5, _beyond_local),
    # an open (a first open, cold) against the local open as a new script's first; runs without that figure: warm
    ("time / local first open", "time_over_local_fresh", lambda w, c: w.select is None, 1.0, _beyond_open),
    ("time / local h5py", "time_over_local",
     lambda w, c: w.select is None and not _finite(c.get("time_over_local_fresh")), 1.0, _beyond_open),
    ("CPU / decode", "cpu_over_decode", lambda w, c: w.select is not None, 1.1, _beyond_decode),
    ("first use / local", "first_use_over_local", lambda w, c: w.select is not None, 1.5, _beyond_first_use),
]  # fmt: skip
GOAL_LAYOUTS = (BASELINE_LAYOUT, "workload-friendly")  # the core layouts: the headline grid and the session file


def reader_goals(run: Run) -> str:
    """nwb-index's cells on the core layouts against the reader's goals: each figure, its goal, met or missed
    (with the measured figures beside a miss)."""
    cells, cores = run.cells, info_cores(run.info or {})
    mine = cells[(cells["method"] == INDEX_METHOD) & (cells["status"] == OK) & cells["layout"].isin(GOAL_LAYOUTS)]
    order = {profile: i for i, profile in enumerate(profile_order(mine))} if len(mine) else {}
    rows = []
    for _, cell in mine.assign(rank=mine["profile"].map(order)).sort_values(["rank", "workload", "layout"]).iterrows():
        workload = WORKLOADS.get(cell["workload"])
        if workload is None:
            continue
        checks = [(label, cell[column], most, facts, _out_of_reach(cell, workload, column, most))
                  for label, column, applies, most, facts in READER_GOALS
                  if applies(workload, cell) and np.isfinite(cell.get(column, np.nan))]  # fmt: skip
        if not checks:
            continue
        missed = [f"{label} {fmt.ratio(value)} ({facts(cell, cores)})" for label, value, most, facts, why in checks
                  if value > most and not why]  # fmt: skip
        out_of_reach = [f"{label} {why}" for label, _, _, _, why in checks if why]
        verdict = "missed: " + "; ".join(missed) if missed else "met"
        rows.append([
            Td(f"{cell['workload']} · {'default' if cell['layout'] == BASELINE_LAYOUT else cell['layout']} · "
               f"{cell['profile']}"),
            _num(fmt.seconds(cell["time_s"])),
            Td(", ".join(f"{label} {fmt.ratio(value)} (goal ≤ {most:g}×)" for label, value, most, _, _ in checks)
               + _warm_open(cell) + _memory(cell)),
            Td("; ".join([verdict, *out_of_reach]), cls="failed" if missed else ""),
        ])  # fmt: skip
    if not rows:
        return ""
    note = paragraph(
        f"{INDEX_METHOD} under every profile the run measured it against the reader's goals: small reads within "
        "1.3× of the bound on "
        "the read-shaped layout, reads of NeuroConv's default layout within half the time this machine's h5py "
        "takes from a local copy, client CPU within 1.1× of the decode CPU, opening faster than the local pynwb "
        "open (a cell is a first open in a new process, so it is judged against the local open as a new "
        "script's first, imports done; the local open warm, the bound's, is shown beside it), first use within "
        "1.5× of the local script; beside them the peak memory of a read above the open "
        "handle (the workload's processing included). Every figure is the run's own; a miss shows the "
        "measured figures it comes from and where the time went: slow start (the least time the read's own "
        "requests take when every connection's window starts over at the profile's initial window, as after a "
        "pause; the bound assumes full rate from the first byte) and the CPU on the machine's cores (the "
        "client's, and the embedded server's and proxy's: measured over the samples where the run did, else "
        "estimated from the read's requests and bytes at the cost the run calibrated).",
        "muted",
    )
    return "<h3>nwb-index against the reader goals</h3>" + note + table(["cell", "time", "figures", "goals"], rows)


def _recorded(cells: pd.DataFrame, column: str) -> bool:
    return column in cells and bool(cells[column].notna().any())


# figures the run info may record per cell: (label, column, what it is)
HEADLINE_EXTRA = (
    ("open before the read", "open_s", "the untimed open before a read, in a fresh process"),
    ("client CPU", "cpu_s", "CPU seconds of the reader's process in the timed part"),
    ("CPU / decode CPU", "cpu_over_decode", "client CPU over a local single-threaded read of the same selection"),
)


SWAP_WITHIN = 0.05  # the report counts the swaps between methods this close (their medians) apart


def rank_stability(run: Run) -> str:
    """How the methods of each group ranked in one pass over the grid against the next, and how far apart the
    pairs that swapped are (computed from the run info's samples as the run computed it)."""
    info = run.info or {}
    samples = info.get("cell_samples")
    stability = measure_rank_stability(samples) if samples else info.get("rank_stability")
    if not stability or not stability.get("pairs"):
        return paragraph("Rank stability between passes over the grid: not recorded by this run.", "muted")
    tau = stability.get("kendall_tau")
    passes = " and ".join(str(p) for p in stability.get("passes") or [])
    text = (
        f"Rank stability between grid passes {passes}: {stability.get('groups_same_order')} of "
        f"{stability.get('groups')} groups (workload · layout · profile) ranked their methods in the same order; "
        f"{stability.get('concordant_pairs')} of {stability.get('pairs')} pairs of methods kept their order"
        + (f" (Kendall τ {tau:.2f})." if isinstance(tau, int | float) else ".")
    )
    gaps = [s for s in stability.get("swapped") or [] if isinstance(s.get("gap"), int | float)]
    if gaps:
        widest = max(gaps, key=lambda s: s["gap"])
        close = sum(s["gap"] <= SWAP_WITHIN for s in gaps)
        text += (
            f" The {len(gaps)} pairs that swapped were {widest['gap']:.1%} apart at most ({close} within "
            f"{SWAP_WITHIN:.0%}; the medians over all their samples): the widest, {' and '.join(widest['methods'])} "
            f"on {widest['group'].replace('|', ' · ')}."
        )
    return paragraph(text)


def _closest(run: Run) -> str:
    ranked = rank_methods(run.cells)
    best = in_registry_order(ranked[ranked["rank"] == 1])
    rows = [
        [
            r.workload, r.profile, r.layout, Td(r.method, cls="rank1"), _num(fmt.seconds(r.time_s)),
            _num(fmt.ratio(r.time_over_bound)), _num(fmt.seconds(r.bound_s)), fmt.text(r.binds),
        ]
        for r in best.itertuples()
    ]  # fmt: skip
    return (
        f"<details><summary><b>The method closest to the bound, per workload, profile and layout</b> ({len(rows)} "
        "groups)</summary>"
        + table(["workload", "profile", "layout", "best method", "time", "time / bound", "bound", "set by"], rows)
        + "</details>"
    )


def _layout_gains(run: Run) -> str:
    body = ""
    summary = in_registry_order(headline_summary(run.cells))
    if "speedup_max" in summary:
        rows = [
            [
                r.workload, r.profile, _num(str(r.methods)),
                _num(f"{fmt.ratio(r.speedup_min)} – {fmt.ratio(r.speedup_max)}"), _num(fmt.ratio(r.speedup_median)),
                f"{r.max_method} ({r.max_layout})" if isinstance(r.max_method, str) else fmt.NOT_MEASURED,
                _num(fmt.ratio(getattr(r, "best_vs_best", np.nan))),
                r.fastest if isinstance(getattr(r, "fastest", None), str) else fmt.NOT_MEASURED,
            ]
            for r in summary.itertuples()
        ]  # fmt: skip
        body += (
            f"<h3>Best layout vs {BASELINE_LAYOUT} (the headline ratios)</h3>"
            + paragraph(
                "Per read method: the time on NeuroConv's default layout divided by the time on the best layout "
                "measured for that method (1× = the default is the best). The ratio depends on the method and "
                "the profile: the range over methods is given, the per-method values are in each workload's "
                "'Layouts compared' table and in tables/headline_ratios.csv. 'Fastest vs fastest' divides the "
                "fastest method on the default layout by the fastest cell on any layout."
            )
            + table(
                [
                    "workload",
                    "profile",
                    "methods",
                    "speedup range",
                    "median",
                    "largest for",
                    "fastest vs fastest",
                    "fastest cell",
                ],
                rows,
            )  # fmt: skip
        )
    src = run.figures.get(("all", "headline"))
    if src:
        body += figure(src, f"Best layout vs {BASELINE_LAYOUT}: speedup per method (rows) and profile (colour)")
    return body


# -- one workload ------------------------------------------------------------------------------------------------
def workload_section(run: Run, workload: str) -> str:
    cells = run.cells[run.cells["workload"] == workload]
    registered = WORKLOADS.get(workload)
    body = paragraph(registered.description if registered else "(not in this checkout's workload registry)")
    src = run.figures.get((workload, "time"))
    if src:
        body += figure(src, "Time per cold sample by method (dot: median, bar: IQR, faint dots: the samples; "
                            "dashed line: the physical bound)")  # fmt: skip
    src = run.figures.get((workload, "bound"))
    if src:
        body += figure(src, "Time / physical bound by method, one marker per layout (1× = at the bound)")
    else:
        body += paragraph("time / bound: not measured (no bound recorded for this workload in this run).", "note")
    ranked = rank_methods(cells)
    for profile in profile_order(cells):
        body += f'<h3 id="{anchor_id(run.key, workload, profile)}">{esc(workload)} · {esc(profile)}</h3>'
        body += _ranking_table(ranked[ranked["profile"] == profile], run.info or {})
    body += _layout_table(cells)
    return section(anchor_id(run.key, workload), workload, body)


def _ranking_table(ranked: pd.DataFrame, info: dict) -> str:
    measured = ranked[ranked["status"] == OK]
    tracks = [t for t in TRACK_COLUMNS if t[1] in measured and measured[t[1]].notna().any()]
    absent = [t[0] for t in TRACK_COLUMNS if t not in tracks]
    headers = ["rank", "method", "time", "IQR", "n", *(t[0] for t in tracks)]
    rows = []
    for layout in layout_order(ranked):
        group = ranked[(ranked["layout"] == layout) & (ranked["status"] != EXCLUDED)]
        if group.empty:
            continue
        rows.append([Td(_layout_header(group), cls="group", colspan=len(headers))])
        for r in group.itertuples():
            if r.status != OK:
                text = r.reason if r.reason.startswith(r.status) else f"{r.status}: {r.reason}"
                rows.append(["—", r.method, Td(text, cls=r.status, colspan=len(headers) - 2)])
                continue
            first = "rank1" if r.rank == 1 else ""
            rows.append([
                _num(f"{int(r.rank)}", first),
                Td(_method_label(r.method), cls=first),
                _num(fmt.seconds(r.time_s)),
                _num(fmt.seconds_range(r.time_q25_s, r.time_q75_s)),
                _num(str(r.n_samples)),
                *(_num(formatter(getattr(r, column))) for _, column, formatter in tracks),
            ])  # fmt: skip
    by = set(measured["ranked_by"])
    notes = ["ranked by time / bound" if by == {"time_over_bound"} else "ranked by time (no bound measured)"]
    if len(by) > 1:
        notes = ["ranked by time / bound where the bound was measured, else by time"]
    if absent:
        notes.append(f"not measured under this profile: {', '.join(absent)}")
    below = measured[measured["time_over_bound"] < 1]
    if len(below):
        notes.append(
            "below the bound (time / bound < 1×): "
            + "; ".join(f"{r['method']} on {r['layout']} — {below_bound(r, info)}" for _, r in below.iterrows())
        )
    excluded = sorted(set(ranked[ranked["status"] == EXCLUDED]["method"]))
    if excluded:
        notes.append(f"not in this run's grid under this profile: {', '.join(excluded)}")
    return paragraph("; ".join(notes) + ".", "muted") + table(headers, rows)


def _layout_header(group: pd.DataFrame) -> str:
    layout = group["layout"].iloc[0]
    bounded = group.dropna(subset=["bound_s"])
    if bounded.empty:
        if group["time_over_bound"].notna().any():
            return f"layout {layout} · bound not recorded (time / bound as the run's own track reported it)"
        return f"layout {layout} · bound not measured"
    r = bounded.iloc[0]
    text = (
        f"layout {layout} · bound {fmt.seconds(r['bound_s'])} (network {fmt.seconds(r['bound_network_s'])}, "
        f"decode {fmt.seconds(r['bound_decode_s'])}: set by {fmt.text(r['binds'])})"
        f" · selection {fmt.size(r['selection_bytes'])} · touched chunks {fmt.size(r['touched_bytes'])}"
    )
    if not np.allclose(bounded["bound_s"], r["bound_s"], rtol=0.01):
        text += " · the bound differs between methods: compare time / bound"
    return text


def _layout_table(cells: pd.DataFrame) -> str:
    ratios = headline_ratios(cells)
    if ratios.empty:
        return paragraph("Layouts compared: only one layout in this run.", "muted")
    layouts = layout_order(cells)
    by_key = {(r.method, r.profile, r.layout): r for r in cells.itertuples()}
    rows, unmeasured = [], {}
    for r in ratios.itertuples():
        found = [by_key.get((r.method, r.profile, layout)) for layout in layouts]
        if not any(c is not None and c.status == OK for c in found):  # nothing to compare: one line below
            statuses = sorted({STATUS_LABEL.get(c.status, c.status) for c in found if c is not None})
            unmeasured.setdefault((r.method, ", ".join(statuses)), []).append(r.profile)
            continue
        row = [r.method, r.profile]
        for layout, c in zip(layouts, found, strict=True):
            if c is None:
                row.append(Td("not in run", cls="muted"))
            elif c.status == OK:
                row.append(_num(fmt.seconds(c.time_s), "rank1" if layout == r.best_layout else ""))
            else:
                row.append(Td(c.status, cls=c.status, title=c.reason))
        rows.append([*row, fmt.text(r.best_layout), _num(fmt.ratio(r.speedup)), Td(r.note, cls="muted")])
    headers = ["method", "profile", *layouts, "best layout", f"{BASELINE_LAYOUT} / best", "note"]
    body = "<h3>Layouts compared</h3>" + table(headers, rows)
    if unmeasured:
        listed = "; ".join(f"{method} under {', '.join(p)} ({why})" for (method, why), p in unmeasured.items())
        body += paragraph(f"No layout measured: {listed} — reasons under 'Cells without a time'.", "muted")
    return body


# -- the suites of tracks only (conversion throughput, index build) -------------------------------------------------
def tracks_section(run: Run) -> str:
    """One table per suite whose benchmarks are tracks only: every value each cell measured."""
    others = run.cells[run.cells["suite"] != STREAMING_SUITE]
    body = ""
    for suite, cells in others.groupby("suite", sort=True):
        columns = [c for c in _SUITE_TRACKS if c in cells and cells[c].notna().any()]
        rows = [[r["workload"], *(_num(_track_value(r[c])) for c in columns)] for r in cells.to_dict("records")]
        body += f"<h3>{esc(suite)}</h3>" + table(["benchmark", *columns], rows)
    if not body:
        return ""
    text = paragraph(
        "Benchmarks that record values, not times: NeuroConv conversion throughput per interface (what `batch "
        "plan` estimates runtimes from), and building a reference index (ours and LINDI's) from the embedded S3."
    )
    return section(f"{run.key}-tracks", "Conversion and index build", text + body)


# what the conversion (nwb_cloud.convert.asv_throughput) and index build (asv_index) benchmarks track
_SUITE_TRACKS = ("mb_per_s", "seconds", "bytes_fetched", "index_bytes", "connections_opened")


def _track_value(value) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return fmt.NOT_MEASURED
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


# -- what has no time ----------------------------------------------------------------------------------------------
def problems_section(run: Run) -> str:
    listed = problems(run.cells)
    shown = listed[listed["status"] != EXCLUDED]
    if shown.empty:
        body = paragraph("Every cell of this run's grid has a time.")
    else:
        body = paragraph(
            "Cells without a time, grouped by method and reason. A failed cell raised during the benchmark (a "
            "wrong read raises too); an unavailable one cannot run on the machine."
        ) + table(
            ["status", "method", "reason", "cells", "workload · layout · profile"],
            [[Td(r.status, cls=r.status), r.method, r.reason, _num(str(r.count)), r.cells] for r in shown.itertuples()],
        )  # fmt: skip
    body += _not_in_grid(listed[listed["status"] == EXCLUDED])
    failures = (run.info or {}).get("prepare_failures") or {}
    if failures:
        body += "<h4>Preparation failures (from the run info)</h4>" + table(
            ["method | asset", "error"], [[k, Td(v, cls="failed")] for k, v in sorted(failures.items())]
        )
    return section(f"{run.key}-problems", "Cells without a time", body)


def _not_in_grid(excluded: pd.DataFrame) -> str:
    """The cells the run's grid leaves out, counted by reason (collapsed: a study leaves out hundreds)."""
    if excluded.empty:
        return ""
    why = excluded["reason"].str.removeprefix(f"{NOT_IN_GRID}: ")
    reasons = excluded.groupby(why, sort=True)["count"].sum().sort_values(ascending=False, kind="stable")
    return (
        f"<details><summary>Not in this run's grid: {int(reasons.sum())} cells, for {len(reasons)} "
        f"reason{'s' if len(reasons) > 1 else ''}</summary>"
        + table(["reason", "cells"], [[reason, _num(str(int(count)))] for reason, count in reasons.items()])
        + "</details>"
    )


def run_details(run: Run) -> str:
    rest = {k: v for k, v in (run.info or {}).items() if k not in RUN_INFO_SHOWN}
    return section(f"{run.key}-details", "Other run details", generic(rest)) if rest else ""


# -- recommendations -------------------------------------------------------------------------------------------------
def recommendations_section(check: dict | None, guidance: bool) -> str:
    """The model's recommended layout against the best measured one, per workload mix, profile and method."""
    if not check:
        return ""
    summary, groups = check.get("summary") or {}, check.get("groups") or []
    target = summary.get("target", 1.2)
    facts = [
        ("model", check.get("model", "?")),
        ("groups (mix · modality · profile · method)", str(summary.get("groups", 0))),
    ]
    for kind, label in (("in_sample", "fitted to every cell"), ("held_out", "each group's cells held out")):
        if f"{kind}_within_target" in summary:
            facts.append((
                f"within {target}x of the best, {label}",
                f"{summary[f'{kind}_within_target']:.0%} (median {summary[f'{kind}_median_ratio']:.2f}x, worst "
                f"{summary[f'{kind}_worst_ratio']:.2f}x: {summary[f'{kind}_worst_group']})",
            ))  # fmt: skip
    if "in_sample_misses" in summary:
        ties = f"{summary.get('in_sample_misses_within_noise', 0)} of {summary['in_sample_misses']}"
        facts.append(("misses within the measurement's spread", ties))
    rows = [
        [g.get("mix"), g.get("modality", ""), g.get("profile"), g.get("method"), g.get("best_layout"),
         _num(fmt.seconds(g.get("best_s"))), g.get("in_sample_layout") or fmt.NOT_MEASURED,
         Td(_ratio(g.get("in_sample_ratio")), cls="" if g.get("within_target") else "failed"),
         _num(_ratio(g.get("held_out_ratio")))]
        for g in groups
    ]  # fmt: skip
    text = paragraph(
        f"For every group of measured cells, the layout the cost model recommends (fitted to this study) is read "
        f"back from the measurements and compared with the best measured layout; the target is {target}x."
    ) + ('<p>The <a href="guidance.html">guidance page</a> says what to choose and why.</p>' if guidance else "")
    headers = ["mix", "modality", "profile", "method", "best measured", "its time", "recommended", "ratio",
               "held out"]  # fmt: skip
    return section(
        "recommendations", "Recommendations vs the measured best", text + key_values(facts) + table(headers, rows)
    )


def _ratio(value) -> str:
    return fmt.NOT_MEASURED if value is None or value != value else f"{value:.2f}x"


# -- reliability -----------------------------------------------------------------------------------------------------
def reliability_section(reliability: pd.DataFrame) -> str:
    if reliability.empty:
        return ""
    faults = sorted(set(reliability["fault"]))
    rows = []
    for method, group in reliability.groupby("method", sort=True):
        row = [method]
        for fault in faults:
            entries = group[group["fault"] == fault]
            if entries.empty:
                row.append(Td("not probed", cls="muted"))
                continue
            texts = [
                e.outcome + (" (no fault reached it)" if e.faults_injected == 0 else "") for e in entries.itertuples()
            ]
            details = " | ".join(d for d in entries["detail"] if d)
            row.append(
                Td(" / ".join(dict.fromkeys(texts)), cls=_outcome_class(_worst(entries["outcome"])), title=details)
            )
        rows.append(row)
    body = paragraph(
        "Each read method under each fault the proxy injects (503 SlowDown, connection reset mid-body, truncated "
        "body, stall): exact = it retried and returned exactly the source data; clear error = it failed and said "
        "so; crash = the reader's process died; hang = no answer within the time limit; WRONG DATA = it returned "
        "data that differ from the source."
    ) + table(["method", *faults], rows)
    body = _loud_details(reliability) + body
    detail = reliability[(reliability["outcome"] != EXACT) & (reliability["detail"] != "")]
    if len(detail):
        body += "<h4>What the methods said</h4>" + table(
            ["method", "fault", "outcome", "raised by", "message"],
            [[r.method, r.fault, Td(r.outcome, cls=_outcome_class(r.outcome)), raised_by(r.detail), r.detail]
             for r in detail.itertuples()],
        )  # fmt: skip
    return section("reliability", "Reliability under S3 faults", body)


def _worst(outcomes: pd.Series) -> str:
    present = set(outcomes)
    return next((o for o in reversed(OUTCOME_ORDER) if o in present), outcomes.iloc[0])


def _outcome_class(outcome: str) -> str:
    return "WRONG-DATA" if outcome == WRONG_DATA else anchor_id(outcome)


def machines_section(cells: pd.DataFrame, infos: list[dict]) -> str:
    """Each machine's latest run beside the others': the measured real networks against the emulated in-region
    profile, then every cell two runs of one data size share, a column per run (times only, no ratio)."""
    wide = side_by_side(cells)
    profiles = measured_profiles(infos, {"in-region": PROFILES["in-region"].to_dict()})
    if wide.empty and len(profiles) < 2:
        return ""
    parts = [paragraph(
        "The network each fleet machine measured to S3 at the start of its run (profile real: no shaping "
        "proxy) beside the emulated in-region profile that stands for it on this machine, then the cells "
        "measured by at least two runs of one data size, one column per run and profile. Each column is its own "
        "run (machine, commit): compare them, but no figure here divides one run by another."
    )]  # fmt: skip
    if len(profiles) > 1:
        rows = [[row.machine, row.profile, _num(fmt.seconds(row.rtt_s)), _num(fmt.seconds(row.first_byte_s)),
                 _num(fmt.bandwidth(row.connection_bandwidth)), _num(fmt.bandwidth(row.total_bandwidth)),
                 _num(fmt.seconds(row.jitter_s)), Td(row.description or "", cls="muted")]
                for row in profiles.itertuples()]  # fmt: skip
        headers = ["machine", "profile", "round trip", "first byte", "per connection", "total", "jitter", "how"]
        parts.append("<h3>Network: emulated and measured</h3>" + table(headers, rows))
    for size, group in wide.groupby("size", sort=True):
        runs = [column for column in group.columns if " · " in column]
        rows = [[row["workload"], row["method"], row["layout"], *[_num(fmt.seconds(row[run])) for run in runs]]
                for _, row in group.iterrows()]  # fmt: skip
        parts.append(f"<h3>Median cold time, {esc(size)} data</h3>" + table(["workload", "method", "layout", *runs],
                                                                            rows))  # fmt: skip
    return section("machines", "Machines side by side", "\n".join(parts))
