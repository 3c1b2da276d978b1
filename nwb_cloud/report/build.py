"""asv results -> cells -> tables, figures -> ``<out>/index.html``: the page a NWB/DANDI developer reads first.

The asv pages (``asv publish``, in ``<out>/html``) stay beside it for history and per-benchmark graphs.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import pandas as pd

from nwb_cloud.files import write_text_whole
from nwb_cloud.report import blocks, figures, page
from nwb_cloud.report.errors import ReportError
from nwb_cloud.report.html import anchor_id, esc, paragraph, section
from nwb_cloud.report.html import page as html_page
from nwb_cloud.results import Results, load_results
from nwb_cloud.results.run_info import load_recommendation_check, load_reliability, run_info_for
from nwb_cloud.results.tables import headline_ratios, rank_methods
from nwb_cloud.settings import usable_cores

TITLE = "nwb-cloud: streaming NWB reads from S3"


def load(results_dir: Path | Results) -> blocks.Sources:
    """Each machine's latest run of each size (with its run info), the reliability probes and the fit's check."""
    results = load_results(results_dir)
    results_dir, machines, infos, every_run = results.folder, results.machines, results.infos, results.cells
    if every_run.empty:
        raise ReportError(f"no asv results in {results_dir}: run `nwb-cloud bench` first")
    latest = results.latest()
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
    runs.sort(key=lambda run: (run.machine, run.size != "quick", run.size))  # `make bench`'s own run first
    from nwb_cloud.recommend.loop_check import loop_groups

    return blocks.Sources(runs, load_reliability(results_dir), load_recommendation_check(results_dir),
                          loop_groups(results))  # fmt: skip


def build(results_dir: Path, out_dir: Path, sources: blocks.Sources | None = None) -> Path:
    """Write ``out_dir/index.html``, its figures (``figures/``) and tables (``tables/``); return the page's path."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    sources = sources or load(results_dir)
    _draw(sources.runs, out_dir)
    _remove_stale_figures(out_dir / "figures", {Path(f).stem for run in sources.runs for f in run.figures.values()})
    latest = pd.concat([run.cells for run in sources.runs], ignore_index=True)
    _write_tables(latest, out_dir / "tables")
    machines = page.machines_section(latest, [run.info for run in sources.runs if run.info])
    return write_text_whole(out_dir / "index.html", _render(sources, results_dir, out_dir, machines))


def publish(results_dir: Path, out_dir: Path, readme: Path | None = None, log=print) -> list[Path]:
    """Everything published from ``results_dir``: the report page, the guidance page (when the results hold
    enough reads to fit the model) and the marked blocks of ``readme``. Returns the files written.

    README's blocks are made first, so a README naming an unknown block stops the publication before
    anything is written."""
    from nwb_cloud.recommend import NotEnoughMeasurements, write_guidance

    results = load_results(results_dir)  # read once for the page, the guidance page and README
    sources = load(results)
    text = Path(readme).read_text() if readme is not None and Path(readme).exists() else None
    filled = blocks.fill(text, blocks.blocks(sources)) if text is not None else None
    written = []
    try:  # before the report page, which links the guidance page when it exists
        written.append(write_guidance(results, out_dir, loop=sources.loop))
    except NotEnoughMeasurements as error:
        log(f"guidance page not written: {error}")
    written.insert(0, build(results_dir, out_dir, sources))
    if filled is not None and filled != text:
        written.append(write_text_whole(Path(readme), filled))
    return written


def _draw(runs: list[page.Run], out_dir: Path) -> None:
    """Every run's figures, drawn on every usable core (matplotlib takes most of a report's time), each
    recorded in its run's ``figures`` when drawn."""
    jobs = []  # (run, figure key, figures function, its data, title, stem)
    for run in runs:
        for workload in run.workloads():
            cells = run.cells[run.cells["workload"] == workload]
            title = f"{workload} on {run.label} ({run.commit[:8]})"
            for kind in ("time", "bound"):
                jobs.append((run, (workload, kind), f"{kind}_figure", cells, title, f"{run.key}-{workload}-{kind}"))
        jobs.append((run, ("all", "headline"), "headline_figure", headline_ratios(run.cells),
                     f"Best layout vs default on {run.label}", f"{run.key}-headline"))  # fmt: skip
    work = [(function, data, title, out_dir / "figures" / stem) for _, _, function, data, title, stem in jobs]
    workers = min(usable_cores(), len(work))
    if workers > 1:
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            drawn = list(pool.map(_draw_one, work))
    else:
        drawn = [_draw_one(job) for job in work]
    for (run, key, *_), paths in zip(jobs, drawn, strict=True):
        if paths:
            run.figures[key] = f"figures/{paths[1].name}"


