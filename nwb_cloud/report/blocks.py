"""README's published figures: Markdown blocks generated from the committed results, between markers.

A block is the text between ``<!-- nwb-cloud:begin NAME -->`` and ``<!-- nwb-cloud:end NAME -->``; ``nwb-cloud
report`` rewrites every block a file holds from the results (:func:`fill`), so no figure in README is typed.
Each block names the run it comes from (machine, commit, size, date, samples per cell) and that run's caveats;
every number in it comes from the tables of :mod:`nwb_cloud.results.tables` or the run's own record.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nwb_cloud.access import METHODS
from nwb_cloud.report import format as fmt
from nwb_cloud.report.errors import ReportError
from nwb_cloud.report.order import method_order
from nwb_cloud.report.page import Run
from nwb_cloud.results.cells import OK
from nwb_cloud.results.run_info import EXACT, raised_by
from nwb_cloud.results.runs import INDEX_METHOD, WARM_SUFFIX, below_bound
from nwb_cloud.results.tables import (
    BASELINE_LAYOUT,
    FRIENDLY_LAYOUT,
    HEADLINE_OPENS,
    HEADLINE_READS,
    MAIN_PROFILE,
    headline_cells,
    headline_ratios,
    headline_summary,
)
from nwb_cloud.workloads import WORKLOADS

BEGIN, END = "<!-- nwb-cloud:begin {name} -->", "<!-- nwb-cloud:end {name} -->"
BLOCK = re.compile(r"<!-- nwb-cloud:begin (?P<name>[\w-]+) -->\n(?P<body>.*?)<!-- nwb-cloud:end (?P=name) -->", re.S)
QUICK, FULL = "quick", "full"
READS, OPENS = HEADLINE_READS, HEADLINE_OPENS
FRIENDLY = FRIENDLY_LAYOUT
# figures measured on the first read of the headline grid, shown when the run recorded them
EXTRA_COLUMNS = (("open before the read", "open_s"), ("client CPU", "cpu_s"), ("CPU / decode CPU", "cpu_over_decode"))


@dataclass
class Sources:
    """What the blocks are made from: each machine's latest run of each size, the probes, the fit's check."""

    runs: list[Run]
    reliability: pd.DataFrame
    check: dict | None
    loop: pd.DataFrame | None = None  # the closed loop's groups (nwb_cloud.recommend.loop_check.loop_groups)

    def latest(self, size: str) -> Run | None:
        sized = [run for run in self.runs if run.size == size]
        return max(sized, key=lambda run: run.started or 0) if sized else None


# -- filling a file ------------------------------------------------------------------------------------------------
def fill(text: str, blocks: dict[str, str]) -> str:
    """``text`` with every marked block's body replaced by ``blocks[name]``; an unknown name is an error."""

    def body(match: re.Match) -> str:
        name = match["name"]
        if name not in blocks:
            raise ReportError(f"README block {name!r} is not a published block; known: {', '.join(sorted(blocks))}")
        return f"{BEGIN.format(name=name)}\n{blocks[name].strip()}\n{END.format(name=name)}"

    return BLOCK.sub(body, text)


def marked(text: str) -> dict[str, str]:
    """The blocks ``text`` holds, name -> body (without the markers)."""
    return {m["name"]: m["body"].strip() for m in BLOCK.finditer(text)}


def unmarked(text: str) -> str:
    """``text`` without its marked blocks and code (fences and inline code): the prose typed by hand."""
    text = BLOCK.sub("", text)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"`[^`\n]*`", "", text)


# A measured figure: a number with a unit of time, size, ratio or share (ranges and "~" included).
MEASURED = re.compile(
    r"(?<![\w.])[~≈]?\d[\d,.]*(?:\s?[-–]\s?\d[\d,.]*)?\s?"
    r"(?:s|ms|µs|us|x|×|kB|KB|MB|GB|TB|KiB|MiB|GiB|B/s|MB/s|%|min|mins|minutes|hours?|seconds)(?![\w])"
)


def typed_figures(text: str) -> list[str]:
    """Measured-looking figures in ``text`` outside its generated blocks and its code."""
    return [m.group(0) for m in MEASURED.finditer(unmarked(text))]


