"""The report: asv results -> cells -> rankings, layout ratios, problems -> figures and one HTML page.

Two fixtures: a real asv 0.6.6 results tree from a tiny run (tests/data/asv-tiny), and a synthetic machine
written with asv's own ``Results`` class, whose times are built from known bounds so rankings and ratios have
known answers. Every expected value below follows from the numbers in ``_synthetic_time``.
"""

from __future__ import annotations

import dataclasses
import datetime
import itertools
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from asv.results import Results
from asv.runner import BenchmarkResult

from nwb_cloud import cli
from nwb_cloud.access import METHODS
from nwb_cloud.report import ReportError, build, headline_ratios, load_cells, problems, rank_methods
from nwb_cloud.results import ResultsError
from nwb_cloud.results.asv_results import Record, load_records
from nwb_cloud.results.cells import NOT_RECORDED, cells_frame
from nwb_cloud.results.run_info import reliability_rows, run_info_for

DATA = Path(__file__).parent / "data"
REAL = DATA / "asv-tiny"
TRACKS = DATA / "asv-tiny-tracks"  # a later real run on the same machine, with track_* results and its run info
TRACKS_FILE = "63cc762e-existing-py_work_main_.venv_bin_python.json"
MACHINE = "ec2-synth"
COMMIT = "feedc0de" + "0" * 32
OLD_COMMIT = "0ldc0de0" + "0" * 32
METHODS_SYN = ["remfile", "fsspec", "lindi", "ros3", "obstore"]
LAYOUTS_SYN = ["neuroconv-default", "workload-friendly", "zstd-patch"]
PROFILES_SYN = ["loopback", "in-region", "lab"]
CLASSES = {"OphysPatch": "ophys", "EcephysElectrode": "ecephys"}
# bound (s) per layout under in-region; lab is 4x; loopback has no bound (not measured)
BOUND = {"neuroconv-default": 0.5, "workload-friendly": 0.05, "zstd-patch": 0.04}
SLOWDOWN = {"remfile": 2.0, "fsspec": 3.0, "lindi": 5.0, "obstore": 1.5}
SAMPLE_FACTORS = [0.9, 0.95, 1.0, 1.1, 1.3]  # median 1.0, q25 0.95, q75 1.1
WARM_CELL = ("EcephysElectrode", "remfile", "neuroconv-default", "lab")  # see test_a_read_that_received_...


def _bound(layout: str, profile: str) -> float:
    return math.nan if profile == "loopback" else BOUND[layout] * (4.0 if profile == "lab" else 1.0)


def _synthetic_time(cls: str, method: str, layout: str, profile: str) -> float | None:
    """The median time of a cell; None = failed, NaN = skipped (asv n/a)."""
    if method == "ros3":
        return math.nan  # unavailable (NotImplementedError in setup)
    if method == "obstore" and profile != "in-region":
        return math.nan  # the quick grid of the run info measures obstore under in-region only
    if method == "lindi" and layout == "zstd-patch":
        return None  # lindi 0.4.6 cannot read the plain Zstd filter
    if method == "obstore" and CLASSES[cls] == "ophys" and layout == "workload-friendly":
        return None  # a preparation failure (run info)
    bound = 0.01 * (1 + LAYOUTS_SYN.index(layout)) if profile == "loopback" else _bound(layout, profile)
    return bound * SLOWDOWN[method]


def _track(name: str, cls: str, method: str, layout: str, profile: str):
    time = _synthetic_time(cls, method, layout, profile)
    if time is None:
        return None
    if profile == "loopback" or (isinstance(time, float) and math.isnan(time)):
        return math.nan  # no proxy on loopback: not measured
    bound = _bound(layout, profile)
    if name == "bytes_received" and (cls, method, layout, profile) == WARM_CELL:
        return 0.5e6  # less than the 2 MB of chunks it touches: the open had fetched the rest
    return {
        "requests": 10 * SLOWDOWN[method],
        "bytes_received": 4e6 * SLOWDOWN[method],
        "peak_connections": 1.0,
        "bound_s": bound,
        "bound_decode_s": bound,
        "bound_network_s": bound / 2,
        "selection_bytes": 1e6,
        "touched_bytes": 2e6,
        "time_over_bound": 1.01 * time / bound,  # the sample log's median: close to, not exactly, asv's
    }[name]


