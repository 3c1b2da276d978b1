"""The closed loop end to end on tiny data: plan, recommend, rewrite (verified), write the layouts around it,
upload, read every cell cold against the source, and the verdict of each group from asv results of those reads.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from asv.results import Results
from asv.runner import BenchmarkResult

from nwb_cloud import cli
from nwb_cloud.access import METHODS
from nwb_cloud.cli.bench import _loop_cases
from nwb_cloud.datasets.catalog import Catalog
from nwb_cloud.recommend import RecommendError, default_model, describe, load_measurements
from nwb_cloud.recommend.cases import CASES, HELD_OUT, IN_SAMPLE, LENGTH, check_cases, get_cases
from nwb_cloud.recommend.check import TARGET
from nwb_cloud.recommend.loop import (
    DEFAULT,
    LAYOUTS_AT_1X,
    LOOP_METHODS,
    PAGED,
    RECOMMENDED,
    ZARR_READER,
    ZARR_ROLE,
    LoopStep,
    loop_grid,
    paged_reader,
    run_size,
)
from nwb_cloud.recommend.loop_check import loop_groups, loop_summary, own_role, summary_line
from nwb_cloud.recommend.synthetic import synthetic_measurements
from nwb_cloud.suite.cell import Cell, CellRun
from nwb_cloud.suite.prepare import prepare_methods
from nwb_cloud.suite.run_info import run_info
from nwb_cloud.suite.state import RunState

CASE = "ecephys-64ch"  # held out: 64 channels, a 0.8/0.2 mix
MACHINE, COMMIT = "loop-test", "100b" + "0" * 36


def test_the_cases_are_chosen_as_the_issue_asks():
    check_cases()
    kinds = {case.kind for case in CASES.values()}
    assert kinds == {IN_SAMPLE, HELD_OUT, LENGTH}
    held_out = [c for c in CASES.values() if c.kind == HELD_OUT]
    in_sample = {(c.shape, c.dtype) for c in CASES.values() if c.kind == IN_SAMPLE}
    assert all((c.shape, c.dtype) not in in_sample for c in held_out)
    assert {c.dtype for c in held_out} - {"uint16", "int16"}  # dtypes the study never wrote
    assert {c.shape[1:] for c in held_out if c.modality == "ophys"} - {(512, 512)}  # other frame sizes
    assert {c.shape[1] for c in held_out if c.modality == "ecephys"} - {384}  # other channel counts
    assert any(0 < w < 1 for c in held_out for w in c.mix.values())  # weights other than 0 and 1
    assert {c.profile for c in held_out} == {"in-region", "lab"}
    longer = {c.modality for c in CASES.values() if c.kind == LENGTH}
    assert longer == {"ophys", "ecephys"}  # both seed reads at 5x length
    assert [c.name for c in get_cases(["ophys-study-patch-5x"])] == ["ophys-study-patch", "ophys-study-patch-5x"]
    with pytest.raises(RecommendError, match="unknown loop case"):
        get_cases(["ophys-nope"])


@pytest.fixture(scope="module")
def loop_run(store, tmp_path_factory):
    """The loop's run step on one held-out case, as `nwb-cloud bench --block loop` runs it (without asv)."""
    data_dir = tmp_path_factory.mktemp("loop-data")
    catalog = Catalog(store=store, source="embedded", size="tiny", seed=0)
    grid = loop_grid()
    step = LoopStep(store=store, data_dir=data_dir, size="tiny", cases=get_cases([CASE]), model=default_model())
    logged = []
    extra = step(catalog, grid, log=logged.append)
    assert prepare_methods(catalog, grid.methods, log=logged.append, grid=grid) == {}  # nwb-index's indexes
    state = RunState(catalog=catalog, grid=grid, data_dir=str(data_dir), run_id="20261204T000000-looptest",
                     extra={**extra, "floors": []})  # fmt: skip
    return state, extra["loop"], data_dir, logged


