"""recommend(): the layout it picks, the costs it reports, its bad-input errors, and its output in NeuroConv.

The model is fitted to the synthetic matrix of known parameters, so every expectation follows from
:data:`nwb_cloud.recommend.synthetic.TRUTH`. The NeuroConv tests run the path a conversion takes:
``get_default_backend_configuration`` -> ``Recommendation.apply`` -> ``configure_backend`` -> write, then
read the file back with h5py/zarr and check the chunks, the filters and every value.
"""

from __future__ import annotations

import math

import h5py
import numpy as np
import pytest
import zarr
from neuroconv.tools.nwb_helpers import configure_backend, get_default_backend_configuration
from pynwb import NWBHDF5IO

from nwb_cloud import cli
from nwb_cloud.cloud.profiles import UnknownProfile
from nwb_cloud.datasets.modalities import MODALITIES
from nwb_cloud.recommend import (
    BadChunkShape,
    Recommendation,
    RecommendError,
    SeriesNotFound,
    UnknownCodec,
    UnknownWorkloadName,
    fit,
    prior_model,
    recommend,
)
from nwb_cloud.recommend.candidates import chunk_candidates
from nwb_cloud.recommend.geometry import geometry
from nwb_cloud.recommend.recommendation import TIE
from nwb_cloud.recommend.synthetic import synthetic_measurements
from nwb_cloud.workloads import WORKLOADS

OPHYS = ((9000, 512, 512), "uint16", "ophys")
ECEPHYS = ((9_000_000, 384), "int16", "ecephys")


@pytest.fixture(scope="module")
def model():
    return fit(synthetic_measurements()).model


@pytest.fixture(scope="module")
def codecs(model):
    return sorted(model.codecs)  # priced from the fit alone: no sample to measure


def _write(nwbfile, backend, path):
    if backend == "zarr":
        from hdmf_zarr.nwb import NWBZarrIO

        with NWBZarrIO(str(path), mode="w") as io:
            io.write(nwbfile)
    else:
        with NWBHDF5IO(str(path), mode="w") as io:
            io.write(nwbfile)


def _tiny_nwbfile(modality: str):
    spec = MODALITIES[modality]
    source = spec.signal(spec.spec("tiny"), 0)
    data = source.read(0, source.shape[0])
    return spec.build(source, data, identifier=f"recommend-{modality}"), data


# -- what it picks ----------------------------------------------------------------------------------------------
def test_a_patch_read_gets_patch_chunks_and_a_large_gain_over_the_default(model, codecs):
    r = recommend(OPHYS, {"ophys_patch": 1}, "in-region", method="sequential", model=model, codecs=codecs)
    assert r.chunk_shape[1] <= 64 and r.chunk_shape[2] <= 64  # a small tile, not whole frames
    assert r.chunk_shape[0] >= 128  # many frames: the read spans 500
    assert r.default.chunk_shape == MODALITIES["ophys"].neuroconv_chunks(OPHYS[0], "uint16")
    assert r.default.codec == "gzip-4"
    assert r.speedup_vs_default > 5
    (cost,) = r.costs
    assert cost.speedup_vs_default == pytest.approx(cost.default_seconds / cost.seconds)
    assert cost.chunks == geometry(OPHYS[0], r.chunk_shape, 2, WORKLOADS["ophys_patch"].select).chunks


def test_a_frame_read_gets_whole_frames_and_a_mix_is_a_compromise(model, codecs):
    clip = "ophys_clip" if "ophys_clip" in WORKLOADS else None
    if clip is None:
        pytest.skip("no whole-frame read workload registered")  # the study's opposing reads add one
    frames = recommend(OPHYS, [clip], "in-region", model=model, codecs=codecs)
    patch = recommend(OPHYS, ["ophys_patch"], "in-region", model=model, codecs=codecs)
    both = recommend(OPHYS, [f"{clip}=1", "ophys_patch=1"], "in-region", model=model, codecs=codecs)
    assert frames.chunk_shape[1:] == (512, 512) or math.prod(frames.chunk_shape[1:]) >= 128 * 128
    assert math.prod(patch.chunk_shape[1:]) < math.prod(frames.chunk_shape[1:])
    assert both.workloads == {clip: 0.5, "ophys_patch": 0.5}
    cost = {c.workload: c.seconds for c in both.costs}
    assert cost[clip] >= frames.weighted_seconds * (1 - 1e-9)  # the mix gives up some of each read's best
    assert cost["ophys_patch"] >= patch.weighted_seconds * (1 - 1e-9)


