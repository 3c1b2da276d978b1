"""What a run measures and writes: every sample a fresh process, per-sample CPU and passes, unsupported cells
skipped with their reason, and an exit status that says whether anything real failed (a tiny asv run)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nwb_cloud.access import load_methods
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.suite.asv_grid import METHOD_FILES
from nwb_cloud.suite.measure import exit_status, measure_prepared
from nwb_cloud.suite.prepare import prepare_run
from nwb_cloud.suite.run_info import rank_stability
from nwb_cloud.suite.state import Block, Grid, RunState

REPO = Path(__file__).resolve().parents[1]

# A file of read methods outside the package, as a lab would add its own: one reads one more than is stored
# (a wrong read: the check must fail it), one cannot represent any asset (its prepare says so: a skip).
TEST_METHODS = textwrap.dedent(
    """
    from nwb_cloud.access import Unsupported, get_method
    from nwb_cloud.access.base import Method


    class OneMore:
        def __init__(self, data):
            self._data, self.shape, self.dtype = data, data.shape, data.dtype

        def __getitem__(self, selection):
            return self._data[selection] + 1


    def open_wrong(store, key):
        opened = get_method("remfile")(store, key)
        for series in opened.nwbfile.acquisition.values():
            series.fields["data"] = OneMore(series.data)
        return opened


    def refuse(store, key, local_path):
        raise Unsupported("test-unsupported cannot represent " + key)


    METHODS = [
        Method("test-wrong-data", "remfile, but every value read one more than stored", open_wrong),
        Method("test-unsupported", "cannot represent any asset", get_method("remfile").open, prepare=refuse),
    ]
    """
)


@pytest.fixture(scope="module")
def method_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("methods") / "test_methods.py"
    path.write_text(TEST_METHODS)
    load_methods(path)
    return path


def _asv_config(tmp: Path) -> Path:
    config = {
        "version": 1, "project": "nwb-cloud", "repo": str(REPO), "dvcs": "git", "branches": ["main"],
        "environment_type": "existing", "benchmark_dir": str(REPO / "benchmarks"),
        "results_dir": str(tmp / "results"), "html_dir": str(tmp / "html"), "build_cache_size": 0,
        "launch_method": "forkserver",
    }  # fmt: skip
    path = tmp / "asv.conf.json"
    path.write_text(json.dumps(config))
    return path


def _measure(settings, store, endpoint, tmp: Path, methods: list[str], method_file: Path):
    grid = Grid(
        workloads=["ophys_patch", "open_ophys"],
        methods=methods,
        layouts=["workload-friendly"],
        profiles=["in-region"],
        repeat=2,
        blocks=[Block("all"), Block("more", workloads=["ophys_patch"], methods=["remfile"], samples=3)],
        first_use=Block(
            "first-use",
            workloads=["ophys_patch"],
            methods=methods[:1],
            layouts=["workload-friendly"],
            profiles=["in-region"],
            samples=2,
        ),
    )
    state_file = tmp / "state.json"
    state = prepare_run(settings.with_(state_file=state_file), store, grid, progress=False, log=lambda *_: None)
    state.extra[METHOD_FILES] = [str(method_file)]
    state.save(state_file)
    return measure_prepared(
        state,
        state_file,
        REPO,
        endpoint.url,
        bench="streaming|first_use",
        asv_config=_asv_config(tmp),
        server_pid=endpoint.pid,
    )


@pytest.mark.slow
def test_a_clean_run_exits_0_with_unsupported_cells_skipped(settings, store, endpoint, catalog, tmp_path, method_file):
    measured = _measure(settings, store, endpoint, tmp_path, ["remfile", "test-unsupported"], method_file)
    info = measured.info
    assert measured.failures == [] and measured.exit_status == 0, measured.failures
    unsupported = info["unsupported_cells"]
    assert set(unsupported) == {
        f"{w}|test-unsupported|workload-friendly|in-region" for w in ("ophys_patch", "open_ophys")
    } and all("cannot represent" in reason for reason in unsupported.values())
    # every sample in a process of its own: one pid per sample, each the first sample of its process
    samples = info["cell_samples"]
    patch = samples["ophys_patch|remfile|workload-friendly|in-region"]
    opens = samples["open_ophys|remfile|workload-friendly|in-region"]
    assert len(patch) == 3 and len(opens) == 2  # the block asking for more wins; the other cell sits out a pass
    every = patch + opens
    assert len({s["pid"] for s in every}) == len(every) and all(s["process_samples"] == 1 for s in every)
    assert [s["grid_pass"] for s in patch] == [1, 2, 3] and [s["grid_pass"] for s in opens] == [2, 3]
    assert all(s["cpu_s"] > 0 and s["seconds"] > 0 and s["peak_growth_bytes"] >= 0 for s in every)
    # what the embedded server and the proxy spent serving each timed part, measured from their processes
    assert all(s["serving_cpu_s"] > 0 for s in every), every
    assert "server_pid" not in RunState.load(tmp_path / "state.json").extra  # the run's, dropped after it
    # the kernel's part of the CPU (two clocks: getrusage's split is tick-based, hence the slack)
    assert all(0 <= s["system_cpu_s"] <= s["cpu_s"] + 0.02 for s in every), every
    assert info["sampling"]["fresh_process_samples"] == info["sampling"]["samples_taken"] == 5
    medians = info["samples"]["ophys_patch|remfile|workload-friendly|in-region"]
    assert medians["samples"] == 3 and medians["seconds_q25"] <= medians["seconds"] <= medians["seconds_q75"]
    assert "pid" not in medians and "grid_pass" not in medians
    # the first use in a fresh python: the method and the local h5py baseline, imports included and excluded
    for method in ("remfile", "local-h5py"):
        first = info["first_use"][f"ophys_patch|{method}|workload-friendly|in-region"]
        assert first["samples"] == 2 and first["first_use_s"] > first["after_imports_s"] > 0
        assert first["imports_s"] > 0.1 and first["first_use_s"] == pytest.approx(
            first["imports_s"] + first["after_imports_s"], rel=0.05
        )


@pytest.mark.slow
def test_a_wrong_read_fails_the_run(settings, store, endpoint, catalog, tmp_path, method_file):
    measured = _measure(settings, store, endpoint, tmp_path, ["remfile", "test-wrong-data"], method_file)
    assert measured.exit_status == 1
    failed = measured.info["cell_failures"]
    assert set(failed) == {"ophys_patch|test-wrong-data|workload-friendly|in-region"}, failed
    assert "WrongRead" in failed["ophys_patch|test-wrong-data|workload-friendly|in-region"]
    assert all("test-wrong-data" in line for line in measured.failures)


def test_exit_status_is_0_only_when_nothing_failed():
    assert exit_status([]) == 0 and exit_status(["ophys_patch|x|y|z: check: WrongRead"]) == 1


def test_rank_stability_compares_the_last_two_passes():
    def samples(*times):
        return [{"seconds": t, "grid_pass": p} for p, t in enumerate(times, start=1)]

    cells = {  # as the run info keeps them
        "ophys_patch|a|l|in-region": samples(9.0, 1.0, 1.0),
        "ophys_patch|b|l|in-region": samples(1.0, 2.0, 3.0),
        "ophys_patch|c|l|in-region": samples(5.0, 3.0, 2.0),  # swaps with b in the last pass
        "open_ophys|a|l|in-region": samples(1.0, 1.0),  # one method alone: no pair
    }
    stability = rank_stability(cells)
    assert stability["passes"] == [2, 3] and stability["groups"] == 1 and stability["pairs"] == 3
    assert stability["concordant_pairs"] == 2 and stability["groups_same_order"] == 0
    assert stability["kendall_tau"] == pytest.approx(1 / 3)
    assert stability["orders"]["ophys_patch|l|in-region"] == {"first": ["a", "b", "c"], "second": ["a", "c", "b"]}
    # b and c swapped; their medians over all three passes are 2.0 and 3.0: 50 % apart
    assert stability["swapped"] == [{"group": "ophys_patch|l|in-region", "methods": ["b", "c"], "gap": 0.5}]


def test_the_report_reads_rank_stability_from_the_samples_as_the_run_recorded_it():
    """The report recomputes the committed run's figures from its samples (for the swapped pairs' gaps): the
    counts must be the run's own."""
    from nwb_cloud.report.page import Run
    from nwb_cloud.report.page import rank_stability as stability_paragraph
    from nwb_cloud.results.run_info import load_run_infos

    infos = [
        i
        for i in load_run_infos(Path(__file__).parent.parent / "results")
        if (i.get("rank_stability") or {}).get("pairs")
    ]
    assert infos, "no committed run info records a rank stability"
    for info in infos:
        recomputed = rank_stability(info["cell_samples"])
        assert {k: recomputed[k] for k in info["rank_stability"]} == info["rank_stability"], info["run_id"]
    text = stability_paragraph(Run(machine="vm", machine_info={}, commit="c", started=None, cells=pd.DataFrame(),
                                   info=infos[-1], earlier_runs=0, size="quick"))  # fmt: skip
    assert "pairs that swapped were" in text and "apart at most" in text


