"""The fast data path of the index: request plans, the decode pipeline, and the nwb-index read method.

Every read is compared exactly with h5py's read of the local source; plans and budgets are checked on
hand-made inputs whose answer is known; concurrency, coalescing, splitting and retries are observed at the
shaping proxy, where the requests really arrive.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import h5py
import hdf5plugin
import numpy as np
import pytest
import zarr
from pynwb import NWBHDF5IO
from zarr.storage import DirectoryStore

from nwb_cloud.access import nwb_index, open_nwb
from nwb_cloud.cloud import upload
from nwb_cloud.cloud.endpoint import free_port
from nwb_cloud.cloud.faults import Faults
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.cloud.proxy import ShapingProxy
from nwb_cloud.cloud.store import Store, StoreError
from nwb_cloud.datasets.session import write_session
from nwb_cloud.refs import CorruptIndex, build_index
from nwb_cloud.refs import sidecar as sidecars
from nwb_cloud.refs.cache import AssetIdentity, IndexCache
from nwb_cloud.refs.compare import assert_same_nwb, compare_containers
from nwb_cloud.refs.fetch import MAX_BACKOFF_S, FetchError, RangeReader, backoff_s
from nwb_cloud.refs.handle import IndexHandle
from nwb_cloud.refs.locate import NoIndex
from nwb_cloud.refs.pipeline import Batch, Wanted
from nwb_cloud.refs.plan import MiB, Policy, Request, apportion, coalesce, plan, slow_start_plan, split
from nwb_cloud.refs.zarr_store import IndexStore, value_bytes
from nwb_cloud.workloads import get_workload
from tests.conftest import serve_read_only

TINY_ASSETS = ["ecephys/neuroconv-default", "ecephys/workload-friendly", "ophys/neuroconv-default",
               "ophys/workload-friendly"]  # fmt: skip
READS = {"ecephys": "ecephys_electrode", "ophys": "ophys_patch"}


# -- plans: known answers ------------------------------------------------------------------------------------
def test_nearby_ranges_are_coalesced_up_to_the_gap_and_the_size():
    ranges = [(100, 110), (0, 10), (15, 20), (21, 40), (1000, 1010)]
    assert coalesce(ranges, max_gap=5, max_size=1000) == [
        Request(0, 40, (1, 2, 3)),
        Request(100, 110, (0,)),
        Request(1000, 1010, (4,)),
    ]
    assert coalesce(ranges, max_gap=100, max_size=1000) == [Request(0, 110, (1, 2, 3, 0)), Request(1000, 1010, (4,))]
    assert coalesce(ranges, max_gap=100, max_size=30) == [
        Request(0, 20, (1, 2)), Request(21, 40, (3,)), Request(100, 110, (0,)), Request(1000, 1010, (4,)),
    ]  # fmt: skip
    assert coalesce([(0, 10), (10, 20)], max_gap=0, max_size=20) == [Request(0, 20, (0, 1))]
    assert coalesce([], max_gap=0, max_size=20) == []


def test_large_ranges_are_split_into_equal_parts():
    assert split(0, 10, 4) == [(0, 4), (4, 7), (7, 10)]
    assert split(100, 108, 4) == [(100, 104), (104, 108)]
    assert split(5, 6, 4) == [(5, 6)]
    assert split(0, 9, 9) == [(0, 9)]


def test_the_part_size_spreads_the_bytes_over_the_connections():
    policy = Policy(concurrency=4, min_part=1 * MiB, max_part=16 * MiB)
    assert policy.part_size(100) == 1 * MiB  # small reads: never below the part floor
    assert policy.part_size(40 * MiB) == 10 * MiB  # spread over the 4 connections
    assert policy.part_size(400 * MiB) == 16 * MiB  # capped


def test_a_plan_coalesces_splits_and_keeps_the_readers_order():
    policy = Policy(concurrency=2, max_gap=10, min_part=100, max_part=100)
    ranges = [(1000, 1250), (0, 40), (45, 90), (500, 560)]  # a 250-byte chunk first, then small ones
    assert plan(ranges, policy) == [
        Request(1000, 1084, (0,)), Request(1084, 1167, (0,)), Request(1167, 1250, (0,)),  # split in 3 parts
        Request(0, 90, (1, 2)),  # coalesced across a 5-byte gap
        Request(500, 560, (3,)),
    ]  # fmt: skip


def test_a_read_one_wave_can_carry_takes_one_request_per_connection():
    policy = Policy(concurrency=8, min_part=128 * 1024, max_part=8 * MiB)
    # four ~7 MB chunks (NeuroConv's default, one electrode): cut at a fixed part size they would be 12
    # requests, a second wave behind the first; apportioned, 8 requests of ~3.4 MB, two per chunk
    sizes = [6_950_000, 6_920_000, 6_890_000, 5_840_000]
    starts = np.cumsum([0, *sizes[:-1]]) + np.arange(4) * 2 * MiB  # not coalesced: 2 MiB apart
    requests = plan([(int(s), int(s) + n) for s, n in zip(starts, sizes)], policy)
    assert len(requests) == 8 and [len([r for r in requests if r.members == (i,)]) for i in range(4)] == [2] * 4
    assert sum(r.size for r in requests) == sum(sizes)
    # more than a wave: parts of at most max_part, in waves
    many = [(i * 6 * MiB, i * 6 * MiB + 5 * MiB) for i in range(27)]
    assert len(plan(many, policy)) == 27


def test_a_small_read_takes_the_fewest_requests_that_arrive_in_the_fewest_round_trips_of_slow_start():
    policy = Policy(concurrency=8, connections=16, min_part=128 * 1024, initial_window=14_600)
    assert policy.window_bytes(1) == 14_600 - 1024 and policy.window_bytes(3) == 7 * 14_600 - 1024
    # 720 kB: two round trips would take 27 parts (more than 16 connections), three take 9 of at most 101 kB
    ranges = [(0, 610_000), (2 * MiB, 2 * MiB + 110_000)]
    requests = plan(ranges, policy)
    assert [r.size for r in requests] == [87_143] * 6 + [87_142] + [55_000] * 2
    assert [r.members for r in requests] == [(0,)] * 7 + [(1,)] * 2  # the reader's order, parts in file order
    assert requests[0].start == 0 and requests[-1].end == 2 * MiB + 110_000
    assert max(r.size for r in requests) <= policy.window_bytes(3)
    # on 8 connections the same read needs four round trips, and then 4 requests carry it
    assert [r.size for r in plan(ranges, replace(policy, connections=8))] == [203_334, 203_333, 203_333, 110_000]
    # one 200 kB chunk: 15 parts, each within the first round trip
    assert [r.size for r in plan([(0, 200_000)], policy)] == [13_334] * 5 + [13_333] * 10
    # neighbours share a request when it still fits the round trips
    assert plan([(0, 5_000), (5_000, 10_000)], policy) == [Request(0, 10_000, (0, 1))]
    # more far-apart chunks than connections: no plan fits one wave, each chunk is its own request
    far = [(i * 4 * MiB, i * 4 * MiB + 10_000) for i in range(20)]
    assert len(plan(far, policy)) == 20 and slow_start_plan(far, policy) is None
    # a large read is not planned by slow start: one request per connection of ``concurrency``
    assert len(plan([(0, 8 * 128 * 1024 + 1)], policy)) == 8


def test_a_batch_keeps_in_flight_what_its_policy_gives_a_read_of_its_size():
    plain, blob, wanted = _laid_end_to_end(24, 20_000, seed=3)
    for min_part, most in ((1 * MiB, 6), (1_000, 2)):  # small (slow start: connections), large (concurrency)
        policy = Policy(concurrency=2, connections=6, max_gap=-1, min_part=min_part, initial_window=1_000)
        reader = MemoryReader(blob, delay_s=0.01, threads=8)
        with ThreadPoolExecutor(2) as decoders:
            batch = Batch(wanted, reader, decoders, policy)
            assert [bytes(batch[str(i)]) for i in range(24)] == plain
        assert reader.peak_outstanding == most


def test_a_read_loads_the_decoders_libraries_once_its_first_requests_are_out(monkeypatch):
    from nwb_cloud.refs import pipeline

    plain, blob, wanted = _laid_end_to_end(6, 20_000, seed=5)
    events = []
    monkeypatch.setattr(pipeline, "load_libraries", lambda: events.append("load"))
    reader = MemoryReader(blob)
    submit_all = reader.submit_all
    reader.submit_all = lambda ranges: events.append("sent") or submit_all(ranges)
    with ThreadPoolExecutor(2) as decoders:
        batch = Batch(wanted, reader, decoders, Policy())
        assert [bytes(batch[str(i)]) for i in range(6)] == plain
    assert events[:2] == ["sent", "load"], events


def test_apportion_gives_every_range_one_request_and_shares_the_rest_by_size():
    assert apportion([100, 100, 200], 8) == [2, 2, 4]
    assert apportion([100, 0, 300], 6) == [2, 1, 3]  # zero: a coalesced request, never split
    assert apportion([5, 5], 1) == [1, 1]  # fewer slots than ranges: one each
    assert sum(apportion([7, 3, 11, 2], 13)) == 13


# -- the pipeline, with a reader that serves bytes from memory -----------------------------------------------
class MemoryReader:
    """Serves ranges of ``data`` after ``delay_s`` on threads, recording how many bytes are started at once."""

    def __init__(self, data: bytes, delay_s: float = 0.002, fail_at: int | None = None, threads: int = 4):
        self.data = data
        self.delay_s = delay_s
        self.fail_at = fail_at
        self.requests: list[tuple[int, int]] = []
        self.outstanding = 0
        self.peak_outstanding = 0
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(threads)

    def submit_all(self, ranges: list[tuple[int, memoryview]]) -> list[Future]:
        with self._lock:
            self.requests.extend((start, start + len(view)) for start, view in ranges)
        return [self._pool.submit(self._read, start, view) for start, view in ranges]

    def _read(self, start: int, view: memoryview) -> None:
        with self._lock:
            self.outstanding += 1
            self.peak_outstanding = max(self.peak_outstanding, self.outstanding)
        try:
            time.sleep(self.delay_s)
            if self.fail_at is not None and start <= self.fail_at < start + len(view):
                raise FetchError(f"cannot read bytes {start}-{start + len(view) - 1} of memory: injected")
            view[:] = self.data[start : start + len(view)]
        finally:
            with self._lock:
                self.outstanding -= 1


def _chunks(count: int, size: int, seed: int = 0) -> tuple[bytes, list[bytes]]:
    rng = np.random.default_rng(seed)
    plain = [rng.integers(0, 50, size, dtype=np.uint8).tobytes() for _ in range(count)]
    return plain, [zlib.compress(p) for p in plain]


def _laid_end_to_end(count: int, size: int, seed: int) -> tuple[list[bytes], bytes, list[Wanted]]:
    """``count`` compressed chunks stored one after another: their plain bytes, the stored blob, the chunks."""
    plain, packed = _chunks(count, size, seed)
    offsets = np.cumsum([0] + [len(p) for p in packed])
    wanted = [Wanted(key=str(i), decode=zlib.decompress, start=int(offsets[i]), end=int(offsets[i + 1]))
              for i in range(count)]  # fmt: skip
    return plain, b"".join(packed), wanted


def test_a_batch_decodes_every_chunk_exactly_and_in_any_layout_of_the_file():
    plain, packed = _chunks(12, 5000)
    layout = [7, 2, 9, 0, 11, 4, 1, 5, 10, 3, 8, 6]  # chunk i is stored at position layout[i]
    blob, where, position = b"", {}, 0
    for i in sorted(range(12), key=lambda i: layout[i]):
        where[i] = (position, position + len(packed[i]))
        blob += packed[i] + b"gap!"  # a few bytes between chunks, read through by coalescing
        position += len(packed[i]) + 4
    wanted = [Wanted(key=f"a/{i}", decode=zlib.decompress, start=where[i][0], end=where[i][1]) for i in range(12)]
    wanted.append(Wanted(key="a/inline", decode=zlib.decompress, data=zlib.compress(b"inline chunk")))
    reader = MemoryReader(blob)
    with ThreadPoolExecutor(2) as decoders:
        batch = Batch(wanted, reader, decoders, Policy(concurrency=4, max_gap=8, min_part=12_000, max_part=12_000))
        assert set(batch) == {w.key for w in wanted} and "a/99" not in batch
        assert [bytes(batch[f"a/{i}"]) for i in range(12)] == plain
        assert batch["a/inline"] == b"inline chunk"
        with pytest.raises(RuntimeError, match="handed over once"):
            batch["a/0"]
    assert len(reader.requests) < 12  # neighbours shared requests


def test_a_batch_holds_at_most_its_budget_and_never_deadlocks():
    plain, blob, wanted = _laid_end_to_end(20, 20_000, seed=1)
    largest = max(w.end - w.start for w in wanted)
    budget = 3 * largest
    reader = MemoryReader(blob, delay_s=0.005)
    with ThreadPoolExecutor(2) as decoders:
        batch = Batch(wanted, reader, decoders, Policy(concurrency=8, max_gap=-1, budget=budget))
        for i in range(20):
            assert bytes(batch[str(i)]) == plain[i]
            time.sleep(0.01)  # the reader is slow: the batch must not run ahead beyond its budget
    assert largest * 2 < batch.peak_started <= budget  # ran ahead, within the budget
    assert len(reader.requests) == 20

    # a budget smaller than one chunk still reads everything (a request the reader waits for always starts)
    reader = MemoryReader(blob)
    with ThreadPoolExecutor(2) as decoders:
        batch = Batch(wanted, reader, decoders, Policy(max_gap=-1, budget=1))
        assert [bytes(batch[str(i)]) for i in range(20)] == plain


def test_a_failed_request_is_raised_for_its_chunks_only():
    plain, blob, wanted = _laid_end_to_end(3, 4000, seed=2)
    reader = MemoryReader(blob, fail_at=wanted[1].start + 5)
    with ThreadPoolExecutor(2) as decoders:
        batch = Batch(wanted, reader, decoders, Policy(max_gap=-1))
        assert bytes(batch["0"]) == plain[0]
        with pytest.raises(FetchError, match="injected"):
            batch["1"]
        assert bytes(batch["2"]) == plain[2]


# -- the Zarr store ------------------------------------------------------------------------------------------
def test_the_store_overrides_every_method_of_the_directory_store_it_poses_as():
    inherited = {name for name in vars(DirectoryStore) if not name.startswith("__")} - set(vars(IndexStore))
    assert not inherited, f"DirectoryStore methods that would touch the file system: {sorted(inherited)}"


@pytest.fixture
def features_key(store, tmp_path):
    """HDF5 storage features whose decoding the store takes over: zstd+shuffle, fletcher32, big-endian, holes."""
    path = tmp_path / "features.h5"
    values = np.random.default_rng(0).integers(-1000, 1000, 200_000).astype(np.int16)
    with h5py.File(path, "w") as file:
        file.create_dataset("zstd", data=values, chunks=(30_000,), shuffle=True, **hdf5plugin.Zstd(clevel=5))
        file.create_dataset("fletcher", data=values, chunks=(30_000,), fletcher32=True, compression="gzip")
        file.create_dataset("big_endian", data=values.astype(">f8"), chunks=(50_000,))
        sparse = file.create_dataset("sparse", shape=(100_000,), dtype="f4", chunks=(10_000,), fillvalue=-1.5)
        sparse[40_000:45_000] = 2.0
    key = "refs-fetch/features.h5"
    upload(store, path, key, progress=False)
    return key, path


def test_the_store_decodes_what_zarr_would_and_serves_no_codecs(store, features_key):
    key, path = features_key
    index = build_index(path, url=store.s3_url(key))
    assert all(isinstance(index["refs"][f"{name}/1"], list) for name in ("zstd", "fletcher", "big_endian"))  # ranges
    with IndexHandle(index, RangeReader(store, key)) as handle:
        group = zarr.open(handle.store, mode="r")
        with h5py.File(path, "r") as file:
            for name in ("zstd", "fletcher", "big_endian", "sparse"):
                array = group[name]
                assert array.dtype == file[name].dtype, name
                assert np.array_equal(array[:], file[name][:]), name
                assert np.array_equal(array[25_000:73_210], file[name][25_000:73_210]), name
                if name in ("zstd", "fletcher"):  # the others are stored without codecs: nothing to decode
                    assert array.compressor is None and array.filters is None, name
                    assert handle.store.codecs(name)["filters"], name
        assert [f["id"] for f in handle.store.codecs("zstd")["filters"]] == ["shuffle", "zstd"]


# -- the read method over the embedded endpoint -------------------------------------------------------------
@pytest.fixture
def index_cache_dir(tmp_path, monkeypatch):
    """The nwb-index method's cache directory for one test (the module's configuration is restored after)."""
    monkeypatch.setattr(nwb_index, "_config", nwb_index._config)
    nwb_index.configure(cache_dir=tmp_path / "indexes")
    return tmp_path / "indexes"


@pytest.fixture(scope="module")
def session_path(tmp_path_factory):
    return write_session(tmp_path_factory.mktemp("fetch-session"), seed=0, n_small_series=6)


@pytest.fixture(scope="module")
def session_key(store, session_path):
    key = "refs-fetch/session.nwb"
    upload(store, session_path, key, progress=False)
    return key


@pytest.mark.parametrize("name", [*TINY_ASSETS, "session"])
def test_every_read_through_the_method_equals_h5py(store, catalog, session_path, session_key, index_cache_dir, name):
    if name == "session":
        key, local = session_key, session_path
    else:
        key, local = catalog.assets[name].key, catalog.assets[name].local_path
    assert nwb_index.prepare(store, key, str(local)) == sidecars.sidecar_key(key)
    index = IndexCache(index_cache_dir).get(AssetIdentity.of(store, key))
    with NWBHDF5IO(str(local), "r") as expected, IndexHandle(index, RangeReader(store, key)) as handle:
        assert_same_nwb(expected, handle.nwb_io())  # every builder and value, then every pynwb object
    with open_nwb(store, key, "nwb-index") as opened, NWBHDF5IO(str(local), "r") as expected:
        nwbfile = expected.read()
        assert not compare_containers(nwbfile, opened.nwbfile)
        if name != "session":
            workload = get_workload(READS[name.split("/")[0]])
            series = catalog.assets[name].series
            workload.check(workload.run(opened.nwbfile, series), workload.run(nwbfile, series))


def test_an_open_reads_the_cache_after_the_first_and_a_changed_asset_is_never_served(
    store, catalog, session_path, index_cache_dir
):
    key = "refs-fetch/changing.nwb"
    upload(store, session_path, key, progress=False)
    sidecars.publish(store, key, build_index(session_path, url=store.s3_url(key)))
    # the library's open (the "nwb-index" benchmark row opens cold, from an empty cache of its own)
    with nwb_index.open_nwb_index(store, key):
        pass
    identity = AssetIdentity.of(store, key)
    assert IndexCache(index_cache_dir).get(identity) is not None  # the fetched sidecar went into the cache

    upload(store, catalog.assets["ophys/workload-friendly"].local_path, key, progress=False)
    with pytest.raises(NoIndex, match=r"changing\.nwb.*was built for.*build and publish it again.*index build"):
        nwb_index.open_nwb_index(store, key)
    nwb_index.configure(build=True)
    with nwb_index.open_nwb_index(store, key) as opened:  # built from the store into the cache
        assert "TwoPhotonSeries" in opened.nwbfile.acquisition
    assert IndexCache(index_cache_dir).get(identity) is None  # the old version's entry is gone


def test_a_corrupt_cached_index_is_named_and_the_rebuild_offered(store, catalog, index_cache_dir):
    asset = catalog.assets["ecephys/workload-friendly"]
    key = "refs-fetch/corrupt-cache.nwb"
    upload(store, asset.local_path, key, progress=False)
    nwb_index.prepare(store, key, asset.local_path)
    path = IndexCache(index_cache_dir).path(AssetIdentity.of(store, key))
    path.write_text(path.read_text()[:500])
    with pytest.raises(CorruptIndex, match=rf"{path.name}.*corrupt.*rebuild"):
        open_nwb(store, key, "nwb-index-warm")  # the row that opens from the configured cache


# -- a store the reader cannot write to (DANDI's bucket is one) --------------------------------------------
@pytest.fixture
def read_only_store(endpoint, store, read_only_key):
    """The embedded endpoint's bucket served again by ``rclone serve s3 --read-only`` (writes are refused)."""
    with serve_read_only(endpoint.root, store.bucket, read_only_key, (store.access_key, store.secret_key)) as served:
        yield served