def test_the_plan_is_recorded_before_the_model_is_fitted(loop_run):
    _, record, data_dir, logged = loop_run
    (plan,) = (data_dir / "loop").glob("plan-*.json")
    planned = json.loads(plan.read_text())
    assert [c["name"] for c in planned["cases"]] == [CASE] and "model" not in planned
    assert planned["planned_at"] <= record["model"]["fitted_at"]
    assert record["cases"] == planned["cases"] and record["cases"][0]["kind"] == HELD_OUT
    assert any("before the model is fitted" in line for line in logged)


def test_every_group_holds_the_recommendation_rewritten_and_at_least_six_layouts(loop_run, store):
    state, record, _, _ = loop_run
    group = record["groups"][CASE]
    layouts = group["layouts"]
    own = {own_role(group, method) for method in LOOP_METHODS} - {RECOMMENDED}  # readers' own recommendations
    assert own  # the shipped model's fsspec terms recommend wider chunks than a typical reader's on this case
    assert len(layouts) == LAYOUTS_AT_1X + len(own) and LAYOUTS_AT_1X >= 6
    assert {DEFAULT, RECOMMENDED, PAGED, ZARR_ROLE} | own <= set(layouts)
    identities = {(tuple(v["chunk_shape"]), v["codec"], v["backend"], v["page_size"]) for v in layouts.values()}
    assert len(identities) == len(layouts)
    rec = group["recommendation"]
    assert layouts[RECOMMENDED]["chunk_shape"] == rec["chunk_shape"] and layouts[RECOMMENDED]["codec"] == rec["codec"]
    assert group["rewrite"]["verified"] is True  # the study file rewritten into it, every object compared
    for method in LOOP_METHODS:  # each reader's recommendation is a layout of the group, written as it says
        mine, role = group["for_reader"][method], own_role(group, method)
        assert layouts[role]["chunk_shape"] == mine["chunk_shape"] and layouts[role]["codec"] == mine["codec"]
        assert set(layouts[role]["predicted_s_by_reader"]) == set(LOOP_METHODS)
        asset = state.catalog.asset("ecephys", layouts[role]["layout"])
        assert asset.local_path.endswith(".rewritten.nwb")
        spec = describe((asset.local_path, "acquisition/ElectricalSeries"))
        assert spec.current_chunks == tuple(mine["chunk_shape"]) and spec.current_codec == mine["codec"]
        assert spec.shape == tuple(CASES[CASE].shape_at("tiny")) and spec.dtype == "int16"
    assert all(asset.key.startswith("loop/tiny/") for asset in state.catalog.assets.values())
    for role, layout in layouts.items():
        stored = state.catalog.asset("ecephys", layout["layout"])
        assert stored.size_bytes == layout["size_bytes"]
        if layout["backend"] == "zarr":  # a folder: one object per chunk, and its metadata
            assert store.head(f"{stored.key}/.zgroup")["size"] > 0
        else:
            assert store.head(stored.key)["size"] == stored.size_bytes  # uploaded
        assert layout["write_cpu_s"] > 0 and layout["compression_ratio"] > 0
        assert (layout["predicted_s"] is None) == (role == PAGED)  # the model prices every layout it can
    assert rec["cost"]["write_cpu_s_per_gb"] > 0 and "flags" in group


def test_the_blocks_read_each_layout_with_its_readers(loop_run):
    state, record, _, _ = loop_run
    layouts, mix = record["groups"][CASE]["layouts"], CASES[CASE].mix
    cells = set(state.grid.cells())
    for role, layout in layouts.items():
        if role == ZARR_ROLE:
            readers = [ZARR_READER]
        elif role == PAGED:
            readers = [paged_reader(m) for m in LOOP_METHODS]
        else:
            readers = LOOP_METHODS
        expected = {(w, m, layout["layout"], "in-region") for w in mix for m in readers}
        assert expected <= cells
    assert len(cells) == len(mix) * ((len(layouts) - 1) * len(LOOP_METHODS) + 1)
    assert all(paged_reader(m) in METHODS for m in LOOP_METHODS)