def test_a_block_asking_for_more_samples_sets_the_cells_and_the_passes():
    grid = Grid(["ophys_patch"], ["fsspec", "remfile"], ["neuroconv-default"], ["in-region"], repeat=2,
                blocks=[Block("all"), Block("headline", methods=["remfile"], samples=5)])  # fmt: skip
    assert grid.samples("ophys_patch", "remfile", "neuroconv-default", "in-region") == 5
    assert grid.samples("ophys_patch", "fsspec", "neuroconv-default", "in-region") == 2
    assert grid.rounds() == 5 and Grid.from_dict(grid.to_dict()).rounds() == 5


def test_page_buffer_variants_apply_to_paged_layouts_only():
    grid = Grid(["ophys_patch"], ["remfile", "remfile-pagebuf"], ["neuroconv-default", "neuroconv-default-paged"],
                ["in-region"])  # fmt: skip
    assert "page buffer" in grid.exclusion("remfile-pagebuf", "in-region", "ophys_patch", "neuroconv-default")
    assert grid.exclusion("remfile-pagebuf", "in-region", "ophys_patch", "neuroconv-default-paged") is None
    assert {(m, lay) for _, m, lay, _ in grid.cells()} == {
        ("remfile", "neuroconv-default"), ("remfile", "neuroconv-default-paged"),
        ("remfile-pagebuf", "neuroconv-default-paged"),
    }  # fmt: skip


