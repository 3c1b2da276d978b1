"""The chunk index, the physical bound and the open-metadata count, on files whose answers are known."""

from __future__ import annotations

import dataclasses
import math
import zlib
from pathlib import Path

import h5py
import numcodecs
import numpy as np
import pytest
import zarr
from pynwb import NWBHDF5IO

from nwb_cloud.analysis import (
    AnalysisError,
    ChunkIndexError,
    FloorUnavailable,
    Measured,
    amplification,
    bound,
    cost,
    count_open_reads,
    floor_for,
    floors,
    measure_loopback_throughput,
    of_selection,
    of_touched_chunks,
    stored_loopback_throughput,
    touched,
)
from nwb_cloud.analysis.decode import time_local_read
from nwb_cloud.cloud.profiles import PROFILES, Profile
from nwb_cloud.datasets.catalog import Asset
from nwb_cloud.datasets.layouts import get_layout
from nwb_cloud.datasets.modalities import get_modality
from nwb_cloud.datasets.writer import write_recording
from nwb_cloud.refs import inflate
from nwb_cloud.workloads import get_workload

MB = 1e6


def _file_bytes(path, offset, n) -> bytes:
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(n)


def _h5(path: Path, data: np.ndarray, **options) -> Path:
    with h5py.File(path, "w") as file:
        file.create_dataset("x", data=data, **options)
    return path


# -- chunks touched --------------------------------------------------------------------------------------------
def test_uncompressed_chunks_touched_have_known_offsets_and_sizes(tmp_path):
    data = np.arange(1000, dtype="int16").reshape(100, 10)
    path = _h5(tmp_path / "plain.h5", data, chunks=(10, 10))
    found = touched(path, "x", (slice(15, 35), slice(None)))

    assert [c.index for c in found.chunks] == [(1, 0), (2, 0), (3, 0)]
    assert all(c.nbytes == 200 for c in found.chunks)
    for chunk in found.chunks:  # the offsets point at exactly the chunk's bytes
        row = chunk.index[0] * 10
        assert _file_bytes(path, chunk.offset, chunk.nbytes) == data[row : row + 10].tobytes()
    assert found.compressed_bytes == 600
    assert found.selection_bytes == 20 * 10 * 2
    assert found.chunk_bytes == found.data_bytes == 600
    assert sum(end - start for start, end in found.ranges()) == 600
    assert found.missing == 0


def test_edge_chunks_are_stored_whole_but_hold_less_data(tmp_path):
    data = np.arange(950, dtype="int16").reshape(95, 10)
    path = _h5(tmp_path / "edge.h5", data, chunks=(10, 4))  # grid 10 x 3; last row of chunks 5 deep, last column 2
    found = touched(path, "x", (slice(85, 95), slice(6, 10)))

    assert sorted(c.index for c in found.chunks) == [(8, 1), (8, 2), (9, 1), (9, 2)]
    assert all(c.nbytes == 10 * 4 * 2 for c in found.chunks)  # HDF5 pads edge chunks to the full shape
    assert found.selection_bytes == 10 * 4 * 2
    assert found.chunk_bytes == 4 * 80
    assert found.data_bytes == (10 + 5) * (4 + 2) * 2
    corner = next(c for c in found.chunks if c.index == (9, 2))
    stored = np.frombuffer(_file_bytes(path, corner.offset, corner.nbytes), dtype="int16").reshape(10, 4)
    assert np.array_equal(stored[:5, :2], data[90:95, 8:10])


def test_gzip_chunk_sizes_match_the_index_and_zlib(tmp_path):
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(100, 10)) * 50).astype("int16")
    path = _h5(tmp_path / "gzip.h5", data, chunks=(10, 10), compression="gzip", compression_opts=4)
    found = touched(path, "x", (slice(15, 35), slice(2, 3)))

    with h5py.File(path, "r") as file:
        index = {info.chunk_offset: info for info in _all_chunks(file["x"])}
    for chunk in found.chunks:
        row = chunk.index[0] * 10
        assert chunk.nbytes == index[(row, 0)].size
        assert chunk.offset == index[(row, 0)].byte_offset
        stored = _file_bytes(path, chunk.offset, chunk.nbytes)
        assert zlib.decompress(stored) == data[row : row + 10].tobytes()
        assert len(zlib.compress(data[row : row + 10].tobytes(), 4)) == chunk.nbytes
    assert found.compressed_bytes == sum(index[(r, 0)].size for r in (10, 20, 30))
    assert found.selection_bytes == 20 * 1 * 2
    assert found.chunk_bytes == 600