def _measure(state: RunState, store, repeat: int = 1) -> dict:
    """Every cell of the loop's grid read cold ``repeat`` times (each checked against the source): seconds."""
    times = {}
    for workload, method, layout, profile in state.grid.cells():
        run = CellRun(state.catalog, Cell(workload, method, layout, profile), store=store)
        samples = []
        for _ in range(repeat):
            run.setup()
            started = time.perf_counter()
            run.run()
            samples.append(time.perf_counter() - started)
            run.finish()  # raises WrongRead on a wrong read
        times[(workload, method, layout, profile)] = samples
    return times


def _write_results(state: RunState, times: dict, root: Path, commit: str = COMMIT) -> Path:
    """The measured ``times`` as asv results (asv's own writer) and the run info the bench writes beside them."""
    machine_info = {"machine": MACHINE, "arch": "x86_64", "cpu": "test", "num_cpu": "2", "os": "Linux",
                    "ram": "8000000000"}  # fmt: skip
    (root / MACHINE).mkdir(parents=True, exist_ok=True)
    (root / MACHINE / "machine.json").write_text(json.dumps({**machine_info, "version": 1}))
    results = Results(machine_info, {}, commit, 1_795_000_000_000, "3.11", "existing-py", {})
    started = datetime.datetime(2026, 12, 4, tzinfo=datetime.UTC)
    for workload in state.grid.workloads:
        methods, layouts, profiles = state.grid.axes_of(workload)
        if not methods:
            continue
        params = [[repr(v) for v in axis] for axis in (methods, layouts, profiles)]
        combos = list(itertools.product(methods, layouts, profiles))
        samples = [times.get((workload, *combo)) for combo in combos]
        values = [math.nan if s is None else float(np.median(s)) for s in samples]
        name = "streaming." + "".join(part.title() for part in workload.split("_"))
        result = BenchmarkResult([v if math.isnan(v) else True for v in values], samples,
                                 [None if s is None else 1 for s in samples], 0, "", None)  # fmt: skip
        results.add_result({"name": f"{name}.time_workload", "version": "1", "params": params}, result,
                           started_at=started, duration=1.0, record_samples=True)  # fmt: skip
    results.save(str(root))
    state.catalog.size = run_size("tiny")
    info = {**run_info(state, commit=commit), "machine": {"host": MACHINE, "cores": 2}}
    (root / "run-info").mkdir(exist_ok=True)
    (root / "run-info" / f"{state.run_id}.json").write_text(json.dumps(info, default=str))
    return root


@pytest.fixture(scope="module")
def measured(loop_run, reading_store, tmp_path_factory):
    state, _, _, _ = loop_run
    times = _measure(state, reading_store)
    return times, _write_results(state, times, tmp_path_factory.mktemp("loop-results") / "results")