def test_the_pick_is_the_cheapest_candidate_within_the_tie_margin(model, codecs):
    r = recommend(ECEPHYS, {"ecephys_electrode": 1}, "lab", model=model, codecs=codecs)
    network = model.network("lab")
    weighted = []
    for chunk_shape in chunk_candidates(ECEPHYS[0], 2):
        g = geometry(ECEPHYS[0], chunk_shape, 2, WORKLOADS["ecephys_electrode"].select)
        for codec in codecs:
            cost = model.predict(None, codec, network, g.chunks, g.chunk_bytes, modality="ecephys", runs=g.runs)
            weighted.append(float(cost.seconds))
    assert r.weighted_seconds <= min(weighted) * (1 + TIE) + 1e-12
    assert r.weighted_seconds == pytest.approx(sum(c.weight * c.seconds for c in r.costs))
    assert r.best_per_codec[0].weighted_seconds <= min(weighted) * (1 + TIE)
    mine = next(c for c in r.best_per_codec if c.codec == r.codec)
    assert mine.chunk_shape == r.chunk_shape  # the same tie-break for the pick and the per-codec table
    assert r.candidates_priced == len(chunk_candidates(ECEPHYS[0], 2, include=[r.default.chunk_shape])) * len(codecs)


def test_an_unmeasured_network_is_priced_from_its_profile(model, codecs):
    near = recommend(OPHYS, ["ophys_patch"], "in-region", method="sequential", model=model, codecs=codecs)
    far = recommend(OPHYS, ["ophys_patch"], "cross-region", method="sequential", model=model, codecs=codecs)
    assert far.weighted_seconds > near.weighted_seconds  # 65 ms round trips and 40 MB/s per connection


def test_recommendation_round_trips_as_json_and_reads_as_text(model, codecs):
    r = recommend(OPHYS, ["ophys_patch"], "lab", model=model, codecs=codecs)
    assert Recommendation.model_validate_json(r.model_dump_json()) == r
    text = r.summary()
    assert str(r.chunk_shape) in text and r.codec in text and "NeuroConv's default" in text
    assert r.model_source.startswith("fitted to ") and "timed read cells of synthetic" in r.model_source


def test_without_a_fit_codecs_are_measured_on_the_modalitys_signal():
    r = recommend(((2000, 256, 256), "uint16", "ophys"), ["ophys_patch"], "in-region", model=prior_model(),
                  codecs=["gzip-4", "blosc-lz4-shuffle"])  # fmt: skip
    assert r.codec in ("gzip-4", "blosc-lz4-shuffle") and r.compression_ratio > 1
    assert r.model_source.startswith("prior")
    inferred = recommend(((2000, 256, 256), "uint16"), ["ophys_patch"], "in-region", model=prior_model(),
                         codecs=["gzip-4"])  # fmt: skip
    assert inferred.dataset.modality == "ophys"  # from the workloads: the sample is the ophys signal


# -- bad input --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "workloads,error,message",
    [
        (["ophys_pach"], UnknownWorkloadName, r"unknown workload 'ophys_pach'; known read workloads: .*ophys_patch"),
        (["open_ophys"], UnknownWorkloadName, "opens the file and reads metadata"),
        (["ophys_patch", "ecephys_electrode"], UnknownWorkloadName, "different modalities"),
        (["ecephys_electrode"], UnknownWorkloadName, "the dataset is ophys data"),
        (["ophys_patch=-1"], UnknownWorkloadName, "must be a positive number"),
        (["ophys_patch=lots"], UnknownWorkloadName, "is not a number"),
        ([], UnknownWorkloadName, "no workload given"),
    ],
)
def test_bad_workloads_are_named(model, workloads, error, message):
    with pytest.raises(error, match=message):
        recommend(OPHYS, workloads, "in-region", model=model)