def _all_chunks(dataset):
    infos = []
    dataset.id.chunk_iter(infos.append)
    return infos


def test_unwritten_chunks_cost_nothing(tmp_path):
    path = tmp_path / "sparse.h5"
    with h5py.File(path, "w") as file:
        dataset = file.create_dataset("x", shape=(100, 10), dtype="int16", chunks=(10, 10))
        dataset[:20] = 1
    found = touched(path, "x", (slice(None), slice(None)))
    assert len(found.chunks) == 10
    assert (found.stored, found.missing) == (2, 8)
    assert found.compressed_bytes == 400
    assert found.chunk_bytes == 400


def test_strided_and_integer_selections(tmp_path):
    data = np.zeros((100, 10), dtype="int16")
    path = _h5(tmp_path / "stride.h5", data, chunks=(2, 10))
    strided = touched(path, "x", (slice(0, 10, 3),))  # rows 0, 3, 6, 9 -> chunks 0, 1, 3, 4 (not 2)
    assert [c.index[0] for c in strided.chunks] == [0, 1, 3, 4]
    assert strided.selection_bytes == 4 * 10 * 2
    single = touched(path, "x", (-1, 4))
    assert [c.index for c in single.chunks] == [(49, 0)]
    assert single.selection_bytes == 2
    by_workload = touched(path, "x", lambda shape: (slice(shape[0] - 1, shape[0]),))
    assert [c.index for c in by_workload.chunks] == [(49, 0)]


def test_bad_selections_and_datasets_are_named(tmp_path):
    data = np.zeros((10, 10), dtype="int16")
    path = _h5(tmp_path / "a.h5", data, chunks=(5, 5))
    with h5py.File(path, "a") as file:
        file.create_dataset("contiguous", data=data)
    with pytest.raises(ChunkIndexError, match="3 axes"):
        touched(path, "x", (slice(None),) * 3)
    with pytest.raises(ChunkIndexError, match="axis 1"):
        touched(path, "x", (slice(None), [1, 2]))
    with pytest.raises(ChunkIndexError, match="axis 0 .* 10"):
        touched(path, "x", (10,))
    with pytest.raises(ChunkIndexError, match="contiguously"):
        touched(path, "contiguous", (slice(None),))
    with pytest.raises(ChunkIndexError, match="no dataset 'missing'"):
        touched(path, "missing", (slice(None),))
    with pytest.raises(ChunkIndexError, match="not a readable HDF5"):
        touched(_write(tmp_path / "junk.h5", b"not hdf5"), "x", ())


def _write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("separator", [".", "/"])
def test_zarr_chunks_are_the_chunk_objects(tmp_path, separator):
    rng = np.random.default_rng(2)
    data = (rng.normal(size=(95, 10)) * 50).astype("int16")
    array = zarr.open_array(
        str(tmp_path / "a.zarr"), mode="w", shape=data.shape, chunks=(10, 4), dtype="int16",
        compressor=numcodecs.Zlib(4), dimension_separator=separator,
    )  # fmt: skip
    array[:50] = data[:50]  # rows 50.. stay fill value: zarr stores no object for those chunks
    found = touched(tmp_path / "a.zarr", "", (slice(45, 95), slice(6, 10)))

    assert sorted(c.index for c in found.chunks) == [(r, c) for r in range(4, 10) for c in (1, 2)]
    assert (found.stored, found.missing) == (2, 10)
    for chunk in found.chunks:
        if not chunk.stored:
            continue
        stored = (tmp_path / "a.zarr" / chunk.key).read_bytes()
        assert chunk.nbytes == len(stored)
        assert chunk.key == separator.join(str(i) for i in chunk.index)
        decoded = np.frombuffer(zlib.decompress(stored), dtype="int16").reshape(10, 4)
        rows, cols = chunk.index[0] * 10, chunk.index[1] * 4
        width = min(4, 10 - cols)
        assert np.array_equal(decoded[:, :width], data[rows : rows + 10, cols : cols + width])
    assert found.compressed_bytes == sum(c.nbytes for c in found.chunks)
    assert found.selection_bytes == 50 * 4 * 2
    assert found.chunk_bytes == 2 * 80
    assert time_local_read(tmp_path / "a.zarr", "", (slice(45, 95), slice(6, 10)), repeats=1)[1] == 1


