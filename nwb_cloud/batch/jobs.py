"""A plan as jobs: one chain per session (transfer -> convert -> upload), described in a run folder.

The run folder (``<destination>/.conversion-state/runs/<run id>/``) holds the plan, one job specification per
session and, as steps finish, one throughput record per step. A job's command line names only the run
folder, the session and the step, so configuration reaches a container as a file it reads, never through
a shell; credentials come from the job's environment (its IAM role, or variables an executor sets).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.batch.errors import BatchError
from nwb_cloud.batch.plan import Plan, job_cores, job_share
from nwb_cloud.convert.places import STATE_FOLDER, parse_place
from nwb_cloud.convert.rclone import Rclone, Remote, remote_name, remotes_from_config
from nwb_cloud.convert.records import Record
from nwb_cloud.convert.steps import STEPS, Job, StepResult, run_step

RUNS = f"{STATE_FOLDER}/runs"
STAGING = f"{STATE_FOLDER}/staging"


@dataclass(frozen=True)
class Run:
    """Where a run's files live, and how a job reaches them (the command-line form of the folder)."""

    folder: object  # a Place
    run_id: str

    @property
    def url(self) -> str:
        return self.folder.url() if self.folder.kind == "s3" else str(self.folder.local_path())

    def command(self, session: str, step: str) -> list[str]:
        """The ``nwb-cloud`` arguments of one step's job (the container's entrypoint is ``nwb-cloud``)."""
        command = ["batch", "run-step", self.url, session, step]
        if self.folder.kind == "s3":
            command += ["--region", self.folder.region]
            if self.folder.endpoint_url:
                command += ["--endpoint-url", self.folder.endpoint_url]
        return command


def run_of(destination, run_id: str) -> Run:
    return Run(destination.child(RUNS, run_id), run_id)


def session_jobs(plan: Plan) -> list[Job]:
    hourly = {step: plan.machine.hourly * job_share(step, plan.machine) for step in STEPS}
    cores = {step: job_cores(step, plan.machine) for step in STEPS}
    return [
        Job(
            run_id=plan.run_id,
            session_name=session.name,
            spec_text=plan.spec_text,
            source=plan.source,
            staging=plan.destination.child(STAGING, plan.run_id, session.name),
            destination=plan.destination,
            layout=plan.layout,
            instance_type=plan.machine.instance_type,
            hourly_cost=hourly,
            cores=cores,
        )
        for session in plan.sessions
    ]


def write_run(plan: Plan, jobs: list[Job]) -> Run:
    """Put the plan and the job specifications in the run folder (the only thing jobs read)."""
    run = run_of(plan.destination, plan.run_id)
    run.folder.write_json("plan.json", plan.to_dict())
    for job in jobs:
        run.folder.write_json(f"jobs/{job.session_name}.json", job.to_dict())
    return run


def open_run(url: str, endpoint_url: str | None = None, region: str | None = None, profile: str | None = None) -> Run:
    folder = parse_place(url, endpoint_url=endpoint_url, region=region, profile=profile)
    return Run(folder, Path(url.rstrip("/")).name)


def load_job(run: Run, session: str) -> Job:
    data = run.folder.read_json(f"jobs/{session}.json")
    if data is None:
        raise BatchError(f"no job specification for session {session!r} in {run.url}")
    return Job.from_dict(data)


def run_job_step(
    run: Run, session: str, step: str, workdir: Path | None = None, started: float | None = None, log=print
) -> StepResult:
    """What a job does: read its specification, run its step, leave its throughput record in the run folder."""
    job = load_job(run, session)
    workdir = workdir or Path(tempfile.gettempdir()) / "nwb-cloud-jobs" / run.run_id  # one run's scratch, apart
    result = run_step(job, step, Rclone(), workdir=workdir, log=log)
    if not result.skipped:
        record = result.record(job, started=started)
        run.folder.write_json(f"records/{session}.{step}.json", record.to_dict())
    return result


def collect_records(run: Run) -> list[Record]:
    records = []
    for name in run.folder.names("records"):
        data = run.folder.read_json(name)
        if data:
            records.append(Record.from_dict(data))
    return records


def process_started() -> float:
    """When this process started (epoch seconds): a job's time includes interpreter start and imports.

    On Linux from the process's start in clock ticks since boot against ``/proc/uptime`` (10 ms): psutil's
    ``create_time`` adds the ticks to ``/proc/stat``'s boot time, whole seconds, so it can be up to a second
    early, which once made a step longer than the job its executor timed."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rpartition(")")[2].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        pass
    import psutil

    try:
        return psutil.Process().create_time()
    except psutil.Error:
        return time.time()


def source_environment(source: str, rclone: Rclone) -> dict[str, str]:
    """The source's rclone remote (and the remotes it wraps) as ``RCLONE_CONFIG_*`` variables for a job."""
    name = remote_name(source)
    if name is None:
        return {}
    given = {remote.name: remote for remote in rclone.remotes}
    wanted, remotes = [name], {}
    while wanted:
        current = wanted.pop()
        if current in remotes:
            continue
        remote = given.get(current) or remotes_from_config(rclone.config_path(), [current])[0]
        remotes[current] = remote
        wanted += _wrapped(remote)
    return {key: value for remote in remotes.values() for key, value in remote.env().items()}


def _wrapped(remote: Remote) -> list[str]:
    """Remotes an alias, crypt, union... remote refers to (``remote = other:path``, ``upstreams = a: b:``)."""
    values = [remote.options.get("remote", "")] + remote.options.get("upstreams", "").split()
    return [name for value in values if (name := remote_name(value))]
