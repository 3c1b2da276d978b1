"""The ``real`` profile measured against a store, and a store's temporary credentials reaching every client."""

from nwb_cloud.access.obstore_h5py import s3_store
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.cloud.realnet import measure_real_profile
from nwb_cloud.cloud.store import Store


def test_the_real_profile_is_unshaped_until_measured():
    assert not PROFILES["real"].shaped and not PROFILES["loopback"].shaped
    assert all(PROFILES[name].shaped for name in ("in-region", "cross-region", "lab"))


def test_measuring_the_real_profile_leaves_the_store_as_it_was(endpoint):
    store = endpoint.create_bucket("realnet")
    profile = measure_real_profile(store, size=4 * 2**20, samples=5, streams=2, parallel=4, scratch_prefix="lab/")
    assert profile.name == "real" and profile.shaped
    assert 0 < profile.rtt_s < 0.05 and profile.first_byte_s >= 0  # loopback: well under a millisecond or two
    assert profile.connection_bandwidth > 10e6 and profile.total_bandwidth >= profile.connection_bandwidth
    assert profile.connect_rtts == 1  # plain HTTP: no TLS handshake
    assert endpoint.secret_key not in profile.description and "Signature" not in profile.description
    assert store.client().list_objects_v2(Bucket="realnet").get("KeyCount", 0) == 0  # the probe object is gone

    store.client().put_object(Bucket="realnet", Key="asset.bin", Body=b"x" * 2**20)
    read_only = measure_real_profile(store, key="asset.bin", size=4 * 2**20, samples=3, streams=1, parallel=2)
    assert read_only.connection_bandwidth > 0  # a read-only store is read, not written: the object stays
    assert store.client().list_objects_v2(Bucket="realnet")["KeyCount"] == 1


def test_a_session_token_reaches_every_client():
    store = Store("bucket", region="us-east-2", access_key="AKIA", secret_key="secret", session_token="token")
    assert store.client()._request_signer._credentials.token == "token"
    assert store.s3fs_options()["token"] == "token"
    assert "token" not in repr(store) and "secret" not in repr(store)
    assert s3_store(store).config["session_token"] == "token"
    plain = Store("bucket", access_key="AKIA", secret_key="secret")
    assert "token" not in plain.s3fs_options()