# -- the network cost model and the bound ----------------------------------------------------------------------
SLOW = Profile(
    name="slow", description="test", rtt_s=0.010, connect_rtts=2, first_byte_s=0.020,
    connection_bandwidth=10 * MB, total_bandwidth=40 * MB, jitter_s=0.004,
)  # fmt: skip


def _read(compressed, chunks, local_s, cores=2, **extra) -> Measured:
    return Measured(
        asset="k", workload="w", kind="read", cores=cores, local_s=local_s, chunks=chunks, ranges=chunks,
        compressed_bytes=compressed, selection_bytes=extra.pop("selection_bytes", compressed), **extra,
    )  # fmt: skip


def test_a_large_read_is_network_bound():
    floor = bound(_read(100 * MB, chunks=4, local_s=2.0), SLOW)
    # warm connection: first byte after rtt + first byte (30 ms); while 3 more connect (2 RTT = 20 ms) it
    # delivers 10 MB/s x 20 ms = 0.2 MB; the remaining 99.8 MB flow at the 40 MB/s total.
    assert floor.network_s == pytest.approx(0.030 + 0.020 + 99.8 * MB / (40 * MB))
    assert floor.decode_s == pytest.approx(1.0)  # 2 s shared by min(2 cores, 4 chunks)
    assert (floor.binding, floor.seconds) == ("network", floor.network_s)
    assert floor.streams == 4 and floor.bandwidth == 40 * MB
    # one connection, one chunk after another: 4 x (rtt + first byte + mean jitter) + 100 MB at 10 MB/s
    assert floor.sequential_s == pytest.approx(4 * 0.032 + 10.0)
    assert floor.multiple(5.09) == pytest.approx(2.0, rel=1e-3)


def test_the_workloads_processing_is_added_to_a_reads_bound_not_to_an_opens():
    floor = bound(_read(100 * MB, chunks=4, local_s=2.0, process_s=0.25), SLOW)
    assert floor.seconds == pytest.approx(floor.network_s + 0.25) and floor.process_s == 0.25
    assert floor.binding == "network"  # the larger of the overlapping terms; processing follows it
    opened = Measured(asset="k", workload="o", kind="open", cores=2, local_s=0.3, metadata_bytes=1000, process_s=9.0)
    assert bound(opened, SLOW).process_s == 0.0  # an open's local time already holds the workload


def test_processing_is_timed_on_the_selection_in_memory(ecephys_asset):
    from nwb_cloud.analysis.decode import time_local_processing

    workload = get_workload("ecephys_electrode")
    with h5py.File(ecephys_asset.local_path, "r") as file:
        selection = workload.select(file[f"{ecephys_asset.series}/data"].shape)
    seen = []

    def run(nwbfile, series_path):  # the workload, watching what the stand-in's data gives it
        result = workload.run(nwbfile, series_path)
        seen.append(result.raw)
        return result

    assert time_local_processing(ecephys_asset.local_path, ecephys_asset.series, selection, run, repeats=2) > 0
    with h5py.File(ecephys_asset.local_path, "r") as file:
        expected = file[f"{ecephys_asset.series}/data"][selection]
    assert len(seen) == 2 and all(np.array_equal(raw, expected) for raw in seen)
    wrong = (slice(0, 10), slice(0, 1))  # a workload asking another selection than the one read is an error
    with pytest.raises(KeyError, match="not the selection read before"):
        time_local_processing(ecephys_asset.local_path, ecephys_asset.series, wrong, workload.run, repeats=1)


