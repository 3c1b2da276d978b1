"""``fleet status`` and ``fleet collect``: follow the children, then bring their results home.

A child's state is AWS Batch's (for a local run, its own ``status.json``), beside the phase it reported
last. Collecting copies each finished child's pushed files into the local results folder as asv lays it
out (``<machine>/``, ``run-info/``), adds the benchmarks it ran to ``benchmarks.json`` (entries already
there are kept: the checkout's own runs are described by them) and keeps each child's log apart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nwb_cloud.batch.aws import aws_errors
from nwb_cloud.batch.monitor import FINISHED, failure_reason
from nwb_cloud.convert.places import parse_place
from nwb_cloud.files import write_text_whole
from nwb_cloud.fleet.errors import FleetError


@dataclass(frozen=True)
class ChildState:
    child: str
    status: str  # SUBMITTED ... RUNNING, SUCCEEDED, FAILED (Batch's, or the local child's own)
    phase: str  # what the child said last (preparing, running the suite, ...), "" before it started
    reason: str = ""


def open_fleet_run(
    url: str, endpoint_url: str | None = None, region: str | None = None, profile: str | None = None,
    anonymous: bool = False,
):  # fmt: skip
    folder = parse_place(url, endpoint_url=endpoint_url, region=region, profile=profile, anonymous=anonymous)
    manifest = folder.read_json("run.json")
    if not manifest:
        raise FleetError(f"{url} has no run.json: not a fleet run (the folder `fleet submit` printed)")
    return folder, manifest


def child_states(folder, manifest: dict, sessions: dict | None = None) -> list[ChildState]:
    states = []
    described: dict[str, dict] = {}
    if manifest.get("executor") == "batch":
        by_region: dict[str, list[str]] = {}
        for job in manifest["jobs"].values():
            by_region.setdefault(job["region"], []).append(job["job_id"])
        for region, ids in by_region.items():
            batch = sessions[region].client("batch", region_name=region)
            with aws_errors(f"describing the children of fleet run {manifest['run_id']}"):
                for start in range(0, len(ids), 100):
                    described.update(
                        {j["jobId"]: j for j in batch.describe_jobs(jobs=ids[start : start + 100])["jobs"]}
                    )
    for child, job in manifest["jobs"].items():
        reported = folder.read_json(f"out/{child}/status.json") or {}
        phase = reported.get("state", "")
        if manifest.get("executor") == "batch":
            found = described.get(job["job_id"], {})
            status = found.get("status", "UNKNOWN")
            reason = failure_reason(found) if status == "FAILED" else ""
        else:
            status = phase if phase in FINISHED else ("RUNNING" if phase else "PENDING")
            reason = reported.get("error", "")
        if status == "FAILED" and reported.get("error"):
            reason = (
                f"{reported['error']}; {reason}" if reason and reported["error"] not in reason else reported["error"]
            )
        states.append(ChildState(child, status, phase, reason))
    return states


def wait(
    folder,
    manifest: dict,
    sessions: dict | None = None,
    poll_s: float = 60.0,
    timeout_s: float | None = None,
    on_poll: Callable[[list[ChildState]], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[ChildState]:
    """Poll until every child has finished (children are independent: one failing does not end the wait)."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        states = child_states(folder, manifest, sessions)
        if on_poll is not None:
            on_poll(states)
        if all(s.status in FINISHED for s in states):
            return states
        if deadline is not None and time.monotonic() > deadline:
            raise FleetError(f"fleet run {manifest['run_id']} still running after {timeout_s:.0f} s")
        sleep(poll_s)


@dataclass
class Collected:
    machines: list[str] = field(default_factory=list)
    files: int = 0
    missing: dict[str, str] = field(default_factory=dict)  # child -> why nothing was collected
    logs: list[Path] = field(default_factory=list)


def collect(folder, manifest: dict, results_dir: Path, logs_dir: Path, log=lambda message: None) -> Collected:
    """Every pushed child's results into ``results_dir`` (asv's layout), its log into ``logs_dir``."""
    results_dir, logs_dir = Path(results_dir), Path(logs_dir)
    collected = Collected()
    for child in manifest["jobs"]:
        out = folder.child("out", child)
        if out.size("child.log") is not None:
            out.download("child.log", logs_dir / f"{child}.log")
            collected.logs.append(logs_dir / f"{child}.log")
        names = out.names("results")
        status = (out.read_json("status.json") or {}).get("state", "not started")
        if status != "SUCCEEDED" or not names:
            collected.missing[child] = f"{status}: nothing to collect" if not names else f"{status}: not finished"
            continue
        for name in names:
            relative = name.removeprefix("results/")
            if relative == "benchmarks.json":
                merge_benchmarks(results_dir / relative, out.read_json(name) or {})
            else:
                out.download(name, results_dir / relative)
            collected.files += 1
        machines = {n.removeprefix("results/").split("/")[0] for n in names} - {"benchmarks.json", "run-info"}
        collected.machines += sorted(machines)
        log(f"collected {child}: {len(names)} files")
    return collected


def merge_benchmarks(path: Path, found: dict) -> None:
    """Add the entries of a child's ``benchmarks.json`` that ``path`` lacks (existing ones stay as they are)."""
    current = json.loads(path.read_text()) if path.exists() else {}
    merged = {**found, **current}
    if merged != current:
        write_text_whole(path, json.dumps(merged, indent=4, sort_keys=True))
