"""The embedded S3 endpoint: start, serve real S3 requests, stop cleanly, fail clearly."""

import socket
from pathlib import Path

import botocore
import pytest

from nwb_cloud.cloud import Endpoint, EndpointError, StoreError, upload
from nwb_cloud.cloud.endpoint import SERVE_OPTIONS


def test_serves_put_get_range_and_stops(tmp_path):
    endpoint = Endpoint(tmp_path / "s3").start()
    try:
        store = endpoint.create_bucket("bucket-a")
        payload = bytes(range(256)) * 1000
        (tmp_path / "blob").write_bytes(payload)
        upload(store, tmp_path / "blob", "dir/blob", progress=False)
        client = store.client()
        ranged = client.get_object(Bucket="bucket-a", Key="dir/blob", Range="bytes=1000-1999")["Body"].read()
        assert ranged == payload[1000:2000]
        assert store.head("dir/blob")["size"] == len(payload)
        assert (tmp_path / "s3" / "bucket-a" / "dir" / "blob").read_bytes() == payload
        assert "bucket-a" in {b["Name"] for b in client.list_buckets()["Buckets"]}
        assert endpoint.create_bucket("bucket-a").bucket == "bucket-a"  # idempotent
    finally:
        endpoint.stop()
    assert not endpoint.running
    endpoint.stop()  # stopping twice is harmless
    with pytest.raises(botocore.exceptions.EndpointConnectionError):
        store.client(retries={"max_attempts": 1}).head_object(Bucket="bucket-a", Key="dir/blob")


def test_the_endpoint_turns_off_rclones_defaults_that_distort_a_benchmark(endpoint):
    arguments = (Path("/proc") / str(endpoint.pid) / "cmdline").read_bytes().decode().split("\0")
    for option, value in zip(SERVE_OPTIONS[::2], SERVE_OPTIONS[1::2], strict=True):
        assert arguments[arguments.index(option) + 1] == value
    assert {"--vfs-read-wait", "--buffer-size"} <= set(arguments)


def test_credentials_are_required_and_never_in_repr(endpoint, store):
    anonymous = type(store)(bucket=store.bucket, endpoint_url=store.endpoint_url)
    with pytest.raises(StoreError, match="refused|denied"):
        anonymous.head("anything")
    assert store.secret_key not in repr(store) and store.access_key not in repr(store)


def test_port_in_use_is_a_clear_error(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EndpointError, match=f"{port}"):
            Endpoint(tmp_path / "s3", port=port).start()


@pytest.mark.parametrize("port", [0, 70000, -5])
def test_bad_port_is_refused(tmp_path, port):
    with pytest.raises(EndpointError, match="bad port"):
        Endpoint(tmp_path / "s3", port=port).start()


def test_a_broken_ca_bundle_in_the_environment_does_not_break_the_endpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "no-such-bundle.pem"))
    with Endpoint(tmp_path / "s3") as endpoint:
        store = endpoint.create_bucket("bucket-b")
        store.client().put_object(Bucket="bucket-b", Key="k", Body=b"x")
        assert store.head("k")["size"] == 1


def test_missing_object_names_the_object(store):
    with pytest.raises(StoreError, match="no such object: s3://nwb-cloud/missing/key.nwb"):
        store.head("missing/key.nwb")


def test_upload_of_a_missing_file_is_refused(store, tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        upload(store, tmp_path / "nope.nwb", "nope.nwb", progress=False)


def test_a_presigned_url_is_the_one_botocores_client_signs_and_the_server_checks_it(store, monkeypatch):
    """``Store.presign`` signs with botocore's SigV4 query signer and no client (making one costs ~50 ms)."""
    import datetime
    import urllib.error
    import urllib.request

    import botocore.auth

    key = "presign/a b+c~é.bin"
    payload = bytes(range(256)) * 4
    store.client().put_object(Bucket=store.bucket, Key=key, Body=payload)
    now = datetime.datetime(2026, 12, 5, 12, 0, 0, tzinfo=datetime.UTC)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: now)
    expected = store.client().generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": key}, ExpiresIn=600
    )
    assert store.presign(key, "GET", 600) == expected
    monkeypatch.undo()
    signed = store.presign(key, "GET", 600)
    assert urllib.request.urlopen(signed, timeout=10).read() == payload
    tampered = signed[:-4] + ("0000" if not signed.endswith("0000") else "1111")
    with pytest.raises(urllib.error.HTTPError, match="403"):
        urllib.request.urlopen(tampered, timeout=10)
    head = urllib.request.Request(store.presign(key, "HEAD", 600), method="HEAD")
    assert int(urllib.request.urlopen(head, timeout=10).headers["Content-Length"]) == len(payload)
    # anonymous: the plain URL, path-style on an endpoint, virtual-hosted on AWS where the bucket's name allows
    anonymous = type(store)(bucket=store.bucket, endpoint_url=store.endpoint_url)
    assert anonymous.presign(key) == f"{store.endpoint_url.rstrip('/')}/{store.bucket}/presign/a%20b%2Bc~%C3%A9.bin"
    assert type(store)("dandiarchive").http_url("blobs/x") == "https://dandiarchive.s3.us-east-1.amazonaws.com/blobs/x"
    assert (
        type(store)("my.bucket", region="eu-west-1").http_url("k") == "https://s3.eu-west-1.amazonaws.com/my.bucket/k"
    )