def test_a_small_read_of_one_big_chunk_is_decode_bound():
    floor = bound(_read(int(0.1 * MB), chunks=1, local_s=0.5, cores=8), SLOW)
    # 0.1 MB arrive on the warm connection before any other could connect (it delivers 0.2 MB meanwhile)
    assert floor.network_s == pytest.approx(0.030 + 0.1 * MB / (10 * MB))
    assert floor.decode_cores == 1 and floor.decode_s == pytest.approx(0.5)
    assert (floor.binding, floor.seconds) == ("decode", 0.5)


def test_the_decode_term_is_the_fastest_decoders_and_h5pys_is_kept_beside_it():
    measured = _read(int(20 * MB), chunks=4, local_s=2.0, fast_decode_s=0.6, decoder="libdeflate", local_pynwb_s=2.3)
    floor = bound(measured, PROFILES["loopback"])
    assert floor.decode_s == pytest.approx(0.3) and floor.decode_h5py_s == pytest.approx(1.0)  # both on 2 cores
    assert (floor.decoder, floor.local_pynwb_s, floor.seconds) == ("libdeflate", 2.3, floor.decode_s)
    assert floor.decode_cpu_s == pytest.approx(0.6)  # before sharing: what "CPU / decode CPU" divides by
    # no faster decoder measured (a codec h5py's own filters decode): h5py's read is the term
    plain = bound(_read(int(20 * MB), chunks=4, local_s=2.0), PROFILES["loopback"])
    assert plain.decode_s == plain.decode_h5py_s == pytest.approx(1.0) and plain.decoder is None
    # a "faster" decoder slower than h5py's whole read (a tiny chunk, a noisy timing) never raises the bound
    slower = bound(_read(int(MB), chunks=1, local_s=0.01, fast_decode_s=0.02, decoder="isal"), PROFILES["loopback"])
    assert slower.decode_s == pytest.approx(0.01)


def test_the_warm_optimum_is_below_both_simple_strategies():
    for nbytes in (1e3, 1e5, 2e5, 1e6, 1e8):
        ideal = cost.ideal_transfer_s(SLOW, nbytes, warm=True)
        one_warm_stream = 0.030 + nbytes / (10 * MB)
        all_new_streams = 0.020 + 0.030 + nbytes / (40 * MB)
        assert ideal <= min(one_warm_stream, all_new_streams) + 1e-12
        assert ideal >= 0.030 + nbytes / (40 * MB)  # nothing beats the first byte plus the total bandwidth


def test_an_open_is_one_request_on_a_new_connection_against_every_read_in_turn():
    measured = Measured(
        asset="k", workload="open", kind="open", cores=2, local_s=0.05,
        metadata_reads=180, metadata_read_bytes=130_000, metadata_bytes=100_000,
    )  # fmt: skip
    floor = bound(measured, SLOW)
    assert floor.network_s == pytest.approx(0.020 + 0.030 + 100_000 / (40 * MB))
    assert floor.decode_s == 0.05 and floor.decode_cores == 1
    assert floor.binding == "network"
    assert floor.sequential_s == pytest.approx(0.020 + 180 * 0.032 + 130_000 / (10 * MB))
    assert floor.needed_bytes == 100_000


def test_loopback_prices_bytes_at_the_measured_throughput_or_not_at_all():
    loopback = PROFILES["loopback"]
    measured = _read(300 * MB, chunks=10, local_s=0.4)
    free = bound(measured, loopback)
    assert (free.network_s, free.bandwidth, free.binding) == (0.0, None, "decode")
    priced = bound(measured, loopback, loopback_throughput=500 * MB)
    assert priced.network_s == pytest.approx(0.6)
    assert (priced.binding, priced.bandwidth) == ("network", 500 * MB)


def test_real_profiles_order_as_their_networks():
    measured = _read(50 * MB, chunks=5, local_s=0.01)
    seconds = {name: bound(measured, profile).network_s for name, profile in PROFILES.items()}
    assert seconds["loopback"] == 0 < seconds["in-region"] < seconds["cross-region"] < seconds["lab"]
    assert seconds["in-region"] == pytest.approx(0.021 + 0.002 + (50 * MB - 88 * MB * 0.002) / (1250 * MB))


