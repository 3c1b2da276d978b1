"""asv results -> cells -> tables, figures -> ``<out>/index.html``: the page a NWB/DANDI developer reads first.

The asv pages (``asv publish``, in ``<out>/html``) stay beside it for history and per-benchmark graphs.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pandas as pd

from nwb_cloud.files import write_text_whole
from nwb_cloud.report import figures, page
from nwb_cloud.report.errors import ReportError
from nwb_cloud.report.html import anchor_id, esc, paragraph, section
from nwb_cloud.report.html import page as html_page
from nwb_cloud.report.tables import headline_ratios, rank_methods
from nwb_cloud.results.asv_results import load_records
from nwb_cloud.results.cells import cells_frame, latest_runs
from nwb_cloud.results.run_info import load_recommendation_check, load_reliability, load_run_infos, run_info_for

TITLE = "nwb-cloud: streaming NWB reads from S3"


def build(results_dir: Path, out_dir: Path) -> Path:
    """Write ``out_dir/index.html``, its figures (``figures/``) and tables (``tables/``); return the page's path."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    records, machines = load_records(results_dir)
    if not records:
        raise ReportError(f"no asv results in {results_dir}: run `nwb-cloud bench` first")
    infos = load_run_infos(results_dir)
    reliability = load_reliability(results_dir)
    every_run = cells_frame(records, infos)
    latest = latest_runs(every_run)
    runs = []
    for (machine, size), cells in latest.groupby(["machine", "size"], sort=True):
        commit = cells["commit"].iloc[0]
        same = (every_run["machine"] == machine) & (every_run["size"] == size)
        earlier = every_run[same][["commit", "env"]].drop_duplicates()
        runs.append(
            page.Run(
                machine=machine,
                machine_info=machines[machine].info if machine in machines else {},
                commit=commit,
                started=cells["run_started"].max(),
                cells=cells.reset_index(drop=True),
                info=run_info_for(infos, machine, commit),
                earlier_runs=len(earlier) - 1,
                size=size,
            )
        )
    for run in runs:
        _draw(run, out_dir)
    _write_tables(latest, out_dir / "tables")
    return write_text_whole(out_dir / "index.html", _render(runs, reliability, results_dir, out_dir))


def _draw(run: page.Run, out_dir: Path) -> None:
    prefix = run.key
    for workload in run.workloads():
        cells = run.cells[run.cells["workload"] == workload]
        title = f"{workload} on {run.label} ({run.commit[:8]})"
        drawn = {
            "time": figures.time_figure(cells, title, out_dir / "figures" / f"{prefix}-{workload}-time"),
            "bound": figures.bound_figure(cells, title, out_dir / "figures" / f"{prefix}-{workload}-bound"),
        }
        for kind, paths in drawn.items():
            if paths:
                run.figures[(workload, kind)] = f"figures/{paths[1].name}"
    paths = figures.headline_figure(
        headline_ratios(run.cells),
        f"Best layout vs default on {run.label}",
        out_dir / "figures" / f"{prefix}-headline",
    )
    if paths:
        run.figures[("all", "headline")] = f"figures/{paths[1].name}"


def _write_tables(cells: pd.DataFrame, folder: Path) -> None:
    """The tables behind the page as CSV, for notebooks and for diffing two runs."""
    folder.mkdir(parents=True, exist_ok=True)
    rank_methods(cells).drop(columns=["samples"]).to_csv(folder / "cells.csv", index=False)
    headline_ratios(cells).to_csv(folder / "headline_ratios.csv", index=False)


def _render(runs: list[page.Run], reliability: pd.DataFrame, results_dir: Path, out_dir: Path) -> str:
    generated = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    asv_pages = out_dir / "html" / "index.html"
    intro = (
        f"<h1>{esc(TITLE)}</h1>"
        + paragraph(
            f"Generated {generated} from the asv results in {results_dir}. Each machine's latest run of each data "
            "size is shown; per-benchmark history and graphs are in the asv pages."
        )
        + ('<p><a href="html/index.html">asv pages</a> · ' if asv_pages.exists() else "<p>")
        + '<a href="tables/cells.csv">cells.csv</a> · <a href="tables/headline_ratios.csv">headline_ratios.csv</a></p>'
    )
    check = load_recommendation_check(results_dir)
    body = [intro, page.alerts(runs, reliability), _contents(runs, reliability, check)]
    for run in runs:
        label = f" — {run.label}" if len(runs) > 1 else ""
        body.append(section(f"{run.key}-how", f"How to read this{label}", page.how_to_read(run)))
        body.append(section(f"{run.key}-headline", f"Headline{label}", page.headline(run)))
        body.extend(page.workload_section(run, workload) for workload in run.workloads())
        body.append(page.tracks_section(run))
        body.append(page.problems_section(run))
        body.append(page.run_details(run))
    body.append(page.recommendations_section(check, guidance=(out_dir / "guidance.html").exists()))
    body.append(page.reliability_section(reliability))
    return html_page(TITLE, "\n".join(part for part in body if part))


def _contents(runs: list[page.Run], reliability: pd.DataFrame, check: dict | None = None) -> str:
    items = []
    for run in runs:
        label = f" ({run.label})" if len(runs) > 1 else ""
        items.append(f'<a href="#{run.key}-how">How to read this{esc(label)}</a>')
        items.append(f'<a href="#{run.key}-headline">Headline{esc(label)}</a>')
        items += [f'<a href="#{anchor_id(run.key, w)}">{esc(w)}{esc(label)}</a>' for w in run.workloads()]
        items.append(f'<a href="#{run.key}-problems">Cells without a time{esc(label)}</a>')
    if check:
        items.append('<a href="#recommendations">Recommendations vs the measured best</a>')
    if not reliability.empty:
        items.append('<a href="#reliability">Reliability under S3 faults</a>')
    return "<nav><h2>Contents</h2><ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul></nav>"
