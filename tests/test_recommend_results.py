"""From asv results to the model, the recommendations check and the guidance page.

Two result folders: the real tiny run of the report's fixtures (tests/data/asv-tiny-tracks), and a
synthetic run written with asv's own ``Results`` class and a run info in the bench's format, whose times
come from :data:`nwb_cloud.recommend.synthetic.TRUTH`: loading it and fitting must give TRUTH back, and
the model's picks must match the measured best layouts.
"""

from __future__ import annotations

import datetime
import itertools
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from asv.results import Results
from asv.runner import BenchmarkResult

from nwb_cloud import cli
from nwb_cloud.errors import NwbCloudError
from nwb_cloud.recommend import (
    CostModel,
    NotEnoughMeasurements,
    check_recommendations,
    check_summary,
    fit,
    load_measurements,
    write_guidance,
)
from nwb_cloud.recommend.check import TARGET
from nwb_cloud.recommend.measurements import Measurements
from nwb_cloud.recommend.model import ANY
from nwb_cloud.recommend.synthetic import TRUTH, synthetic_measurements

DATA = Path(__file__).parent / "data"
REAL = DATA / "asv-tiny-tracks"
MACHINE, COMMIT = "synth-rec", "5ca1ab1e" + "0" * 32


def _class_name(workload: str) -> str:
    return "".join(part.title() for part in workload.split("_"))


def write_asv_results(measurements: Measurements, root: Path) -> Path:
    """``measurements`` as an asv results folder (asv's own writer) plus the run info the bench writes."""
    cells = measurements.cells
    machine_info = {"machine": MACHINE, "arch": "x86_64", "cpu": "synthetic", "num_cpu": "2", "os": "Linux",
                    "ram": "8000000000"}  # fmt: skip
    (root / MACHINE).mkdir(parents=True)
    (root / MACHINE / "machine.json").write_text(json.dumps({**machine_info, "version": 1}))
    results = Results(machine_info, {}, COMMIT, 1_795_000_000_000, "3.11", "existing-py", {})
    started = datetime.datetime(2026, 11, 20, tzinfo=datetime.UTC)
    methods, layouts, profiles = (sorted(cells[c].unique()) for c in ("method", "layout", "profile"))
    params = [[repr(v) for v in axis] for axis in (methods, layouts, profiles)]
    indexed = cells.set_index(["workload", "method", "layout", "profile"])
    for workload in sorted(cells["workload"].unique()):
        combos = list(itertools.product(methods, layouts, profiles))
        rows = [indexed.loc[(workload, *combo)] if (workload, *combo) in indexed.index else None for combo in combos]
        times = [math.nan if r is None else float(r["time_s"]) for r in rows]
        samples = [None if math.isnan(t) else [t * f for f in (0.97, 1.0, 1.04)] for t in times]
        name = f"streaming.{_class_name(workload)}"
        time_result = BenchmarkResult([t if math.isnan(t) else True for t in times], samples,
                                      [None if s is None else 1 for s in samples], 0, "", None)  # fmt: skip
        results.add_result({"name": f"{name}.time_workload", "version": "1", "params": params}, time_result,
                           started_at=started, duration=1.0, record_samples=True)  # fmt: skip
        for track, column in (("requests", "requests"), ("bytes_received", "bytes_received")):
            values = [math.nan if r is None else float(r[column]) for r in rows]
            track_result = BenchmarkResult(values, [None] * len(values), [None] * len(values), 0, "", None)
            results.add_result({"name": f"{name}.track_{track}", "version": "1", "params": params}, track_result,
                               started_at=started, duration=1.0)  # fmt: skip
    results.save(str(root))
    floors = []
    for row in (
        measurements.decode[measurements.decode["source"] == "read"].itertuples()
        if "source" in measurements.decode
        else measurements.decode.itertuples()
    ):
        for profile, network in measurements.networks.items():
            floors.append({"kind": "read", "workload": row.workload, "profile": profile, "layout": row.layout,
                           "asset": f"quick/{row.modality}-quick-s0-{row.layout}-0123456789-abcdef0123.nwb",
                           "chunks": int(row.chunks), "compressed_bytes": int(row.compressed_bytes),
                           "chunk_bytes": int(row.decoded_bytes), "selection_bytes": 1, "local_s": float(row.local_s),
                           "bandwidth": network.total_bandwidth if profile == "loopback" else None})  # fmt: skip
    assets = {f"{r.modality}/{r.layout}": {"size_bytes": int(r.size_bytes), "chunk_shape": list(r.chunk_shape),
                                            "backend": "hdf5", "codec": r.codec, "compression_ratio": None,
                                            "shape": list(r.shape), "dtype": r.dtype}
              for r in measurements.layouts.itertuples()}  # fmt: skip
    codecs = [{"modality": m, "codec": name, "chunk_shape": [1], "raw_bytes": 10_000_000,
               "stored_bytes": int(10_000_000 / c.ratio[m]),
               "decode_mb_s": 10.0 / float(TRUTH.decode_s(name, 1, 10_000_000))}
              for name, c in TRUTH.codecs.items() for m in c.ratio]  # fmt: skip
    info = {"run_id": "20261120T000000-synth", "commit": COMMIT, "machine": {"host": MACHINE, "cores": 2},
            "size": "quick", "seed": 0, "profiles": {}, "assets": assets, "floors": floors,
            "codecs": codecs}  # fmt: skip
    (root / "run-info").mkdir()
    (root / "run-info" / "synth.json").write_text(json.dumps(info))
    return root


