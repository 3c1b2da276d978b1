"""One fleet child: what the benchmark host runs as a Batch job, as a local process, or by hand on an EC2 host.

``nwb-cloud fleet run-child RUN CHILD`` reads ``children/CHILD.json`` from the run folder and, in a scratch
folder of its own:

1. prepares the data: the generated study written here and uploaded under the region's data prefix (once:
   a child finding the same object there reuses it), or the DANDI assets resolved where they are;
2. measures the ``real`` profile against that store (:mod:`nwb_cloud.cloud.realnet`);
3. runs the asv suite on the ``real`` profile (no proxy) as the asv machine CHILD, its results in the scratch
   folder (an asv configuration of its own), never in the checkout's;
4. writes the run info (the measured profile, the child's phases, the instance it ran on) and pushes the asv
   results, the run info and its log to ``out/CHILD/`` in the run folder; ``status.json`` there follows it.

Credentials come from the environment (the Batch job's role, or variables the local executor sets): they
are resolved once into the run's private state file (owner-only, as ``bench`` does), never into results or
logs. Temporary credentials (a role's) last hours: a child that runs longer fails its reads with a message.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import requests

from nwb_cloud.batch.jobs import process_started
from nwb_cloud.cloud.store import Store
from nwb_cloud.convert.digests import Digests
from nwb_cloud.convert.places import new_session, parse_place, place_from_dict
from nwb_cloud.fleet.errors import FleetError
from nwb_cloud.fleet.spec import BENCH, REAL, Child
from nwb_cloud.settings import Settings

IMDS = "http://169.254.169.254/latest"
REPO_MARKER = "asv.conf.json"


@dataclass(frozen=True)
class ChildOutcome:
    child: str
    passed: bool  # every benchmark ran without failing (failed cells are results too: they are in run info)
    phases: dict
    results: str  # where the results were pushed


def default_repo() -> Path:
    """The checkout this package was installed from (the image's /opt/nwb-cloud): asv needs its benchmarks."""
    repo = Path(__file__).resolve().parents[2]
    if not (repo / REPO_MARKER).exists():
        raise FleetError(f"no {REPO_MARKER} beside the package ({repo}): pass --repo, the nwb-cloud checkout")
    return repo


class ChildLog:
    """Lines of the child's progress: printed (CloudWatch on Batch) and kept for ``out/CHILD/child.log``."""

    def __init__(self, path: Path, echo=print):
        self.path = path
        self.echo = echo
        path.parent.mkdir(parents=True, exist_ok=True)

    def __call__(self, message: str) -> None:
        line = f"{time.strftime('%H:%M:%S')} {message}"
        with open(self.path, "a") as handle:
            handle.write(line + "\n")
        self.echo(line)


def open_child(run_url: str, name: str, endpoint_url: str | None = None, region: str | None = None):
    folder = parse_place(run_url, endpoint_url=endpoint_url, region=region)
    data = folder.read_json(f"children/{name}.json")
    if data is None:
        raise FleetError(f"{folder.url() if folder.kind == 's3' else folder.label} has no child {name!r}")
    return folder, Child.from_dict(data)


def run_child(
    run_url: str,
    name: str,
    endpoint_url: str | None = None,
    region: str | None = None,
    workdir: Path | None = None,
    repo: Path | None = None,
    echo=print,
) -> ChildOutcome:
    from nwb_cloud.cloud.realnet import measure_real_profile
    from nwb_cloud.suite.asv_driver import run_asv
    from nwb_cloud.suite.asv_grid import selection
    from nwb_cloud.suite.prepare import prepare_run
    from nwb_cloud.suite.run_info import run_info, write_run_info

    started = process_started()
    phases = {"process_s": round(time.time() - started, 2)}
    folder, child = open_child(run_url, name, endpoint_url, region)
    run_id = Path(run_url.rstrip("/")).name
    out = folder.child("out", name)
    workdir = Path(workdir or Path(tempfile.gettempdir()) / "nwb-cloud-fleet" / run_id / name)
    log = ChildLog(workdir / "child.log", echo)
    repo = Path(repo) if repo else default_repo()

    def status(state: str, **extra) -> None:
        out.write_json("status.json", {"state": state, "child": name, "phases": phases, "host": socket.gethostname(),
                                       "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **extra})  # fmt: skip

    try:
        status("preparing")
        log(f"child {name}: {child.instance_type} in {child.region}, {child.size} suite, {child.source} data")
        settings = Settings(data_dir=workdir / "data", source=child.settings_source, size=child.size,
                            seed=child.seed, state_file=workdir / "state.json")  # fmt: skip
        store, prefix = data_store(child)
        clock = time.perf_counter()
        state = prepare_run(settings, store, grid=child.grid(), progress=False, log=log, key_prefix=prefix)
        phases["prepare_s"] = round(time.perf_counter() - clock, 2)
        data_bytes = sum(asset.size_bytes for asset in state.catalog.assets.values())

        status("measuring the network")
        clock = time.perf_counter()
        if child.source == "dandi":
            largest = max(state.catalog.assets.values(), key=lambda a: a.size_bytes)
            profile = measure_real_profile(state.catalog.store, key=largest.key)
        else:
            profile = measure_real_profile(store, scratch_prefix=prefix)
        phases["network_s"] = round(time.perf_counter() - clock, 2)
        log(f"real network to {state.catalog.store.label}: RTT {profile.rtt_s * 1e3:.2f} ms, first byte "
            f"{profile.first_byte_s * 1e3:.1f} ms, {profile.connection_bandwidth / 1e6:.0f} MB/s per connection, "
            f"{profile.total_bandwidth / 1e6:.0f} MB/s at once")  # fmt: skip

        status("running the suite")
        clock = time.perf_counter()
        results = workdir / "results"
        outcome = run_asv(repo, settings.state_path, bench=selection(state.grid, BENCH), machine=child.name,
                          config=asv_config(repo, workdir), publish=False)  # fmt: skip
        phases["suite_s"] = round(time.perf_counter() - clock, 2)
        log(f"asv: {'every benchmark passed' if outcome['passed'] else 'some benchmarks failed (see run info)'}")

        status("pushing")
        clock = time.perf_counter()
        pushed = push_folder(results, out.child("results"), skip=("run-info",))
        phases["push_s"] = round(time.perf_counter() - clock, 2)
        phases["total_s"] = round(time.time() - started, 2)  # to here: the run info's own push is the rest
        info = run_info(state, None, commit=outcome["commit"])
        info["machine"] = {**info["machine"], "name": child.name}
        info["store"] = state.catalog.store.label  # the endpoint or aws:<region>: a name, never credentials
        info["profiles"][REAL] = profile.to_dict()
        info["fleet"] = {
            "run_id": run_id, "child": name, "instance_type": child.instance_type, "region": child.region,
            "market": child.market, "host": host_identity(), "phases": phases, "data_bytes": data_bytes,
            "asv_passed": outcome["passed"],
        }  # fmt: skip
        info_path = write_run_info(results, info)
        pushed += push_folder(info_path.parent, out.child("results", "run-info"))
        log(f"pushed {pushed} files to {out.url('results') if out.kind == 's3' else out.label}")
        status("SUCCEEDED", asv_passed=outcome["passed"])
        return ChildOutcome(name, outcome["passed"], phases, out.url("results") if out.kind == "s3" else out.label)
    except BaseException as error:
        reason = f"{type(error).__name__}: {error}".splitlines()[0][:400] if str(error) else type(error).__name__
        log(f"FAILED: {reason}")
        if not isinstance(error, Exception | KeyboardInterrupt):
            raise
        log("".join(traceback.format_exception(error)[-3:]).strip())
        try:
            status("FAILED", error=reason)
        except Exception as status_error:  # the store itself may be what failed
            log(f"could not record the failure: {status_error}")
        raise
    finally:
        try:
            out.put_file(log.path, "child.log", Digests.of(log.path))
        except Exception as error:  # the log stays local (and on stdout); the child's outcome stands
            echo(f"could not push the log: {error}")


def data_store(child: Child) -> tuple[Store | None, str]:
    """The store the child's data lives in, with credentials from the environment, and its key prefix."""
    if child.source == "dandi":
        return None, ""
    place = place_from_dict(child.data or {})
    if place.kind != "s3":
        raise FleetError(f"child {child.name}: the generated study goes to S3, not {place.label}")
    credentials = new_session().get_credentials()
    if credentials is None:
        raise FleetError(f"child {child.name}: no AWS credentials for {place.url()} (a job role, or AWS_* variables)")
    frozen = credentials.get_frozen_credentials()
    store = Store(place.bucket, place.endpoint_url, place.region, frozen.access_key, frozen.secret_key, frozen.token)
    return store, f"{place.prefix}/" if place.prefix else ""


def asv_config(repo: Path, workdir: Path) -> Path:
    """The checkout's asv configuration with the results (and HTML) in ``workdir``: the checkout is untouched."""
    from asv.util import load_json

    config = load_json(str(repo / REPO_MARKER), js_comments=True)
    config.update(repo=str(repo), benchmark_dir=str(repo / config.get("benchmark_dir", "benchmarks")),
                  results_dir=str(workdir / "results"), html_dir=str(workdir / "html"))  # fmt: skip
    path = workdir / "asv.conf.json"
    path.write_text(json.dumps(config, indent=1))
    return path


def push_folder(local: Path, place, skip: tuple[str, ...] = ()) -> int:
    """Every file under ``local`` to the same relative name under ``place`` (verified uploads)."""
    count = 0
    for path in sorted(Path(local).rglob("*")):
        relative = path.relative_to(local)
        if path.is_file() and relative.parts[0] not in skip:
            place.put_file(path, relative.as_posix(), Digests.of(path))
            count += 1
    return count


def this_machine() -> str:
    """The asv machine name of this host: its instance type and region on EC2, else its host name."""
    from nwb_cloud.fleet.spec import machine_name

    identity = host_identity()
    if identity.get("instance_type") and identity.get("zone"):
        return machine_name(identity["instance_type"], identity["zone"][:-1])  # us-east-1a -> us-east-1
    return socket.gethostname().split(".")[0]


def host_identity() -> dict:
    """The EC2 instance this runs on (instance type, zone, AMI) from the instance metadata; {} elsewhere."""
    try:
        token = requests.put(f"{IMDS}/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"},
                             timeout=1).text  # fmt: skip
        headers = {"X-aws-ec2-metadata-token": token}
        found = {}
        for field, path in (("instance_type", "instance-type"), ("zone", "placement/availability-zone"),
                            ("ami", "ami-id")):  # fmt: skip
            answer = requests.get(f"{IMDS}/meta-data/{path}", headers=headers, timeout=1)
            if answer.ok:
                found[field] = answer.text
        return found
    except requests.RequestException:
        return {}