def _write_synthetic(results_dir: Path, commit: str, started: datetime.datetime, scale: float = 1.0) -> None:
    """One asv results file of the synthetic machine, written by asv itself (Results.add_result + save)."""
    machine_info = {"machine": MACHINE, "arch": "x86_64", "cpu": "Intel Xeon (synthetic)", "num_cpu": "2",
                    "os": "Linux", "ram": "8000000000"}  # fmt: skip
    (results_dir / MACHINE).mkdir(parents=True, exist_ok=True)
    (results_dir / MACHINE / "machine.json").write_text(json.dumps({**machine_info, "version": 1}))
    results = Results(machine_info, {}, commit, 1_795_000_000_000, "3.11", "existing-py", {})
    params = [[repr(v) for v in axis] for axis in (METHODS_SYN, LAYOUTS_SYN, PROFILES_SYN)]
    combos = list(itertools.product(METHODS_SYN, LAYOUTS_SYN, PROFILES_SYN))
    for cls in CLASSES:
        times = [_synthetic_time(cls, *combo) for combo in combos]
        samples = [None if t is None or math.isnan(t) else [t * scale * f for f in SAMPLE_FACTORS] for t in times]
        time_result = BenchmarkResult(
            result=[t if t is None or math.isnan(t) else True for t in times],
            samples=samples,
            number=[None if s is None else 1 for s in samples],
            errcode=1,
            stderr="",
            profile=None,
        )
        benchmark = {"name": f"streaming.{cls}.time_workload", "version": "v1", "params": params}
        results.add_result(benchmark, time_result, started_at=started, duration=10.0, record_samples=True)
        tracks = ["requests", "bytes_received", "bound_s", "bound_decode_s", "bound_network_s", "selection_bytes",
                  "touched_bytes", "time_over_bound"]  # fmt: skip
        tracks += ["peak_connections"] if cls == "OphysPatch" else []  # an older class: no such track
        for name in tracks:
            values = [_track(name, cls, *combo) for combo in combos]
            track_result = BenchmarkResult(values, [None] * len(values), [None] * len(values), 0, "", None)
            benchmark = {"name": f"streaming.{cls}.track_{name}", "version": "v1", "params": params}
            results.add_result(benchmark, track_result, started_at=started, duration=1.0)
    results.save(str(results_dir))


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """The real tiny run (machine vm) plus the synthetic machine: an old run and the latest run."""
    root = tmp_path_factory.mktemp("report") / "results"
    shutil.copytree(REAL, root)
    shutil.copytree(TRACKS, root, dirs_exist_ok=True)
    _write_synthetic(root, OLD_COMMIT, datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC), scale=100.0)
    _write_synthetic(root, COMMIT, datetime.datetime(2026, 11, 20, 10, 30, tzinfo=datetime.UTC))
    shutil.copy(DATA / "report" / "run-info-synth.json", root / "run-info" / "20261120T101500-synth.json")
    (root / "reliability").mkdir()
    shutil.copy(DATA / "report" / "reliability-synth.json", root / "reliability" / "synth.json")
    return root


@pytest.fixture(autouse=True)
def ros3_unavailable(monkeypatch):
    """The real run's ROS3 cells were n/a because this h5py lacks ROS3: make that true whatever h5py is here."""
    reason = "h5py built without the ROS3 driver (test)"
    monkeypatch.setitem(METHODS, "ros3", dataclasses.replace(METHODS["ros3"], unavailable=lambda: reason))
    return reason


@pytest.fixture(scope="module")
def cells(results_dir):
    return load_cells(results_dir)


