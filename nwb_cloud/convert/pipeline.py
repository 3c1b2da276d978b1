"""``nwb-cloud convert``: every session of a spec through transfer -> convert -> upload, in this process.

Everything a user can get wrong is checked before the first byte moves: the spec (by NeuroConv's schema),
the layout name, write access to the destination, and the source (it exists, and holds every file and
folder the spec names). Then each session runs its steps with a progress line; a session that fails is
reported and the others go on; finished sessions are skipped on a re-run.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from nwb_cloud import processes
from nwb_cloud.convert.errors import ConvertError, SourceError
from nwb_cloud.convert.fingerprint import Fingerprint
from nwb_cloud.convert.places import LocalPlace
from nwb_cloud.convert.rclone import Rclone, include_rules
from nwb_cloud.convert.records import append_records
from nwb_cloud.convert.spec import ConversionSpec, Session
from nwb_cloud.convert.steps import STEPS, Job, StepResult, require_paths, run_step, session_state


@dataclass(frozen=True)
class SessionSize:
    session: Session
    bytes: int
    files: int
    fingerprint: Fingerprint  # of the sources as listed now (and the spec, layout, versions)


@dataclass
class Outcome:
    session: str
    status: str  # finished | skipped | failed
    seconds: float = 0.0
    error: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    redone: str | None = None  # why a session finished before was converted again


def survey(rclone: Rclone, source: str, spec: ConversionSpec, layout: str | None = None) -> list[SessionSize]:
    """Each session's files on the source, listed in one rclone call; :class:`SourceError` if anything lacks."""
    rules = include_rules(
        [p for s in spec.sessions for p in s.files], [f for s in spec.sessions for f in s.folders]
    )  # fmt: skip
    listed = rclone.list_files(source, rules, details=True)
    if not listed and not rclone.list_files(source):
        raise SourceError(f"{source} holds no files (an empty or missing folder: object stores cannot tell)")
    sizes = []
    for session in spec.sessions:
        mine = [e for e in listed if _selected(e.path, session)]
        require_paths(session, source, [e.path for e in mine])
        sizes.append(SessionSize(session, sum(e.size for e in mine), len(mine), Fingerprint.of(session, mine, layout)))
    return sizes


def _selected(path: str, session: Session) -> bool:
    if path in session.files:
        return True
    return any(f.strip("/") in ("", ".") or path.startswith(f.strip("/") + "/") for f in session.folders)


def preflight(
    spec: ConversionSpec, source: str, destination, rclone: Rclone, layout: str | None, write: bool = True
) -> list[SessionSize]:
    """All the checks that must pass before anything is created or transferred.

    ``write=False`` (a plan) checks the destination without writing to it: nothing is created, not even its
    folder; the write itself is proved when the work starts.
    """
    if layout is not None:
        from nwb_cloud.datasets.layouts import get_layout

        get_layout(layout)
    if write:
        destination.probe_write()
    else:
        destination.check_reachable()
    return survey(rclone, source, spec, layout)


def convert(
    spec: ConversionSpec,
    source: str,
    destination,
    workdir: Path,
    rclone: Rclone,
    layout: str | None = None,
    records_path: Path | None = None,
    console: Console | None = None,
) -> list[Outcome]:
    """Convert every session of ``spec``; returns one :class:`Outcome` per session (none raises)."""
    console = console or Console(stderr=True)
    sizes = preflight(spec, source, destination, rclone, layout)
    run_id = time.strftime("local-%Y%m%dT%H%M%S")
    workdir = Path(workdir)
    outcomes = []
    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        for size in sizes:
            processes.stop_if_interrupted()
            session = size.session
            task = progress.add_task(f"{session.name}: waiting", total=size.bytes)
            record, change = session_state(destination, session, size.fingerprint)
            if record:
                progress.update(task, description=f"{session.name}: already finished, skipped", completed=size.bytes)
                outcomes.append(Outcome(session.name, "skipped"))
                continue
            if change:
                progress.console.print(f"{session.name}: converting again: {change}", highlight=False)
            job = Job(run_id, session.name, spec.text, source, LocalPlace(workdir / session.name), destination, layout)
            outcome = _run_session(job, size, progress, task, rclone, workdir, records_path)
            outcomes.append(dataclasses.replace(outcome, redone=change) if change else outcome)
    for outcome in outcomes:
        if outcome.status == "failed":
            console.print(f"[red]{outcome.session} failed[/]: {outcome.error}")
    return outcomes


def _run_session(job, size, progress, task, rclone, workdir, records_path) -> Outcome:
    started = time.perf_counter()
    results = []
    name = job.session_name
    try:
        for step in STEPS:
            progress.update(task, description=f"{name}: {step}", completed=0 if step == "transfer" else size.bytes)
            result = run_step(
                job, step, rclone, workdir=workdir,
                progress=lambda done, total: progress.update(task, completed=done),
            )  # fmt: skip
            results.append(result)
            if records_path is not None and not result.skipped:
                append_records(records_path, [result.record(job)])
    except Exception as error:  # one session's failure, ours or NeuroConv's, must not stop the others
        message = str(error) if isinstance(error, ConvertError) else f"{type(error).__name__}: {error}"
        progress.update(task, description=f"[red]{name}: failed[/]")
        return Outcome(name, "failed", time.perf_counter() - started, message, results)
    progress.update(task, description=f"[green]{name}: finished[/]", completed=size.bytes)
    return Outcome(name, "finished", time.perf_counter() - started, None, results)
