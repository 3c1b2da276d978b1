"""Running asv on the prepared run and publishing HTML: the pitfalls of an existing environment handled once.

* asv saves results for ``environment_type: existing`` only with ``--set-commit-hash``;
* ``asv run`` without a terminal fails until the machine is in asv's machine file (:func:`record_machine`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from nwb_cloud.errors import NwbCloudError


class AsvError(NwbCloudError):
    pass


def _asv(repo: Path, *args: str, env: dict, config: Path | None = None) -> int:
    command = [sys.executable, "-m", "asv", *args, *(["--config", str(config)] if config else [])]
    return subprocess.run(command, cwd=repo, env=env, check=False).returncode


def _commit(repo: Path) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError) as error:
        raise AsvError(f"asv needs a git commit to record results against; {repo} has none ({error})") from None
    return out.stdout.strip()


def record_machine(name: str) -> None:
    """Describe this machine (OS, CPU, RAM as asv detects them) in asv's machine file under ``name``.

    ``asv machine --yes --machine NAME`` records only the name for a machine it has not met (a fresh home: a
    container, a fleet child): it stores what differs from its defaults. What was recorded before is kept.
    """
    from asv import util
    from asv.machine import Machine, MachineCollection

    try:
        known = MachineCollection.load(name)
    except util.UserError:
        known = {}
    MachineCollection.save(name, {**Machine.get_defaults(), **{k: v for k, v in known.items() if v}, "machine": name})


def run_asv(
    repo: Path,
    state_path: Path,
    bench: str | list[str] | None = None,
    machine: str | None = None,
    config: Path | None = None,
    publish: bool = True,
) -> dict:
    """Run the suite against the prepared state; return where results and HTML went and whether all passed.

    ``bench``: asv ``--bench`` pattern(s), a benchmark (or parameter set) matching any of them runs; ``config``
    is another asv configuration (a fleet child's: its results apart from the checkout's).
    """
    repo = Path(repo)
    env = {**os.environ, "NWB_CLOUD_STATE": str(state_path)}
    machine = machine or socket.gethostname()
    record_machine(machine)
    args = [
        "run",
        "--environment", f"existing:{sys.executable}",
        "--set-commit-hash", _commit(repo),
        "--machine", machine,
        "--show-stderr",
        "--record-samples",
    ]  # fmt: skip
    for pattern in [bench] if isinstance(bench, str) else bench or []:
        args += ["--bench", pattern]
    commit = args[args.index("--set-commit-hash") + 1]
    status = _asv(repo, *args, env=env, config=config)
    if publish and _asv(repo, "publish", env=env, config=config) != 0:
        raise AsvError("`asv publish` failed")
    html = repo / "reports" / "html" / "index.html"
    return {"passed": status == 0, "status": status, "html": html, "commit": commit}


def refuse_results_of_commit(repo: Path, what: str, machine: str | None = None) -> None:
    """Stop before ``what`` runs on a commit this machine already has asv results for: asv would replace the
    results of every benchmark class both runs measure (the same class, other parameters)."""
    machine = machine or socket.gethostname()
    commit = _commit(Path(repo))
    found = sorted((Path(repo) / "results" / machine).glob(f"{commit[:8]}-*.json"))
    if found:
        raise AsvError(
            f"{found[0]} already holds results of commit {commit[:8]} on {machine}: {what} would replace them. "
            "Commit those results first (the run then gets a commit of its own), or move them aside"
        )