def test_the_verdict_compares_the_recommendation_with_the_best_measured_layout(loop_run, measured):
    state, record, _, _ = loop_run
    times, results = measured
    groups = loop_groups(results)
    assert list(groups["method"]) == LOOP_METHODS and set(groups["case"]) == {CASE}
    assert (groups["layouts"] >= 6).all() and groups["not_measured"].eq("").all()
    assert set(groups["size"]) == {"loop-tiny"} and set(groups["machine"]) == {MACHINE}
    layouts, mix = record["groups"][CASE]["layouts"], CASES[CASE].mix
    for row in groups.itertuples():
        weighted = {}
        for role, layout in layouts.items():
            reader = ZARR_READER if role == ZARR_ROLE else (paged_reader(row.method) if role == PAGED else row.method)
            weighted[role] = sum(w * np.median(times[(wl, reader, layout["layout"], "in-region")])
                                 for wl, w in mix.items())  # fmt: skip
        best, own = min(weighted, key=weighted.get), own_role(record["groups"][CASE], row.method)
        assert row.best_role == best and row.best_s == pytest.approx(weighted[best])
        assert row.recommended_for == row.method  # judged on the reader's own recommendation
        assert row.recommended_s == pytest.approx(weighted[own])
        assert row.ratio == pytest.approx(weighted[own] / weighted[best])
        assert row.ratio_typical == pytest.approx(weighted[RECOMMENDED] / weighted[best])
        assert row.within_target == (row.ratio <= TARGET)
        assert row.default_s == pytest.approx(weighted[DEFAULT])
        assert row.within_target or row.why  # a miss says why
        plain = {role: t for role, t in weighted.items() if role not in (ZARR_ROLE, PAGED)}  # the recommendation's
        assert row.best_same_storage_s == pytest.approx(min(plain.values()))
        assert row.ratio_same_storage == pytest.approx(weighted[own] / min(plain.values()))
        assert row.ratio_same_storage <= row.ratio or row.ratio_same_storage == pytest.approx(row.ratio)
    summary = loop_summary(groups)
    assert summary[HELD_OUT]["groups"] == 3 and summary[IN_SAMPLE]["groups"] == 0
    line = summary_line(summary)
    assert f"{summary[HELD_OUT]['within_target']}/3 held out;" in line
    assert line.endswith(f"{summary[HELD_OUT]['within_target_same_storage']}/3 held out")


def test_a_group_lost_to_another_storage_is_told_apart_from_a_mispriced_layout(loop_run, measured, tmp_path):
    state, record, _, _ = loop_run
    times, _ = measured
    group = record["groups"][CASE]
    layouts = group["layouts"]
    zarr = layouts[ZARR_ROLE]["layout"]
    plain = {layouts[role]["layout"] for role in layouts if role not in (ZARR_ROLE, PAGED, RECOMMENDED)}
    shaped = {
        key: [t / 100 for t in s] if key[2] == zarr
        else [t * 10 for t in s] if key[2] in plain and key[2] != layouts[own_role(group, key[1])]["layout"]
        else s
        for key, s in times.items()
    }  # fmt: skip
    groups = loop_groups(_write_results(state, shaped, tmp_path / "results"))
    assert (groups["best_role"] == ZARR_ROLE).all() and not groups["within_target"].any()
    for row in groups.itertuples():  # the best of its storage: the reader's own or the typical recommendation
        assert row.best_same_storage in {
            _described(layouts[RECOMMENDED]),
            _described(layouts[own_role(group, row.method)]),
        }
    assert groups["why"].str.contains("not the storage variant").all()
    for row in groups.itertuples():  # a reader's own layout slower than the typical one misses among HDF5 too
        assert ("among HDF5" in row.why) == (not row.within_target_same_storage)


def test_a_slow_recommendation_is_a_miss_with_its_reason(loop_run, measured, tmp_path):
    state, record, _, _ = loop_run
    times, _ = measured
    group = record["groups"][CASE]
    recommended = {layout["layout"] for role, layout in group["layouts"].items() if role.startswith(RECOMMENDED)}
    slowed = {key: ([t * 5 for t in s] if key[2] in recommended else s) for key, s in times.items()}
    groups = loop_groups(_write_results(state, slowed, tmp_path / "results"))
    assert not groups["within_target"].any() and (groups["ratio"] > TARGET).all()
    # why: the model's prices of the two layouts against their measured times, or a storage variant that won
    assert groups["why"].str.contains("the model predicted|variant of the recommended chunks").all()
    remfiles = group["layouts"][own_role(group, "remfile")]["layout"]
    missing = {key: s for key, s in times.items() if key[2] != remfiles or key[1] != "remfile"}
    groups = loop_groups(_write_results(state, missing, tmp_path / "results-missing"))
    remfile = groups.set_index("method").loc["remfile"]
    assert not remfile["within_target"] and "not measured" in remfile["why"]


