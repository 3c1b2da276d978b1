"""``batch status`` and ``batch logs``: per-session state of a run, failures with their reason, job logs.

Waiting ends when every job has finished or as soon as one has FAILED (a failed step fails the rest of its
chain, and nothing the user can do waits on it), with the reason AWS gives: the job's status reason, the
container's reason or exit code. NeuroConv's wait loop never ends on FAILED.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from nwb_cloud.batch.aws import aws_errors
from nwb_cloud.batch.errors import BatchError
from nwb_cloud.batch.jobs import Run
from nwb_cloud.convert.steps import STEPS

FINISHED = ("SUCCEEDED", "FAILED")


@dataclass(frozen=True)
class JobState:
    step: str
    job_id: str
    status: str
    reason: str = ""


@dataclass(frozen=True)
class SessionState:
    session: str
    jobs: tuple[JobState, ...]

    @property
    def status(self) -> str:
        statuses = [job.status for job in self.jobs]
        if "FAILED" in statuses:
            return "FAILED"
        if all(s == "SUCCEEDED" for s in statuses):
            return "SUCCEEDED"
        return next(s for s in statuses if s != "SUCCEEDED")

    @property
    def failure(self) -> str:
        failed = [job for job in self.jobs if job.status == "FAILED"]
        return f"{failed[0].step}: {failed[0].reason}" if failed else ""


def manifest(run: Run) -> dict:
    data = run.folder.read_json("run.json")
    if not data:
        raise BatchError(f"{run.url} has no run.json: not a run submitted to AWS Batch")
    return data


def failure_reason(job: dict) -> str:
    """What AWS says went wrong with a FAILED job, from the most specific field available."""
    parts = []
    attempts = job.get("attempts") or []
    container = (attempts[-1].get("container") if attempts else None) or job.get("container") or {}
    if container.get("reason"):
        parts.append(container["reason"])
    if container.get("exitCode") not in (None, 0):
        parts.append(f"exit code {container['exitCode']}")
    if job.get("statusReason"):
        parts.append(job["statusReason"])
    if attempts and attempts[-1].get("statusReason") and attempts[-1]["statusReason"] not in parts:
        parts.append(attempts[-1]["statusReason"])
    return "; ".join(parts) or "no reason given by AWS Batch"


def run_state(run: Run, batch) -> list[SessionState]:
    jobs = manifest(run)["jobs"]
    ids = [job_id for steps in jobs.values() for job_id in steps.values()]
    described: dict[str, dict] = {}
    with aws_errors(f"describing the jobs of {run.url}"):
        for start in range(0, len(ids), 100):
            described.update({j["jobId"]: j for j in batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]})
    states = []
    for session, steps in jobs.items():
        entries = []
        for step in STEPS:
            job = described.get(steps[step], {})
            status = job.get("status", "UNKNOWN")
            entries.append(JobState(step, steps[step], status, failure_reason(job) if status == "FAILED" else ""))
        states.append(SessionState(session, tuple(entries)))
    return states


def wait(
    run: Run,
    batch,
    poll_s: float = 30.0,
    timeout_s: float | None = None,
    on_poll: Callable[[list[SessionState]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[SessionState]:
    """Poll until every session has finished, or one has FAILED (returns at once then), or ``timeout_s``."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        states = run_state(run, batch)
        if on_poll is not None:
            on_poll(states)
        if any(s.status == "FAILED" for s in states) or all(s.status == "SUCCEEDED" for s in states):
            return states
        if deadline is not None and time.monotonic() > deadline:
            raise BatchError(f"run {run.run_id} still running after {timeout_s:.0f} s; `batch status` follows it")
        sleep(poll_s)


def job_logs(run: Run, session: str, step: str, batch, logs) -> list[str]:
    """The CloudWatch log lines of one step's job (its last attempt)."""
    data = manifest(run)
    try:
        job_id = data["jobs"][session][step]
    except KeyError:
        raise BatchError(f"run {run.run_id} has no {step} job for session {session!r}") from None
    with aws_errors(f"the logs of {session} {step}"):
        job = batch.describe_jobs(jobs=[job_id])["jobs"]
        if not job:
            raise BatchError(f"AWS Batch no longer knows job {job_id} (jobs are kept for about a week)")
        attempts = job[0].get("attempts") or []
        container = (attempts[-1].get("container") if attempts else None) or job[0].get("container") or {}
        stream = container.get("logStreamName")
        if not stream:
            return []
        lines, token = [], None
        while True:
            kwargs = {"logGroupName": data["log_group"], "logStreamName": stream, "startFromHead": True}
            if token:
                kwargs["nextToken"] = token
            page = logs.get_log_events(**kwargs)
            lines += [event["message"] for event in page.get("events", [])]
            if not page.get("events") or page.get("nextForwardToken") == token:
                return lines
            token = page.get("nextForwardToken")