@pytest.fixture
def read_only_key(store, catalog):
    key = "refs-fetch/read-only.nwb"
    upload(store, catalog.assets["ophys/neuroconv-default"].local_path, key, progress=False)
    return key


def test_a_read_only_store_falls_back_to_the_local_cache(read_only_key, read_only_store, catalog, index_cache_dir,
                                                         tmp_path):  # fmt: skip
    local = catalog.assets["ophys/neuroconv-default"].local_path
    where = nwb_index.prepare(read_only_store, read_only_key, local)
    assert where.startswith(str(index_cache_dir)) and "refused the sidecar" in where
    with open_nwb(read_only_store, read_only_key, "nwb-index-warm") as opened, NWBHDF5IO(local, "r") as expected:
        assert not compare_containers(expected.read(), opened.nwbfile)

    elsewhere = IndexCache(tmp_path / "other-cache")
    with pytest.raises(NoIndex, match=r"read-only\.nwb.*no reference index published.*none is cached.*index build"):
        nwb_index.open_nwb_index(read_only_store, read_only_key, cache=elsewhere)
    seen = []
    opened = nwb_index.open_nwb_index(read_only_store, read_only_key, cache=elsewhere, build=True,
                                      progress=lambda done, total: seen.append((done, total)))  # fmt: skip
    with opened, NWBHDF5IO(local, "r") as expected:
        assert not compare_containers(expected.read(), opened.nwbfile)
    assert seen and seen[-1][0] == seen[-1][1] > 10
    assert elsewhere.get(AssetIdentity.of(read_only_store, read_only_key)) is not None