def _described(layout: dict) -> str:
    storage = "Zarr" if layout["backend"] == "zarr" else ("paged HDF5" if layout.get("page_size") else "HDF5")
    return f"{tuple(layout['chunk_shape'])} {layout['codec']} ({storage})"


def test_a_run_before_per_reader_recommendations_judges_the_typical_one(loop_run, measured, tmp_path):
    state, record, _, _ = loop_run
    times, _ = measured
    older = json.loads(json.dumps(state.extra))  # the run info a loop run wrote before `for_reader` existed
    del older["loop"]["groups"][CASE]["for_reader"]
    groups = loop_groups(_write_results(dataclasses.replace(state, extra=older), times, tmp_path / "results"))
    layouts, mix = record["groups"][CASE]["layouts"], CASES[CASE].mix
    name = layouts[RECOMMENDED]["layout"]
    typical = {m: sum(w * np.median(times[(wl, m, name, "in-region")]) for wl, w in mix.items()) for m in LOOP_METHODS}
    assert set(groups["recommended_for"]) == {"a typical reader"}
    for row in groups.itertuples():
        assert row.recommended_s == pytest.approx(typical[row.method]) and row.ratio == pytest.approx(row.ratio_typical)


def test_a_reader_the_model_has_no_terms_for_is_judged_and_labelled_on_the_typical_recommendation(
    loop_run, measured, tmp_path
):
    state, record, _, _ = loop_run
    times, _ = measured
    fallback, kept = LOOP_METHODS[0], LOOP_METHODS[1:]
    edited = json.loads(json.dumps(state.extra))  # as `_per_reader` records a reader `recommend` refused
    edited["loop"]["groups"][CASE]["for_reader"][fallback] = {"role": RECOMMENDED, "note": "no fitted terms"}
    groups = loop_groups(_write_results(dataclasses.replace(state, extra=edited), times, tmp_path / "results"))
    layouts, mix = record["groups"][CASE]["layouts"], CASES[CASE].mix
    typical = layouts[RECOMMENDED]
    row = groups[groups["method"] == fallback].iloc[0]
    assert row["recommended_for"] == "a typical reader" and row["recommended"] == _described(typical)
    expected = sum(w * np.median(times[(wl, fallback, typical["layout"], "in-region")]) for wl, w in mix.items())
    assert row["recommended_s"] == pytest.approx(expected) and row["predicted_s"] == typical["predicted_s"]
    assert set(groups[groups["method"].isin(kept)]["recommended_for"]) == set(kept)  # the others keep their own


def test_a_case_measured_again_counts_once_by_its_newest_run(measured):
    from nwb_cloud.recommend.guidance import _closed_loop
    from nwb_cloud.recommend.loop_check import latest_groups

    _, results = measured
    older = loop_groups(results)
    newer = older.assign(run="20261205T000000-looptest", commit="200b" + "0" * 36, within_target=True, why="")
    both = pd.concat([older, newer], ignore_index=True)
    assert latest_groups(both)["run"].eq("20261205T000000-looptest").all() and len(latest_groups(both)) == 3
    summary = loop_summary(both)
    assert summary[HELD_OUT] == {**loop_summary(newer)[HELD_OUT]} and summary[HELD_OUT]["within_target"] == 3
    section = _closed_loop(both)
    assert "run 20261205T000000-looptest" in section and "(run 20261204T000000-looptest) are in the file" in section


def test_every_loop_run_of_a_results_folder_is_judged(loop_run, measured, tmp_path):
    """Loop runs of one machine and size measure different cases: a later one does not hide an earlier one."""
    state, _, _, _ = loop_run
    times, _ = measured
    root = tmp_path / "results"
    _write_results(state, times, root)
    later = dataclasses.replace(state, run_id="20261205T000000-looptest")
    _write_results(later, times, root, commit="200b" + "0" * 36)
    groups = loop_groups(root)
    assert sorted(set(groups["run"])) == ["20261204T000000-looptest", "20261205T000000-looptest"]
    assert len(groups) == 2 * len(LOOP_METHODS) and loop_summary(groups)[HELD_OUT]["groups"] == len(LOOP_METHODS)


