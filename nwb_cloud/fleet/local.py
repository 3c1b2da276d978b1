"""The local executor of a fleet: each child as a local process, with the command line a Batch job runs.

``python -m nwb_cloud fleet run-child RUN CHILD ...`` per child, with the environment a job definition would
give it (credentials for the store) and a home and scratch folder of its own (asv keeps its machine file in
the home). Children run ``parallel`` at a time (one at a time by default: on a small machine, children at
once would measure each other).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.batch.local import ChainResult, run_chains
from nwb_cloud.fleet.checks import prove_write_access
from nwb_cloud.fleet.plan import FleetPlan
from nwb_cloud.fleet.submit import child_command, write_run_folder


@dataclass(frozen=True)
class LocalFleet:
    run_url: str
    children: list[ChainResult]
    estimated: dict[str, float]  # child -> the plan's estimate (seconds)
    wall_seconds: float

    def ratio(self, child: str) -> float:
        """Measured over estimated time of one child (1.0 is a perfect estimate)."""
        measured = next(c.seconds for c in self.children if c.session == child)
        return measured / self.estimated[child] if self.estimated[child] else float("inf")


def run_local_fleet(
    plan: FleetPlan, env: dict[str, str], parallel: int = 1, root: Path | None = None, repo: Path | None = None
) -> LocalFleet:
    prove_write_access(plan)  # the plan wrote nothing: write access is proved now, before any work
    folder = write_run_folder(plan)
    folder.write_json("run.json", {"run_id": plan.run_id, "executor": "local",
                                   "jobs": {c.child.name: {} for c in plan.children}})  # fmt: skip
    root = Path(root or Path(tempfile.gettempdir()) / "nwb-cloud-fleet" / plan.run_id)
    chains, envs = {}, {}
    for planned in plan.children:
        name = planned.child.name
        home = root / name / "home"
        home.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "nwb_cloud", *child_command(plan, name), "--workdir", str(root / name)]
        if repo is not None:
            command += ["--repo", str(repo)]
        chains[name] = [("run-child", command)]
        envs[name] = {**os.environ, **env, "HOME": str(home)}
    started = time.perf_counter()
    results = run_chains(chains, envs, parallel)
    return LocalFleet(
        folder.url() if folder.kind == "s3" else folder.label,
        results,
        {c.child.name: c.estimate.seconds for c in plan.children},
        time.perf_counter() - started,
    )