# -- what arrives at the proxy -------------------------------------------------------------------------------
SHAPED = PROFILES["in-region"]


def _series(catalog, name: str):
    """(asset, path of its bulk array, the array as h5py reads it)"""
    asset = catalog.assets[name]
    with h5py.File(asset.local_path, "r") as file:
        return asset, f"{asset.series.strip('/')}/data", file[f"{asset.series}/data"][:]


def _read_through(proxy, store, asset, path: str, policy: Policy):
    """The whole array ``path`` of ``asset`` read through ``proxy`` with ``policy``, and what it cost there."""
    index = build_index(asset.local_path, url=store.s3_url(asset.key))
    with IndexHandle(index, RangeReader(store.via(proxy.url), asset.key, policy)) as handle:
        array = zarr.open(handle.store, mode="r")[path]
        with proxy.traffic.measure() as cost:
            values = array[:]
    return values, cost


def _chunk_refs(index: dict, path: str) -> list:
    return [v for k, v in index["refs"].items() if k.startswith(path + "/") and k.rpartition("/")[2][0] != "."]


def test_requests_in_flight_never_exceed_the_configured_concurrency(store, endpoint, catalog):
    asset, path, expected = _series(catalog, "ecephys/workload-friendly")  # 32 one-channel chunks
    policy = Policy(concurrency=3, max_gap=-1, warm_connections=0)  # no coalescing: one request per chunk
    with ShapingProxy(endpoint.url, SHAPED) as proxy:
        values, cost = _read_through(proxy, store, asset, path, policy)
    assert np.array_equal(values, expected)
    assert cost.requests_total == 32
    assert cost.peak_connections == 3, cost.to_dict()  # in parallel, and no more than configured