# -- the blocks ----------------------------------------------------------------------------------------------------
def blocks(sources: Sources) -> dict[str, str]:
    return {name: make(sources) for name, make in BLOCKS.items()}


def _from(run: Run) -> str:
    """The line every block opens with: which run, how many samples, and that run's caveats."""
    facts = run.facts
    text = f"*From the {facts.name}"
    text += f" (run {facts.run_id})" if facts.run_id else ""
    text += f", {facts.samples_text}.*"
    if facts.caveats:
        text += (
            " Caveats of this run (see [the committed runs](#the-committed-runs)): "
            + "; ".join(c.short for c in facts.caveats)
            + "."
        )
    return text


def _missing(size: str) -> str:
    return f"*No {size} run in the committed results: run `make bench{' SIZE=full' if size == FULL else ''}`.*"


def _md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def _method(name: str) -> str:
    row = METHODS.get(name)
    base = row.variant_of if row is not None else None
    return f"`{name}` (variant of `{base}`)" if base else f"`{name}`"


def _status_text(cell: pd.Series | None) -> str:
    if cell is None:
        return "not in run"
    if cell["status"] == OK:
        return ""
    return {"excluded": "not in grid"}.get(cell["status"], str(cell["status"]))


def runs_block(sources: Sources) -> str:
    rows = []
    for run in sorted(sources.runs, key=lambda r: (r.size != QUICK, r.machine)):
        facts = run.facts
        length = f"{facts.minutes_total:.0f} min" if facts.minutes_total is not None else "not recorded"
        if facts.minutes_total is not None and not facts.from_preparing:
            length += " after preparing"
        if facts.minutes_measuring is not None:
            length += f" ({facts.minutes_measuring:.0f} min measuring)"
        timed = int(((run.cells["status"] == OK) & (run.cells["n_samples"] > 0)).sum())
        rows.append([facts.size, facts.machine, f"{facts.cores or '?'}", f"`{facts.commit[:8]}`", facts.run_id or "-",
                     facts.date or "-", str(timed), facts.samples_text.removesuffix(" per cell"),
                     "every sample its process's first" if facts.fresh_process else "shared processes",
                     length])  # fmt: skip
    table = _md_table(["size", "machine", "cores", "commit", "run", "ended", "timed cells", "cold samples per cell",
                       "processes", "length (preparing + measuring)"], rows)  # fmt: skip
    if any(run.facts.minutes_total is not None and not run.facts.from_preparing for run in sources.runs):
        table += ("\n\n\"after preparing\": a run that did not record when it began preparing the data; its length "
                  "counts from when preparing ended.")  # fmt: skip
    notes = [f"- **{run.facts.name}**: " + "; ".join(c.long for c in run.facts.caveats) + "." for run in sources.runs
             if run.facts.caveats]  # fmt: skip
    return table + ("\n\nWhat these runs' figures do not say, from their own records:\n\n" + "\n".join(notes)
                    if notes else "")  # fmt: skip


def bench_length_block(sources: Sources) -> str:
    parts = []
    for size, what in ((QUICK, "The committed quick run"), (FULL, "the committed study")):
        run = sources.latest(size)
        if run is None or run.facts.minutes_total is None:
            continue
        facts = run.facts
        measuring = f", {facts.minutes_measuring:.0f} of them measuring" if facts.minutes_measuring is not None else ""
        start = "from preparing the data" if facts.from_preparing else "from the end of preparing the data"
        parts.append(f"{what} (commit `{facts.commit[:8]}`) took {facts.minutes_total:.0f} minutes on "
                     f"{facts.cores or '?'} cores {start} to its run info{measuring}")  # fmt: skip
    return ("; ".join(parts) + ".") if parts else "*No run in the committed results records its length.*"