def test_other_bad_input_is_named(model, codecs):
    with pytest.raises(UnknownCodec, match="unknown codec 'brotli'"):
        recommend(OPHYS, ["ophys_patch"], "in-region", model=model, codecs=["brotli"])
    with pytest.raises(UnknownCodec, match="cannot be written to zarr"):
        recommend(OPHYS, ["ophys_patch"], "in-region", model=model, codecs=["lzf"], backend="zarr")
    with pytest.raises(UnknownProfile, match="unknown network profile 'mars'"):
        recommend(OPHYS, ["ophys_patch"], "mars", model=model)
    with pytest.raises(RecommendError, match="no parameters for read method 'remfle'"):
        recommend(OPHYS, ["ophys_patch"], "in-region", method="remfle", model=model)
    with pytest.raises(RecommendError, match="no fitted model knows read method 'remfile'.*fit-model"):
        recommend(OPHYS, ["ophys_patch"], "in-region", method="remfile", model=prior_model())
    with pytest.raises(BadChunkShape, match="larger than the data"):
        recommend(OPHYS, ["ophys_patch"], "in-region", model=model, codecs=codecs, candidates=[(10, 1024, 32)])
    with pytest.raises(BadChunkShape, match="rank 2"):
        recommend(OPHYS, ["ophys_patch"], "in-region", model=model, codecs=codecs, candidates=[(10, 32)])
    with pytest.raises(RecommendError, match="bad dataset"):
        recommend(((0, 5), "uint16"), ["ophys_patch"], "in-region", model=model)  # an empty axis
    with pytest.raises(RecommendError, match="uint17"):
        recommend(((10, 5, 5), "uint17"), ["ophys_patch"], "in-region", model=model)


# -- into NeuroConv ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["hdf5", "zarr"])
def test_recommendation_applied_by_neuroconvs_configure_backend(model, tmp_path, backend):
    nwbfile, data = _tiny_nwbfile("ophys")
    r = recommend((data.shape, data.dtype, "ophys"), ["ophys_patch"], "in-region", model=model, backend=backend,
                  codecs=["blosc-zstd-bitshuffle"], candidates=[(48, 16, 32)])  # fmt: skip
    configuration = get_default_backend_configuration(nwbfile, backend=backend)
    assert configuration.dataset_configurations["acquisition/TwoPhotonSeries/data"].chunk_shape != (48, 16, 32)
    assert r.apply(configuration) is configuration
    configure_backend(nwbfile, configuration)
    path = tmp_path / f"ophys.nwb{'.zarr' if backend == 'zarr' else ''}"
    _write(nwbfile, backend, path)
    if backend == "hdf5":
        with h5py.File(path, "r") as file:
            dataset = file["acquisition/TwoPhotonSeries/data"]
            assert dataset.chunks == (48, 16, 32)
            filters = dataset.id.get_create_plist()
            code, _, values, _ = filters.get_filter(0)
            assert (filters.get_nfilters(), code) == (1, 32001)  # Blosc
            assert (values[4], values[5], values[6]) == (5, 2, 5)  # clevel 5, bitshuffle, zstd
            np.testing.assert_array_equal(dataset[()], data)
    else:
        array = zarr.open_group(str(path), mode="r")["acquisition/TwoPhotonSeries/data"]
        assert array.chunks == (48, 16, 32)
        assert array.compressor.get_config() == {"id": "blosc", "cname": "zstd", "clevel": 5, "shuffle": 2,
                                                 "blocksize": 0}  # fmt: skip
        np.testing.assert_array_equal(array[()], data)