def test_adjacent_chunks_share_requests_and_a_large_chunk_is_split(store, endpoint, catalog):
    asset, path, expected = _series(catalog, "ecephys/workload-friendly")  # 32 chunks, adjacent in the file
    assert len(_chunk_refs(build_index(asset.local_path), path)) == 32
    coalescing = Policy(max_gap=1 * MiB, min_part=64 * MiB, max_part=64 * MiB, connections=1, warm_connections=0)
    with ShapingProxy(endpoint.url, SHAPED) as proxy:
        values, cost = _read_through(proxy, store, asset, path, coalescing)
        assert np.array_equal(values, expected)
        assert cost.requests_total == 1  # the whole run of chunks in one request

        asset, path, expected = _series(catalog, "ophys/neuroconv-default")  # one whole-movie chunk
        assert len(_chunk_refs(build_index(asset.local_path), path)) == 1
        splitting = Policy(concurrency=3, min_part=1, warm_connections=0)  # a third of the bytes per request
        values, cost = _read_through(proxy, store, asset, path, splitting)
        assert np.array_equal(values, expected)
        assert cost.requests_total == 3 and cost.peak_connections == 3  # three parts, side by side


def test_a_reads_requests_go_out_from_its_own_thread_while_fetch_threads_are_free(store, catalog, monkeypatch):
    import http.client

    asset = catalog.assets["ecephys/workload-friendly"]
    blob = Path(asset.local_path).read_bytes()
    senders = []
    send = http.client.HTTPConnection.request
    monkeypatch.setattr(http.client.HTTPConnection, "request",
                        lambda self, *a, **k: senders.append(threading.get_ident()) or send(self, *a, **k))  # fmt: skip
    policy = Policy(concurrency=3, connections=3, warm_connections=0)
    reader = RangeReader(store, asset.key, policy)
    try:
        ranges = [(start, memoryview(bytearray(1000))) for start in range(0, 5000, 1000)]
        for future in reader.submit_all(ranges):
            future.result()
    finally:
        reader.close()
    assert [bytes(view) for _, view in ranges] == [blob[start : start + 1000] for start, _ in ranges]
    # three fetch threads free: three requests sent by the caller, the other two by the threads that take them
    assert senders[:3] == [threading.get_ident()] * 3 and threading.get_ident() not in senders[3:], senders
    assert len(senders) == 5


