"""The cost model: its fit recovers known parameters, its predictions are monotonic, its inputs are right.

A synthetic matrix (:mod:`nwb_cloud.recommend.synthetic`) is priced with known parameters; fitting it must
give them back. The chunk geometry the model prices is checked against the chunk index of real files.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from nwb_cloud.analysis.chunks import touched
from nwb_cloud.cloud.profiles import PROFILES, UnknownProfile
from nwb_cloud.datasets.layouts import LAYOUTS
from nwb_cloud.datasets.modalities import MODALITIES
from nwb_cloud.datasets.writer import write_recording
from nwb_cloud.recommend import (
    CODECS,
    BadChunkShape,
    CostModel,
    MethodParams,
    Network,
    RecommendError,
    UnknownCodec,
    codec_name,
    fit,
    get_codec,
)
from nwb_cloud.recommend.calibrate import measure_codec
from nwb_cloud.recommend.candidates import MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, chunk_candidates
from nwb_cloud.recommend.codecs import neuroconv_compressors, spelling, writable
from nwb_cloud.recommend.dataset import describe
from nwb_cloud.recommend.geometry import check_chunk_shape, chunk_count, geometry
from nwb_cloud.recommend.model import ANY, price
from nwb_cloud.recommend.synthetic import TRUTH, synthetic_measurements
from nwb_cloud.workloads import WORKLOADS

METHODS = [m for m in TRUTH.methods if m != ANY]


@pytest.fixture(scope="module")
def matrix():
    return synthetic_measurements()


@pytest.fixture(scope="module")
def exact(matrix):
    return fit(matrix)


@pytest.fixture(scope="module")
def noisy():
    return fit(synthetic_measurements(noise=0.1, seed=3))


def _close(got: float, want: float, tolerance: float, absolute: float = 0.0) -> bool:
    return abs(got - want) <= tolerance * abs(want) + absolute


@pytest.mark.parametrize("method", METHODS)
def test_fit_recovers_the_parameters_that_made_the_matrix(matrix, exact, method):
    got, want = exact.model.methods[method], TRUTH.methods[method]
    assert _close(got.parallelism, want.parallelism, 0.05), (got.parallelism, want.parallelism)
    assert _close(got.decode_parallelism, want.decode_parallelism, 0.1), (got.decode_parallelism, method)
    assert _close(got.fixed_s, want.fixed_s, 0.2, absolute=1e-3), (got.fixed_s, want.fixed_s)
    for name in ("requests_fixed", "requests_per_chunk", "requests_per_run", "wire_per_byte"):
        assert _close(getattr(got, name), getattr(want, name), 0.1, absolute=0.1), name
    assert _close(got.requests_per_mb, want.requests_per_mb, 0.1, absolute=0.02)
    assert _close(got.wire_per_chunk_bytes, want.wire_per_chunk_bytes, 0.15, absolute=2e4)
    assert _close(got.wire_per_run_bytes, want.wire_per_run_bytes, 0.15, absolute=2e4)
    assert _close(got.wire_fixed_bytes, want.wire_fixed_bytes, 0.15, absolute=5e4)
    cells = int((matrix.cells["method"] == method).sum())
    assert cells >= 48 and got.cells == got.traffic_cells == cells


def test_fit_recovers_codec_speeds_ratios_and_chunk_overhead(exact):
    assert _close(exact.model.chunk_overhead_s, TRUTH.chunk_overhead_s, 0.01)
    for name, want in TRUTH.codecs.items():
        got = exact.model.codecs[name]
        assert _close(got.decode_bytes_per_s, want.decode_bytes_per_s, 0.01), name
        assert got.ratio == pytest.approx(want.ratio)
    assert exact.model.loopback_bandwidth == TRUTH.loopback_bandwidth


def test_residuals_per_cell_and_summary(matrix, exact, noisy):
    residuals = exact.residuals
    assert len(residuals) == len(matrix.cells) and residuals["predicted_s"].notna().all()
    assert {"workload", "method", "layout", "profile", "time_s", "ratio", "latency_s", "decode_s"} <= set(residuals)
    assert exact.summary()["median_error_factor"] < 1.02
    assert exact.summary()["within_1.5x"] == 1.0
    summary = noisy.summary()  # 10 % log-normal noise: the median residual is about the noise
    assert 1.02 < summary["median_error_factor"] < 1.15
    assert summary["within_1.5x"] > 0.95
    assert noisy.model.quality == summary
    for method in METHODS:
        assert _close(noisy.model.methods[method].parallelism, TRUTH.methods[method].parallelism, 0.3)


def test_without_traffic_measurements_a_method_takes_the_typical_readers_traffic():
    result = fit(synthetic_measurements(traffic_measured=False))
    typical = result.model.methods[ANY]
    for method in METHODS:
        params = result.model.methods[method]
        assert params.traffic_cells == 0
        assert params.requests_per_chunk == typical.requests_per_chunk
        assert params.wire_per_byte == typical.wire_per_byte
    assert result.model.methods["parallel"].parallelism > result.model.methods["sequential"].parallelism


def test_more_touched_bytes_or_chunks_never_cost_less(exact):
    rng = np.random.default_rng(1)
    chunks = rng.integers(1, 5000, 400).astype(float)
    stored = rng.uniform(1e3, 5e8, 400)
    for profile in ("in-region", "cross-region", "lab"):
        network = exact.model.network(profile)
        for method in (*METHODS, ANY):
            params = exact.model.methods[method]
            runs = np.ceil(chunks / rng.integers(1, 50, 400))
            base = price(params, network, chunks, stored, 0.0, runs).seconds
            assert np.all(price(params, network, chunks, stored * 1.5, 0.0, runs).seconds >= base)
            assert np.all(price(params, network, chunks + 1, stored, 0.0, runs).seconds >= base)
            assert np.all(price(params, network, chunks, stored, 0.0, runs + 1).seconds >= base)
            assert np.all(
                exact.model.decode_s("gzip-4", chunks, stored * 2)
                <= exact.model.decode_s("gzip-4", chunks + 1, stored * 3)
            )


def test_network_comes_from_the_profile_table():
    profile = PROFILES["lab"]
    network = Network.of(profile)
    assert network.latency_s == profile.request_latency_s()
    assert network.bandwidth(1) == profile.connection_bandwidth
    assert network.bandwidth(1000) == profile.total_bandwidth
    loopback = Network.of("loopback", 3e8)
    assert loopback.latency_s == 0 and loopback.bandwidth(1) == loopback.bandwidth(50) == 3e8
    with pytest.raises(UnknownProfile, match="known: loopback"):
        Network.of("moon")


def test_model_saves_and_loads(exact, tmp_path):
    path = exact.model.save(tmp_path / "model.json")
    assert CostModel.load(path) == exact.model
    (tmp_path / "bad.json").write_text('{"methods": 3}')
    with pytest.raises(RecommendError, match="is not a cost model"):
        CostModel.load(tmp_path / "bad.json")
    with pytest.raises(RecommendError, match="no fitted model"):
        CostModel.load(tmp_path / "missing.json")
    with pytest.raises(RecommendError, match="no parameters for read method 'nope'"):
        exact.model.method("nope")


# -- geometry -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("modality", ["ophys", "ecephys"])
def test_geometry_matches_the_chunk_index_of_written_files(tmp_path_factory, modality):
    """Every distinct chunk shape the layout table writes at tiny size, every read workload of the modality."""
    directory = tmp_path_factory.getbasetemp() / "recommend-geometry"
    source = MODALITIES[modality].signal(MODALITIES[modality].spec("tiny"), 0)
    shapes = {}
    for name, layout in LAYOUTS.items():
        if layout.applies_to(modality) and layout.backend == "hdf5":
            shapes.setdefault(layout.chunk_shape(MODALITIES[modality], source.shape, source.dtype), name)
    reads = [w for w in WORKLOADS.values() if w.modality == modality and w.select is not None]
    assert len(shapes) >= 2 and reads
    for chunk_shape, name in shapes.items():
        written = write_recording(MODALITIES[modality], LAYOUTS[name], "tiny", 0, directory)
        assert written.chunk_shape == chunk_shape
        for workload in reads:
            index = touched(written.path, f"{MODALITIES[modality].series_path}/data", workload.select)
            computed = geometry(index.shape, chunk_shape, index.itemsize, workload.select)
            assert computed.chunks == index.stored == len(index.chunks), (name, workload.name)
            assert computed.decoded_bytes == index.chunk_bytes
            assert computed.selection_bytes == index.selection_bytes


def test_geometry_counts_by_arithmetic():
    g = geometry((9000, 512, 512), (512, 32, 32), 2, WORKLOADS["ophys_patch"].select)
    assert g.chunks == 2 and g.chunk_bytes == 512 * 32 * 32 * 2  # frames 900-1399 cross one chunk boundary
    g = geometry((9000, 512, 512), (19, 512, 512), 2, WORKLOADS["ophys_patch"].select)
    assert g.chunks == math.ceil(1400 / 19) - 900 // 19
    g = geometry((100, 10), (7, 3), 4, (slice(0, 100, 50), 2))
    assert (g.chunks, g.selection_bytes) == (2, 8)
    # runs of adjacent chunks in C order: whole frames over time are one run, a patch one run per time chunk,
    # one electrode one run per time chunk (the other channels' chunks lie between)
    assert geometry((9000, 512, 512), (1, 512, 512), 2, WORKLOADS["ophys_patch"].select).runs == 1
    patch = geometry((9000, 512, 512), (128, 32, 32), 2, WORKLOADS["ophys_patch"].select)
    assert patch.runs == patch.chunks == 4
    assert geometry((600_000, 384), (65_536, 1), 2, WORKLOADS["ecephys_electrode"].select).runs == 10
    assert geometry((600_000, 384), (1_300, 384), 2, WORKLOADS["ecephys_window"].select).runs == 1
    assert geometry((100, 10), (7, 3), 4, (slice(0, 100, 50), slice(0, 10))).runs == 2  # two separate rows
    assert chunk_count((100, 10), (7, 3)) == 15 * 4


@pytest.mark.parametrize(
    "chunks,message",
    [((10, 10), "rank 2, the data"), ((10, 0, 4), "below 1"), ((10, 600, 4), "larger than the data"),
     (("a", 1, 1), "not a tuple of integers")],
)  # fmt: skip
def test_bad_chunk_shapes_are_named(chunks, message):
    with pytest.raises(BadChunkShape, match=message):
        check_chunk_shape((100, 512, 512), chunks)


def test_candidates_are_powers_of_two_or_whole_axes_within_the_size_band():
    shape = (9000, 512, 512)
    default = MODALITIES["ophys"].neuroconv_chunks(shape, "uint16")
    found = chunk_candidates(shape, 2, include=[default])
    assert default in found and len(found) > 100
    for chunk in found:
        assert len(chunk) == 3 and all(1 <= c <= s for c, s in zip(chunk, shape, strict=True))
        if chunk != default:
            assert MIN_CHUNK_BYTES <= math.prod(chunk) * 2 <= MAX_CHUNK_BYTES
            assert all(c == s or c & (c - 1) == 0 for c, s in zip(chunk, shape, strict=True))
    assert chunk_candidates((10, 20), 2) == [(10, 20)]  # smaller than the band: one chunk
    with pytest.raises(BadChunkShape):
        chunk_candidates(shape, 2, include=[(1, 1)])


# -- codecs ---------------------------------------------------------------------------------------------------
def test_codec_names_from_neuroconv_spellings():
    assert codec_name(["gzip"]) == "gzip-4"  # h5py's default level
    assert codec_name(["gzip"], backend="zarr") == "gzip-1"  # numcodecs' default level
    assert codec_name(["gzip"], [{"compression_opts": 1}]) == "gzip-1"  # as NeuroConv reads a file back
    assert codec_name(["Blosc"], [{"cname": "zstd", "clevel": 5, "shuffle": 2}]) == "blosc-zstd-bitshuffle"
    assert codec_name(["Blosc"], None) == "blosc-lz4-shuffle"  # hdf5plugin's defaults
    assert codec_name(["blosc"], [{"cname": "zstd", "shuffle": 2}], backend="zarr") == "blosc-zstd-bitshuffle"
    assert codec_name(["shuffle", "gzip"], [None, {"level": 4}]) == "shuffle-gzip-4"
    assert codec_name(None) == codec_name([]) == "none"
    assert codec_name(["gzip"], [{"level": 7}]) == "gzip(level=7)"
    for name, codec in CODECS.items():
        assert codec_name(codec.compressors, codec.options) == name
        if writable(name, "zarr"):
            assert codec_name(*spelling(name, "zarr"), backend="zarr") == name
    with pytest.raises(UnknownCodec, match="unknown codec 'gzipp'; known: none, gzip-1"):
        get_codec("gzipp")
    with pytest.raises(UnknownCodec, match="cannot be written to a zarr file"):
        neuroconv_compressors("lzf", "zarr", "int16")
    assert neuroconv_compressors("shuffle-gzip-4", "zarr", "int16") == (
        ["shuffle", "gzip"],
        [{"elementsize": 2}, {"level": 4}],
    )
    assert neuroconv_compressors("zstd", "zarr", "int16") == (["zstd"], [{"level": 3}])
    assert neuroconv_compressors("none", "hdf5", "int16") == (None, None)


def test_codecs_measured_on_a_generated_sample():
    sample = describe(((2000, 128, 128), "uint16", "ophys")).sample(2_000_000)
    assert sample.dtype == np.uint16 and sample.shape[1:] == (128, 128)
    gzip = measure_codec(sample, "gzip-4", (16, 64, 64), "ophys")
    none = measure_codec(sample, "none", (16, 64, 64), "ophys")
    assert gzip.ratio["ophys"] > 1.2  # a realistic movie compresses; random noise would not
    assert 0.95 < none.ratio["ophys"] <= 1.0
    assert gzip.decode_bytes_per_s > 0 and "sample" in gzip.source


def test_method_params_are_non_negative():
    with pytest.raises(ValueError):
        MethodParams(requests_per_chunk=-1)
    with pytest.raises(ValueError):
        MethodParams(parallelism=0.5)


def test_storage_variants_get_their_own_parameters(matrix):
    """A paged copy of a layout that one method reads much slower: its own parameters, its own check group."""
    from dataclasses import replace

    from nwb_cloud.recommend import check_recommendations

    paged = matrix.cells[matrix.cells["layout"] == "neuroconv-default"].assign(
        layout="neuroconv-default-paged", variant="hdf5-paged"
    )
    slow = paged["method"] == "blockcache"
    paged.loc[slow, "time_s"] = paged.loc[slow, "time_s"] + 0.15  # a block cache re-reading metadata pages
    layouts = matrix.layouts[matrix.layouts["layout"] == "neuroconv-default"].assign(
        layout="neuroconv-default-paged", page_size=8 * 2**20
    )
    with_paged = replace(
        matrix,
        cells=pd.concat([matrix.cells, paged], ignore_index=True),
        layouts=pd.concat([matrix.layouts, layouts], ignore_index=True),
    )
    result = fit(with_paged)
    plain, variant = result.model.methods["blockcache"], result.model.methods["blockcache@hdf5-paged"]
    assert _close(plain.fixed_s, TRUTH.methods["blockcache"].fixed_s, 0.2, absolute=1e-3)  # untouched by the variant
    assert variant.fixed_s > plain.fixed_s + 0.1
    assert _close(result.model.methods["sequential@hdf5-paged"].fixed_s, TRUTH.methods["sequential"].fixed_s, 0.3,
                  absolute=2e-3)  # fmt: skip
    paged_rows = result.residuals[result.residuals["variant"] == "hdf5-paged"]
    assert len(paged_rows) == len(paged) and paged_rows["ratio"].between(0.8, 1.25).all()
    table = check_recommendations(with_paged, held_out=False)
    assert set(table["variant"]) == {"hdf5"}  # one paged layout: nothing to compare it with
    assert "neuroconv-default-paged" not in set(table["best_layout"])
