"""Ctrl-C and SIGTERM stop `convert` (mid-write) and `serve` (preparing or serving) within seconds, cleanly.

Each case runs the real command in its own process, signals it at the named moment, and checks: the exit
code (130 for SIGINT, 143 for SIGTERM), that every process it had started is gone, that nothing half-made
sits under a final name, and (for `convert`) that a re-run does exactly the work that was interrupted.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from nwb_cloud.convert.labdrive import lab_drive
from nwb_cloud.convert.records import load_records
from nwb_cloud.convert.sources import conversion_spec, write_session

pytestmark = pytest.mark.slow

STOP_WITHIN_S = 10  # the parent stops its worker and cleans up; on an idle machine this takes well under 2 s


def _start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "nwb_cloud", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
        start_new_session=True,  # its own process group, as a shell job is: Ctrl-C is sent to the group
    )


def _wait_for(condition, process: subprocess.Popen, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"the command ended before {what}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.05)


def _signal(process: subprocess.Popen, signum: int) -> tuple[dict[psutil.Process, str], float]:
    """Send ``signum`` as a terminal (SIGINT, to the group) or a service manager (others, to the process) would;
    returns the processes it had started then (with their command lines), and the seconds it took to exit."""
    children = {}
    for child in psutil.Process(process.pid).children(recursive=True):
        try:
            children[child] = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
    sent = time.monotonic()
    if signum == signal.SIGINT:
        os.killpg(process.pid, signum)
    else:
        os.kill(process.pid, signum)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running 60 s after {signal.Signals(signum).name}")
    return children, time.monotonic() - sent


def _gone(processes: dict[psutil.Process, str]) -> list[str]:
    """The command lines of ``processes`` still alive (and not merely waiting to be reaped)."""
    alive = []
    for process, command in processes.items():
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(command)
        except psutil.NoSuchProcess:
            continue
    return alive


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """Three sessions; the middle one is large enough (231 MB of SpikeGLX) that NeuroConv writes for seconds."""
    root = tmp_path_factory.mktemp("signals-lab") / "drive"
    raws = [
        write_session(root / "labdata", "first", "TiffImagingInterface", "tiny", seed=1),
        write_session(root / "labdata", "large", "SpikeGLXRecordingInterface", "quick", seed=2),
        write_session(root / "labdata", "last", "TiffImagingInterface", "tiny", seed=3),
    ]
    with lab_drive(root) as drive:
        yield drive, raws


def _steps_run(records_path: Path, skip: int = 0) -> list[tuple[str, str]]:
    return [(r.session, r.step) for r in load_records(records_path)[skip:]]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_convert_stops_during_the_neuroconv_write_and_a_rerun_does_exactly_the_rest(lab, tmp_path, signum):
    drive, raws = lab
    spec = tmp_path / "spec.yml"
    spec.write_text(conversion_spec(raws))
    out, work, records = tmp_path / "out", tmp_path / "work", tmp_path / "throughput.jsonl"
    args = ["convert", drive.path("labdata"), str(spec), str(out), "--rclone-config", str(drive.config_file),
            "--workdir", str(work), "--records", str(records), "--data-dir", str(tmp_path), "--json"]  # fmt: skip
    command = _start(args)
    partial = work / ".scratch" / "large" / "output" / "large.nwb"
    _wait_for(partial.exists, command, 300, "NeuroConv began writing the large session")
    children, seconds = _signal(command, signum)
    assert any("nwb_cloud.convert.worker" in command for command in children.values())  # it was mid-write
    time.sleep(0.5)  # a child signalled by the kernel on its parent's death needs a moment to go
    assert _gone(children) == []
    if signum != signal.SIGKILL:
        assert command.returncode == 128 + signum, command.communicate(timeout=10)[1]
        assert seconds < STOP_WITHIN_S
    assert sorted(p.name for p in out.glob("*.nwb")) == ["first.nwb"]  # finished before; nothing else
    assert not [p for p in out.rglob("*") if "partial" in p.name]
    assert _steps_run(records) == [("first", "transfer"), ("first", "convert"), ("first", "upload"),
                                   ("large", "transfer")]  # fmt: skip

    again = subprocess.run([sys.executable, "-m", "nwb_cloud", *args], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    outcomes = {o["session"]: o for o in json.loads(again.stdout)["sessions"]}
    assert {name: o["status"] for name, o in outcomes.items()} == {
        "first": "skipped",
        "large": "finished",
        "last": "finished",
    }
    assert _steps_run(records, skip=4) == [("large", "convert"), ("large", "upload"),
                                           ("last", "transfer"), ("last", "convert"), ("last", "upload")]  # fmt: skip
    assert sorted(p.name for p in out.glob("*.nwb")) == ["first.nwb", "large.nwb", "last.nwb"]
    assert not (work / ".scratch").exists() or not any((work / ".scratch").iterdir())


def _serve(tmp_path: Path, *extra: str) -> subprocess.Popen:
    return _start(["serve", "--data-dir", str(tmp_path / "data"), "--size", "tiny", *extra])


def _endpoint_line(command: subprocess.Popen) -> str:
    line = command.stdout.readline()
    assert line.startswith("embedded S3 endpoint"), line + command.stderr.read()
    return line


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_serve_stops_while_it_prepares(tmp_path, signum):
    command = _serve(tmp_path)
    _endpoint_line(command)  # the endpoint is up; preparing the run takes many seconds from here
    _wait_for(lambda: (tmp_path / "data").exists(), command, 60, "prepare started")
    time.sleep(1)
    children, seconds = _signal(command, signum)
    assert any("rclone" in command for command in children.values())
    time.sleep(0.5)
    assert _gone(children) == []  # (a child left running would also hold the output pipes open)
    out, err = command.communicate(timeout=10)
    assert command.returncode == 128 + signum, err
    assert seconds < STOP_WITHIN_S
    assert "serving" not in out
    assert not (tmp_path / "data" / "state.json").exists()  # never served, never described as ready


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_serve_stops_while_serving(tmp_path, signum):
    command = _serve(tmp_path, "--no-prepare")
    _endpoint_line(command)
    _wait_for(lambda: "serving" in command.stdout.readline(), command, 60, "serving")
    children, seconds = _signal(command, signum)
    time.sleep(0.5)
    assert _gone(children) == []
    assert command.returncode == 128 + signum, command.communicate(timeout=10)[1]
    assert seconds < STOP_WITHIN_S


def test_a_child_dies_with_its_parent_however_the_parent_dies(tmp_path):
    """The kernel ends the endpoint's rclone when the process that started it is killed outright."""
    code = (
        "import sys, time; from pathlib import Path; from nwb_cloud.cloud import Endpoint\n"
        "endpoint = Endpoint(Path(sys.argv[1])).start(); print(endpoint.url, flush=True); time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "s3")], stdout=subprocess.PIPE, text=True)
    assert parent.stdout.readline().startswith("http://")
    children = {child: child.name() for child in psutil.Process(parent.pid).children(recursive=True)}
    assert children and all("rclone" in name for name in children.values())
    parent.kill()
    parent.wait()
    time.sleep(1)
    assert _gone(children) == []
