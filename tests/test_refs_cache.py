"""The local index cache: reuse, a changed asset never served stale, corrupt entries, concurrent builders."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor

import pytest
from pynwb import NWBHDF5IO

from nwb_cloud.access.kerchunk_refs import open_index
from nwb_cloud.cloud import upload
from nwb_cloud.refs import CorruptIndex, build_index
from nwb_cloud.refs.cache import AssetIdentity, IndexCache, cached_index
from nwb_cloud.refs.compare import compare_containers


@pytest.fixture
def asset_key(store, catalog, request):
    key = f"refs-cache/{request.node.name}.nwb"
    upload(store, catalog.assets["ecephys/workload-friendly"].local_path, key, progress=False)
    return key


def test_an_index_is_built_once_then_reused(store, catalog, asset_key, tmp_path):
    cache = IndexCache(tmp_path)
    asset = AssetIdentity.of(store, asset_key)
    builds = []

    def build():
        builds.append(1)
        return build_index(asset.url, storage_options=store.s3fs_options())

    first = cache.get_or_build(asset, build)
    second = cache.get_or_build(asset, build)
    assert len(builds) == 1 and second == first
    assert first["nwb_cloud"]["cached_for"] == {"url": asset.url, "etag": asset.etag, "size": asset.size}
    local = catalog.assets["ecephys/workload-friendly"].local_path
    with open_index(second, store) as opened, NWBHDF5IO(local, "r") as expected:
        assert not compare_containers(expected.read(), opened.nwbfile)


def test_a_changed_asset_gets_a_new_index_and_the_old_one_goes(store, catalog, asset_key, tmp_path):
    cache = IndexCache(tmp_path)
    before = cached_index(store, asset_key, cache)
    upload(store, catalog.assets["ophys/neuroconv-default"].local_path, asset_key, progress=False)
    after = cached_index(store, asset_key, cache)
    assert after["nwb_cloud"]["source_bytes"] == catalog.assets["ophys/neuroconv-default"].size_bytes
    assert after["nwb_cloud"]["cached_for"]["etag"] != before["nwb_cloud"]["cached_for"]["etag"]
    assert "acquisition/TwoPhotonSeries/.zgroup" in after["refs"]
    assert [p.name for p in tmp_path.iterdir()] == [cache.path(AssetIdentity.of(store, asset_key)).name]


def test_a_corrupt_entry_is_named_and_a_rebuild_repairs_it(store, asset_key, tmp_path):
    cache = IndexCache(tmp_path)
    cached_index(store, asset_key, cache)
    path = cache.path(AssetIdentity.of(store, asset_key))
    path.write_text(path.read_text()[:1000])  # a truncated write from a crashed tool
    with pytest.raises(CorruptIndex, match=rf"{path.name}.*corrupt.*rebuild"):
        cached_index(store, asset_key, cache)
    repaired = cached_index(store, asset_key, cache, rebuild=True)
    assert cached_index(store, asset_key, cache) == repaired


def _build_into(store, key, directory) -> int:
    return len(cached_index(store, key, IndexCache(directory), rebuild=True)["refs"])


def test_concurrent_builders_leave_one_whole_entry(store, asset_key, tmp_path):
    cache = IndexCache(tmp_path)
    asset = AssetIdentity.of(store, asset_key)
    seen, stop = [], threading.Event()

    def read_while_building():
        while not stop.is_set():
            refs = cache.get(asset)  # raises CorruptIndex if a reader ever saw a partial file
            if refs is not None:
                seen.append(len(refs["refs"]))

    reader = threading.Thread(target=read_while_building)
    reader.start()
    try:
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            sizes = list(pool.map(_build_into, [store] * 2, [asset_key] * 2, [tmp_path] * 2))
    finally:
        stop.set()
        reader.join()
    assert len(set(sizes)) == 1
    assert set(seen) <= set(sizes)
    assert [p.name for p in tmp_path.iterdir()] == [cache.path(asset).name]  # no partial files left
    assert len(cache.get(asset)["refs"]) == sizes[0]
