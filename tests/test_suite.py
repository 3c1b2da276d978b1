"""The asv grid: generated from the registries, discoverable by asv, loud when the run is not prepared."""

import ast
import itertools
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from nwb_cloud.access import METHODS
from nwb_cloud.datasets.catalog import CatalogError
from nwb_cloud.settings import Settings
from nwb_cloud.suite.prepare import default_grid, prepare_run
from nwb_cloud.suite.state import NOT_IN_GRID, Grid, RunState
from nwb_cloud.workloads import WORKLOADS

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def prepared_state(settings, store, catalog, tmp_path_factory):
    state_file = tmp_path_factory.mktemp("state") / "state.json"
    grid = Grid(
        workloads=list(WORKLOADS),
        methods=["fsspec", "remfile"],
        layouts=["neuroconv-default", "workload-friendly"],
        profiles=["loopback"],
        repeat=2,
    )
    prepare_run(settings.with_(state_file=state_file), store, grid, progress=False, log=lambda *_: None)
    return state_file


def _discover(state_file) -> dict:
    code = (
        "import json, benchmarks.streaming as s\n"
        "print(json.dumps({n: [c.params, c.param_names, c.repeat, c.rounds, c.number] for n, c in vars(s).items() "
        "if isinstance(c, type) and hasattr(c, 'time_workload') and hasattr(c, 'workload')}))"
    )
    env = {**os.environ, "NWB_CLOUD_STATE": str(state_file)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_grid_has_one_class_per_workload_with_every_other_axis(prepared_state):
    classes = _discover(prepared_state)
    assert set(classes) == {
        "OphysPatch", "EcephysElectrode", "OpenEcephys", "OpenOphys", "OphysClip", "EcephysWindow", "OpenSession"
    }  # fmt: skip
    for name, (params, names, repeat, rounds, number) in classes.items():
        assert names == ["method", "layout", "profile"]
        # the layout axis holds the layouts that apply to the workload's modality
        layouts = ["neuroconv-default"] if name == "OpenSession" else ["neuroconv-default", "workload-friendly"]
        assert params == [["fsspec", "remfile"], layouts, ["loopback"]]
        assert (repeat, rounds, number) == (1, 2, 1)  # one sample per process, one process per sample


def test_conversion_benchmark_is_discovered(prepared_state):
    code = "import benchmarks.conversion as c; print(c.ConversionThroughput.params)"
    env = {**os.environ, "NWB_CLOUD_STATE": str(prepared_state)}
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "SpikeGLXRecordingInterface" in out.stdout and "TiffImagingInterface" in out.stdout


def test_asv_check_accepts_the_suite(prepared_state):
    env = {**os.environ, "NWB_CLOUD_STATE": str(prepared_state)}
    out = subprocess.run(
        [sys.executable, "-m", "asv", "check", "-E", f"existing:{sys.executable}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "No problems found" in out.stdout, out.stdout + out.stderr


def test_an_unprepared_run_fails_loudly(tmp_path):
    env = {**os.environ, "NWB_CLOUD_STATE": str(tmp_path / "missing.json")}
    out = subprocess.run(
        [sys.executable, "-c", "import benchmarks.streaming"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode != 0
    assert "no prepared run at" in out.stderr and "nwb-cloud bench" in out.stderr


def test_state_file_is_private_and_round_trips(prepared_state):
    assert prepared_state.stat().st_mode & 0o077 == 0
    state = RunState.load(prepared_state)
    assert state.grid.methods == ["fsspec", "remfile"]
    assert state.catalog.asset("ophys", "workload-friendly").chunk_shape == (96, 32, 32)


def test_a_corrupt_state_file_is_named(tmp_path):
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    with pytest.raises(CatalogError, match="corrupt"):
        RunState.load(bad)


def test_default_grid_reads_the_registries():
    from nwb_cloud.suite.prepare import QUICK_LEFT_OUT, QUICK_OPENS_ONLY

    grid = default_grid(Settings(size="quick"))
    assert grid.workloads == list(WORKLOADS) and grid.methods == [m for m in METHODS if m not in QUICK_LEFT_OUT]
    assert "neuroconv-default" in grid.layouts and "workload-friendly" in grid.layouts
    # quick: every method under the main profile, the core methods under every profile
    assert "in-region" in grid.profiles and "lab" in grid.profiles and "loopback" not in grid.profiles
    assert not grid.excludes("remfile", "lab") and not grid.excludes("fsspec-first", "in-region")
    assert grid.excludes("fsspec-first", "lab")
    # the rows a quick run leaves out (each shown by a kept row or the study) are out of every block and the
    # first use, and named with why
    assert {"fsspec-none", "hdmf-zarr-unconsolidated"} <= set(QUICK_LEFT_OUT)
    assert not any(m in QUICK_LEFT_OUT for _, m, *_ in grid.cells())
    assert not set(grid.first_use.methods) & set(QUICK_LEFT_OUT) and "fsspec-first" in grid.first_use.methods
    # a row that reads as a kept one does is measured opening (and in the first use), not reading
    cells = set(grid.cells())
    assert ("open_ophys", "fsspec-first", "neuroconv-default", "in-region") in cells
    assert not any(m in QUICK_OPENS_ONLY and WORKLOADS[w].select is not None for w, m, *_ in cells)
    # ... and the report's reason for its read cells says why, not which methods a block lists
    why = grid.exclusion("fsspec-first", "in-region", "ophys_patch", "neuroconv-default")
    assert why == f"{NOT_IN_GRID}: {QUICK_OPENS_ONLY['fsspec-first']}" and "remfile" in why
    assert (
        Grid.from_dict(grid.to_dict()).exclusion("fsspec-first", "in-region", "ophys_patch", "neuroconv-default") == why
    )
    # a method no block leaves out on purpose keeps the blocks' description
    assert "block measures" in grid.exclusion("fsspec-first", "in-region", "ophys_patch", "neuroconv-default-paged")
    # the session file: stock fsspec's open is the study's (15 s a sample here); the cache that cures it stays
    assert not any(w == "open_session" and m == "fsspec" for w, m, *_ in cells)
    assert ("open_session", "fsspec-blockcache", "neuroconv-default", "in-region") in cells
    assert ("open_session", "fsspec-pagebuf", "neuroconv-default-paged", "in-region") in cells
    full = default_grid(Settings(size="full"))
    # full (the study): the study methods under the main profile, the network-bound contrast (lab) on the seed
    # reads; the cache-less readers (fsspec-none) are the quick run's comparison of methods, not the study's
    assert full.profiles == ["in-region", "lab"] and not full.excludes("remfile", "in-region")
    assert full.excludes("fsspec-none", "in-region") and full.excludes("fsspec-none", "lab")
    assert not full.excludes("remfile", "lab", "ophys_patch", "ophys-200x16x16")
    assert default_grid(Settings(source="dandi")).layouts == ["as-published"]


def test_asv_runs_the_cells_of_the_grid_and_no_other_combination_of_a_class_s_params():
    """asv's own selection (its ``--bench`` filter) over the classes a quick grid generates: a combination of
    params that no cell measures is not run at all (asv would fork a process for it in every pass)."""
    from asv.benchmarks import Benchmarks

    from nwb_cloud.suite.asv_grid import _class_name, selection

    grid = default_grid(Settings(size="quick"))
    found = []
    for workload in grid.workloads:
        params = [[repr(value) for value in axis] for axis in grid.axes_of(workload)]
        for function in ("time_workload", "track_requests"):
            found.append({"name": f"streaming.{_class_name(workload)}.{function}", "params": params})
    found += [{"name": "decoders.InflateDecoders.track_output", "params": [["'zlib'", "'isal'"]]},
              {"name": "conversion.ConversionThroughput.track_mb_per_s", "params": []}]  # fmt: skip
    conf = SimpleNamespace(benchmark_dir=".")

    def selected(within=None) -> set[tuple]:
        """(name, *params) of every benchmark run asv would make."""
        chosen = Benchmarks(conf, found, regex=selection(grid, within))
        picked = set()
        for name, benchmark in chosen.items():
            indices = chosen.benchmark_selection[name]
            if indices is None:  # a benchmark without params
                picked.add((name,))
                continue
            combos = list(itertools.product(*benchmark["params"]))
            picked |= {(name, *map(ast.literal_eval, combos[i])) for i in indices}
        return picked

    cells = {(_class_name(w), *rest) for w, *rest in grid.cells()}
    everything = selected()
    ran = {(name.split(".")[1], *params) for name, *params in everything if name.startswith("streaming.")}
    assert ran == cells and len(cells) < sum(len(list(itertools.product(*b["params"]))) for b in found) / 5
    # each measured cell's track benchmarks too; the other suites whole
    assert ("streaming.OpenOphys.track_requests", "nwb-index", "neuroconv-default", "in-region") in everything
    assert ("decoders.InflateDecoders.track_output", "isal") in everything
    assert ("conversion.ConversionThroughput.track_mb_per_s",) in everything
    # the caller's own pattern narrows the selection, never widens it
    narrowed = selected(r"OpenOphys\.time")
    assert narrowed and narrowed <= everything
    assert {name for name, *_ in narrowed} == {"streaming.OpenOphys.time_workload"}
    assert {name for name, *_ in selected(r"^streaming\.")} == {n for n, *_ in everything if n.startswith("stream")}


def test_run_info_summarises_samples_and_failures(prepared_state):
    from nwb_cloud.suite.asv_grid import failure_log, sample_log
    from nwb_cloud.suite.run_info import run_info, split_key

    state = RunState.load(prepared_state)
    label = "ophys_patch[remfile, workload-friendly, in-region]"
    for seconds, requests in [(0.5, 4), (0.7, 6), (0.6, 5)]:
        sample_log(state).append(label, {"seconds": seconds, "requests": requests, "open_requests": 3})
    failure_log(state).append("open_ophys[fsspec, neuroconv-default, lab]", {"error": "check: WrongRead: 3 differ"})
    info = run_info(state, commit="abc123")
    cell = info["samples"]["ophys_patch|remfile|workload-friendly|in-region"]
    assert cell == pytest.approx({"seconds": 0.6, "seconds_q25": 0.55, "seconds_q75": 0.65, "requests": 5,
                                  "open_requests": 3, "samples": 3})  # fmt: skip
    assert info["cell_failures"] == {"open_ophys|fsspec|neuroconv-default|lab": "check: WrongRead: 3 differ"}
    (failed,) = info["cell_failures"]
    assert split_key(failed) == ("open_ophys", ["fsspec", "neuroconv-default", "lab"])
    assert info["commit"] == "abc123"
    run_id_time = time.mktime(time.strptime(state.run_id.split("-")[0], "%Y%m%dT%H%M%S"))
    assert info["prepare_started"] <= run_id_time + 1  # the run's length starts before the run id (end of preparing)
    text = json.dumps(info, default=str)
    assert state.catalog.store.secret_key not in text and state.catalog.store.access_key not in text


def test_index_build_benchmark_measures_both_tools(prepared_state, monkeypatch):
    from nwb_cloud.suite import asv_grid, asv_index

    monkeypatch.setenv("NWB_CLOUD_STATE", str(prepared_state))
    asv_grid.load_state.cache_clear()
    try:
        cls = asv_index.index_build_class()
        tools, assets, profiles = cls.params
        assert tools == ["nwb-index", "lindi"] and "ophys/workload-friendly" in assets and len(profiles) == 1
        cell = ("ophys/workload-friendly", profiles[0])
        for tool in tools:
            bench = cls()
            bench.setup(tool, *cell)
            assert bench.track_seconds(tool, *cell) > 0
            assert bench.track_requests(tool, *cell) >= 1
            assert bench.track_bytes_fetched(tool, *cell) > 0
            assert bench.track_index_bytes(tool, *cell) > 0
        # a build is logged with its process and counted apart from the read samples (it is none)
        from nwb_cloud.suite.run_info import run_info

        state = RunState.load(prepared_state)
        asv_grid.sample_log(state).append("ophys_patch[remfile, workload-friendly, in-region]",
                                          {"seconds": 0.5, "sample": 1, "pid": 1, "process_samples": 1})  # fmt: skip
        records = list(map(json.loads, asv_grid.sample_log(state).path.read_text().splitlines()))
        builds = [r for r in records if r["cell"].startswith("index_build[")]
        assert len(builds) == 2 and all(r["pid"] == os.getpid() and r["process_samples"] >= 1 for r in builds)
        sampling = run_info(state)["sampling"]
        assert sampling["samples_taken"] == len(records) - 2 >= 1 and sampling["index_builds"] == 2
        # both builds ran in this one test process: at most the first was its process's first
        assert sampling["index_builds_fresh_process"] == sum(r["process_samples"] == 1 for r in builds) <= 1
    finally:
        asv_grid.load_state.cache_clear()
        asv_grid.proxy_for(profiles[0]).stop()
        asv_grid.proxy_for.cache_clear()


def test_a_samples_teardown_leaves_what_the_process_held_before_out_of_the_closing_collection():
    """asv forks each sample from a server that imported everything: closing the handle collects cycles
    (access.Opened.close), which should not walk (and copy) every object the server imported."""
    import gc

    from nwb_cloud.suite.asv_grid import StreamingBenchmark

    walked = []

    class Run:
        result = None

        def close(self):
            walked.append(len(gc.get_objects()))  # what a full collection would walk now

    benchmark = StreamingBenchmark()
    benchmark.cell_run = Run()
    before = len(gc.get_objects())
    try:
        benchmark.teardown("m", "l", "p")
    finally:
        gc.unfreeze()
    assert walked and walked[0] < before / 10, (walked, before)


def test_asv_records_the_decoder_table_the_run_prepared_not_a_second_one(prepared_state, monkeypatch):
    from nwb_cloud.analysis import decode
    from nwb_cloud.suite.asv_decoders import InflateDecoders

    prepared = RunState.load(prepared_state).extra["decoders"]
    assert prepared and all("output_mb_per_cpu_s" in row or not row["installed"] for row in prepared)
    bench = InflateDecoders()
    monkeypatch.setattr(decode, "decoder_speeds", lambda *args, **kwargs: pytest.fail("measured a second table"))
    monkeypatch.setenv("NWB_CLOUD_STATE", str(prepared_state))
    table = bench.setup_cache()
    assert table == prepared  # the run info's figures are asv's
    row = next(r for r in table if r["installed"])
    figure = bench.track_output_mb_per_cpu_s(table, row["decoder"], row["codec"], row["chunk_bytes"], row["modality"])
    assert figure == row["output_mb_per_cpu_s"]

    monkeypatch.delenv("NWB_CLOUD_STATE")  # a bare `asv run`: no run, so the table is measured here
    monkeypatch.setattr(decode, "decoder_speeds", lambda size, seed: [{"measured at": size}])
    assert bench.setup_cache() == [{"measured at": "quick"}]


def test_an_index_build_the_tool_cannot_make_is_skipped_as_unsupported_and_reported_so(prepared_state, monkeypatch):
    from asv_runner.benchmarks.mark import SkipNotImplemented

    from nwb_cloud.refs.errors import Unrepresentable
    from nwb_cloud.results.asv_results import FAILED, SKIPPED, Record
    from nwb_cloud.results.cells import cells_frame
    from nwb_cloud.suite import asv_grid, asv_index
    from nwb_cloud.suite.run_info import run_info

    builds = []

    def refuses(store, key, traffic):
        builds.append(key)
        raise Unrepresentable("LINDI: /acquisition/X/data uses szip or lzf compression - not supported")

    monkeypatch.setenv("NWB_CLOUD_STATE", str(prepared_state))
    monkeypatch.setitem(asv_index.TOOLS, "lindi", refuses)
    asv_grid.load_state.cache_clear()
    try:
        cls = asv_index.index_build_class()
        # an asset the other index-build test does not build: the run's log holds each cell's one build
        cell = (next(a for a in cls.params[1] if a.startswith("ecephys/")), cls.params[2][0])
        for track in (cls.track_seconds, cls.track_requests):  # asv runs each track in a process of its own
            bench = cls()
            bench.setup("lindi", *cell)
            with pytest.raises(SkipNotImplemented, match="^unsupported: LINDI: .*lzf"):
                track(bench, "lindi", *cell)
        assert len(builds) == 1  # the second track read the first one's verdict
        info = run_info(RunState.load(prepared_state))
    finally:
        asv_grid.load_state.cache_clear()
        asv_grid.proxy_for(cell[1]).stop()
        asv_grid.proxy_for.cache_clear()
    label = f"index_build|lindi|{cell[0]}|{cell[1]}"
    assert info["unsupported_cells"][label].startswith("unsupported: LINDI")

    # the report's cells: a skipped build is unsupported with its reason, a failed one failed (not "not in grid")
    def record(asset: str, outcome: str) -> Record:
        return Record(machine="vm", commit="c", env="e", commit_date=None, started_at=None,
                      benchmark="index_build.IndexBuild.track_seconds", suite="index_build",
                      workload_class="IndexBuild", measure="track_seconds", kind="track", unit="seconds",
                      params={"tool": "lindi", "asset": asset, "profile": cell[1]}, value=None,
                      outcome=outcome)  # fmt: skip

    failures = {f"index_build|lindi|ecephys/x|{cell[1]}": "build: OSError: x"}
    info = {**info, "commit": "c", "cell_failures": failures, "_path": str(prepared_state)}
    frame = cells_frame([record(cell[0], SKIPPED), record("ecephys/x", FAILED)], [info])
    assert list(frame["status"]) == ["unsupported", "failed"], frame[["status", "reason"]]
    assert frame["reason"].iloc[0].startswith("unsupported: LINDI") and frame["reason"].iloc[1] == "build: OSError: x"