def test_state_round_trips_the_method_files(tmp_path, catalog, method_file):
    state = RunState(catalog, Grid(["ophys_patch"], ["test-wrong-data"], ["neuroconv-default"], ["in-region"]),
                     str(tmp_path), "r", extra={METHOD_FILES: [str(method_file)]})  # fmt: skip
    state.save(tmp_path / "s.json")
    assert RunState.load(tmp_path / "s.json").extra[METHOD_FILES] == [str(method_file)]
    assert sys.modules  # the file is importable again (load_methods is idempotent)
    assert load_methods(method_file) == ["test-wrong-data", "test-unsupported"]


def _time(method: str, value, outcome: str = "measured"):
    from nwb_cloud.results.asv_results import Record

    return Record(machine="m", commit="c" * 40, env="e", commit_date=None, started_at=1.0,
                  benchmark="streaming.OphysPatch.time_workload", suite="streaming", workload_class="OphysPatch",
                  measure="time_workload", kind="time", unit="seconds",
                  params={"method": method, "layout": "neuroconv-default", "profile": "in-region"}, value=value,
                  outcome=outcome, samples=None if value is None else [value, value])  # fmt: skip


def test_the_cells_frame_shows_cpu_unsupported_and_failed_samples():
    from nwb_cloud.results.asv_results import SKIPPED
    from nwb_cloud.results.cells import cells_frame

    cell = "ophys_patch|{}|neuroconv-default|in-region"
    info = {
        "machine": "m", "commit": "c" * 40, "run_id": "r", "_path": __file__,
        "samples": {cell.format("remfile"): {"seconds": 2.0, "cpu_s": 1.5, "open_s": 0.2, "samples": 2,
                                             "peak_growth_bytes": 30e6, "serving_cpu_s": 0.4}},
        "floors": [{"workload": "ophys_patch", "profile": "in-region", "layout": "neuroconv-default",
                    "seconds": 0.5, "network_s": 0.1, "decode_s": 0.5, "local_s": 1.0, "selection_bytes": 1e6,
                    "compressed_bytes": 9e6, "chunk_bytes": 20e6}],
        "cell_failures": {cell.format("fsspec"): "check: WrongRead: 1 of 9 values differ"},
        "unsupported_cells": {cell.format("kerchunk"): "unsupported: kerchunk: lzf has no numcodecs codec"},
    }  # fmt: skip
    records = [_time("remfile", 2.0), _time("fsspec", 3.0), _time("kerchunk", None, SKIPPED)]
    frame = cells_frame(records, [info]).set_index("method")
    assert frame.loc["remfile", "status"] == "ok" and frame.loc["remfile", "cpu_s"] == 1.5
    assert frame.loc["remfile", "decode_cpu_s"] == 1.0 and frame.loc["remfile", "cpu_over_decode"] == 1.5
    assert frame.loc["remfile", "open_s"] == 0.2 and frame.loc["remfile", "serving_cpu_measured_s"] == 0.4
    assert frame.loc["remfile", "peak_growth_bytes"] == 30e6 and frame.loc["remfile", "chunk_bytes"] == 20e6
    # a sample that failed in one pass fails the cell, even though asv kept the other passes' time
    assert frame.loc["fsspec", "status"] == "failed" and "WrongRead" in frame.loc["fsspec", "reason"]
    assert frame.loc["kerchunk", "status"] == "unsupported" and "lzf" in frame.loc["kerchunk", "reason"]