@pytest.fixture(scope="module")
def synthetic():
    return synthetic_measurements(noise=0.05, seed=7)


@pytest.fixture(scope="module")
def results_dir(synthetic, tmp_path_factory):
    return write_asv_results(synthetic, tmp_path_factory.mktemp("recommend-results") / "results")


def test_asv_results_load_as_the_matrix_they_were_made_from(synthetic, results_dir):
    loaded = load_measurements(results_dir)
    assert loaded.source.endswith("machine synth-rec, run 20261120T000000-synth, size quick")
    key = ["workload", "method", "layout", "profile"]
    merged = loaded.cells.merge(synthetic.cells, on=key, suffixes=("", "_made"))
    assert len(merged) == len(loaded.cells) == len(synthetic.cells)
    for column in ("chunks", "decoded_bytes", "codec", "modality"):
        assert (merged[column] == merged[f"{column}_made"]).all(), column
    assert (merged["compressed_bytes"] - merged["compressed_bytes_made"]).abs().max() <= 1  # stored as ints
    assert ((merged["time_s"] / merged["time_s_made"]) - 1).abs().max() < 1e-9  # asv's median of the samples
    assert (merged["requests"] == merged["requests_made"]).all()
    assert set(loaded.decode["source"]) == {"read", "chunk"}
    assert set(loaded.layouts["shape"]) == set(synthetic.layouts["shape"])  # as the run info records them
    assert loaded.loopback_bandwidth == TRUTH.loopback_bandwidth


def test_the_fit_through_asv_results_recovers_the_truth(results_dir):
    result = fit(load_measurements(results_dir))
    for method, want in TRUTH.methods.items():
        if method == ANY:
            continue
        got = result.model.methods[method]
        assert abs(got.parallelism - want.parallelism) <= 0.2 * want.parallelism
        assert abs(got.requests_per_chunk - want.requests_per_chunk) <= 0.1
    for name, want in TRUTH.codecs.items():
        assert result.model.codecs[name].decode_bytes_per_s == pytest.approx(want.decode_bytes_per_s, rel=0.02)
        assert result.model.codecs[name].ratio == pytest.approx(want.ratio, rel=1e-3)
    assert result.summary()["median_error_factor"] < 1.1


def test_recommendations_hold_on_the_synthetic_run(synthetic):
    table = check_recommendations(synthetic)
    assert len(table) >= 3 * 4 * 2  # (mixes) x profiles x methods, every group with 6 layouts
    assert (table["layouts"] == 6).all()
    assert (table["in_sample_ratio"] >= 1).all() and (table["held_out_ratio"] >= 1).all()
    assert table["within_target"].all() and table["held_out_within_target"].all()
    summary = check_summary(table)
    assert summary["in_sample_within_target"] == 1.0 and summary["in_sample_worst_ratio"] <= TARGET
    # the model's pick is the measured best in most groups: 5 % noise only swaps near-ties
    assert (table["in_sample_layout"] == table["best_layout"]).mean() > 0.8
    assert summary["in_sample_misses"] == 0


def test_ties_within_the_sample_spread_are_marked(results_dir):
    table = check_recommendations(load_measurements(results_dir), held_out=False)
    assert table["in_sample_tie"].notna().all()  # asv kept the samples: every pick has a spread
    exact = table[table["in_sample_layout"] == table["best_layout"]]
    assert exact["in_sample_tie"].all()  # the best overlaps itself
    apart = table[table["in_sample_ratio"] > 1.1]  # samples spread 0.97..1.04: 10 % apart cannot overlap
    assert not apart["in_sample_tie"].any()


def test_a_model_that_ranks_wrongly_is_caught(synthetic):
    """The check measures something: swap the decode speeds of gzip and Blosc and the picks go wrong."""
    wrong = synthetic.decode.copy()
    slow, fast = wrong["codec"] == "gzip-4", wrong["codec"] == "blosc-zstd-bitshuffle"
    wrong.loc[slow, "local_s"], wrong.loc[fast, "local_s"] = (
        wrong.loc[slow, "local_s"] / 20,
        wrong.loc[fast, "local_s"] * 20,
    )
    broken = Measurements(cells=synthetic.cells, decode=wrong, layouts=synthetic.layouts, networks=synthetic.networks,
                          loopback_bandwidth=synthetic.loopback_bandwidth, source="mis-measured decode")  # fmt: skip
    table = check_recommendations(broken, held_out=False)
    assert table["in_sample_ratio"].max() > TARGET


