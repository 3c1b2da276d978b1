"""Measuring a prepared run: the shaping proxies up, asv over the grid, the run info, and what failed.

``nwb-cloud bench`` prepares the run (data, method artefacts, bounds) and calls :func:`measure_prepared`;
tests call it on a tiny prepared grid. :func:`exit_status` is the meaning of the bench's exit code.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from nwb_cloud.suite.asv_driver import run_asv
from nwb_cloud.suite.asv_grid import selection
from nwb_cloud.suite.proxies import run_proxies
from nwb_cloud.suite.run_info import failures, run_info
from nwb_cloud.suite.state import RunState


@dataclass
class Measured:
    info: dict  # the run info (see nwb_cloud.suite.run_info)
    asv: dict  # what run_asv returned: passed, status, html, commit
    failures: list[str]  # one line per real failure; empty when nothing failed

    @property
    def exit_status(self) -> int:
        return exit_status(self.failures)


def exit_status(failed: list[str]) -> int:
    """0 when nothing real failed (unsupported and unavailable cells are skips with a reason), else 1."""
    return 1 if failed else 0


def measure_prepared(
    state: RunState,
    state_path: Path,
    repo: Path,
    upstream_url: str | None,
    overhead: dict | None = None,
    bench: str | None = None,
    asv_config: Path | None = None,
    serving=None,
    server_pid: int | None = None,
) -> Measured:
    """Run asv over the prepared ``state`` behind one shaping proxy per profile (``upstream_url``: the embedded
    endpoint; None for real S3), and collect the run info (``serving``: the measured
    :class:`~nwb_cloud.cloud.calibrate.ServingCost`, recorded in it; ``server_pid``: the endpoint's process, whose
    CPU each sample measures beside its proxy's). asv runs the grid's cells only (those
    matching ``bench`` too, when given), not every combination of its classes' params."""
    with run_proxies(state, state_path, upstream_url, server_pid):
        outcome = run_asv(repo, state_path, bench=selection(state.grid, bench), config=asv_config)
    info = run_info(state, overhead, commit=outcome["commit"], serving=serving.to_dict() if serving else None)
    return Measured(info, outcome, failures(info, outcome["status"]))