def test_amplification():
    assert of_selection(300, 100) == 3.0
    assert of_touched_chunks(300, 150) == 2.0
    assert of_selection(300, 0) is None
    floor = bound(_read(150, chunks=1, local_s=0.1, selection_bytes=600), SLOW)
    figures = amplification(300, floor)
    assert (figures.of_selection, figures.of_needed) == (0.5, 2.0)


# -- real NWB files: open metadata and the cached floor --------------------------------------------------------
@pytest.fixture(scope="module")
def ecephys_asset(tmp_path_factory) -> Asset:
    modality, layout = get_modality("ecephys"), get_layout("workload-friendly")
    written = write_recording(modality, layout, "tiny", 0, tmp_path_factory.mktemp("assets"))
    return Asset(
        modality="ecephys", layout=layout.name, key=f"tiny/{written.path.name}", series=modality.series_path,
        size_bytes=written.path.stat().st_size, etag="etag-1", chunk_shape=written.chunk_shape,
        local_path=str(written.path),
    )  # fmt: skip


def test_the_counted_open_reads_are_exactly_enough_to_open(ecephys_asset, tmp_path):
    workload = get_workload("open_ecephys")
    path = Path(ecephys_asset.local_path)

    def run(nwbfile):
        return workload.run(nwbfile, ecephys_asset.series)

    reads, result = count_open_reads(path, run)
    with NWBHDF5IO(str(path), "r", load_namespaces=True) as nwb_io:
        expected = run(nwb_io.read())
    workload.check(result, expected)
    assert 0 < reads.distinct_bytes <= reads.read_bytes
    assert reads.distinct_bytes < path.stat().st_size / 4  # metadata, not the series
    assert reads.distinct_bytes == sum(end - start for start, end in reads.ranges)

    # A copy holding only the counted ranges (zeros elsewhere) opens and gives the same answer...
    original = path.read_bytes()
    sparse = bytearray(len(original))
    for start, end in reads.ranges:
        sparse[start:end] = original[start:end]
    replay = _write(tmp_path / "replay.nwb", bytes(sparse))
    replayed_reads, replayed = count_open_reads(replay, run)
    workload.check(replayed, expected)
    assert replayed_reads == reads
    # ...and without the first range (the superblock) it does not open at all.
    sparse[slice(*reads.ranges[0])] = bytes(reads.ranges[0][1] - reads.ranges[0][0])
    with pytest.raises(OSError):
        count_open_reads(_write(tmp_path / "broken.nwb", bytes(sparse)), run)


def test_floor_for_reads_the_file_and_is_cached(ecephys_asset, tmp_path, monkeypatch):
    floor = floor_for(ecephys_asset, "ecephys_electrode", "in-region", tmp_path)
    workload = get_workload("ecephys_electrode")
    with h5py.File(ecephys_asset.local_path, "r") as file:
        dataset = file[f"{ecephys_asset.series}/data"]
        channel = workload.select(dataset.shape)[1].start
        rows = dataset.shape[0]
        needed = [i for i in _all_chunks(dataset) if i.chunk_offset[1] == channel]  # (2^18, 1) chunks
    assert floor.chunks == len(needed) == math.ceil(rows / ecephys_asset.chunk_shape[0])
    assert floor.compressed_bytes == sum(i.size for i in needed)
    assert floor.selection_bytes == rows * 2
    assert floor.kind == "read" and floor.local_s > 0 and floor.binding in ("network", "decode")
    # gzip chunks: the decode term is the fastest exact decoder's CPU, h5py's read kept beside it; and what
    # h5py + pynwb take for the whole workload locally (selection and band-pass filter) is recorded
    assert floor.decoder == inflate.available()[0] and 0 < floor.decode_s <= floor.decode_h5py_s
    assert floor.local_pynwb_s > 0
    # the band-pass filter runs after the read in every cell: the bound adds it, measured on the trace in memory
    assert 0 < floor.process_s < floor.local_pynwb_s
    terms = max(floor.network_s, floor.decode_s, floor.shared_cpu_s)
    assert floor.seconds == pytest.approx(terms + floor.process_s)

    class Measuring(Exception):
        pass

    def measure(*args, **kwargs):
        raise Measuring

    monkeypatch.setattr(floors, "measure", measure)
    again = floor_for(ecephys_asset, "ecephys_electrode", "lab", tmp_path)  # served from the cache
    assert again.local_s == floor.local_s and again.profile == "lab"
    changed = Asset(**{**ecephys_asset.__dict__, "etag": "etag-2"})
    with pytest.raises(Measuring):  # a new ETag is a new entry: it is measured again
        floor_for(changed, "ecephys_electrode", "lab", tmp_path)


