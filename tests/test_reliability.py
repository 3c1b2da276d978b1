"""The reliability table: read methods under injected faults, a reader that corrupts data, the file the report reads."""

from __future__ import annotations

import json

import pytest

from nwb_cloud.cli import main
from nwb_cloud.report.page import reliability_section
from nwb_cloud.results.run_info import load_reliability
from nwb_cloud.suite import reliability as table
from nwb_cloud.suite.cell import Cell

LIMIT_S = 60.0  # no stall here: every probe answers in seconds


class AlteringRead(table.MethodRead):
    """A "reader" that returns what remfile read with one sample changed: silent corruption."""

    def __call__(self, store):
        data = super().__call__(store).copy()
        data.flat[len(data) // 2] += 1
        return data


@pytest.fixture(scope="module")
def asset(catalog):
    return catalog.asset("ecephys", table.LAYOUT)


@pytest.fixture(scope="module")
def expected(catalog, asset):
    return table.expected_read(catalog, asset)


def by_cell(rows):
    return {(r["method"], r["fault"]): r for r in rows}


def test_methods_under_faults_and_the_file_the_report_reads(endpoint, store, catalog, asset, expected, tmp_path):
    scenarios = table.scenarios_named(["slowdown-once", "truncate-once"])
    subjects = table.method_subjects(catalog, asset, ["remfile", "fsspec-https"], prepare_failures={})
    seen = []
    rows = table.run_table(
        subjects, expected, store, endpoint.url, scenarios, "loopback", LIMIT_S, on_row=lambda *a: seen.append(a)
    )
    cells = by_cell(rows)
    # remfile's open GETs the whole object for its length (an aborted GET): the faults are injected there too
    whole = ("slowdown-whole-get", "truncate-whole-get")
    assert [(r["method"], r["fault"]) for r in rows] == [
        *[("remfile", f) for f in ("no-fault", "slowdown-once", "truncate-once", *whole)],
        *[("fsspec-https", f) for f in ("no-fault", "slowdown-once", "truncate-once")],
    ]
    # the total grows when a control shows whole-object GETs to probe
    assert [done for _, done, _ in seen] == list(range(1, 9)) and seen[-1][2] == 8
    for method in ("remfile", "fsspec-https"):  # the control: exact without any fault
        control = cells[method, "no-fault"]
        assert control["outcome"] == "exact" and control["faults_injected"] == {} and control["requests"] > 1
    # remfile retries a 503 SlowDown and a truncated body and returns exact data
    assert cells["remfile", "slowdown-once"]["faults_injected"] == {"slowdown": 1}
    assert cells["remfile", "slowdown-once"]["responses"]["503"] == 1
    assert cells["remfile", "truncate-once"]["faults_injected"] == {"truncate": 1}
    assert all(cells["remfile", f]["outcome"] == "exact" and cells["remfile", f]["tested"] for f in scenarios)
    # fsspec's HTTPS file system (aiohttp) retries nothing: a clear error naming the cause
    truncated = cells["fsspec-https", "truncate-once"]
    assert truncated["outcome"] == "error" and truncated["faults_injected"] == {"truncate": 1}
    assert "ClientPayloadError" in truncated["error"] and "not completed" in truncated["error"]
    slowed = cells["fsspec-https", "slowdown-once"]
    assert slowed["outcome"] == "error" and "503" in slowed["error"]
    assert all(cells[m, f]["eligible"] == "ranged GETs" for m in ("remfile", "fsspec-https") for f in scenarios)
    assert not any("X-Amz-" in (r["error"] or "") or store.secret_key in json.dumps(r) for r in rows)

    payload = table.table_payload(rows, catalog, scenarios, "loopback", LIMIT_S, 2, {"total": 1.0})
    path = table.write_table(payload, tmp_path)
    assert path.parent == tmp_path / "reliability" and not list(path.parent.glob("*.partial"))
    assert json.loads(path.read_text())["rows"] == rows
    frame = load_reliability(tmp_path)
    assert set(frame["profile"]) == {"loopback"} and set(frame["workload"]) == {table.WORKLOAD}
    reported = {(r.method, r.fault): r.outcome for r in frame.itertuples()}
    assert reported["remfile", "truncate-once"] == "exact"
    assert reported["fsspec-https", "truncate-once"] == "clear error"
    html = reliability_section(frame)
    assert "fsspec-https" in html and "ClientPayloadError" in html


def test_a_reader_that_alters_data_is_wrong_data_and_skipped_methods_keep_their_reason(
    endpoint, store, catalog, asset, expected
):
    cell = Cell(table.WORKLOAD, "remfile", asset.layout)
    subjects = [
        table.Subject("altering", AlteringRead(catalog, cell)),
        table.Subject("no-driver", None, (table.UNAVAILABLE, "built without the driver")),
    ]
    scenarios = table.scenarios_named(["reset-once"])
    rows = by_cell(table.run_table(subjects, expected, store, endpoint.url, scenarios, "loopback", LIMIT_S))
    assert rows["altering", "no-fault"]["outcome"] == "wrong-data"
    not_probed = rows["altering", "reset-once"]
    assert not_probed["outcome"] == table.NOT_PROBED and "fails without faults (wrong-data)" in not_probed["error"]
    assert "seconds" not in not_probed  # never run: no time, no traffic
    assert {rows["no-driver", f]["outcome"] for f in ("no-fault", "reset-once")} == {table.UNAVAILABLE}
    assert rows["no-driver", "reset-once"]["error"] == "built without the driver"
    payload = table.table_payload(list(rows.values()), catalog, scenarios, "loopback", LIMIT_S, 2, {})
    assert payload["wrong_data"] == ["altering"]


def test_the_command_writes_the_table_and_fails_on_wrong_data(tmp_path, monkeypatch, capsys):
    """End to end on the tiny file; remfile's reader is swapped for the altering one, so the run must fail."""
    original = table.method_subjects

    def altered(catalog, asset, methods, prepare_failures):
        return [
            table.Subject(s.name, AlteringRead(s.read.catalog, s.read.cell)) if s.name == "remfile" else s
            for s in original(catalog, asset, methods, prepare_failures)
        ]

    monkeypatch.setattr(table, "method_subjects", altered)
    code = main(
        ["reliability", "--size", "tiny", "--methods", "remfile", "fsspec", "--scenarios", "slowdown-once",
         "--profile", "loopback", "--limit", str(LIMIT_S), "--data-dir", str(tmp_path / "data"),
         "--results", str(tmp_path / "results")]
    )  # fmt: skip
    assert code == 1
    assert "WRONG DATA" in capsys.readouterr().err
    (written,) = (tmp_path / "results" / "reliability").glob("*.json")
    payload = json.loads(written.read_text())
    assert payload["wrong_data"] == ["remfile"] and payload["size"] == "tiny"
    assert set(payload["scenarios"]) == {"slowdown-once", "slowdown-whole-get"} and payload["seconds"]["total"] > 0
    cells = by_cell(payload["rows"])
    assert cells["fsspec", "slowdown-once"]["outcome"] == "exact" and cells["fsspec", "slowdown-once"]["tested"]


def test_unknown_scenarios_and_sizes_are_named(store, tmp_path):
    with pytest.raises(table.ReliabilityError, match="unknown fault scenario 'stal'.*known: slowdown-once"):
        table.scenarios_named(["stal"])
    with pytest.raises(table.ReliabilityError, match="unknown reliability asset size 'huge'"):
        table.reliability_catalog(store, tmp_path, "huge")


def test_error_texts_lose_sigv4_parameters_outside_urls_too():
    from nwb_cloud.cloud.reliability import describe

    header = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-east-1/s3/aws4_request, Signature=0123abcd"
    text = describe(RuntimeError(f"refused: {header}"))
    assert "AKIDEXAMPLE" not in text and "0123abcd" not in text
    assert "Credential=…" in text and "Signature=…" in text


def test_a_cold_index_open_meets_every_fault_on_its_sidecar_and_retries_it(endpoint, store, catalog, asset, expected):
    from nwb_cloud.suite.prepare import prepare_methods

    methods = ["nwb-index", "nwb-index-warm"]
    assert prepare_methods(catalog, methods, log=lambda *_: None) == {}
    scenarios = table.scenarios_named(["reset-once", "truncate-once"])
    subjects = table.method_subjects(catalog, asset, methods, prepare_failures={})
    cells = by_cell(table.run_table(subjects, expected, store, endpoint.url, scenarios, "loopback", LIMIT_S))
    # cold: the open GETs the sidecar (a whole object), so the same faults are injected there too
    for fault in ("reset-whole-get", "truncate-whole-get"):
        row = cells["nwb-index", fault]
        assert row["tested"] and row["outcome"] == "exact", row  # the sidecar's body is fetched again
        assert "whole-object" in row["eligible"]
    # warm: the cached index and a HEAD; no whole-object GET, so no index scenario
    assert ("nwb-index-warm", "reset-whole-get") not in cells
    assert cells["nwb-index-warm", "reset-once"]["outcome"] == "exact"


def test_probe_workers_read_with_the_index_configuration_of_the_process_that_prepared_them(
    endpoint, store, catalog, asset, expected, tmp_path, monkeypatch
):
    """The suite's own processes configure the index cache (asv_grid.load_state does, for the warm variant);
    the table's spawned workers inherit no module state, so they must be handed it: with the cache configured
    away from the default, the warm variant opens from what prepare put there, with no whole-object GET."""
    from nwb_cloud.access import nwb_index
    from nwb_cloud.suite.prepare import prepare_methods

    monkeypatch.setattr(nwb_index, "_config", nwb_index._config)  # restored after the test
    nwb_index.configure(cache_dir=tmp_path / "configured-indexes")
    assert prepare_methods(catalog, ["nwb-index-warm"], log=lambda *_: None) == {}
    assert any((tmp_path / "configured-indexes").rglob("*")), "prepare filled the configured cache"
    subjects = table.method_subjects(catalog, asset, ["nwb-index-warm"], prepare_failures={})
    (row,) = table.run_table(subjects, expected, store, endpoint.url, {}, "loopback", LIMIT_S)
    assert row["outcome"] == "exact", row
    assert table._whole_object_gets(row) == 0, row


SLOW_READ = '''
import os, time
from pathlib import Path


class SlowRead:
    """Says where it runs (the reader's process and the worker that forked it), then never answers."""

    def __init__(self, folder):
        self.folder = folder

    def __call__(self, store):
        Path(self.folder, "pids").write_text(f"{os.getpid()} {os.getppid()}")
        time.sleep(300)
'''

RUN_TABLE = """
import sys
from nwb_cloud.cloud.store import Store
from nwb_cloud.suite import reliability as table
from slow_read import SlowRead

if __name__ == "__main__":
    folder, url, bucket, access, secret = sys.argv[1:]
    store = Store(bucket, url, "us-east-1", access, secret)
    subject = table.Subject("slow", SlowRead(folder))
    table.run_table([subject], None, store, url, {}, "loopback", 600.0)
"""


def test_probe_workers_and_their_readers_die_with_the_table_process(endpoint, store, tmp_path):
    """SIGKILL leaves no clean-up to the table's process: its spawned worker and the reader that worker forked
    must go by themselves (the kernel's parent-death signal), not read on for minutes with no one to answer."""
    import os
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "slow_read.py").write_text(SLOW_READ)
    (tmp_path / "run_table.py").write_text(RUN_TABLE)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
    arguments = [str(tmp_path), endpoint.url, store.bucket, store.access_key, store.secret_key]
    table_process = subprocess.Popen([sys.executable, str(tmp_path / "run_table.py"), *arguments], env=env)
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "pids").exists():
            assert time.monotonic() < deadline and table_process.poll() is None, "the reader never started"
            time.sleep(0.2)
        reader, worker = (int(pid) for pid in (tmp_path / "pids").read_text().split())
    finally:
        table_process.kill()
        table_process.wait()

    def alive(pid: int) -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(") ")[-1][0] != "Z"  # a zombie has ended
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 30
    while (alive(reader) or alive(worker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in (reader, worker):
        if alive(pid):
            os.kill(pid, signal.SIGKILL)
    assert not alive(worker), "the probe worker outlived the table's process"
    assert not alive(reader), "the reader outlived its worker"
