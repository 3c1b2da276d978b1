"""Digests in every form S3 reports, and places (folder, S3 prefix) that write atomically and verify."""

import base64
import hashlib
import json
import os

import boto3
import pytest
from moto import mock_aws
from moto.core import set_initial_no_auth_action_count

from nwb_cloud.convert import digests as digests_module
from nwb_cloud.convert.digests import Digests
from nwb_cloud.convert.errors import ChecksumMismatch, DestinationError
from nwb_cloud.convert.places import LocalPlace, S3Place, parse_place, place_from_dict


@pytest.fixture
def payload(tmp_path):
    path = tmp_path / "payload.bin"
    path.write_bytes(os.urandom(5 * 2**20 + 123))
    return path


def test_digests_match_independent_hashes_in_every_form(payload, monkeypatch):
    data = payload.read_bytes()
    monkeypatch.setattr(digests_module, "part_size_for", lambda size: 2 * 2**20)
    digests = Digests.of(payload)
    parts = [data[i : i + 2 * 2**20] for i in range(0, len(data), 2 * 2**20)]
    assert digests.size == len(data) and digests.parts == 3
    assert digests.md5 == hashlib.md5(data).hexdigest()
    assert digests.sha256 == hashlib.sha256(data).hexdigest()
    assert digests.md5_multipart == hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + "-3"
    composite = hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest()
    assert digests.sha256_composite == base64.b64encode(composite).decode() + "-3"
    assert Digests.from_dict(json.loads(json.dumps(digests.to_dict()))) == digests


def test_verify_accepts_each_form_and_rejects_other_bytes(payload):
    digests = Digests.of(payload)
    size = digests.size
    assert digests.verify({"ContentLength": size, "ChecksumSHA256": digests.sha256_base64}, "o") == "sha256"
    assert digests.verify({"ContentLength": size, "ChecksumSHA256": digests.sha256_composite}, "o") == (
        "sha256-composite"
    )
    assert digests.verify({"ContentLength": size, "ETag": f'"{digests.md5}"'}, "o") == "md5"
    assert digests.verify({"ContentLength": size, "ETag": digests.md5_multipart}, "o") == "md5-multipart"
    with pytest.raises(ChecksumMismatch, match="holds 5 bytes"):
        digests.verify({"ContentLength": 5, "ETag": digests.md5}, "o")
    with pytest.raises(ChecksumMismatch, match="stored SHA-256"):
        digests.verify({"ContentLength": size, "ChecksumSHA256": base64.b64encode(b"0" * 32).decode()}, "o")
    with pytest.raises(ChecksumMismatch, match="stored ETag"):
        digests.verify({"ContentLength": size, "ETag": '"' + "0" * 32 + '"'}, "o")
    with pytest.raises(ChecksumMismatch, match="neither a checksum nor an ETag"):
        digests.verify({"ContentLength": size}, "o")


def test_parse_place():
    place = parse_place("s3://bucket/a/b/", endpoint_url="http://x:1", region="eu-west-1")
    assert (place.bucket, place.prefix, place.endpoint_url, place.region) == (
        "bucket",
        "a/b",
        "http://x:1",
        "eu-west-1",
    )
    assert place.child("c", "/d/").url("e.nwb") == "s3://bucket/a/b/c/d/e.nwb"
    assert place_from_dict(place.to_dict()) == place
    assert "credentials" not in json.dumps(place.to_dict())
    assert isinstance(parse_place("relative/folder"), LocalPlace)
    with pytest.raises(DestinationError, match="names no bucket"):
        parse_place("s3:///x")
    with pytest.raises(DestinationError, match="only s3:// prefixes and local folders"):
        parse_place("gs://bucket/x")


def test_local_place_writes_atomically_and_verifies(tmp_path, payload):
    place = LocalPlace(tmp_path / "dest")
    place.probe_write()
    assert place.read_json("a/state.json") is None
    place.write_json("a/state.json", {"n": 1})
    assert place.read_json("a/state.json") == {"n": 1}
    digests = Digests.of(payload)
    assert place.put_file(payload, "out/x.nwb", digests) == "sha256"
    assert (tmp_path / "dest/out/x.nwb").read_bytes() == payload.read_bytes()
    assert sorted(p.name for p in (tmp_path / "dest").rglob("*")) == ["a", "out", "state.json", "x.nwb"]
    wrong = Digests(**{**digests.to_dict(), "sha256": "0" * 64})
    with pytest.raises(ChecksumMismatch):
        place.put_file(payload, "out/y.nwb", wrong)
    assert not list((tmp_path / "dest/out").glob("*y.nwb*"))  # neither the file nor its partial remains


def test_s3_place_upload_copy_and_verification(endpoint, payload):
    store = endpoint.create_bucket("places")
    place = parse_place("s3://places/run", store=store)
    place.probe_write()
    digests = Digests.of(payload)
    assert place.put_file(payload, "staging/x.nwb", digests) == "sha256"  # one PUT: full SHA-256 stored
    destination = place.child("final")
    # a server-side copy: rclone's store answers with the MD5 ETag, compared with the local MD5
    assert destination.copy_from(place, "staging/x.nwb", "x.nwb", digests) in ("sha256", "md5")
    assert store.client().get_object(Bucket="places", Key="run/final/x.nwb")["Body"].read() == payload.read_bytes()
    place.write_json("state.json", {"ok": True})
    assert place.read_json("state.json") == {"ok": True} and place.read_json("none.json") is None
    wrong = Digests(**{**digests.to_dict(), "sha256": "0" * 64, "md5": "0" * 32})
    with pytest.raises(ChecksumMismatch):
        place.put_file(payload, "bad.nwb", wrong)
    assert place.size("bad.nwb") is None  # a file that fails verification is deleted
    place.delete_all()
    assert store.client().list_objects_v2(Bucket="places").get("Contents", []) == []


def test_s3_place_refuses_missing_bucket_and_bad_credentials(endpoint):
    with pytest.raises(DestinationError, match="cannot write to s3://no-such-bucket/x.*no such bucket"):
        parse_place("s3://no-such-bucket/x", store=endpoint.store("no-such-bucket")).probe_write()
    wrong = S3Place("places", "x", endpoint.url, credentials=(endpoint.access_key, "wrong-secret"))
    with pytest.raises(DestinationError, match="access denied"):
        wrong.probe_write()


def test_missing_credentials_are_named(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(DestinationError, match="no AWS credentials for s3://bucket/p"):
        S3Place("bucket", "p").probe_write()


@set_initial_no_auth_action_count(4)
@mock_aws
def test_destination_without_write_access_is_refused(monkeypatch):
    """A real IAM denial (moto enforces the user's policy): reading is allowed, writing is not."""
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="dest")
    iam = boto3.client("iam", region_name="us-east-1")
    iam.create_user(UserName="reader")
    read_only = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}
    iam.put_user_policy(
        UserName="reader",
        PolicyName="read-only",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [read_only]}),
    )
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    place = S3Place("dest", "out", credentials=(key["AccessKeyId"], key["SecretAccessKey"]))
    with pytest.raises(DestinationError, match="cannot write to s3://dest/out.*access denied"):
        place.probe_write()