def test_the_loops_cells_are_never_fitted(measured):
    from nwb_cloud.recommend.errors import NotEnoughMeasurements

    _, results = measured
    with pytest.raises(NotEnoughMeasurements):  # every timed cell of the run is the loop's
        load_measurements(results)


def test_a_held_out_case_the_fit_has_seen_is_refused(tmp_path, store, monkeypatch):
    from nwb_cloud.recommend import measurements as measurements_module

    synthetic = synthetic_measurements()
    seen = synthetic.layouts.assign(shape=[tuple(CASES[CASE].shape_at("tiny"))] * len(synthetic.layouts),
                                    dtype="int16")  # fmt: skip
    monkeypatch.setattr(measurements_module, "load", lambda _: dataclasses.replace(synthetic, layouts=seen))
    (tmp_path / "results").mkdir()
    step = LoopStep(store=store, data_dir=tmp_path, size="tiny", cases=get_cases([CASE]),
                    results_dir=tmp_path / "results")  # fmt: skip
    with pytest.raises(RecommendError, match="is not held out"):
        step(None, loop_grid(), log=lambda *_: None)


def test_the_guidance_section_shows_every_group_and_the_summary_line(measured):
    from nwb_cloud.recommend.guidance import _closed_loop

    _, results = measured
    groups = loop_groups(results)
    section = _closed_loop(groups)
    assert summary_line(loop_summary(groups)).capitalize() in section
    for row in groups.itertuples():  # per group: recommended, best and default measured times, layouts compared
        assert f"{row.recommended_s:.3g}" in section and f"{row.best_s:.3g}" in section
        assert f"{row.default_s:.3g}" in section and f"<td>{row.layouts}</td>" in section
    assert "run 20261204T000000-looptest" in section and "guidance-loop.csv" in section
    assert "No closed-loop run is in these results" in _closed_loop(groups.iloc[0:0])


def test_bench_block_options_are_checked(capsys, tmp_path):
    code = cli.main(["bench", "--cases", "ecephys-64ch", "--repo", str(tmp_path), "--data-dir", str(tmp_path)])
    assert code == 2 and "--block loop" in capsys.readouterr().err
    code = cli.main(["bench", "--block", "loop", "--source", "dandi", "--repo", str(tmp_path),
                     "--data-dir", str(tmp_path)])  # fmt: skip
    assert code == 2 and "embedded source" in capsys.readouterr().err
    code = cli.main(["bench", "--block", "loop", "--cases", "ecephys-64ch,ophys-nope", "--repo", str(tmp_path),
                     "--data-dir", str(tmp_path / "data")])  # fmt: skip
    assert code == 2 and "ophys-nope" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # refused before anything started
    assert cli.main(["bench", "--block", "study"]) == 2
    assert "invalid choice: 'study'" in capsys.readouterr().err


def test_bench_names_the_loop_cases_it_was_given():
    args = cli.build_parser().parse_args(["bench", "--block", "loop", "--cases", "ecephys-64ch,ophys-256-float32"])
    assert [case.name for case in _loop_cases(args)] == ["ophys-256-float32", "ecephys-64ch"]
    every = cli.build_parser().parse_args(["bench", "--block", "loop"])
    assert [case.name for case in _loop_cases(every)] == list(CASES)


def test_readme_states_the_loops_summary_beside_the_check(measured):
    from nwb_cloud.report.blocks import Sources, recommendations_block

    _, results = measured
    groups = loop_groups(results)
    text = recommendations_block(Sources([], pd.DataFrame(), None, groups))
    assert summary_line(loop_summary(groups)) in text and groups["run"].iloc[0] in text
    assert "closed loop" not in recommendations_block(Sources([], pd.DataFrame(), None, None))