def test_floor_for_an_open_counts_metadata(ecephys_asset, tmp_path):
    floor = floor_for(ecephys_asset, "open_ecephys", "cross-region", tmp_path)
    assert floor.kind == "open" and floor.chunks == 0
    assert floor.metadata_reads > 1 and floor.metadata_bytes > 0
    assert floor.sequential_s > floor.network_s
    assert floor.decode_s == floor.local_s > 0
    # beside the floor's warm open, the open as a new script's first: pynwb fills its caches once per process
    assert floor.local_fresh_s > floor.local_s


def test_a_fresh_local_open_is_timed_in_a_new_process_and_its_failure_named(ecephys_asset, tmp_path):
    from nwb_cloud.analysis.errors import AnalysisError
    from nwb_cloud.analysis.fresh_open import time_fresh_local_open

    seconds = time_fresh_local_open(ecephys_asset.local_path, "open_ecephys", ecephys_asset.series, repeats=1)
    assert 0 < seconds < 60
    broken = tmp_path / "broken.nwb"
    broken.write_bytes(b"not an HDF5 file")
    with pytest.raises(AnalysisError, match=r"the fresh local open of .*broken.nwb \(open_ecephys\) failed: "):
        time_fresh_local_open(broken, "open_ecephys", ecephys_asset.series, repeats=1)


def test_floor_for_names_what_is_missing(ecephys_asset, tmp_path):
    remote_only = Asset(**{**ecephys_asset.__dict__, "local_path": None})
    with pytest.raises(FloorUnavailable, match="no local copy"):
        floor_for(remote_only, "ecephys_electrode", "in-region", tmp_path)
    with pytest.raises(AnalysisError, match="ophys"):
        floor_for(ecephys_asset, "ophys_patch", "in-region", tmp_path)


def test_loopback_throughput_is_measured_and_kept_for_the_run(store, tmp_path):
    source = tmp_path / "blob.bin"
    source.write_bytes(np.random.default_rng(3).integers(0, 256, 2**20, dtype=np.uint8).tobytes())
    store.client().upload_file(str(source), store.bucket, "analysis/blob.bin")
    assert stored_loopback_throughput(tmp_path) is None
    throughput = measure_loopback_throughput(store, "analysis/blob.bin", data_dir=tmp_path)
    assert 0 < throughput < math.inf
    assert stored_loopback_throughput(tmp_path) == throughput
    with pytest.raises(AnalysisError, match="no such object"):
        measure_loopback_throughput(store, "analysis/missing.bin")


