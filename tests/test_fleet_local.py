"""A fleet end to end without AWS: three children as local processes against the embedded S3 (each a tiny
suite as its own asv machine), collected into one results folder and one report; then a run that is not the
calibration run, estimated from the first one's records, against its measured time."""

import json
from pathlib import Path

import pytest

from nwb_cloud.batch.prices import SHIPPED
from nwb_cloud.cli import main
from nwb_cloud.convert.places import parse_place
from nwb_cloud.fleet.local import run_local_fleet
from nwb_cloud.fleet.monitor import child_states, open_fleet_run
from nwb_cloud.fleet.plan import make_plan
from nwb_cloud.fleet.records import load_recorded_runs
from nwb_cloud.results import load_cells

REPO = Path(__file__).resolve().parent.parent
CHILDREN = ["child-a", "child-b", "child-c"]
GRID = ["--size", "tiny", "--workload", "ophys_patch", "--method", "remfile,fsspec", "--layout", "neuroconv-default"]


@pytest.fixture(scope="module")
def cloud(endpoint):
    store = endpoint.create_bucket("fleet-bench")
    with pytest.MonkeyPatch.context() as patch:  # what a child's job definition would give it: the store's keys
        patch.setenv("AWS_ACCESS_KEY_ID", endpoint.access_key)
        patch.setenv("AWS_SECRET_ACCESS_KEY", endpoint.secret_key)
        yield endpoint, store


@pytest.fixture(scope="module")
def calibration(cloud, tmp_path_factory):
    """The first fleet run, through the CLI: three children, then collected with the report."""
    endpoint, _ = cloud
    root = tmp_path_factory.mktemp("fleet")
    machines = [item for name in CHILDREN for item in ("--machine", name)]
    args = ["fleet", "submit", "--executor", "local", *machines, *GRID, "--bucket", "s3://fleet-bench/lab",
            "--endpoint-url", endpoint.url, "--results", str(REPO / "results")]  # fmt: skip
    assert main(args) == 0
    runs = parse_place("s3://fleet-bench/lab", endpoint_url=endpoint.url).child(".nwb-cloud/fleet").names()
    (run_id,) = {name.split("/")[0] for name in runs}
    run_url = f"s3://fleet-bench/lab/.nwb-cloud/fleet/{run_id}"
    results, reports = root / "results", root / "reports"
    collect = ["fleet", "collect", run_url, "--endpoint-url", endpoint.url, "--results", str(results),
               "--report", "--reports", str(reports), "--data-dir", str(root)]  # fmt: skip
    assert main(collect) == 0
    return run_url, root, results, reports


def test_three_children_run_and_are_collected_as_three_machines(cloud, calibration):
    endpoint, _ = cloud
    run_url, root, results, _ = calibration
    folder, manifest = open_fleet_run(run_url, endpoint_url=endpoint.url)
    assert [(s.child, s.status) for s in child_states(folder, manifest)] == [(c, "SUCCEEDED") for c in CHILDREN]
    assert sorted(p.name for p in results.iterdir() if (p / "machine.json").exists()) == CHILDREN
    machine = json.loads((results / "child-a" / "machine.json").read_text())
    assert machine["cpu"] and machine["num_cpu"] and machine["ram"]  # the host's real description, not a name
    cells = load_cells(results)
    timed = cells
    assert sorted(timed["machine"].unique()) == CHILDREN
    assert set(timed["profile"]) == {"real"} and set(timed["method"]) == {"remfile", "fsspec"}
    # every read checked, none wrong; on tiny files a reader's open may fetch the whole file, and its read is
    # then timed but warm (nwb_cloud.results.cells), not a failure
    assert timed["status"].isin(["ok", "warm"]).all() and (timed["time_s"] > 0).all()

    infos = [json.loads(p.read_text()) for p in (results / "run-info").glob("*.json")]
    assert sorted(i["machine"]["name"] for i in infos) == CHILDREN
    for info in infos:
        real = info["profiles"]["real"]  # measured at the start of the run, against the store it then read
        assert real["connection_bandwidth"] > 0 and real["rtt_s"] > 0 and "measured" in real["description"]
        assert set(info["fleet"]["phases"]) >= {"process_s", "prepare_s", "network_s", "suite_s", "push_s"}
        assert info["store"] == endpoint.url and info["fleet"]["asv_passed"]
    assert sorted(p.name for p in (root / "fleet").glob("*/*.log")) == [f"{c}.log" for c in CHILDREN]

    # the study went to the bucket once, under the fleet's prefix; the results and logs hold no credentials
    data = parse_place("s3://fleet-bench/lab/data", endpoint_url=endpoint.url).names()
    assert len(data) == 1 and data[0].startswith("tiny/ophys-tiny-")
    for path in [*results.rglob("*.json"), *(root / "fleet").rglob("*.log")]:
        text = path.read_text()
        assert endpoint.secret_key not in text and endpoint.access_key not in text and "Signature=" not in text


def test_the_merged_report_shows_the_three_machines_side_by_side(calibration):
    _, _, results, reports = calibration
    html = (reports / "index.html").read_text()
    assert all(f"{child}, tiny" in html for child in CHILDREN)  # each run's own sections
    machines = html[html.index('<section id="machines">') :].split("</section>")[0]
    header = machines[machines.index("Median cold time, tiny data") :].split("</thead>")[0]
    assert [f"{child} · real" in header for child in CHILDREN] == [True] * 3  # one column each, side by side
    cells = load_cells(results)
    cold = cells[cells["status"] == "ok"].groupby("method")["machine"].nunique()
    cold_everywhere = int((cold == len(CHILDREN)).sum())  # a warm read (tiny file, see above) has no cold time
    assert cold_everywhere >= 1 and machines.count("<td>ophys_patch</td>") == cold_everywhere
    assert "(emulated)" in machines and all(f"<td>{child}</td><td>real</td>" in machines for child in CHILDREN)