def test_the_real_tiny_run(tmp_path):
    loaded = load_measurements(REAL)
    assert set(loaded.cells["layout"]) == {"neuroconv-default", "workload-friendly"}
    assert set(loaded.cells["codec"]) == {"gzip-4"}
    assert (loaded.cells["chunks"] == 1).all()  # tiny data: the patch read touches one chunk in both layouts
    result = fit(loaded)
    assert len(result.residuals) == len(loaded.cells) and result.residuals["predicted_s"].gt(0).all()
    table = check_recommendations(loaded)
    assert (
        len(table)
        == loaded.cells.groupby(["profile", "method"]).ngroups
        - (loaded.cells.groupby(["profile", "method"])["layout"].nunique() < 2).sum()
    )
    assert (table["in_sample_ratio"] >= 1).all()


def test_results_that_cannot_be_fitted_are_named(tmp_path):
    with pytest.raises(NwbCloudError, match="no asv results folder at .*nothing-here"):
        load_measurements(tmp_path / "nothing-here")
    shutil.copytree(DATA / "asv-tiny", tmp_path / "results")  # times, but no run info: no geometry
    with pytest.raises(NotEnoughMeasurements, match="has a known geometry"):
        load_measurements(tmp_path / "results")


def test_guidance_page_from_results(results_dir, tmp_path):
    page = write_guidance(results_dir, tmp_path / "reports")
    text = page.read_text()
    for heading in ("In short", "What to choose", "The evidence", "Decoding can cost more than fetching",
                    "How far to trust", "Recommendations hold", "Recommendations measured: the closed loop",
                    "Caveats"):  # fmt: skip
        assert heading in text, heading
    assert "No closed-loop run is in these results" in text  # this results folder holds no loop run
    figures = sorted(p.name for p in (tmp_path / "reports" / "figures").iterdir())
    assert figures == ["guidance-decode.png", "guidance-ecephys-layouts.png", "guidance-fit.png",
                       "guidance-ophys-layouts.png"]  # fmt: skip
    for name in figures:
        assert f"figures/{name}" in text
    check = pd.read_csv(tmp_path / "reports" / "tables" / "guidance-check.csv")
    residuals = pd.read_csv(tmp_path / "reports" / "tables" / "guidance-residuals.csv")
    assert len(residuals) == len(load_measurements(results_dir).cells) and {"time_s", "predicted_s"} <= set(residuals)
    assert len(check) > 0 and "tables/guidance-check.csv" in text
    loaded = load_measurements(results_dir)
    best = loaded.cells.loc[loaded.cells.groupby(["workload", "profile", "method"])["time_s"].idxmin()]
    assert best["layout"].mode().iloc[0] in text  # the measured winners are named from the results
    assert "synth-rec" in text and "20261120T000000-synth" in text


def test_guidance_page_measures_nothing_on_the_machine_that_builds_it(results_dir, tmp_path, monkeypatch):
    """Its figures come from the results alone: no write of a sample to price a row's write cost."""
    from nwb_cloud.recommend import recommendation

    def measured(*args, **kwargs):
        raise AssertionError("the guidance page measured a write on this machine")

    monkeypatch.setattr(recommendation, "write_cpu_per_byte", measured)
    assert "What to choose" in write_guidance(results_dir, tmp_path / "reports").read_text()


def test_cli_fit_model_and_guidance(results_dir, tmp_path, capsys):
    out = tmp_path / "model.json"
    assert cli.main(["fit-model", "--results", str(results_dir), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "median_error_factor" in printed and "in_sample_within_target" in printed
    model = CostModel.load(out)
    assert set(TRUTH.methods) <= set(model.methods)
    check = json.loads((results_dir / "recommendations" / "check.json").read_text())
    assert check["summary"]["groups"] == len(check["groups"]) > 0
    assert cli.main(["guidance", "--results", str(results_dir), "--out", str(tmp_path / "reports")]) == 0
    assert (tmp_path / "reports" / "guidance.html").exists()
    # the report shows the 1.2x figure from the check, and links the guidance page beside it
    from nwb_cloud.report import build

    page = build(results_dir, tmp_path / "reports").read_text()
    within = f"{check['summary']['in_sample_within_target']:.0%}"
    assert "Recommendations vs the measured best" in page and within in page and 'href="guidance.html"' in page
    assert cli.main(["fit-model", "--results", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "no asv results folder" in capsys.readouterr().err


def test_publishing_reads_the_results_folder_once(results_dir, tmp_path, monkeypatch):
    """The report page, the guidance page and the closed loop share one reading of the asv files."""
    import nwb_cloud.results
    from nwb_cloud.report.build import publish

    read, load_records = [], nwb_cloud.results.load_records

    def counted(folder):
        read.append(folder)
        return load_records(folder)

    monkeypatch.setattr(nwb_cloud.results, "load_records", counted)
    written = publish(results_dir, tmp_path / "reports", readme=None)
    assert [path.name for path in written] == ["index.html", "guidance.html"]
    assert read == [results_dir]


def test_check_table_columns_are_documented():
    from nwb_cloud.recommend import check

    table = check_recommendations(synthetic_measurements(), held_out=False)
    for column in ("best_layout", "in_sample_layout", "in_sample_ratio", "held_out_ratio", "within_target"):
        assert column in table and column in check.check_recommendations.__doc__ + check.__doc__
    assert isinstance(table, pd.DataFrame) and table["held_out_ratio"].isna().all()