@pytest.fixture(scope="module")
def report(results_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    (out / "html").mkdir()
    (out / "html" / "index.html").write_text("asv pages")
    return build(results_dir, out)


def _cell(cells, **where):
    rows = cells
    for key, value in where.items():
        rows = rows[rows[key] == value]
    assert len(rows) == 1, where
    return rows.iloc[0]


# -- the real asv file -------------------------------------------------------------------------------------------
def test_real_results_become_one_row_per_cell_with_asv_medians_and_sample_iqr():
    raw = json.loads((REAL / "vm" / "3c275eb7-existing-py_work_main_.venv_bin_python.json").read_text())
    values, params, *_ = raw["results"]["streaming.OphysPatch.time_workload"]
    samples = raw["results"]["streaming.OphysPatch.time_workload"][-1]
    frame = load_cells(REAL)
    assert len(frame) == len(values) == 28
    assert set(frame["workload"]) == {"ophys_patch"} and set(frame["profile"]) == {"loopback"}
    for index, (method, layout, _profile) in enumerate(itertools.product(*params)):
        row = _cell(frame, method=method.strip("'"), layout=layout.strip("'"))
        if values[index] is None:
            assert row["status"] == "failed"
        elif math.isnan(values[index]):
            assert row["status"] == "unavailable"
        else:
            assert row["status"] == "ok" and row["time_s"] == values[index]
            q25, q75 = np.percentile(samples[index], [25, 75])
            assert row["time_iqr_s"] == pytest.approx(q75 - q25) and row["n_samples"] == len(samples[index])
            assert row["samples"] == samples[index]


def test_real_failed_and_unavailable_cells_keep_their_reason(ros3_unavailable):
    frame = load_cells(REAL)
    obstore = frame[frame["method"] == "obstore"]
    assert list(obstore["status"]) == ["failed", "failed"] and set(obstore["reason"]) == {NOT_RECORDED}
    ros3 = frame[frame["method"] == "ros3"]
    assert list(ros3["status"]) == ["unavailable"] * 2
    assert set(ros3["reason"]) == {f"unavailable: {ros3_unavailable}"}
    assert frame[["requests", "bound_s", "amp_touched"]].isna().all().all()  # no track benchmarks: not measured


def test_real_run_with_tracks_and_run_info():
    raw = json.loads((TRACKS / "vm" / TRACKS_FILE).read_text())["results"]
    params = raw["streaming.OphysPatch.time_workload"][1]
    frame = load_cells(TRACKS)
    assert len(frame) == len(list(itertools.product(*params))) == 60
    combos = [tuple(v.strip("'") for v in combo) for combo in itertools.product(*params)]
    for combo, value in zip(combos, raw["streaming.OphysPatch.track_requests"][0], strict=True):
        row = _cell(frame, method=combo[0], layout=combo[1], profile=combo[2])
        assert math.isnan(row["requests"]) if value is None or math.isnan(value) else row["requests"] == value
    # No track_bound_s in this run: the bound comes from the run info's floors, matched by workload, profile and
    # the layout named in the asset key; time / bound is asv's median over it (the track's figure is close).
    info = json.loads(next((TRACKS / "run-info").glob("*.json")).read_text())
    floor = next(f for f in info["floors"] if f["workload"] == "ophys_patch" and f["profile"] == "in-region"
                 and "-workload-friendly-" in f["asset"])  # fmt: skip
    row = _cell(frame, method="remfile", layout="workload-friendly", profile="in-region")
    assert row["bound_s"] == floor["seconds"] and row["binds"] == floor["binding"]
    assert row["touched_bytes"] == floor["compressed_bytes"] and row["selection_bytes"] == floor["selection_bytes"]
    assert row["local_s"] == floor["local_s"]
    assert row["time_over_local"] == pytest.approx(row["time_s"] / floor["local_s"])
    assert row["time_over_bound"] == pytest.approx(row["time_s"] / floor["seconds"])
    track = raw["streaming.OphysPatch.track_time_over_bound"][0][combos.index(("remfile", "workload-friendly",
                                                                                  "in-region"))]  # fmt: skip
    assert row["time_over_bound"] == pytest.approx(track, rel=0.2)
    excluded = _cell(frame, method="lindi", layout="neuroconv-default", profile="loopback")
    assert excluded["status"] == "excluded"
    assert "only fsspec, remfile, kerchunk under the other profiles" in excluded["reason"]
    ros3 = frame[frame["method"] == "ros3"]
    assert set(ros3["status"]) == {"unavailable"}
    assert set(ros3["reason"]) == {"unavailable on vm: this h5py (3.16.0, HDF5 2.0.0) was built without the ROS3 "
                                   "driver (the PyPI wheel never has it; conda-forge's h5py does)"}  # fmt: skip
    times = raw["streaming.OphysPatch.time_workload"][0]
    # tiny files: the open of most readers fetched the whole file, so their reads are warm (timed, not cold)
    timed = frame[frame["status"].isin(["ok", "warm"])]
    assert len(timed) == sum(t is not None and not math.isnan(t) for t in times)
    warm = timed["status"] == "warm"
    least = np.fmin(timed["touched_bytes"], timed["selection_bytes"])
    assert warm.any() and (timed["bytes_received"][warm] < least[warm]).all()
    assert not (timed["bytes_received"][~warm] < 0.98 * least[~warm]).any()


def test_page_shows_a_warm_read_with_its_reason_not_as_a_time_below_the_bound(report):
    text = report.read_text()
    # the tiny run's fsspec reads came out below the bound: their open had fetched the whole tiny file
    assert "below the bound (time / bound &lt; 1×): fsspec" not in text
    assert "warm, not a cold read: it received 0.00 MB of the" in text
    assert "1.5" in text  # a median of 1.5 peak connections is not rounded away


# -- the synthetic machine ---------------------------------------------------------------------------------------
def test_latest_run_per_machine_and_track_values(cells):
    synth = cells[cells["machine"] == MACHINE]
    assert set(synth["commit"]) == {COMMIT}  # the older run (100x slower) is not mixed in
    assert len(synth) == len(CLASSES) * len(METHODS_SYN) * len(LAYOUTS_SYN) * len(PROFILES_SYN)
    assert set(cells["machine"]) == {"vm", MACHINE}
    assert set(cells[cells["machine"] == "vm"]["commit"]) == {"63cc762e2487b6b2a1e14139370a3f171113a882"}
    row = _cell(synth, workload="ophys_patch", method="fsspec", layout="workload-friendly", profile="lab")
    assert row["time_s"] == pytest.approx(0.05 * 4 * 3.0)
    assert row["time_iqr_s"] == pytest.approx(0.6 * (1.1 - 0.95))
    assert row["bound_s"] == pytest.approx(0.2)
    assert row["time_over_bound"] == pytest.approx(3.0)  # asv's median / bound, not the track's 3.03
    assert row["requests"] == 30 and row["peak_connections"] == 1
    assert row["amp_selection"] == pytest.approx(12.0) and row["amp_touched"] == pytest.approx(6.0)
    assert row["binds"] == "decode"


def test_missing_track_values_are_nan_not_zero(cells):
    synth = cells[(cells["machine"] == MACHINE) & (cells["status"] == "ok")]
    loopback = synth[synth["profile"] == "loopback"]
    assert loopback[["requests", "bytes_received", "bound_s", "time_over_bound", "amp_touched"]].isna().all().all()
    ecephys = synth[synth["workload"] == "ecephys_electrode"]
    assert ecephys["peak_connections"].isna().all()  # no track_peak_connections for this class
    assert ecephys[ecephys["profile"] != "loopback"]["requests"].notna().all()


def test_failed_and_unavailable_reasons_come_from_the_run_info(cells):
    synth = cells[cells["machine"] == MACHINE]
    ros3 = synth[synth["method"] == "ros3"]
    assert set(ros3["status"]) == {"unavailable"}
    assert set(ros3["reason"]) == {f"unavailable on {MACHINE}: h5py on ec2-synth was built without the ROS3 driver"}
    prepared = _cell(synth, workload="ophys_patch", method="obstore", layout="workload-friendly", profile="in-region")
    assert prepared["status"] == "failed" and "200 instead of 206" in prepared["reason"]
    assert prepared["reason"].startswith("could not be prepared for ophys/workload-friendly")
    ecephys_obstore = synth[(synth["workload"] == "ecephys_electrode") & (synth["method"] == "obstore")]
    assert set(ecephys_obstore[ecephys_obstore["profile"] == "in-region"]["status"]) == {"ok"}  # not the ophys asset
    excluded = ecephys_obstore[ecephys_obstore["profile"] != "in-region"]
    assert set(excluded["status"]) == {"excluded"}
    assert excluded["reason"].str.startswith("not in this run's grid: a quick run measures every method under "
                                             "in-region and only remfile, fsspec, lindi").all()  # fmt: skip
    wrong = _cell(synth, workload="ecephys_electrode", method="lindi", layout="zstd-patch", profile="lab")
    assert wrong["status"] == "failed" and wrong["reason"] == "WrongRead: 12 samples differ from the source"
    other = _cell(synth, workload="ecephys_electrode", method="lindi", layout="zstd-patch", profile="in-region")
    assert other["reason"] == NOT_RECORDED


def test_a_read_that_received_less_than_its_chunks_is_warm_kept_and_ranked_nowhere(cells):
    synth = cells[cells["machine"] == MACHINE]
    where = dict(workload="ecephys_electrode", method="remfile", layout="neuroconv-default", profile="lab")
    warm = _cell(synth, **where)
    assert warm["status"] == "warm" and warm["time_s"] > 0  # its time is kept, for the record
    assert warm["reason"].startswith("warm, not a cold read: it received 0.50 MB of the 1.00 MB a cold read of its "
                                     "selection receives at least")  # fmt: skip
    cold = synth[(synth["status"] == "ok") & synth["bytes_received"].notna()]
    assert len(cold) and (cold["bytes_received"] >= cold["selection_bytes"]).all()  # every other read is cold
    ranked = rank_methods(synth).set_index(["workload", "method", "layout", "profile"])
    assert math.isnan(ranked.loc[tuple(where.values()), "rank"])
    listed = problems(cells)
    assert listed[(listed["machine"] == MACHINE) & (listed["status"] == "warm")]["count"].sum() == 1


def test_methods_ranked_by_time_over_bound_failed_last(cells):
    ranked = rank_methods(cells[cells["machine"] == MACHINE])
    group = ranked[(ranked["workload"] == "ophys_patch") & (ranked["profile"] == "in-region")
                   & (ranked["layout"] == "neuroconv-default")]  # fmt: skip
    assert list(group["method"]) == ["obstore", "remfile", "fsspec", "lindi", "ros3"]
    assert list(group["rank"].iloc[:4]) == [1, 2, 3, 4] and math.isnan(group["rank"].iloc[4])
    assert set(group["ranked_by"]) == {"time_over_bound"}
    group = ranked[(ranked["workload"] == "ophys_patch") & (ranked["profile"] == "in-region")
                   & (ranked["layout"] == "workload-friendly")]  # fmt: skip
    assert list(group["method"]) == ["remfile", "fsspec", "lindi", "obstore", "ros3"]  # failed before unavailable
    assert list(group["status"]) == ["ok", "ok", "ok", "failed", "unavailable"]
    loopback = ranked[(ranked["workload"] == "ophys_patch") & (ranked["profile"] == "loopback")
                      & (ranked["layout"] == "zstd-patch")]  # fmt: skip
    assert set(loopback["ranked_by"]) == {"time_s"}  # no bound measured on loopback
    assert list(loopback["method"]) == ["remfile", "fsspec", "lindi", "ros3", "obstore"]
    assert list(loopback["status"]) == ["ok", "ok", "failed", "unavailable", "excluded"]


def test_headline_ratios_best_layout_vs_neuroconv_default(cells):
    ratios = headline_ratios(cells[cells["machine"] == MACHINE])
    assert len(ratios) == len(CLASSES) * len(METHODS_SYN) * len(PROFILES_SYN)
    remfile = ratios[(ratios["workload"] == "ophys_patch") & (ratios["method"] == "remfile")
                     & (ratios["profile"] == "in-region")].iloc[0]  # fmt: skip
    assert remfile["best_layout"] == "zstd-patch"
    assert remfile["speedup"] == pytest.approx(0.5 / 0.04)
    lindi = ratios[(ratios["workload"] == "ecephys_electrode") & (ratios["method"] == "lindi")
                   & (ratios["profile"] == "lab")].iloc[0]  # fmt: skip
    assert lindi["best_layout"] == "workload-friendly" and lindi["speedup"] == pytest.approx(10.0)
    assert "zstd-patch not compared: failed: WrongRead" in lindi["note"]
    ros3 = ratios[ratios["method"] == "ros3"]
    assert ros3["speedup"].isna().all() and ros3["note"].str.contains("unavailable").all()


def test_problems_list_every_cell_without_a_time(cells):
    listed = problems(cells)
    assert listed["count"].sum() == (cells["status"] != "ok").sum()
    lindi = listed[(listed["machine"] == MACHINE) & (listed["method"] == "lindi")]
    assert set(lindi["status"]) == {"failed"} and lindi["count"].sum() == len(CLASSES) * len(PROFILES_SYN)
    assert "ecephys_electrode · zstd-patch · lab" in " ".join(lindi["cells"])


def test_cells_left_out_of_the_grid_are_counted_by_reason():
    """Each reason the grid leaves cells out is shown with its own count, never one reason for them all."""
    import pandas as pd

    from nwb_cloud.report.page import _not_in_grid

    excluded = pd.DataFrame({
        "reason": ["not in this run's grid: the paged block measures fsspec", "not in this run's grid: zarr only",
                   "not in this run's grid: the paged block measures fsspec"],
        "count": [5, 2, 4],
    })  # fmt: skip
    text = _not_in_grid(excluded)
    assert "11 cells, for 2 reasons" in text
    assert text.index("the paged block measures fsspec</td>") < text.index("zarr only</td>")  # most cells first
    assert ">9<" in text and ">2<" in text and "not in this run's grid:" not in text
    assert _not_in_grid(excluded.iloc[:0]) == ""


# -- the page ----------------------------------------------------------------------------------------------------
def test_page_has_the_tables_reasons_and_alerts(report, cells):
    text = report.read_text()
    assert report.name == "index.html"
    for expected in (
        "How to read this",
        "size quick, source embedded",  # from the run info
        "ophys_patch · in-region",
        "ecephys_electrode · lab",
        "Layouts compared",
        "Best layout vs neuroconv-default",
        "not measured",
        f"unavailable on {MACHINE}: h5py on ec2-synth was built without the ROS3 driver",
        "could not be prepared for ophys/workload-friendly",
        "WrongRead: 12 samples differ from the source",
        "Reliability under S3 faults",
        "aiohttp.ClientPayloadError",
        "no fault reached it",
        '<a href="html/index.html">asv pages</a>',
        "decode_threads",  # other run details
        "12.5×",  # remfile on ophys in-region: 0.5 s / 0.04 s
    ):
        assert expected in text, expected
    assert "do-not-show-this-credential" not in text
    top = text[: text.index("<nav>")]  # one summary line: counts and links, no details
    assert top.count('class="summary"') == 1 and top.count('class="alert"') == 0
    assert "WRONG DATA" in top and "fsspec" in top and "hang" in top and "crash" in top and "failed cell(s)" in top
    assert "still running" not in top and "exit code -11" not in top
    reliability = text[text.index('<section id="reliability">') :]  # the details where they belong
    assert "still running" in reliability and "exit code -11" in reliability and 'class="alert"' in reliability
    assert text.index('-headline">') < text.index('-how">')  # the report opens on its figures


def test_page_figures_and_tables_are_written(report):
    out = report.parent
    text = report.read_text()
    sources = [part.split('"')[0] for part in text.split('<img src="')[1:]]
    assert len(sources) == (2 * 2 + 1) + (1 * 2 + 1)  # time and time/bound per workload, a headline per machine
    for src in sources:
        assert (out / src).stat().st_size > 1000 and (out / src).with_suffix(".png").stat().st_size > 1000
    assert (out / "tables" / "cells.csv").read_text().count("\n") == 60 + 90 + 1  # each machine's latest run
    assert "speedup" in (out / "tables" / "headline_ratios.csv").read_text().splitlines()[0]
    assert "1 earlier results file(s)" in text  # vm's first run, replaced by its later one
    # the folder holds what the page shows: figures of a replaced run are removed, the guidance page's kept
    on_disk = {path.stem for path in (out / "figures").glob("*.svg") if not path.name.startswith("guidance-")}
    assert on_disk == {Path(src).stem for src in sources}


def test_a_new_build_removes_the_figures_it_no_longer_draws(tmp_path):
    figures = tmp_path / "out" / "figures"
    figures.mkdir(parents=True)
    stale = [figures / "vm--loop-full-ophys_patch-time.svg", figures / "vm--loop-full-ophys_patch-time.png",
             figures / "vm--quick-index_build[tool=lindi, asset=ecephys" / "neuroconv-default]-time.svg"]  # fmt: skip
    kept = figures / "guidance-fit.png"
    stale[2].parent.mkdir()
    for path in [*stale, kept]:
        path.write_text("x")
    assert cli.main(["report", "--results", str(REAL), "--out", str(tmp_path / "out")]) == 0
    assert not any(path.exists() for path in stale) and kept.exists() and not stale[2].parent.exists()


# -- input checks ---------------------------------------------------------------------------------------------------
def test_cli_report_writes_the_page(tmp_path, capsys):
    assert cli.main(["report", "--results", str(REAL), "--out", str(tmp_path / "out")]) == 0
    text = (tmp_path / "out" / "index.html").read_text()
    assert "index.html" in capsys.readouterr().out
    assert "time / bound: not measured" in text and "not measured under this profile: time / bound" in text
    assert "none found in results/run-info/" in text
    assert not (tmp_path / "out" / "figures" / "vm-ophys_patch-bound.svg").exists()  # no bound in that run


def test_cli_report_without_results_is_one_line_error(tmp_path, capsys):
    assert cli.main(["report", "--results", str(tmp_path / "nothing"), "--out", str(tmp_path)]) == 2
    assert "no asv results folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    with pytest.raises(ReportError, match="no asv results in"):
        build(tmp_path / "empty", tmp_path / "out")
    assert not (tmp_path / "out" / "index.html").exists()


def test_corrupt_results_file_is_named(tmp_path):
    shutil.copytree(REAL, tmp_path / "results")
    bad = tmp_path / "results" / "vm" / "deadbeef-existing-py.json"
    bad.write_text('{"commit_hash": "deadbeef"')
    with pytest.raises(ResultsError, match="deadbeef-existing-py.json"):
        load_records(tmp_path / "results")


def test_reliability_table_shapes_are_normalised():
    nested = {"remfile": {"stall": {"outcome": "hang", "error": "timed out"}, "reset": "exact"}}
    rows = reliability_rows(nested, source="nested.json")
    assert {(r["method"], r["fault"], r["outcome"]) for r in rows} == {
        ("remfile", "stall", "hang"),
        ("remfile", "reset", "exact"),
    }
    assert (
        reliability_rows([{"method": "fsspec", "scenario": "truncate", "outcome": "wrong-data"}])[0]["outcome"]
        == "WRONG DATA"
    )
    with pytest.raises(ResultsError, match="without method/outcome"):
        reliability_rows([{"fault": "stall"}], source="bad.json")


def test_cells_frame_of_nothing_is_empty():
    assert cells_frame([]).empty


def _record(measure: str, value, kind: str = "track") -> Record:
    return Record(machine="m", commit="c" * 40, env="e", commit_date=None, started_at=1.0, benchmark=f"s.A.{measure}",
                  suite="s", workload_class="OphysPatch", measure=measure, kind=kind, unit="",
                  params={"method": "remfile", "layout": "neuroconv-default", "profile": "lab"}, value=value,
                  outcome="measured", samples=[2.0, 2.0])  # fmt: skip


def test_time_over_bound_track_is_used_when_the_bound_is_missing():
    frame = cells_frame([_record("time_workload", 2.0, kind="time"), _record("track_time_over_bound", 4.0)])
    row = frame.iloc[0]
    assert math.isnan(row["bound_s"]) and row["time_over_bound"] == 4.0
    assert math.isnan(row["amp_selection"]) and row["binds"] is None


def test_a_reads_slow_start_and_serving_cpu_are_estimated_from_its_counts_and_its_runs_records(tmp_path):
    from nwb_cloud.analysis import cost
    from nwb_cloud.cloud.calibrate import ServingCost
    from nwb_cloud.cloud.profiles import PROFILES

    records = [_record("time_workload", 2.0, kind="time"), _record("track_requests", 9),
               _record("track_bytes_received", 720_000), _record("track_peak_connections", 16)]  # fmt: skip
    serving = dict(server_cpu_s_per_request=8e-4, server_cpu_s_per_mb=2e-3, proxy_cpu_s_per_request=2e-4,
                   proxy_cpu_s_per_mb=6e-4, requests=400, mb=134.0, cores=2, shares_reader_cores=True)  # fmt: skip
    lab = {**PROFILES["lab"].to_dict(), "retired_field": 1}  # a run of another version recorded more
    (tmp_path / "info.json").write_text("{}")
    info = {"commit": "c" * 8, "machine": "m", "profiles": {"lab": lab}, "serving_cost": serving,
            "_path": str(tmp_path / "info.json")}  # fmt: skip
    row = cells_frame(records, [info]).iloc[0]
    assert row["cold_read_s"] == pytest.approx(cost.cold_read_s(PROFILES["lab"], 9, 720_000, 16))
    assert row["cold_read_s"] > PROFILES["lab"].rtt_s * 3  # 80 kB from a 14.6 kB window: three round trips
    assert row["serving_cpu_s"] == pytest.approx(ServingCost(**serving).cpu_s(9, 720_000))
    pinned = {**info, "serving_cost": {**serving, "shares_reader_cores": False}, "profiles": {}}
    apart = cells_frame(records, [pinned]).iloc[0]  # served on other cores; no profile recorded: no estimate
    assert math.isnan(apart["serving_cpu_s"]) and math.isnan(apart["cold_read_s"])


def test_run_info_matched_by_commit_then_by_machine(tmp_path):
    paths = []
    for name in ("a", "b", "c"):
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text("{}")
    infos = [
        {"run_id": "20261101T000000-a", "commit": "abc123", "machine": {"host": "m"}, "_path": str(paths[0])},
        {"run_id": "20261102T000000-b", "machine": {"host": "m"}, "_path": str(paths[1])},
        {"run_id": "20261103T000000-c", "machine": "other", "_path": str(paths[2])},
    ]
    assert run_info_for(infos, "m", "abc123" + "0" * 34)["run_id"] == "20261101T000000-a"
    matched = run_info_for(infos, "m", "fff")
    assert matched["run_id"] == "20261102T000000-b" and matched["_matched"] == "machine"
    assert run_info_for(infos, "nowhere", "fff") is None


def test_a_run_of_another_size_is_shown_beside_the_latest_not_instead(results_dir, tmp_path):
    """The full-size study and a later quick run are different experiments: the page keeps both."""
    root = tmp_path / "results"
    shutil.copytree(results_dir, root)
    study = "5tudy000" + "0" * 32
    _write_synthetic(root, study, datetime.datetime(2026, 11, 10, tzinfo=datetime.UTC), scale=2.0)
    info = json.loads((DATA / "report" / "run-info-synth.json").read_text())
    info.update(run_id="20261110T000000-study", commit=study[:8], size="full")
    (root / "run-info" / "20261110T000000-study.json").write_text(json.dumps(info))
    cells = load_cells(root)
    synth = cells[cells["machine"] == MACHINE]
    assert set(zip(synth["size"], synth["commit"])) == {("quick", COMMIT), ("full", study)}
    assert OLD_COMMIT not in set(cells["commit"])  # an older run without run info still gives way
    page = build(root, tmp_path / "reports").read_text()
    assert f"{MACHINE}, full" in page and f"{MACHINE}, quick" in page


def test_a_suite_of_tracks_only_is_measured_and_gets_its_own_table(tmp_path):
    """Conversion throughput and index builds record values, not times: measured cells, not 'not in the grid'."""
    from nwb_cloud.report import page

    conversion = dataclasses.replace(
        _record("track_mb_per_s", 31.4), suite="conversion", benchmark="conversion.ConversionThroughput.track_mb_per_s",
        workload_class="ConversionThroughput", params={"interface": "TiffImagingInterface"},
    )  # fmt: skip
    cells = cells_frame([conversion])
    assert list(cells["status"]) == ["ok"] and cells["mb_per_s"].iloc[0] == pytest.approx(31.4)
    run = page.Run(machine="m", machine_info={}, commit="c" * 40, started=1.0, cells=cells)
    assert run.workloads() == []  # no read-grid section for it
    html = page.tracks_section(run)
    assert "conversion_throughput[interface=TiffImagingInterface]" in html and "31.4" in html
    assert "cold samples per cell</th><td>none" in page.how_to_read(run).replace("\n", "")  # a track is no sample


def test_reader_goals_judge_nwb_index_cells_and_show_the_figures_behind_a_miss():
    import re

    import pandas as pd

    from nwb_cloud.report.page import Run, reader_goals

    base = dict(method="nwb-index", profile="in-region", status="ok", bound_s=0.02, binds="network", requests=2,
                bytes_received=1e6, first_use_s=np.nan, first_use_local_s=np.nan,
                first_use_over_local=np.nan)  # fmt: skip
    cells = pd.DataFrame([
        {**base, "workload": "ophys_patch", "layout": "workload-friendly", "time_s": 0.025, "time_over_bound": 1.25,
         "time_over_local": 4.0, "local_s": 0.006, "cpu_over_decode": 1.05, "cpu_s": 0.0021, "decode_cpu_s": 0.002,
         "first_use_s": 1.3, "first_use_local_s": 1.2, "first_use_over_local": 1.3 / 1.2},
        {**base, "workload": "ecephys_electrode", "layout": "neuroconv-default", "time_s": 0.14,
         "time_over_bound": 1.6, "time_over_local": 0.66, "local_s": 0.212, "cpu_over_decode": 1.6, "cpu_s": 0.144,
         "decode_cpu_s": 0.09, "process_s": 0.005},
        {**base, "workload": "ophys_patch", "layout": "neuroconv-default", "status": "warm", "time_s": 0.001,
         "time_over_local": 0.001, "local_s": 1.0, "cpu_over_decode": 0.1, "cpu_s": 0.1, "decode_cpu_s": 1.0},
        {**base, "workload": "ophys_patch", "layout": "workload-friendly", "method": "remfile", "time_s": 9.0,
         "time_over_bound": 99.0, "time_over_local": 9.0, "local_s": 1.0, "cpu_over_decode": 9.0, "cpu_s": 9.0,
         "decode_cpu_s": 1.0},
    ])  # fmt: skip
    text = reader_goals(Run("vm", {}, "c0ffee", None, cells))
    rows = re.findall(r"<tr>(.*?)</tr>", text, re.S)[1:]
    assert len(rows) == 2  # nwb-index's measured cells only: not a warm cell, not another method
    friendly = next(r for r in rows if "ophys_patch · workload-friendly · in-region" in r)
    assert ">met<" in friendly and "time / local" not in friendly  # a small read is judged against the bound
    default = next(r for r in rows if "ecephys_electrode · default · in-region" in r)
    assert "missed: time / local h5py 0.66× (local h5py read 212 ms; CPU: client 144 ms); CPU / decode" in default
    assert ("CPU / decode 1.6× (client CPU 144 ms, decode CPU 90 ms, the workload processing 5 ms: 49 ms beyond "
            "them, for 2 requests)") in default  # fmt: skip
    assert "time / bound" not in default  # a decode-bound read is judged against the local read
    # under a profile whose own bound is above the goal, the goal is out of reach, not missed
    lab = cells.iloc[[1]].assign(profile="lab", bound_s=0.3, time_s=0.5, time_over_local=0.5 / 0.212,
                                 cpu_over_decode=1.0)  # fmt: skip
    row = re.findall(r"<tr>(.*?)</tr>", reader_goals(Run("vm", {}, "c0ffee", None, lab)), re.S)[1]
    assert ">met; time / local h5py out of the network&#x27;s reach: the bound, 300 ms, is 1.42× the local" in row
    assert 'class="failed"' not in row


def test_an_open_is_judged_against_the_local_open_as_a_new_scripts_first_and_older_runs_against_the_warm_one():
    import re

    import pandas as pd

    from nwb_cloud.report.page import Run, reader_goals

    opened = dict(method="nwb-index", profile="in-region", status="ok", workload="open_ophys",
                  layout="neuroconv-default", time_s=0.075, bound_s=0.025, binds="decode", requests=2,
                  bytes_received=2e5, local_s=0.025, time_over_local=3.0, local_fresh_s=0.1,
                  time_over_local_fresh=0.75, cpu_s=0.05, first_use_over_local=np.nan)  # fmt: skip
    row = re.findall(r"<tr>(.*?)</tr>", reader_goals(Run("vm", {}, "c0ffee", None, pd.DataFrame([opened]))), re.S)[1]
    assert "time / local first open 0.75× (goal ≤ 1×), 3× the local open warm (the floor&#x27;s)" in row
    assert ">met<" in row and "time / local h5py" not in row
    slower = {**opened, "time_s": 0.15, "time_over_local": 6.0, "time_over_local_fresh": 1.5, "bound_network_s": 0.023}
    row = re.findall(r"<tr>(.*?)</tr>", reader_goals(Run("vm", {}, "c0ffee", None, pd.DataFrame([slower]))), re.S)[1]
    assert ("missed: time / local first open 1.5× (local pynwb open 100 ms as a new script&#x27;s first (25 ms "
            "warm); client CPU 50 ms; 2 requests, 200 kB received, one request of the file&#x27;s metadata on a new "
            "connection 23 ms at least)") in row  # fmt: skip
    older = {**opened, "local_fresh_s": np.nan, "time_over_local_fresh": np.nan}  # a run before the fresh figure
    row = re.findall(r"<tr>(.*?)</tr>", reader_goals(Run("vm", {}, "c0ffee", None, pd.DataFrame([older]))), re.S)[1]
    assert "missed: time / local h5py 3× (local pynwb open 25 ms;" in row and "first open" not in row


def test_a_missed_goal_says_where_the_time_went_slow_start_and_the_shared_cores():
    import re

    import pandas as pd

    from nwb_cloud.report.page import Run, reader_goals

    cell = dict(method="nwb-index", status="ok", workload="ophys_patch", layout="workload-friendly",
                profile="cross-region", time_s=0.24, bound_s=0.1, binds="network", time_over_bound=2.4, requests=8,
                bytes_received=800_000, peak_connections=16, cold_read_s=0.216, cpu_s=0.014, serving_cpu_s=0.01,
                decode_cpu_s=0.013, cpu_over_decode=14 / 13, first_use_over_local=np.nan,
                peak_growth_bytes=4e6, selection_bytes=0.4e6, touched_bytes=0.8e6, chunk_bytes=0.8e6)  # fmt: skip
    text = reader_goals(Run("vm", {}, "c0ffee", None, pd.DataFrame([cell]), info={"cores": 2}))
    row = re.findall(r"<tr>(.*?)</tr>", text, re.S)[1]
    assert ("slow start: its 8 requests of ~100 kB on 16 connections take 216 ms at least when every window "
            "starts over (0.9× of the time), 230 ms with the client CPU after it (0.958×)") in row  # fmt: skip
    assert "CPU: client 14 ms, embedded server and proxy 10 ms, i.e. all 2 cores busy for 12 ms" in row
    # where the run measured the server's and proxy's CPU over its samples, that is what counts
    measured = pd.DataFrame([{**cell, "serving_cpu_measured_s": 0.006}])
    row = re.findall(r"<tr>(.*?)</tr>", reader_goals(Run("vm", {}, "c0ffee", None, measured, info={"cores": 2})),
                     re.S)[1]  # fmt: skip
    assert "CPU: client 14 ms, embedded server and proxy 6 ms measured (10 ms estimated), i.e. all 2 cores busy " \
           "for 10 ms" in row  # fmt: skip
    assert (
        "peak memory 4 MB above the open (selection 400 kB; touched chunks 800 kB stored, 800 kB decoded)" in row
    )  # shown beside the goals, not judged