def test_an_open_cell_is_set_against_the_local_open_as_a_new_scripts_first_where_the_run_measured_it():
    from nwb_cloud.results.asv_results import Record
    from nwb_cloud.results.cells import cells_frame

    floor = {"workload": "open_ophys", "profile": "in-region", "layout": "neuroconv-default", "kind": "open",
             "seconds": 0.025, "network_s": 0.02, "decode_s": 0.025, "local_s": 0.025,
             "metadata_bytes": 2e5}  # fmt: skip
    record = Record(machine="m", commit="c" * 40, env="e", commit_date=None, started_at=1.0,
                    benchmark="streaming.OpenOphys.time_workload", suite="streaming", workload_class="OpenOphys",
                    measure="time_workload", kind="time", unit="seconds",
                    params={"method": "nwb-index", "layout": "neuroconv-default", "profile": "in-region"},
                    value=0.075, outcome="measured", samples=[0.075, 0.075])  # fmt: skip
    for fresh, expected in ((0.1, 0.75), (None, None)):  # None: a run from before the figure
        info = {"machine": "m", "commit": "c" * 40, "run_id": "r", "_path": __file__,
                "floors": [{**floor, "local_fresh_s": fresh}]}  # fmt: skip
        row = cells_frame([record], [info]).iloc[0]
        assert row["time_over_local"] == pytest.approx(3.0)  # against the warm open, the floor's
        if expected is None:
            assert np.isnan(row["local_fresh_s"]) and np.isnan(row["time_over_local_fresh"])
        else:
            assert row["local_fresh_s"] == fresh and row["time_over_local_fresh"] == pytest.approx(expected)


def test_serving_cpu_is_measured_per_request_and_per_mb(endpoint):
    from nwb_cloud.cloud.calibrate import ServingCost, measure_serving_cost

    cost = measure_serving_cost(endpoint, requests_n=200, size=16 * 2**20, piece=2 * 2**20, passes=1)
    assert cost.server_cpu_s_per_request > 0 and cost.server_cpu_s_per_mb > 0  # rclone does work for each
    assert cost.proxy_cpu_s_per_request > 0 and cost.proxy_cpu_s_per_mb > 0  # so does the proxy, unshaped
    shaped = {name for name, profile in PROFILES.items() if profile.shaped}
    assert set(cost.server_cpu_s_per_mb_under) == set(cost.proxy_cpu_s_per_mb_under) == shaped
    assert all(figure > 0 for figure in cost.proxy_cpu_s_per_mb_under.values())
    assert "ranged GETs of 2 MiB" in cost.shape
    assert cost.shares_reader_cores and ServingCost.from_dict(cost.to_dict()) == cost


