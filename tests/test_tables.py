"""The one tables module (nwb_cloud.results.tables): every table keyed by its run, no group spanning two runs.

The fixture holds two real runs of one machine (tests/data/two-runs: the quick run fc49ec9f and the full-size
study bb57a4d7); the same properties are then checked on whatever the repository's results/ holds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nwb_cloud.recommend.guidance import layout_ratios
from nwb_cloud.recommend.measurements import load
from nwb_cloud.results import ResultsError, load_cells
from nwb_cloud.results.runs import below_bound
from nwb_cloud.results.tables import (
    RUN,
    headline_cells,
    headline_ratios,
    headline_summary,
    problems,
    rank_methods,
    runs,
)

TWO_RUNS = Path(__file__).parent / "data" / "two-runs"
COMMITTED = Path(__file__).parent.parent / "results"
QUICK, FULL = "fc49ec9f831936e46f59eea8f93443fe4452b06b", "bb57a4d70e2dce2da97fa5921084fe9f442f250c"


@pytest.fixture(scope="module")
def two_runs():
    return load_cells(TWO_RUNS)


def _one(frame: pd.DataFrame, **where) -> pd.Series:
    rows = frame[(frame[list(where)] == pd.Series(where)).all(axis=1)]
    assert len(rows) == 1, where
    return rows.iloc[0]


def test_both_runs_are_present_and_named(two_runs):
    listed = runs(two_runs)
    assert set(zip(listed["size"], listed["commit"])) == {("quick", QUICK), ("full", FULL)}
    assert dict(zip(listed["size"], listed["samples_max"])) == {"quick": 6, "full": 2}


def test_a_ratio_divides_times_of_one_run(two_runs):
    ratios = headline_ratios(two_runs)
    full = _one(ratios, size="full", workload="ecephys_electrode", method="nwb-index", profile="in-region")
    assert full["commit"] == FULL and full["speedup"] == pytest.approx(6.146, abs=1e-3)  # mixed, it read 7.67x
    assert full["baseline_s"] == pytest.approx(0.32807, abs=1e-5) and full["best_layout"] == "workload-friendly-paged"
    quick = _one(ratios, size="quick", workload="ecephys_electrode", method="nwb-index", profile="in-region")
    assert quick["commit"] == QUICK and quick["speedup"] == pytest.approx(4.347, abs=1e-3)
    _assert_ratios_within_runs(ratios, two_runs)


def _assert_ratios_within_runs(ratios: pd.DataFrame, cells: pd.DataFrame) -> None:
    """Both times of every ratio are cells of the ratio's own run (looked up by the full key)."""
    keyed = cells.set_index([*RUN, "suite", "workload", "method", "profile", "layout"])["time_s"]
    measured = ratios.dropna(subset=["speedup"])
    assert len(measured) > 0
    for row in measured.itertuples():
        key = tuple(getattr(row, c) for c in [*RUN, "suite", "workload", "method", "profile"])
        assert keyed[(*key, row.baseline_layout)] == row.baseline_s
        assert keyed[(*key, row.best_layout)] == row.best_s
        assert row.speedup == pytest.approx(row.baseline_s / row.best_s)
        best = cells[(cells[["suite", "workload", "method", "profile"]]
                      == pd.Series(dict(zip(["suite", "workload", "method", "profile"], key[4:], strict=True))))
                     .all(axis=1) & (cells[RUN] == pd.Series(dict(zip(RUN, key[:4], strict=True)))).all(axis=1)
                     & (cells["status"] == "ok")]  # fmt: skip
        assert row.best_s == best["time_s"].min()


def test_each_method_is_ranked_once_per_group(two_runs):
    ranked = rank_methods(two_runs)
    assert list(ranked.columns[: len(RUN)]) == RUN
    _assert_ranked_once(ranked)
    group = ranked[(ranked["workload"] == "ecephys_electrode") & (ranked["profile"] == "in-region")
                   & (ranked["layout"] == "workload-friendly")]  # fmt: skip
    assert set(group["size"]) == {"quick", "full"}
    for size, within in group.groupby("size"):
        ok = within[within["status"] == "ok"]
        assert sorted(ok["rank"]) == sorted(ok["time_over_bound"].rank(method="min")), size


def _assert_ranked_once(ranked: pd.DataFrame) -> None:
    key = [*RUN, "suite", "workload", "profile", "layout", "method"]
    assert not ranked.duplicated(key).any()
    timed = ranked[(ranked["status"] == "ok") & ranked["time_s"].notna()]  # track-only suites have no time
    for _, group in timed.groupby([*RUN, "suite", "workload", "profile", "layout"]):
        assert group["rank"].min() == 1 and group["rank"].max() <= len(group)


def test_summaries_and_problems_keep_the_run(two_runs):
    summary = headline_summary(two_runs)
    assert not summary.duplicated([*RUN, "suite", "workload", "profile"]).any()
    patch = summary[(summary["workload"] == "ophys_patch") & (summary["profile"] == "in-region")]
    assert set(patch["size"]) == {"quick", "full"}
    listed = problems(two_runs)
    assert listed["count"].sum() == (two_runs["status"] != "ok").sum()
    lzf = listed[listed["reason"].str.contains("lzf", case=False)]
    assert set(lzf["size"]) == {"full"}  # the quick run has no LZF layout: its problems are not the study's