def test_to_dataset_io_configuration_copies_and_validates(model):
    nwbfile, data = _tiny_nwbfile("ecephys")
    configuration = get_default_backend_configuration(nwbfile, backend="hdf5")
    key = "acquisition/ElectricalSeries/data"
    original = configuration.dataset_configurations[key]
    r = recommend((data.shape, data.dtype, "ecephys"), ["ecephys_electrode"], "lab", model=model,
                  codecs=["gzip-4"], candidates=[(45_000, 1)])  # fmt: skip
    copy = r.to_dataset_io_configuration(original)
    assert copy is not original and original.chunk_shape != (45_000, 1)
    assert copy.chunk_shape == (45_000, 1) and copy.compressors == ["gzip"]
    assert all(
        b % c == 0 or b == f for b, c, f in zip(copy.buffer_shape, copy.chunk_shape, copy.full_shape, strict=True)
    )
    assert copy.get_data_io_kwargs() == {"chunks": (45_000, 1), "compression": "gzip", "compression_opts": 4}
    other = recommend(((100, 32), "int16", "ecephys"), ["ecephys_electrode"], "lab", model=model, codecs=["gzip-4"])
    with pytest.raises(RecommendError, match="the recommendation is for shape"):
        other.to_dataset_io_configuration(original)
    with pytest.raises(SeriesNotFound, match="no dataset 'acquisition/Nope/data'; it configures: acquisition"):
        r.apply(configuration, location="acquisition/Nope")


def test_recommend_for_an_existing_file_reads_its_series(model, tmp_path, codecs):
    nwbfile, data = _tiny_nwbfile("ophys")
    path = tmp_path / "ophys.nwb"
    configure_backend(nwbfile, get_default_backend_configuration(nwbfile, backend="hdf5"))  # NeuroConv's layout
    _write(nwbfile, "hdf5", path)
    nwbfile, _ = _tiny_nwbfile("ophys")
    r = recommend((path, "acquisition/TwoPhotonSeries"), ["ophys_patch"], "in-region", model=model, codecs=codecs)
    assert r.dataset.shape == data.shape and r.dataset.dtype == "uint16" and r.dataset.modality == "ophys"
    assert r.dataset.current_chunks == data.shape and r.dataset.current_codec == "gzip-4"
    assert "ratio measured on the file's data" in r.codec_sources[r.codec]
    with h5py.File(path, "r") as file:
        stored = file["acquisition/TwoPhotonSeries/data"].id.get_storage_size()
    assert r.codec_sources and r.default.compression_ratio == pytest.approx(data.nbytes / stored, rel=0.05)
    configuration = get_default_backend_configuration(nwbfile, backend="hdf5")
    r.apply(configuration)  # found by the series the recommendation was made for
    assert configuration.dataset_configurations["acquisition/TwoPhotonSeries/data"].chunk_shape == r.chunk_shape
    with pytest.raises(SeriesNotFound, match="has no series 'acquisition/Missing'.*acquisition/TwoPhotonSeries"):
        recommend((path, "acquisition/Missing"), ["ophys_patch"], "in-region", model=model)
    with pytest.raises(RecommendError, match="no NWB file at"):
        recommend((tmp_path / "nope.nwb", "acquisition/TwoPhotonSeries"), ["ophys_patch"], "in-region", model=model)