def methods_block(sources: Sources) -> str:
    run = sources.latest(QUICK)
    if run is None:
        return _missing(QUICK)
    cells, columns, methods = headline_cells(run.cells)
    keyed = {(r["workload"], r["layout"], r["method"]): r for _, r in cells.iterrows()}
    extra = [(label, column) for label, column in EXTRA_COLUMNS if column in cells and cells[column].notna().any()]
    rows = []
    for method in methods:
        row = [_method(method)]
        for workload, layout in columns:
            cell = keyed.get((workload, layout, method))
            if cell is None or cell["status"] != OK:
                row.append(_status_text(cell) or "-")
                continue
            row.append(f"{fmt.seconds(cell['time_s'])} ({fmt.ratio(cell['time_over_bound'])})")
        for _, column in extra:
            cell = keyed.get((*columns[0], method))
            shown = fmt.ratio if column == "cpu_over_decode" else fmt.seconds
            row.append(shown(cell[column]) if cell is not None else "-")
        rows.append(row)
    headers = ["method", *(f"{w} · {'default' if layout == BASELINE_LAYOUT else layout}" for w, layout in columns)]
    headers += [f"{label} ({columns[0][0]} · default)" for label, _ in extra]
    profile = ((run.info or {}).get("profiles") or {}).get(MAIN_PROFILE) or {}
    network = ""
    if profile:
        network = (f" (`{MAIN_PROFILE}`: {fmt.seconds(profile.get('rtt_s'))} round trip, "
                   f"{fmt.seconds(profile.get('first_byte_s'))} to first byte, "
                   f"{fmt.bandwidth(profile.get('connection_bandwidth'))} per connection)")  # fmt: skip
    patch = keyed.get((*columns[0], methods[0])) if methods and columns else None
    bound = ""
    if patch is not None and not fmt.missing(patch.get("bound_s")):
        bound = (f" On the default layout the bound of the {columns[0][0]} read is {fmt.seconds(patch['bound_s'])}, "
                 f"set by {patch['binds']}.")  # fmt: skip
    if patch is not None and not fmt.missing(patch.get("decode_cpu_s")):
        bound += (f" Reading its selection from a local copy on one core takes {fmt.seconds(patch['decode_cpu_s'])} "
                  "of CPU (the decode CPU every method must spend).")  # fmt: skip
    return (
        _from(run) + "\n\nMedian time of a read under the profile" + network + " and, in brackets, time / bound "
        "(1× = the physical limit of the network and this machine's decoders)." + bound + " Every cell's IQR, "
        "requests and bytes are in the report.\n\n" + _md_table(headers, rows)
    )


def layout_gains_block(sources: Sources) -> str:
    run = sources.latest(QUICK)
    if run is None:
        return _missing(QUICK)
    cells = run.cells[run.cells["layout"].isin([BASELINE_LAYOUT, FRIENDLY]) & run.cells["workload"].isin(READS)]
    summary = headline_summary(cells)
    rows = []
    for r in summary.dropna(subset=["speedup_max"]).itertuples():
        rows.append([r.workload, r.profile, str(r.methods), f"{fmt.ratio(r.speedup_min)} ({r.min_method})",
                     fmt.ratio(r.speedup_median), f"{fmt.ratio(r.speedup_max)} ({r.max_method})"])  # fmt: skip
    return (
        _from(run) + f"\n\nThe same read on `{FRIENDLY}` chunks instead of NeuroConv's default, each method's time "
        "on the default divided by its time on the friendly layout:\n\n"
        + _md_table(["read", "profile", "methods", "least (method)", "median", "most (method)"], rows)
    )


def study_reads_block(sources: Sources) -> str:
    run = sources.latest(FULL)
    if run is None:
        return _missing(FULL)
    ratios = headline_ratios(run.cells)
    reads = ratios[ratios["workload"].map(lambda w: w in WORKLOADS and WORKLOADS[w].select is not None)]
    reads = reads.dropna(subset=["speedup"])
    rows = [[r.workload, r.profile, _method(r.method), fmt.seconds(r.baseline_s), f"`{r.best_layout}`",
             fmt.seconds(r.best_s), fmt.ratio(r.speedup), fmt.ratio(r.best_over_bound)]
            for r in reads.sort_values(["workload", "profile", "speedup"]).itertuples()]  # fmt: skip
    return (
        _from(run) + "\n\nEach read method's time on NeuroConv's default layout against its time on the best "
        "layout measured for it (of every chunk shape, codec, paged and Zarr layout the study read with it):\n\n"
        + _md_table(["read", "profile", "method", "default", "best layout", "its time", "gain", "best / bound"], rows)
    )