# -- the decoder table -----------------------------------------------------------------------------------------
def test_the_decoder_table_measures_every_decoder_on_both_codecs_and_drives_the_choice():
    from nwb_cloud.analysis.decode import InflateDecoders, decoder_speeds

    table = decoder_speeds("quick", 0, chunk_bytes=(100_000, 1_000_000), repeats=1)
    keys = {(r["decoder"], r["codec"], r["modality"], r["chunk_bytes"]) for r in table}
    assert len(keys) == len(table) == len(inflate.DECODERS) * 2 * 2 * 2
    for row in table:
        assert row["installed"] == (row["decoder"] in inflate.available())
        if row["installed"]:  # every installed decoder gave zlib's bytes, at a speed
            assert row["exact"] and row["output_mb_per_cpu_s"] > 0
            assert row["stored_bytes"] < row["chunk_bytes"]  # the signals compress
    chosen = inflate.choose(inflate.DEFLATE, 1_000_000, table)
    per_decoder = {}
    for row in table:
        if row["installed"] and row["codec"] == inflate.DEFLATE and abs(row["chunk_bytes"] - 1e6) < 1e5:
            per_decoder.setdefault(row["decoder"], []).append(1 / row["output_mb_per_cpu_s"])
    assert chosen == min(per_decoder, key=lambda name: sum(per_decoder[name]))

    bench = InflateDecoders()
    row = next(r for r in table if r["installed"] and r["modality"] == "ecephys" and r["codec"] == "deflate")
    figure = bench.track_output_mb_per_cpu_s(table, row["decoder"], "deflate", row["chunk_bytes"], "ecephys")
    assert figure == row["output_mb_per_cpu_s"]
    with pytest.raises(NotImplementedError):  # a size the table has no chunk for
        bench.track_output_mb_per_cpu_s(table, row["decoder"], "deflate", 10_000_000, "ecephys")
    wrong = [{**row, "exact": False}]
    with pytest.raises(AssertionError, match="other bytes"):
        bench.track_output_mb_per_cpu_s(wrong, row["decoder"], "deflate", row["chunk_bytes"], "ecephys")


def test_the_local_pynwb_baseline_opens_the_file_for_each_repeat(ecephys_asset, monkeypatch):
    """A repeat on the same open file would find the chunks in HDF5's chunk cache (a warm read); the cold
    cell's local counterpart starts each time from a new file object."""
    import nwb_cloud.datasets.local as local
    from nwb_cloud.analysis.decode import time_local_pynwb

    opened = []
    real = local.open_local
    monkeypatch.setattr(local, "open_local", lambda path: opened.append(path) or real(path))
    workload = get_workload("ecephys_electrode")
    seconds, runs = time_local_pynwb(ecephys_asset.local_path, lambda f: workload.run(f, ecephys_asset.series), 3)
    assert runs == 3 and len(opened) == 3 and seconds > 0


def test_a_cold_window_doubles_each_round_trip_until_it_carries_the_connections_rate():
    cold = dataclasses.replace(SLOW, initial_window_bytes=10_000)  # 10 ms round trip, 10 MB/s: full at 100 kB
    assert cost.cold_window_s(cold, 10_000) == pytest.approx(10_000 / (10 * MB))  # one window: no wait
    # 10 kB, then 20 kB one round trip later, then 40 kB: 70 kB arrive in the third round trip
    assert cost.cold_window_s(cold, 70_000) == pytest.approx(0.020 + 40_000 / (10 * MB))
    # 10 + 20 + 40 + 80 kB in the first four round trips; then the window (100 kB) carries the rate
    assert cost.cold_window_s(cold, 1_150_000) == pytest.approx(0.040 + 1_000_000 / (10 * MB))
    assert cost.cold_window_s(SLOW, 70_000) == pytest.approx(70_000 / (10 * MB))  # no slow start in the profile
    assert cost.cold_window_s(PROFILES["loopback"], 1e9) == 0.0  # unshaped, unmeasured: free


def test_a_cold_read_pays_slow_start_per_request_and_never_beats_the_ideal():
    cold = dataclasses.replace(SLOW, initial_window_bytes=10_000)
    # 4 requests of 70 kB on 4 connections: one wave, each 3 windows' worth after its first byte (30 ms)
    assert cost.cold_read_s(cold, 4, 280_000, connections=4) == pytest.approx(0.030 + 0.020 + 40_000 / (10 * MB))
    # the same bytes as 8 requests on 4 connections: the second wave's windows have grown (full rate)
    two_waves = cost.cold_read_s(cold, 8, 280_000, connections=4)
    assert two_waves == pytest.approx(0.030 + 0.020 + 5_000 / (10 * MB) + 0.030 + 35_000 / (10 * MB))
    for requests, connections in ((1, 1), (4, 4), (8, 4), (64, 16)):
        assert cost.cold_read_s(cold, requests, 280_000, connections) >= cost.ideal_transfer_s(cold, 280_000, warm=True)
    assert cost.cold_read_s(cold, 0, 0, connections=4) == 0.0
