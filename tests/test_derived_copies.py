"""Copies derived from an asset are keyed by its ETag and size: an overwritten asset never serves old bytes."""

import h5py
import numpy as np
import pytest

from nwb_cloud.access import AccessError, get_method
from nwb_cloud.access.derived import StaleCopy
from nwb_cloud.cloud import upload

DERIVED = ("hdmf-zarr", "lindi-json")


def _series(opened, path: str) -> np.ndarray:
    group, name = path.split("/")
    return getattr(opened.nwbfile, group)[name].data[:]


def _expected(local_path: str, series: str) -> np.ndarray:
    with h5py.File(local_path, "r") as file:
        return file[f"{series}/data"][:]


@pytest.fixture(scope="module")
def versions(catalog):
    """Two different files of one modality and layout family: the asset's first and second version."""
    first = catalog.asset("ophys", "workload-friendly")
    second = catalog.asset("ophys", "neuroconv-default")
    return first, second


@pytest.mark.parametrize("name", DERIVED)
def test_an_overwritten_asset_refuses_its_stale_copy_until_prepared_again(store, versions, name):
    first, second = versions
    key = f"derived/{name}/asset.nwb"
    method = get_method(name)
    upload(store, first.local_path, key, progress=False)
    method.prepare(store, key, first.local_path)
    with method(store, key) as opened:
        np.testing.assert_array_equal(_series(opened, first.series), _expected(first.local_path, first.series))

    upload(store, second.local_path, key, progress=False)  # same name, other bytes
    with pytest.raises(StaleCopy, match=rf"{name}: .* was made from another version of s3://nwb-cloud/{key} \(ETag"):
        method(store, key)

    method.prepare(store, key, second.local_path)  # rebuilt, not skipped
    with method(store, key) as opened:
        np.testing.assert_array_equal(_series(opened, second.series), _expected(second.local_path, second.series))


def test_the_index_cache_is_keyed_by_etag_and_size(store, versions, tmp_path):
    from nwb_cloud.refs import build_index
    from nwb_cloud.refs.cache import AssetIdentity, IndexCache

    first, second = versions
    key = "derived/index/asset.nwb"
    upload(store, first.local_path, key, progress=False)
    cache = IndexCache(tmp_path / "indexes")
    identity = AssetIdentity.of(store, key)
    cache.put(identity, build_index(identity.url, storage_options=store.s3fs_options()), "json")
    assert cache.get(identity) is not None
    upload(store, second.local_path, key, progress=False)
    assert cache.get(AssetIdentity.of(store, key)) is None  # the new version has no index yet


@pytest.mark.parametrize("name", DERIVED)
def test_a_refused_copy_is_one_line_naming_the_method(store, versions, name):
    """A wrong secret: the store refuses the copy's checks (the asset's HEAD, the copy's record or JSON)."""
    first, _ = versions
    key = f"derived/{name}/refused.nwb"
    upload(store, first.local_path, key, progress=False)
    get_method(name).prepare(store, key, first.local_path)
    wrong = type(store)(**{**store.to_dict(), "secret_key": "not-the-secret"})
    with pytest.raises(AccessError) as refused:
        get_method(name)(wrong, key)
    message = str(refused.value)
    assert message.startswith(f"{name}: ") and "\n" not in message, message
    assert not isinstance(refused.value, StaleCopy)
    assert "not-the-secret" not in message


def test_the_readers_failures_name_the_method_and_the_object(store):
    from nwb_cloud.access.base import reader_errors
    from nwb_cloud.refs.fetch import FetchError, Refused, Unreachable

    expected = {
        Refused("NoSuchKey: s3://b/k", "NoSuchKey"): "m: no copy at s3://b/k",
        Refused("AccessDenied: s3://b/k", "AccessDenied"): "m: AccessDenied: s3://b/k",
        Unreachable(store, "s3://b/k", "ConnectionRefusedError"): "m: cannot reach the store for s3://b/k: "
        "ConnectionRefusedError",
        FetchError("cannot read s3://b/k: IncompleteRead after 4 attempts"): "m: cannot read s3://b/k: "
        "IncompleteRead after 4 attempts",
    }
    for raised, message in expected.items():
        with pytest.raises(AccessError) as caught, reader_errors("m", "s3://b/k", missing="no copy at s3://b/k"):
            raise raised
        assert str(caught.value) == message