def test_the_estimate_of_a_later_run_is_checked_against_its_measured_time(cloud, calibration, capsys):
    """The calibration run's records (its children's phases and asv durations) price the next run."""
    endpoint, store = cloud
    _, root, results, _ = calibration
    bucket = parse_place("s3://fleet-bench/lab", store=store)
    plan = make_plan(load_recorded_runs(results), SHIPPED, {"us-east-1": bucket}, size="tiny", executor="local",
                     machines=["child-d"], workloads=["ophys_patch"], methods=["remfile", "fsspec"],
                     layouts=["neuroconv-default"])  # fmt: skip
    (planned,) = plan.children
    # a machine never measured, of an instance type measured three times: the median of those three
    assert planned.estimate.basis[0].startswith("the median of 3 runs' estimates")
    assert planned.estimate.basis[1].startswith("durations from earlier fleet runs on local")
    assert planned.cost.total == 0  # local: no charges
    fleet = run_local_fleet(plan, {}, root=root / "second")
    assert [c.status for c in fleet.children] == ["SUCCEEDED"]
    ratio = fleet.ratio("child-d")
    with capsys.disabled():
        measured, estimated = fleet.children[0].seconds, planned.estimate.seconds
        print(f"\nfleet estimate: child-d measured {measured:.1f} s, estimated {estimated:.1f} s from the "
              f"calibration run (measured/estimated {ratio:.2f})")  # fmt: skip
    assert 0.5 < ratio < 2.0  # a loaded 2-core machine: the same run varies by tens of percent here


def test_side_by_side_keeps_each_run_in_its_own_column_and_sizes_apart():
    import pandas as pd

    from nwb_cloud.results.tables import side_by_side

    rows = [
        ("c7i.large-us-east-1", "quick", "real", "remfile", 0.10),
        ("m7i.xlarge-us-east-1", "quick", "real", "remfile", 0.08),
        ("vm", "quick", "in-region", "remfile", 0.13),
        ("vm", "quick", "lab", "remfile", 0.50),  # another emulated profile: not real S3's stand-in
        ("vm", "full", "in-region", "remfile", 0.20),  # the only full run: nothing beside it
        ("vm", "quick", "in-region", "fsspec", 0.37),  # measured by one run only
    ]
    cells = pd.DataFrame(
        [dict(machine=m, size=size, commit="abcdef123456", env="e", suite="streaming", workload="ophys_patch",
              method=method, layout="neuroconv-default", profile=profile, status="ok", time_s=t)
         for m, size, profile, method, t in rows]
    )  # fmt: skip
    wide = side_by_side(cells)
    assert len(wide) == 1 and wide.iloc[0]["size"] == "quick" and wide.iloc[0]["method"] == "remfile"
    runs = [c for c in wide.columns if " · " in c]
    assert runs == ["c7i.large-us-east-1 · real · abcdef12", "m7i.xlarge-us-east-1 · real · abcdef12",
                    "vm · in-region · abcdef12"]  # fmt: skip
    assert [wide.iloc[0][r] for r in runs] == [0.10, 0.08, 0.13]
    with pytest.raises(Exception, match="run columns"):
        side_by_side(cells.drop(columns=["commit"]))


def test_a_failing_child_says_why_and_leaves_its_log(cloud, tmp_path, capsys):
    from dataclasses import replace

    endpoint, store = cloud
    bucket = parse_place("s3://fleet-bench/failing", store=store)
    plan = make_plan(load_recorded_runs(REPO / "results"), SHIPPED, {"us-east-1": bucket}, size="tiny",
                     executor="local", machines=["child-x"], workloads=["ophys_patch"], methods=["remfile"],
                     layouts=["neuroconv-default"])  # fmt: skip
    (planned,) = plan.children
    lost = {**planned.child.data, "bucket": "no-such-bucket"}  # the study's bucket vanished after the plan
    plan = replace(plan, children=(replace(planned, child=replace(planned.child, data=lost)),))
    fleet = run_local_fleet(plan, {}, root=tmp_path)
    (child,) = fleet.children
    assert child.status == "FAILED" and "no-such-bucket" in child.reason
    folder, manifest = open_fleet_run(fleet.run_url, endpoint_url=endpoint.url)
    (state,) = child_states(folder, manifest)
    assert (state.status, state.phase) == ("FAILED", "FAILED") and "no-such-bucket" in state.reason
    folder.child("out", "child-x").download("child.log", tmp_path / "child-x.log")  # pushed, also on failure
    assert "FAILED: " in (tmp_path / "child-x.log").read_text()
    run = [fleet.run_url, "--endpoint-url", endpoint.url]
    assert main(["fleet", "status", *run, "--json"]) == 1
    (shown,) = json.loads(capsys.readouterr().out)
    assert (shown["child"], shown["status"]) == ("child-x", "FAILED") and "no-such-bucket" in shown["reason"]
    assert main(["fleet", "status", *run]) == 1
    assert main(["fleet", "collect", *run, "--results", str(tmp_path / "results"), "--data-dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "child-x" in err and "FAILED: nothing to collect" in err
    assert not (tmp_path / "results" / "child-x").exists()