def _draw_one(job: tuple) -> list[Path] | None:
    function, data, title, stem = job
    return getattr(figures, function)(data, title, stem)


def _remove_stale_figures(folder: Path, drawn: set[str]) -> None:
    """Remove the run figures this build did not draw (a run replaced by a newer one of its size, a workload it
    no longer measures), so the folder holds what the page shows; the guidance page's figures are its own."""
    if not folder.is_dir():
        return
    for path in sorted(folder.rglob("*"), reverse=True):  # a folder after what it holds
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()  # left by a figure name that held a "/" (an asset key)
        elif (path.suffix in (".png", ".svg") and not path.name.startswith("guidance-")
              and (path.parent != folder or path.stem not in drawn)):  # fmt: skip
            path.unlink()


def _write_tables(cells: pd.DataFrame, folder: Path) -> None:
    """The tables behind the page as CSV, for notebooks and for diffing two runs."""
    folder.mkdir(parents=True, exist_ok=True)
    rank_methods(cells).drop(columns=["samples", "run_info_key"]).to_csv(folder / "cells.csv", index=False)
    headline_ratios(cells).to_csv(folder / "headline_ratios.csv", index=False)


def _render(sources: blocks.Sources, results_dir: Path, out_dir: Path, machines: str = "") -> str:
    runs, reliability = sources.runs, sources.reliability
    intro = (
        f"<h1>{esc(TITLE)}</h1>"
        + paragraph(
            f"Generated by nwb-cloud report from the asv results in {results_dir.name}/ (the same results give the "
            "same page). Each machine's latest run of each data size is shown, each in its own sections: no table or "
            "figure combines two runs. Per-benchmark history and graphs are in the asv pages."
        )
        # Linked whether or not they exist here: the page is a function of the results alone (the asv pages
        # are written by `make bench` beside it and not committed), so a clean clone reproduces it.
        + '<p><a href="html/index.html">asv pages</a> (written by <code>make bench</code>) · '
        + '<a href="tables/cells.csv">cells.csv</a> · <a href="tables/headline_ratios.csv">headline_ratios.csv</a></p>'
    )
    check = sources.check
    body = [intro, page.alerts(runs, reliability), _contents(runs, reliability, check, bool(machines)), machines]
    for run in runs:
        label = f" — {run.label}" if len(runs) > 1 else ""
        body.append(section(f"{run.key}-headline", f"Headline{label}", page.headline(run)))
        body.append(section(f"{run.key}-how", f"How to read this{label}", page.how_to_read(run)))
        body.extend(page.workload_section(run, workload) for workload in run.workloads())
        body.append(page.tracks_section(run))
        body.append(page.problems_section(run))
        body.append(page.run_details(run))
    body.append(page.recommendations_section(check, guidance=(out_dir / "guidance.html").exists()))
    body.append(page.reliability_section(reliability))
    return html_page(TITLE, "\n".join(part for part in body if part))


def _contents(
    runs: list[page.Run], reliability: pd.DataFrame, check: dict | None = None, machines: bool = False
) -> str:
    items = ['<a href="#machines">Machines side by side</a>'] if machines else []
    for run in runs:
        label = f" ({run.label})" if len(runs) > 1 else ""
        items.append(f'<a href="#{run.key}-headline">Headline{esc(label)}</a>')
        items.append(f'<a href="#{run.key}-how">How to read this{esc(label)}</a>')
        items += [f'<a href="#{anchor_id(run.key, w)}">{esc(w)}{esc(label)}</a>' for w in run.workloads()]
        items.append(f'<a href="#{run.key}-problems">Cells without a time{esc(label)}</a>')
    if check:
        items.append('<a href="#recommendations">Recommendations vs the measured best</a>')
    if not reliability.empty:
        items.append('<a href="#reliability">Reliability under S3 faults</a>')
    return "<nav><h2>Contents</h2><ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul></nav>"