# -- the command ------------------------------------------------------------------------------------------------
def test_cli_recommend_prints_json_and_names_bad_input(model, tmp_path, capsys):
    model_path = model.save(tmp_path / "model.json")
    argv = ["recommend", "--shape", "9000,512,512", "--dtype", "uint16", "--workload", "ophys_patch=0.7",
            "--profile", "in-region", "--model", str(model_path), "--codec", "gzip-4",
            "--codec", "blosc-zstd-bitshuffle"]  # fmt: skip
    assert cli.main([*argv, "--json"]) == 0
    payload = Recommendation.model_validate_json(capsys.readouterr().out)
    assert payload.workloads == {"ophys_patch": 1.0} and payload.dataset.shape == (9000, 512, 512)
    assert cli.main(argv) == 0
    assert "NeuroConv's default" in capsys.readouterr().out
    assert cli.main([*argv[:6], "ophys_pach", "--model", str(model_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "'ophys_pach': unknown workload" in error
    assert cli.main(["recommend", "--shape", "9000,x,512", "--dtype", "uint16", "--workload", "ophys_patch"]) == 2
    assert "not a comma-separated list of integers" in capsys.readouterr().err
    assert cli.main(["recommend", "--shape", "9000,512", "--dtype", "uint16", "--workload", "ophys_patch"]) == 2
    assert "workload 'ophys_patch' cannot read this dataset" in capsys.readouterr().err
    assert cli.main(["recommend", "--workload", "ophys_patch"]) == 2
    assert "give an NWB file with --series, or --shape and --dtype" in capsys.readouterr().err


def test_cli_recommend_for_an_nwb_file(model, tmp_path, capsys):
    nwbfile, data = _tiny_nwbfile("ecephys")
    path = tmp_path / "ecephys.nwb"
    configure_backend(nwbfile, get_default_backend_configuration(nwbfile, backend="hdf5"))
    _write(nwbfile, "hdf5", path)
    model_path = model.save(tmp_path / "model.json")
    argv = ["recommend", str(path), "--series", "acquisition/ElectricalSeries", "--workload", "ecephys_electrode",
            "--profile", "lab", "--model", str(model_path), "--json"]  # fmt: skip
    assert cli.main(argv) == 0
    payload = Recommendation.model_validate_json(capsys.readouterr().out)
    assert payload.dataset.source_file == str(path) and payload.dataset.shape == data.shape
    assert payload.dataset.current_codec == "gzip-4" and payload.profile == "lab"
    assert cli.main(["recommend", str(path), "--workload", "ecephys_electrode", "--model", str(model_path)]) == 2
    assert "needs --series" in capsys.readouterr().err
    assert cli.main([*argv[:2], "--series", "acquisition/Nope", *argv[4:]]) == 2
    assert "has no series 'acquisition/Nope'" in capsys.readouterr().err


def test_the_shipped_model_warns_outside_what_it_was_fitted_on_and_only_there(capsys):
    """model.json records the series, workloads and profiles its fit measured; a request beyond them gets a
    warning naming the quantity and the factor, on the Recommendation and as a stderr line of the CLI."""
    from nwb_cloud.recommend import default_model

    shipped = default_model()
    fitted = shipped.fitted_range.modalities["ophys"]
    (shape,) = fitted.shapes
    inside = recommend((shape, fitted.dtypes[0], "ophys"), "ophys_patch", "in-region", model=shipped, write_cost=False)
    assert inside.warnings == []
    ten_hours = (int(36000 * fitted.rate_hz), *shape[1:])
    far = recommend((ten_hours, "float64", "ophys"), {"ophys_patch": 1, "ophys_clip": 1}, "cross-region",
                    model=shipped, write_cost=False)  # fmt: skip
    factor = ten_hours[0] / shape[0]
    length = f"length 36,000 s ({ten_hours[0]:,} samples at 30 Hz) is {factor:,.0f}x the longest fitted recording"
    assert any(w.startswith(length) for w in far.warnings), far.warnings
    assert any(w.startswith("dtype float64 (8 B) was never measured; fitted: uint16 (2 B)") for w in far.warnings)
    assert any(w.startswith("size ") and "the largest fitted series" in w for w in far.warnings)
    assert any(w.startswith("profile cross-region never measured") for w in far.warnings)
    assert Recommendation.model_validate_json(far.model_dump_json()).warnings == far.warnings

    argv = ["recommend", "--shape", ",".join(map(str, ten_hours)), "--dtype", "uint16", "--workload", "ophys_patch"]
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    warned = [line for line in captured.err.splitlines() if "outside the fitted range" in line]
    assert len(warned) == 2 and "is 1,080x the longest fitted recording (33.3 s" in warned[0], captured.err
    assert cli.main([*argv[:2], ",".join(map(str, shape)), *argv[3:]]) == 0
    assert "outside the fitted range" not in capsys.readouterr().err


def test_a_model_without_a_fitted_range_says_it_cannot_tell():
    warnings = recommend(((2000, 256, 256), "uint16", "ophys"), "ophys_patch", "in-region", model=prior_model(),
                         codecs=["gzip-4"], write_cost=False).warnings  # fmt: skip
    assert warnings == [
        "the model records no fitted range (a prior, or fitted before ranges were kept): extrapolation cannot be told"
    ]
