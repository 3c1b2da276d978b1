"""S3 credentials: botocore's chain everywhere, --profile and --anonymous, and a refusal that says what was tried."""

import json
import os
import subprocess
import sys

import pytest

KEY = "creds/one.bin"


def nwb_cloud(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "nwb_cloud", *args], capture_output=True, text=True, timeout=300,
        env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
    )  # fmt: skip


def one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def aws_files(endpoint, store, tmp_path_factory):
    """A private object, and AWS config files with a right and a wrong profile; no other credentials anywhere."""
    store.client().put_object(Bucket=store.bucket, Key=KEY, Body=b"x" * 1000)
    folder = tmp_path_factory.mktemp("aws")
    (folder / "credentials").write_text(
        f"[lab]\naws_access_key_id = {endpoint.access_key}\naws_secret_access_key = {endpoint.secret_key}\n"
        "[stale]\naws_access_key_id = AKIAOLDKEY\naws_secret_access_key = not-the-secret\n"
    )
    (folder / "config").write_text("[profile lab]\nregion = us-east-1\n[profile stale]\nregion = us-east-1\n")
    return {
        "AWS_CONFIG_FILE": str(folder / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "credentials"),
        "AWS_ACCESS_KEY_ID": None, "AWS_SECRET_ACCESS_KEY": None, "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None,
        "NWB_CLOUD_STATE": str(folder / "no-prepared-run.json"),
    }  # fmt: skip


def _index_info(store, env, *extra):
    url = f"s3://{store.bucket}/{KEY}"
    return nwb_cloud(
        "index", "info", url, "--endpoint-url", store.endpoint_url, "--data-dir", "/tmp/x", *extra, env=env
    )


def test_a_profile_from_the_aws_config_files_is_used(store, aws_files):
    result = _index_info(store, aws_files, "--profile", "lab")
    assert result.returncode == 0, result.stderr
    assert "1000 bytes" in result.stdout


def test_the_environment_credentials_are_used(endpoint, store, aws_files):
    env = {**aws_files, "AWS_ACCESS_KEY_ID": endpoint.access_key, "AWS_SECRET_ACCESS_KEY": endpoint.secret_key}
    result = _index_info(store, env)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "extra, env, tried",
    [
        (["--profile", "stale"], {}, "AWS profile 'stale' (the AWS credentials file)"),
        ([], {"AWS_ACCESS_KEY_ID": "AKIAWRONG", "AWS_SECRET_ACCESS_KEY": "wrong"}, "the AWS_* environment variables"),
        (["--anonymous"], {}, "anonymous access (--anonymous)"),
        ([], {}, "anonymous access (no AWS credentials were found)"),
    ],
    ids=["wrong-profile", "wrong-environment", "anonymous", "nothing-found"],
)
def test_a_refusal_is_one_line_naming_the_bucket_and_what_was_tried(store, aws_files, extra, env, tried):
    for command in (["index", "info"], ["read"]):
        url = f"s3://{store.bucket}/{KEY}"
        args = [*command, url, "--endpoint-url", store.endpoint_url, "--data-dir", "/tmp/x", *extra]
        line = one_line(nwb_cloud(*args, env={**aws_files, **env}))
        assert f"s3://{store.bucket}/{KEY}" in line and tried in line, line


def test_an_unknown_profile_is_refused_before_any_work(store, aws_files):
    line = one_line(_index_info(store, aws_files, "--profile", "nope"))
    assert "no such AWS profile" in line and "lab" in line


def test_fleet_plan_takes_the_profile_and_writes_nothing(endpoint, store, aws_files, tmp_path):
    """The fleet's commands take --profile like the others; its plan checks the bucket without writing (a
    read-only endpoint answers it), and write access is proved only when the work starts."""
    from pathlib import Path

    from conftest import serve_read_only

    results = Path(__file__).resolve().parent.parent / "results"
    grid = ["--size", "tiny", "--workload", "ophys_patch", "--method", "remfile", "--layout", "neuroconv-default"]
    with serve_read_only(endpoint.root, store.bucket, KEY, (store.access_key, store.secret_key)) as served:
        bucket = ["--bucket", f"s3://{store.bucket}/fleet", "--endpoint-url", served.endpoint_url]
        fleet = ["--executor", "local", "--machine", "child-a", *grid, *bucket, "--results", str(results),
                 "--data-dir", str(tmp_path)]  # fmt: skip
        planned = nwb_cloud("fleet", "plan", *fleet, "--profile", "lab", "--json", env=aws_files)
        assert planned.returncode == 0, planned.stderr
        assert [child["child"]["name"] for child in json.loads(planned.stdout)["children"]] == ["child-a"]
        assert "write access is proved when the work starts" in " ".join(planned.stderr.split())
        refused = one_line(nwb_cloud("fleet", "plan", *fleet, "--profile", "stale", env=aws_files))
        assert store.bucket in refused and "stale" in refused
        submitted = nwb_cloud("fleet", "submit", *fleet, "--profile", "lab", env=aws_files)  # shows its plan first
        assert submitted.returncode == 2 and "Traceback" not in submitted.stderr, submitted.stderr
        assert f"error: cannot write to s3://{store.bucket}/fleet" in submitted.stderr.splitlines()[-1]
