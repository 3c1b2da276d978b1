"""`asv run` by hand after the endpoint of its prepared run has stopped: it fails loudly, naming `nwb-cloud serve`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nwb_cloud.cloud.endpoint import free_port
from nwb_cloud.suite.prepare import prepare_run
from nwb_cloud.suite.state import Grid

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def stopped_state(settings, store, catalog, tmp_path_factory):
    """A prepared run whose state file names an endpoint nobody serves any more."""
    state_file = tmp_path_factory.mktemp("stopped") / "state.json"
    grid = Grid(workloads=["ophys_patch"], methods=["remfile"], layouts=["workload-friendly"], profiles=["loopback"])
    prepare_run(settings.with_(state_file=state_file), store, grid, progress=False, log=lambda *_: None)
    payload = json.loads(state_file.read_text())
    payload["catalog"]["store"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    state_file.write_text(json.dumps(payload))
    return state_file


def _run(args: list[str], state_file: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NWB_CLOUD_STATE": str(state_file)}
    return subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def test_discovery_fails_naming_the_endpoint_and_nwb_cloud_serve(stopped_state):
    out = _run([sys.executable, "-c", "import benchmarks.streaming"], stopped_state)
    assert out.returncode != 0
    assert "does not answer" in out.stderr and "nwb-cloud serve" in out.stderr


def test_asv_itself_stops_with_that_message(stopped_state):
    out = _run([sys.executable, "-m", "asv", "check", "-E", f"existing:{sys.executable}"], stopped_state)
    assert out.returncode != 0
    assert "nwb-cloud serve" in out.stdout + out.stderr