def test_a_request_that_cannot_be_sent_early_fails_its_own_future_only(store, catalog, monkeypatch):
    asset = catalog.assets["ecephys/workload-friendly"]
    reader = RangeReader(store, asset.key, Policy(warm_connections=0))

    def cannot_sign(*_):
        raise RuntimeError("cannot sign")

    monkeypatch.setattr(reader, "_target", cannot_sign)
    try:
        (future,) = reader.submit_all([(0, memoryview(bytearray(10)))])  # the caller is not the one that fails
        with pytest.raises(RuntimeError, match="cannot sign"):
            future.result()
    finally:
        reader.close()


def test_a_body_that_breaks_off_is_fetched_again_and_the_data_are_exact(store, endpoint, catalog):
    asset, path, expected = _series(catalog, "ecephys/neuroconv-default")  # one chunk: one request
    faults = Faults(schedule={1: "reset", 2: "truncate"}, ranged_only=True)
    with ShapingProxy(endpoint.url, PROFILES["loopback"], faults) as proxy:
        values, cost = _read_through(proxy, store, asset, path, Policy(concurrency=2, warm_connections=0))
    assert np.array_equal(values, expected)
    assert cost.faults == {"reset": 1, "truncate": 1}


def test_a_missing_asset_and_a_dead_endpoint_are_named(store, catalog):
    asset = catalog.assets["ecephys/neuroconv-default"]
    index = build_index(asset.local_path, url=store.s3_url("refs-fetch/gone.nwb"))
    with IndexHandle(index, RangeReader(store, "refs-fetch/gone.nwb")) as handle:
        data = zarr.open(handle.store, mode="r")[f"{asset.series}/data"]
        with pytest.raises(FetchError, match=r"no such object: s3://nwb-cloud/refs-fetch/gone\.nwb"):
            data[:10]
    dead = Store(store.bucket, f"http://127.0.0.1:{free_port()}", store.region, store.access_key, store.secret_key)
    with IndexHandle(index, RangeReader(dead, asset.key, Policy(retries=0))) as handle:
        data = zarr.open(handle.store, mode="r")[f"{asset.series}/data"]
        with pytest.raises(FetchError, match=r"cannot reach http://127\.0\.0\.1:\d+ for s3://nwb-cloud/"):
            data[:10]
    with pytest.raises(Exception, match=r"cannot reach"):
        nwb_index.open_nwb_index(dead, asset.key, cache=IndexCache(Path("/nonexistent-nwb-index-cache")))