def test_serving_cpu_is_priced_under_the_cells_profile_and_unshaped_in_runs_that_did_not_measure_one():
    from nwb_cloud.cloud.calibrate import ServingCost

    unshaped = dict(server_cpu_s_per_request=1e-3, server_cpu_s_per_mb=2e-3, proxy_cpu_s_per_request=2e-4,
                    proxy_cpu_s_per_mb=5e-4, requests=400, mb=128, cores=2, shares_reader_cores=True)  # fmt: skip
    older = ServingCost.from_dict(unshaped)  # a run info from before the shaped figures
    assert older.cpu_s(10, 50_000_000, "lab") == older.cpu_s(10, 50_000_000) == pytest.approx(10 * 1.2e-3 + 50 * 2.5e-3)
    cost = ServingCost.from_dict({**unshaped, "server_cpu_s_per_mb_under": {"lab": 1e-3},
                                  "proxy_cpu_s_per_mb_under": {"lab": 3e-3}})  # fmt: skip
    assert cost.cpu_s(10, 50_000_000, "lab") == pytest.approx(10 * 1.2e-3 + 50 * 4e-3)
    assert cost.cpu_s(10, 50_000_000, "in-region") == older.cpu_s(10, 50_000_000)  # not measured: unshaped


def test_a_processes_cpu_seconds_are_its_threads_run_times():
    from nwb_cloud.cloud.calibrate import cpu_s

    before, process = cpu_s(os.getpid()), time.process_time()
    while time.process_time() - process < 0.2:
        sum(range(10_000))
    spent, measured = cpu_s(os.getpid()) - before, time.process_time() - process
    assert measured * 0.9 <= spent <= measured * 1.1 + 0.01


def test_the_bound_counts_serving_cpu_when_it_shares_the_readers_cores():
    from nwb_cloud.analysis.bound import SHARED, Measured, bound
    from nwb_cloud.cloud.calibrate import ServingCost
    from nwb_cloud.cloud.profiles import get_profile

    measured = Measured("k", "ophys_patch", "read", cores=2, local_s=1.0, chunks=8, ranges=8,
                        compressed_bytes=100_000_000)  # fmt: skip
    alone = bound(measured, get_profile("in-region"))
    assert alone.serving_cpu_s == 0 and alone.decode_s == 0.5 and alone.binding == "decode"
    serving = ServingCost(0.001, 0.002, 0.0002, 0.0005, requests=400, mb=128, cores=2, shares_reader_cores=True)
    shared = bound(measured, get_profile("in-region"), serving=serving)
    assert shared.serving_cpu_s == pytest.approx(8 * 0.0012 + 100 * 0.0025)
    assert shared.shared_cpu_s == pytest.approx((1.0 + shared.serving_cpu_s) / 2)
    assert shared.binding == SHARED and shared.seconds == shared.shared_cpu_s > alone.seconds
    apart = bound(measured, get_profile("in-region"), serving=dataclasses.replace(serving, shares_reader_cores=False))
    assert apart.seconds == alone.seconds and apart.serving_cpu_s == shared.serving_cpu_s
    paced = dataclasses.replace(serving, proxy_cpu_s_per_mb_under={"in-region": 0.003})  # the profile's own figure
    paced_cpu_s = bound(measured, get_profile("in-region"), serving=paced).serving_cpu_s
    assert paced_cpu_s == pytest.approx(8 * 0.0012 + 100 * 0.005)


def test_the_peak_growth_of_a_part_counts_what_it_held_at_once_not_what_came_before():
    import mmap

    from nwb_cloud.suite.memory import PeakGrowth

    def resident(size: int) -> mmap.mmap:  # new pages, written (so resident): not memory the heap kept
        mapping = mmap.mmap(-1, size)
        np.frombuffer(mapping, dtype=np.uint8)[:] = 1
        return mapping

    before = resident(64 * 2**20)  # held before the part: not its memory
    memory = PeakGrowth()
    memory.start()
    resident(32 * 2**20).close()
    also = resident(16 * 2**20)  # after the first was given back: the peak stays the larger one
    grown = memory.bytes()
    assert 31 * 2**20 <= grown <= 40 * 2**20, grown  # page-granular: other pages come and go meanwhile
    before.close()
    also.close()