def test_the_guidance_page_uses_the_same_table(two_runs):
    measurements = load(TWO_RUNS)
    assert {measurements.run[c] for c in ("size", "commit")} == {"full", FULL}
    shared = headline_ratios(two_runs)
    shown = layout_ratios(measurements)
    assert len(shown) > 0 and set(shown["commit"]) == {FULL}
    for row in shown.itertuples():
        same = _one(shared, commit=row.commit, workload=row.workload, method=row.method, profile=row.profile)
        assert (same["speedup"], same["best_layout"]) == (row.speedup, row.best_layout)


def test_a_frame_without_its_run_is_refused(two_runs):
    with pytest.raises(ResultsError, match="run columns"):
        headline_ratios(two_runs.drop(columns=["size"]))


def test_the_committed_results_mix_no_runs():
    """Whatever results/ holds (every run, not only the latest): the same properties."""
    cells = load_cells(COMMITTED, latest=False)
    _assert_ranked_once(rank_methods(cells))
    _assert_ratios_within_runs(headline_ratios(cells), cells)


@pytest.mark.parametrize(
    ("received", "workload", "says", "never"),
    [
        (0, "open_ophys", "already local", "compactly"),  # a warm cache
        (770_000, "open_ophys", "an index holds them more compactly", "already local"),  # a cold index open
        (400_000, "ophys_patch", "fewer bytes than the bound counts", "compactly"),
    ],
)
def test_a_time_below_its_bound_is_explained_by_what_the_reader_received(received, workload, says, never):
    key = f"{workload}|nwb-index|d|p"
    cell = pd.Series({"workload": workload, "method": "nwb-index", "layout": "d", "profile": "p", "run_info_key": key,
                      "touched_bytes": 1_000_000, "binds": "decode"})  # fmt: skip
    info = {"samples": {key: {"body_bytes_received": received, "requests": 2}}}
    why = below_bound(cell, info)
    assert says in why and never not in why
    assert ("warm local cache" in why) == (received == 0 and workload.startswith("open_"))


def test_a_run_without_the_headline_grid_or_bounds_has_an_empty_or_time_ordered_headline(two_runs):
    quick = two_runs[two_runs["size"] == "quick"]
    loop_like = quick.assign(layout="loop-" + quick["layout"])  # the closed loop's layouts: no headline column
    assert headline_cells(loop_like)[1:] == ([], [])
    unbounded = quick.drop(columns=["time_over_bound"])  # a run without floors orders its methods by time
    _, columns, order = headline_cells(unbounded)
    first = unbounded[(unbounded["workload"] == columns[0][0]) & (unbounded["layout"] == columns[0][1])
                      & (unbounded["profile"] == "in-region") & (unbounded["status"] == "ok")]  # fmt: skip
    assert order[: len(first)] == list(first.sort_values("time_s")["method"])


def test_a_runs_measuring_time_is_asvs_total_duration_not_its_last_rounds_start(two_runs):
    from nwb_cloud.results.runs import run_facts

    for commit, size in ((QUICK, "quick"), (FULL, "full")):
        (path,) = (TWO_RUNS / "vm").glob(f"{commit[:8]}-*.json")
        stored = json.loads(path.read_text())
        column = stored["result_columns"].index("duration")
        seconds = sum(stored["durations"].values()) + sum(
            row[column] for row in stored["results"].values() if len(row) > column and row[column]
        )
        assert seconds > 60
        assert run_facts(two_runs[two_runs["size"] == size], None).minutes_measuring == pytest.approx(seconds / 60)


def test_a_runs_length_counts_from_preparing_only_when_the_run_recorded_it(two_runs):
    from nwb_cloud.results.runs import run_facts

    quick = two_runs[two_runs["size"] == "quick"]
    ended = {"run_id": "20261204T172458-1e7042", "date": "2026-12-04 17:51:10 UTC"}
    after = run_facts(quick, ended)  # the run id is stamped when preparing ends
    assert not after.from_preparing and after.minutes_total == pytest.approx(26 + 12 / 60)
    started = pd.Timestamp("2026-12-04 17:20:10", tz="UTC").timestamp()
    whole = run_facts(quick, {**ended, "prepare_started": started})
    assert whole.from_preparing and whole.minutes_total == pytest.approx(31)


def test_a_runs_profiles_are_read_as_it_applied_them_by_the_report_and_the_fit_alike():
    """One reader of a run's recorded profiles (``info_profile``) serves the cells' estimates and the fit."""
    import dataclasses

    from nwb_cloud.cloud.profiles import PROFILES
    from nwb_cloud.recommend.measurements import _profiles
    from nwb_cloud.results.run_info import info_profile

    applied = dataclasses.asdict(PROFILES["lab"]) | {"rtt_s": 0.5, "a_field_of_another_version": 1}
    info = {"profiles": {"lab": applied, "in-region": {"rtt_s": 0.001}, "cross-region": "garbled"}}
    lab = info_profile(info, "lab")
    assert lab is not None and lab.rtt_s == 0.5 and lab.first_byte_s == PROFILES["lab"].first_byte_s
    assert info_profile(info, "in-region") is None  # its other network figures missing: no estimate
    assert info_profile(info, "cross-region") is None and info_profile(info, "loopback") is None
    fitted = _profiles(info)  # the fit: the run's where it can be read, the table's otherwise
    assert fitted["lab"] == lab and fitted["in-region"] == PROFILES["in-region"]
    assert set(fitted) == set(PROFILES)