# -- Parquet storage -----------------------------------------------------------------------------------------
def test_a_parquet_index_holds_exactly_the_json_index(session_path, tmp_path):
    from nwb_cloud.refs.storage import load_parquet, write_parquet

    url = "s3://bucket/session.nwb"
    index = build_index(session_path, url=url)
    write_parquet(index, tmp_path / "index.parq", record_size=7)  # several records per array
    loaded = load_parquet(tmp_path / "index.parq")
    assert loaded["templates"] == index["templates"] and loaded["nwb_cloud"]["storage"] == "parquet"
    refs = loaded["refs"]
    for key, value in index["refs"].items():
        if key.endswith((".zarray", ".zattrs", ".zgroup")):
            assert json.loads(refs[key]) == json.loads(value), key
        elif isinstance(value, list):
            assert [str(refs[key][0]), int(refs[key][1]), int(refs[key][2])] == [url, *value[1:]], key
        else:
            assert refs[key] == value_bytes(value), key


def test_an_open_from_the_cache_sends_one_head_and_reads_nothing_else(store, endpoint, catalog, index_cache_dir):
    asset = catalog.assets["ecephys/workload-friendly"]
    nwb_index.prepare(store, asset.key, asset.local_path)
    with ShapingProxy(endpoint.url, SHAPED) as proxy:
        shaped = store.via(proxy.url)
        with proxy.traffic.measure() as cost:
            opened = nwb_index.open_nwb_index(shaped, asset.key, policy=Policy(warm_connections=0))
            summary = get_workload("open_ecephys").run(opened.nwbfile, asset.series)  # touches the electrodes
        opened.close()
    assert summary.raw["electrodes"] == 32
    assert cost.requests == {"HEAD": 1}, cost.to_dict()  # small tables are in the index: no chunk reads


def test_an_open_warms_a_connection_for_every_request_a_read_may_send(store, endpoint, catalog, index_cache_dir):
    asset = catalog.assets["ecephys/workload-friendly"]
    nwb_index.prepare(store, asset.key, asset.local_path)
    with ShapingProxy(endpoint.url, SHAPED) as proxy:
        shaped = store.via(proxy.url)
        connections = proxy.traffic.snapshot().connections
        with proxy.traffic.measure() as cost:
            opened = nwb_index.open_nwb_index(shaped, asset.key, policy=Policy(concurrency=4, connections=5))
            deadline = time.monotonic() + 10  # the connections are opened in the background
            while proxy.traffic.snapshot().connections < connections + 6 and time.monotonic() < deadline:
                time.sleep(0.01)
            opened.close()
    # one connection of the reader's own per request a small read may send (``connections``), opened without a
    # request; the open's HEAD goes on one of them when one is ready, else on a connection of its own
    assert cost.requests == {"HEAD": 1}, cost.to_dict()
    assert cost.connections in (5, 6), cost.to_dict()


def test_the_connections_are_opened_before_the_index_is_fetched(store, endpoint, catalog, index_cache_dir,
                                                                monkeypatch):  # fmt: skip
    # the handshakes (two round trips) overlap the index fetch; started during pynwb's build (~0.1 s), they
    # were not done by the first read under cross-region (0.13 s)
    asset = catalog.assets["ecephys/workload-friendly"]
    events = []
    find_index, warm = nwb_index.find_index, RangeReader.warm
    monkeypatch.setattr(nwb_index, "find_index", lambda *a, **k: (events.append("find"), find_index(*a, **k))[1])
    monkeypatch.setattr(RangeReader, "warm", lambda self, *a: (events.append(("warm", self._warmed)), warm(self, *a)))
    nwb_index.prepare(store, asset.key, asset.local_path)
    with ShapingProxy(endpoint.url, SHAPED) as proxy, nwb_index.open_nwb_index(store.via(proxy.url), asset.key) as o:
        assert o.nwbfile is not None
    # warmed first; open_found's call finds the reader warmed and opens nothing more
    assert events == [("warm", False), "find", ("warm", True)]


def test_a_cold_open_finds_the_index_on_the_readers_connections_without_a_botocore_client(
    store, endpoint, catalog, index_cache_dir, monkeypatch
):
    """Making a botocore client costs ~50 ms of CPU (S3's service model): the HEAD and the sidecar's GET go on
    the reader's own connections, signed by botocore's signer alone, and S3's refusals keep their meaning."""
    asset = catalog.assets["ecephys/workload-friendly"]
    nwb_index.prepare(store, asset.key, asset.local_path)

    def no_client(*args, **kwargs):
        raise AssertionError("a botocore client was made on the direct path")

    monkeypatch.setattr("nwb_cloud.refs.fetch.s3_client", no_client)
    with ShapingProxy(endpoint.url, SHAPED) as proxy:
        shaped = store.via(proxy.url)
        with proxy.traffic.measure() as cost:
            opened = nwb_index.open_nwb_index(shaped, asset.key, cache=IndexCache(index_cache_dir / "empty"),
                                              policy=Policy(warm_connections=0))  # fmt: skip
            with opened:
                summary = get_workload("open_ecephys").run(opened.nwbfile, asset.series)
    assert summary.raw["electrodes"] == 32
    assert cost.requests == {"HEAD": 1, "GET": 1} and cost.connections <= 2, cost.to_dict()  # the HEAD, the sidecar
    with contextlib.closing(RangeReader(store, asset.key)) as reader:
        assert sidecars.head(reader, store, asset.key) == AssetIdentity.of(store, asset.key)
        with pytest.raises(StoreError, match=r"^no such object: s3://nwb-cloud/refs-fetch/none\.nwb$"):
            sidecars.head(reader, store, "refs-fetch/none.nwb")
        with pytest.raises(sidecars.MissingIndex, match=r"no reference index published at s3://.*none\.nwb\.refs"):
            sidecars.fetch_document_body(reader, store, "refs-fetch/none.nwb")
    wrong = Store(store.bucket, store.endpoint_url, store.region, store.access_key, "not-the-secret")
    with (
        contextlib.closing(RangeReader(wrong, asset.key)) as reader,
        pytest.raises(StoreError, match=r"access denied to s3://"),
    ):
        sidecars.head(reader, wrong, asset.key)