def study_session_block(sources: Sources) -> str:
    run = sources.latest(FULL)
    if run is None:
        return _missing(FULL)
    cells = run.cells[(run.cells["workload"] == "open_session") & (run.cells["status"] == OK)]
    rows, below = [], []
    for method in method_order(cells):
        by_layout = {r["layout"]: r for _, r in cells[cells["method"] == method].iterrows()}
        plain, paged = by_layout.get(BASELINE_LAYOUT), by_layout.get(f"{BASELINE_LAYOUT}-paged")
        if plain is None or paged is None:
            continue
        rows.append([_method(method), fmt.seconds(plain["time_s"]), fmt.seconds(paged["time_s"]),
                     f"{fmt.count(plain['requests'])} → {fmt.count(paged['requests'])}",
                     f"{fmt.size(plain['bytes_received'])} → {fmt.size(paged['bytes_received'])}"])  # fmt: skip
        below += [(method, r) for r in (plain, paged) if r["time_over_bound"] < 1]
    text = (
        _from(run) + "\n\nOpening the session file and touching every table, NeuroConv's default layout against the "
        "same file with paged file space:\n\n" + _md_table(["method", "default", "paged", "requests", "received"], rows)
    )
    for method, cell in below[:1]:
        text += (f"\n\n`{method}` opened below its bound ({fmt.ratio(cell['time_over_bound'])} of it): "
                 f"{below_bound(cell, run.info or {})}.")  # fmt: skip
    return text


def recommendations_block(sources: Sources) -> str:
    check = sources.check
    if not check or not check.get("summary"):
        return "*No recommendations check in the committed results: run `nwb-cloud fit-model`.*" + _loop_text(sources)
    s = check["summary"]
    target = s.get("target", 1.2)
    text = (f"*The model {check.get('model', '')}.*\n\nFor {s.get('groups', 0)} groups (a read or a mix of reads, a "
            f"profile, a read method) the model's pick among the measured layouts was measured within {target}× of "
            f"the fastest measured layout in {s['in_sample_within_target']:.0%} of groups (median "
            f"{s['in_sample_median_ratio']:.2f}×, worst {s['in_sample_worst_ratio']:.2f}×: "
            f"{s['in_sample_worst_group']})")  # fmt: skip
    if "held_out_within_target" in s:
        text += (f"; fitted without the cells of the group it predicts, in {s['held_out_within_target']:.0%} "
                 f"(worst {s['held_out_worst_ratio']:.2f}×)")  # fmt: skip
    return text + "." + _loop_text(sources)


def _loop_text(sources: Sources) -> str:
    """The closed loop's summary line beside the check: the layouts the tool hands out, measured."""
    if sources.loop is None or sources.loop.empty:
        return ""
    from nwb_cloud.recommend.loop_check import latest_groups, loop_summary, summary_line

    runs = latest_groups(sources.loop)[["machine", "size", "commit", "run"]].drop_duplicates()
    named = "; ".join(f"run {r.run}, commit `{str(r.commit)[:8]}`" for r in runs.itertuples())
    return ("\n\nThat check ranks only layouts that were measured. The closed loop measures the layout the tool "
            "hands out: for data shapes and mixes the model never saw, the recommendation was rewritten, uploaded "
            f"and measured beside the layouts around it ({named}): {summary_line(loop_summary(sources.loop))}. "
            "Every group and every miss, with why, is on the guidance page.")  # fmt: skip


