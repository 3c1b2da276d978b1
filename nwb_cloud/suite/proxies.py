"""The run's shaping proxies: one process per network profile for the whole asv run.

Every sample runs in a process of its own (:mod:`nwb_cloud.suite.asv_grid`); starting a proxy in each would
cost ~0.2-0.5 s a sample. ``nwb-cloud bench`` starts them once, and the state file hands each benchmark
process their addresses and control ports (:class:`~nwb_cloud.cloud.proxy_process.ProxyClient`), and their
process ids, which the serving-cost calibration reads (:mod:`nwb_cloud.cloud.calibrate`); with the embedded
server's process id, each sample measures what serving its timed part cost them. A client opens
new connections for every sample, so every sample still pays connection set-up and slow start.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from nwb_cloud.cloud.profiles import PROFILES, get_profile
from nwb_cloud.cloud.proxy_process import ProxyProcess
from nwb_cloud.suite.state import RunState

PROXIES = "proxies"  # state.extra: profile -> ProxyClient.to_dict()
SERVER_PID = "server_pid"  # state.extra: the embedded S3 server's process id, while the run measures


@contextmanager
def run_proxies(
    state: RunState, state_path: Path, upstream_url: str | None, server_pid: int | None = None
) -> Iterator[dict[str, ProxyProcess]]:
    """Start a proxy per profile of the grid in front of ``upstream_url`` and record them (and ``server_pid``,
    the process serving ``upstream_url``, when given) in the state file; stop them and drop them from the state
    on exit. Nothing to start when reading real S3 (no upstream)."""
    started: dict[str, ProxyProcess] = {}
    try:
        for name in state.grid.profiles if upstream_url else []:
            if name in PROFILES:
                started[name] = ProxyProcess(upstream_url, get_profile(name)).start()
        state.extra[PROXIES] = {name: proxy.client().to_dict() for name, proxy in started.items()}
        if server_pid is not None and upstream_url:
            state.extra[SERVER_PID] = server_pid
        state.save(state_path)
        yield started
    finally:
        for proxy in started.values():
            proxy.stop()
        state.extra.pop(PROXIES, None)
        state.extra.pop(SERVER_PID, None)
        state.save(state_path)
