"""scripts/: the benchmark host by hand, run here against the embedded S3 as it runs on an EC2 instance."""

import json
import os
import socket
import subprocess
from pathlib import Path

from nwb_cloud.convert.places import parse_place

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "benchmark-host.sh"


def test_the_benchmark_host_script_runs_a_child_and_pushes_its_results(endpoint, tmp_path):
    store = endpoint.create_bucket("hostbench")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": endpoint.access_key, "AWS_SECRET_ACCESS_KEY": endpoint.secret_key,
           "HOME": str(tmp_path), "TMPDIR": str(tmp_path)}  # fmt: skip
    grid = ["--size", "tiny", "--workload", "ophys_patch", "--method", "remfile", "--layout", "neuroconv-default"]
    done = subprocess.run(["sh", str(SCRIPT), "--bucket", "s3://hostbench/lab", "--endpoint-url", endpoint.url, *grid],
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    run_url = done.stdout.strip().splitlines()[-1]
    assert run_url.startswith("s3://hostbench/lab/.nwb-cloud/fleet/f")
    machine = socket.gethostname().split(".")[0]  # off EC2: the host's name (on EC2: <instance type>-<region>)
    out = parse_place(run_url, store=store).child("out", machine)
    assert out.read_json("status.json")["state"] == "SUCCEEDED"
    names = out.names("results")
    assert f"results/{machine}/machine.json" in names and any(n.startswith("results/run-info/") for n in names)
    (info_name,) = [n for n in names if n.startswith("results/run-info/")]
    info = out.read_json(info_name)
    assert info["profiles"]["real"]["connection_bandwidth"] > 0 and info["machine"]["name"] == machine
    assert endpoint.secret_key not in json.dumps(info) and endpoint.secret_key not in done.stdout + done.stderr


def test_the_script_names_what_is_missing(tmp_path):
    done = subprocess.run(["sh", str(SCRIPT), "--help"], env={**os.environ, "PYTHON": "python0.1"},
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and "python0.1 is missing" in done.stderr