def test_a_request_that_ends_after_the_reader_closed_leaves_no_connection_open(store, catalog):
    asset = catalog.assets["ecephys/workload-friendly"]
    reader = RangeReader(store, asset.key)
    connection, response = reader._send("HEAD", asset.key, {})  # in flight, as a speculative open's HEAD
    response.read()
    reader.close()
    reader._release(connection, reusable=True)
    assert reader._idle == [] and connection.sock is None


def test_build_costs_are_measured_for_the_index_and_for_lindi(store, endpoint, catalog):
    from nwb_cloud.refs.measure import build_cost, lindi_build_cost

    asset = catalog.assets["ophys/workload-friendly"]
    with ShapingProxy(endpoint.url, PROFILES["loopback"]) as proxy:
        shaped = store.via(proxy.url)
        ours = build_cost(shaped, asset.key, proxy.traffic)
        theirs = lindi_build_cost(shaped, asset.key, proxy.traffic)
    assert ours["file_bytes"] == theirs["file_bytes"] == asset.size_bytes
    assert 0 < ours["bytes_fetched"] <= ours["wire_bytes"] and 0 < ours["fraction_fetched"] <= 1  # tiny: 3 blocks
    assert ours["requests"] < ours["wire_requests"]  # the wire also sees s3fs's HEAD
    assert ours["index_bytes"] > 0 and theirs["index_bytes"] > 0 and theirs["wire_requests"] > 0
    assert ours["seconds"] > 0 and theirs["seconds"] > 0
    assert "X-Amz-Signature" not in json.dumps(theirs)  # the presigned URL is never returned


def test_a_parquet_sidecar_is_fetched_into_the_cache_and_read_by_both_methods(
    store, session_path, session_key, index_cache_dir, monkeypatch
):
    import nwb_cloud.refs.storage as storage

    monkeypatch.setattr(storage, "PARQUET_THRESHOLD", 5)  # "very many chunks", for a small file
    index = build_index(session_path, url=store.s3_url(session_key))
    assert storage.choose(index) == storage.PARQUET
    sidecars.publish(store, session_key, index)  # auto: Parquet files beside the asset, then the pointer
    listed = store.client().list_objects_v2(Bucket=store.bucket, Prefix=sidecars.parquet_prefix(session_key))
    assert any(item["Key"].endswith(".parq") for item in listed["Contents"])

    opened = nwb_index.open_nwb_index(store, session_key)  # the library's open fills the configured cache
    with opened, NWBHDF5IO(str(session_path), "r") as expected:
        assert not compare_containers(expected.read(), opened.nwbfile)
    identity = AssetIdentity.of(store, session_key)
    folder = IndexCache(index_cache_dir).parquet_path(identity)
    assert folder.is_dir() and storage.is_parquet(IndexCache(index_cache_dir).get(identity))
    with open_nwb(store, session_key, "kerchunk") as opened, NWBHDF5IO(str(session_path), "r") as expected:
        assert not compare_containers(expected.read(), opened.nwbfile)  # stock fsspec over the same Parquet

    victim = next(folder.rglob("*.parq"))
    victim.write_bytes(victim.read_bytes()[:10])  # a truncated download
    with pytest.raises(CorruptIndex, match=rf"{folder.name}.*is 10 bytes.*rebuild"):
        open_nwb(store, session_key, "nwb-index-warm")


class _ScriptedS3:
    """An HTTP server that answers each GET with the next of ``answers`` (status, body) and keeps the requests:
    what S3 says that rclone serve s3 does not (412 on If-Match, 503 SlowDown, error documents)."""

    def __init__(self, answers):
        import http.server

        self.answers, self.requests = list(answers), []
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 - http.server's name
                scripted.requests.append((self.path, dict(self.headers)))
                status, body = scripted.answers.pop(0)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _s3_error(code: str) -> bytes:
    return f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>m</Message></Error>".encode()


def test_a_retry_waits_as_long_as_botocores_standard_mode_would(monkeypatch):
    """The direct path keeps botocore's retry (module docstring), its backoff included: the first retry waits
    up to 1 s, not 2."""
    from botocore.retries.standard import ExponentialBackoff

    monkeypatch.setattr("nwb_cloud.refs.fetch.random.random", lambda: 1.0)  # the longest wait
    botocores = ExponentialBackoff(random=lambda: 1.0)
    for attempt in range(1, 8):
        assert backoff_s(attempt) == botocores.delay_amount(SimpleNamespace(attempt_number=attempt))
    assert backoff_s(1) == 1.0 and backoff_s(7) == MAX_BACKOFF_S


def test_the_direct_path_signs_retries_and_names_what_s3_answered(monkeypatch):
    """Chunk requests bypass botocore's request path (module docstring): what botocore's client did is kept."""
    monkeypatch.setattr("nwb_cloud.refs.fetch.MAX_BACKOFF_S", 0.01)
    body = bytes(range(10))
    server = _ScriptedS3([(503, _s3_error("SlowDown")), (206, body), (412, _s3_error("PreconditionFailed")),
                          (404, _s3_error("NoSuchKey")), (200, b"x" * 50)])  # fmt: skip
    store = Store("bucket", server.url, "us-east-1", "AKIDEXAMPLE", "secret", session_token="token-xyz")
    reader = RangeReader(store, "a/b.nwb", Policy(retries=0))
    try:
        assert reader._direct
        reader.expected_etag = "abc123"
        assert bytes(reader.read(10, 20)) == body  # the 503 was sent again, as botocore's standard mode does
        for path, headers in server.requests:
            assert path.startswith("/bucket/a/b.nwb?") and "X-Amz-Signature=" in path
            assert "X-Amz-Security-Token=token-xyz" in path
            assert headers["Range"] == "bytes=10-19" and headers["If-Match"] == '"abc123"'
        with pytest.raises(FetchError, match=r"b\.nwb changed since its index was read.*abc123.*open it again"):
            reader.read(10, 20)
        with pytest.raises(FetchError, match=r"^no such object: s3://bucket/a/b\.nwb$"):
            reader.read(10, 20)
        with pytest.raises(FetchError, match=r"got 50 bytes \(the server ignores Range\?\)") as error:
            reader.read(10, 20)
        assert "Signature" not in str(error.value)
    finally:
        reader.close()
        server.close()
    anonymous = RangeReader(Store("bucket", server.url), "a/b.nwb")
    try:
        assert "Signature" not in anonymous._target()[1]  # unsigned, as botocore's anonymous client sends it
    finally:
        anonymous.close()


