"""The local executor: the jobs AWS Batch would run, as local processes with the same command lines.

Each step of each session is ``python -m nwb_cloud batch run-step RUN SESSION STEP``, exactly the command a
Batch container runs after its ``nwb-cloud`` entrypoint, with the environment a job definition would give
it (the source's rclone remote as ``RCLONE_CONFIG_*`` variables, credentials for the destination). A
session's steps run in order and stop at the first failure; sessions run ``parallel`` at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

from nwb_cloud import processes
from nwb_cloud.batch.jobs import Run, collect_records, session_jobs, write_run
from nwb_cloud.batch.plan import Plan
from nwb_cloud.convert.records import Record, append_records
from nwb_cloud.convert.steps import STEPS


@dataclass(frozen=True)
class ChainResult:
    session: str  # the chain's name (a session, a fleet child)
    status: str  # SUCCEEDED | FAILED
    seconds: float
    failed_step: str | None = None
    reason: str | None = None
    step_seconds: dict[str, float] = field(default_factory=dict)  # each step's process, launch to exit


def run_chains(
    chains: dict[str, list[tuple[str, list[str]]]], envs: dict[str, dict[str, str]], parallel: int = 1
) -> list[ChainResult]:
    """Each chain's (step, command) in order, stopping at its first failure; ``parallel`` chains at a time.

    ``envs`` gives each chain's environment (the executor's own plus what a job definition would set).
    """

    def chain(name: str) -> ChainResult:
        started = time.perf_counter()
        steps: dict[str, float] = {}
        for step, command in chains[name]:
            launched = time.perf_counter()
            done = subprocess.run(
                command, env=envs[name], capture_output=True, text=True,
                **processes.child_options(),  # the pool's thread waits for it, so it dies with this process
            )  # fmt: skip
            steps[step] = time.perf_counter() - launched
            if done.returncode != 0:
                lines = [line for line in done.stderr.splitlines() if line.strip()]
                reason = lines[-1] if lines else f"exit code {done.returncode}"
                return ChainResult(name, "FAILED", time.perf_counter() - started, step, reason, steps)
        return ChainResult(name, "SUCCEEDED", time.perf_counter() - started, step_seconds=steps)

    with ThreadPoolExecutor(max(1, parallel)) as pool:
        return list(pool.map(chain, chains))


class LocalExecutor:
    def __init__(self, env: dict[str, str] | None = None, parallel: int = 1, workdir: Path | None = None):
        self.env = {**os.environ, **(env or {})}
        self.parallel = max(1, parallel)
        self.workdir = workdir

    def command(self, run: Run, session: str, step: str) -> list[str]:
        command = [sys.executable, "-m", "nwb_cloud", *run.command(session, step)]
        if self.workdir is not None:
            command += ["--workdir", str(self.workdir)]
        return command

    def run(self, run: Run, sessions: list[str]) -> list[ChainResult]:
        chains = {session: [(step, self.command(run, session, step)) for step in STEPS] for session in sessions}
        return run_chains(chains, {session: self.env for session in sessions}, self.parallel)


@dataclass(frozen=True)
class LocalRun:
    run: Run
    chains: list[ChainResult]
    wall_seconds: float
    estimated_seconds: float
    records: list[Record]

    @property
    def ratio(self) -> float:
        """Measured over estimated wall time (1.0 is a perfect estimate)."""
        return self.wall_seconds / self.estimated_seconds if self.estimated_seconds else float("inf")


def run_locally(
    plan: Plan, env: dict[str, str], parallel: int = 1, records_path: Path | None = None, workdir: Path | None = None
) -> LocalRun:
    """Write the run folder, run every chain as local processes, collect (and keep) their throughput records."""
    plan.destination.probe_write()  # the plan wrote nothing: write access is proved now, before any work
    run = write_run(plan, session_jobs(plan))
    started = time.perf_counter()
    chains = LocalExecutor(env, parallel, workdir).run(run, [s.name for s in plan.sessions])
    wall = time.perf_counter() - started
    observed = {(c.session, step): seconds for c in chains for step, seconds in c.step_seconds.items()}
    records = [  # what the executor saw of each job: the launch and exit its fixed cost is measured from
        replace(r, job_seconds=round(observed.get((r.session, r.step), 0.0), 3)) for r in collect_records(run)
    ]
    if records_path is not None:
        append_records(records_path, records)
    return LocalRun(run, chains, wall, plan.wall_seconds, records)