def proxy_block(sources: Sources) -> str:
    lines = []
    for run in sources.runs:
        overhead = (run.info or {}).get("proxy_overhead") or {}
        paths = {f.get("path"): f for f in overhead.get("figures") or [] if isinstance(f, dict)}
        direct, proxied = paths.get("direct"), paths.get("process loopback")
        if not direct or not proxied:
            continue
        get = proxied["small_get_ms"] - direct["small_get_ms"]
        single = proxied["single_stream_mb_s"] / direct["single_stream_mb_s"] - 1
        parallel = proxied["parallel_mb_s"] / direct["parallel_mb_s"] - 1
        lines.append(
            f"- {run.facts.name}: a small GET through the unshaped proxy took {get:+.1f} ms against the endpoint "
            f"directly ({direct['small_get_ms']:.1f} → {proxied['small_get_ms']:.1f} ms); one stream "
            f"{single:+.0%}, {overhead.get('parallel', '?')} parallel streams {parallel:+.0%} of the direct "
            "throughput"
        )
        if (run.info or {}).get("serving_cost"):
            lines[-1] += "; the server's and proxy's CPU cost is in the report"
    return "\n".join(lines) or "*No run in the committed results measured the proxy's overhead.*"


def reliability_block(sources: Sources) -> str:
    probes = sources.reliability
    if probes.empty:
        return "*No reliability probe in the committed results: run `nwb-cloud reliability`.*"
    parts = []
    for source, rows in probes.groupby("source", sort=True):
        named = {"probe_commit": "commit", "probe_date": "date", "probe_size": "size", "workload": "workload",
                 "layout": "layout", "profile": "profile"}  # fmt: skip
        identity = ", ".join(
            f"{label} {str(rows[k].iloc[0])[:8] if k == 'probe_commit' else rows[k].iloc[0]}"
            for k, label in named.items()
            if k in rows
        )
        head = f"*From the probe file `{source}`{' (' + identity + ')' if identity else ''}.*"
        outcomes = rows[(rows["outcome"] != EXACT) & (rows["outcome"] != "unavailable")]
        table = _md_table(
            ["method", "fault", "outcome", "raised"],
            [[_method(r.method), r.fault, r.outcome, raised_by(r.detail)] for r in outcomes.itertuples()],
        )
        exact = sorted(set(rows["method"]) - set(rows[rows["outcome"] != EXACT]["method"]))
        text = head + "\n\n" + table + f"\n\nExact data under every fault: {', '.join(f'`{m}`' for m in exact)}."
        if INDEX_METHOD in set(rows["method"]) and f"{INDEX_METHOD}{WARM_SUFFIX}" not in set(rows["method"]):
            text += (f" This probe predates the cold and warm `{INDEX_METHOD}` rows: it records no index-cache "
                     "state, and from a warm cache the sidecar GET never meets a fault.")  # fmt: skip
        parts.append(text)
    return "\n\n".join(parts)


def zarr_block(sources: Sources) -> str:
    def opens(run: Run) -> pd.DataFrame:
        cells = run.cells
        return cells[(cells["status"] == OK) & cells["workload"].isin(OPENS) & (cells["profile"] == MAIN_PROFILE)]

    both = {"hdmf-zarr", "hdmf-zarr-unconsolidated"}
    candidates = [r for r in (sources.latest(QUICK), sources.latest(FULL)) if r is not None]
    run = next((r for r in candidates if both <= set(opens(r)["method"])), None)
    if run is None:
        return "*No run in the committed results opened a Zarr copy both with and without consolidated metadata.*"
    cells = opens(run)
    times = cells.groupby(["workload", "method"])["time_s"].median()
    rows = [[w, fmt.seconds(times.get((w, "hdmf-zarr-unconsolidated"), np.nan)), fmt.seconds(times.get((w, "hdmf-zarr"),
            np.nan))] for w in OPENS if (w, "hdmf-zarr") in times]  # fmt: skip
    if not rows:
        return "*No hdmf-zarr open in the committed results.*"
    return (
        _from(run)
        + f"\n\nhdmf-zarr opening a Zarr copy under `{MAIN_PROFILE}`:\n\n"
        + _md_table(["open", "unconsolidated metadata", "consolidated"], rows)
    )


BLOCKS: dict[str, Callable[[Sources], str]] = {
    "runs": runs_block,
    "bench-length": bench_length_block,
    "methods": methods_block,
    "layout-gains": layout_gains_block,
    "study-reads": study_reads_block,
    "study-session": study_session_block,
    "recommendations": recommendations_block,
    "proxy": proxy_block,
    "reliability": reliability_block,
    "zarr-open": zarr_block,
}