def test_every_chunk_request_carries_the_indexed_etag_and_a_replaced_asset_fails_the_read(store, monkeypatch):
    """S3 answers If-Match with 412 when the object changed (rclone ignores the header: a stubbed client). With a
    proxy in the environment, requests go through botocore's client, as here."""
    from botocore.stub import Stubber

    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    reader = RangeReader(store, "refs-fetch/replaced.nwb", Policy(retries=0))
    assert not reader._direct
    reader.expected_etag = "abc123"
    with Stubber(reader.client) as stub:
        expected = {"Bucket": store.bucket, "Key": "refs-fetch/replaced.nwb", "Range": "bytes=10-19"}
        expected["IfMatch"] = '"abc123"'
        stub.add_client_error("get_object", "PreconditionFailed", http_status_code=412, expected_params=expected)
        with pytest.raises(FetchError, match=r"replaced\.nwb changed since its index was read.*abc123.*open it again"):
            reader.read(10, 20)
        stub.assert_no_pending_responses()
    reader.close()


# -- memory: a read's peak RSS follows the selection and the budget, not the file ------------------------------
PEAK_CHILD = r"""
import json, sys
import numpy as np, zarr
from nwb_cloud.cloud.store import Store
from nwb_cloud.refs.fetch import RangeReader
from nwb_cloud.refs.handle import IndexHandle
from nwb_cloud.refs.plan import Policy
from nwb_cloud.suite.memory import PeakGrowth

spec = json.loads(sys.argv[1])
reader = RangeReader(Store(**spec["store"]), spec["key"], Policy(budget=spec["budget"], warm_connections=0))
with IndexHandle(json.loads(open(spec["index"]).read()), reader) as handle:
    array = zarr.open(handle.store, mode="r")["x"]
    array[:1, 0]  # the pools, codecs and connections exist before the peak is reset
    memory = PeakGrowth()  # the kernel's peak RSS, started again from the current RSS
    memory.start()
    values = array[spec["rows"][0] : spec["rows"][1], spec["column"]]
    growth = memory.bytes()
    print(json.dumps({"growth": growth, "sum": int(values.astype(np.int64).sum()), "n": int(values.size)}))
"""


def _peak_growth(store, key, index_path, rows, column, budget) -> dict:
    spec = {"store": {"bucket": store.bucket, "endpoint_url": store.endpoint_url, "region": store.region,
                      "access_key": store.access_key, "secret_key": store.secret_key},
            "key": key, "index": str(index_path), "rows": rows, "column": column, "budget": budget}  # fmt: skip
    done = subprocess.run([sys.executable, "-c", PEAK_CHILD, json.dumps(spec)], capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_peak_memory_of_a_read_grows_with_the_selection_and_budget_not_with_the_file(store, tmp_path):
    """Two files of one layout, 4x apart in size: the same selection grows the reader's RSS alike. A larger
    selection grows it by about its own size, and a smaller budget holds less in flight."""
    rng = np.random.default_rng(5)
    chunks = (65536, 8)  # 1 MiB of int16 per chunk
    growth = {}
    data = {}
    for rows in (262_144, 1_048_576):  # 4 MiB and 16 MiB per column of 8; 32 MiB and 128 MiB files
        values = np.cumsum(rng.integers(-20, 21, (rows, 32)), axis=0).astype("<i2")
        path = tmp_path / f"x{rows}.h5"
        with h5py.File(path, "w") as file:
            file.create_dataset("x", data=values, chunks=chunks, compression="gzip", compression_opts=4)
        key = f"refs-fetch/memory-{rows}.h5"
        upload(store, str(path), key, progress=False)
        index = build_index(str(path), url=store.s3_url(key))
        index_path = tmp_path / f"x{rows}.json"
        index_path.write_text(json.dumps(index))
        data[rows] = (values, key, index_path)

    for rows, (values, key, index_path) in data.items():
        selection = [0, 262_144]  # the same 4 chunks of column 3 in both files
        peak = _peak_growth(store, key, index_path, selection, 3, budget=64 * MiB)
        assert (peak["n"], peak["sum"]) == (262_144, int(values[:262_144, 3].astype(np.int64).sum()))
        growth[rows] = peak["growth"]
    small, large = growth[262_144], growth[1_048_576]
    assert abs(large - small) <= 0.25 * small + 4 * MiB, growth  # the 4x file is not in the read's memory
    assert small < 32 * MiB, growth  # 4 chunks of 1 MiB: a few MiB fetched and decoded, not the file

    values, key, index_path = data[1_048_576]
    wide = {budget: _peak_growth(store, key, index_path, [0, 1_048_576], 3, budget) for budget in (2 * MiB, 128 * MiB)}
    for peak in wide.values():
        assert peak["sum"] == int(values[:, 3].astype(np.int64).sum())
    # 16 chunks: at most ~budget of compressed bytes in flight (and their decoded chunks) beside the output
    assert wide[2 * MiB]["growth"] < wide[128 * MiB]["growth"], wide
    assert wide[2 * MiB]["growth"] < 2 * MiB + 6 * 1 * MiB + 16 * MiB + 8 * MiB, wide
