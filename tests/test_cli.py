"""The CLI: bad input gets one clear line and a non-zero exit, never a traceback from deep in a library."""

import os
import subprocess
import sys

import pytest

from nwb_cloud.cloud import upload
from nwb_cloud.cloud.endpoint import free_port


def nwb_cloud(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "nwb_cloud", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def endpoint_args(store):
    return ["--endpoint-url", store.endpoint_url]


@pytest.fixture(scope="module")
def state_env(settings, store, catalog, tmp_path_factory):
    from nwb_cloud.suite.prepare import prepare_run
    from nwb_cloud.suite.state import Grid

    state_file = tmp_path_factory.mktemp("cli-state") / "state.json"
    grid = Grid(workloads=["ophys_patch"], methods=["remfile"], layouts=["workload-friendly"], profiles=["loopback"])
    prepare_run(settings.with_(state_file=state_file), store, grid, progress=False, log=lambda *_: None)
    return {"NWB_CLOUD_STATE": str(state_file)}


def test_read_runs_a_workload(catalog, state_env):
    key = catalog.asset("ophys", "workload-friendly").key
    result = nwb_cloud(
        "read", f"s3://nwb-cloud/{key}", "--method", "fsspec", "--workload", "ophys_patch", env=state_env
    )
    assert result.returncode == 0, result.stderr
    assert "ophys_patch:" in result.stdout and "(87, 32, 32)" in result.stdout


def test_unknown_method(catalog, state_env):
    key = catalog.asset("ophys", "workload-friendly").key
    result = nwb_cloud("read", f"s3://nwb-cloud/{key}", "--method", "remfle", env=state_env)
    assert_one_line_error(result, "'remfle': unknown read method; did you mean remfile?")


def test_unknown_workload(catalog, state_env):
    key = catalog.asset("ophys", "workload-friendly").key
    result = nwb_cloud("read", f"s3://nwb-cloud/{key}", "--workload", "ophys_pach", env=state_env)
    assert_one_line_error(result, "'ophys_pach': unknown workload; did you mean ophys_patch?")


def test_missing_object(state_env):
    result = nwb_cloud("read", "s3://nwb-cloud/tiny/nothing-here.nwb", "--method", "remfile", env=state_env)
    assert_one_line_error(result, "no such object: s3://nwb-cloud/tiny/nothing-here.nwb")


def test_not_an_nwb_file(store, tmp_path, state_env):
    junk = tmp_path / "notes.txt"
    junk.write_text("lab notes, not HDF5\n" * 500)
    upload(store, junk, "junk/notes.nwb", progress=False)
    result = nwb_cloud("read", "s3://nwb-cloud/junk/notes.nwb", "--method", "fsspec", env=state_env)
    assert_one_line_error(result, "not an HDF5/NWB file")


def test_endpoint_down():
    dead = f"http://127.0.0.1:{free_port()}"
    result = nwb_cloud("read", "s3://nwb-cloud/x.nwb", "--method", "fsspec", "--endpoint-url", dead)
    assert_one_line_error(result, f"cannot reach {dead} for s3://nwb-cloud/x.nwb")


def test_bad_url():
    assert_one_line_error(nwb_cloud("read", "https://example.org/x.nwb"), "not an s3://bucket/key URL")


def test_bad_size_is_refused_before_any_work():
    result = nwb_cloud("bench", "--size", "huge")
    assert result.returncode == 2 and "invalid choice: 'huge'" in result.stderr


def test_bad_setting_in_the_environment():
    result = nwb_cloud("serve", env={"NWB_CLOUD_SIZE": "enormous"})
    assert_one_line_error(result, "unknown size 'enormous'")


def test_methods_lists_the_registries():
    result = nwb_cloud("methods")
    assert result.returncode == 0
    for name in ("remfile", "fsspec", "neuroconv-default", "ophys_patch", "in-region"):
        assert name in result.stdout


def test_the_cli_starts_without_importing_the_heavy_stack():
    """Batch job steps run `nwb-cloud` once per step: building the parser must not import pynwb, h5py or boto3."""
    code = (
        "import sys; from nwb_cloud.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('pynwb', 'h5py', 'boto3', 'zarr', 'scipy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_index_formats_offered_are_the_ones_storage_knows():
    from nwb_cloud.cli.index import FORMATS
    from nwb_cloud.refs.storage import FORMATS as STORED

    assert FORMATS == STORED


def test_a_missing_series_is_one_line(catalog, state_env):
    key = catalog.asset("ophys", "workload-friendly").key
    args = ["--method", "fsspec", "--workload", "ophys_patch", "--series", "acquisition/Nope"]
    result = nwb_cloud("read", f"s3://nwb-cloud/{key}", *args, env=state_env)
    assert_one_line_error(result, "has no 'acquisition/Nope' (there: acquisition/")


def test_read_with_obstore_through_the_embedded_endpoint(catalog, state_env):
    """rclone serve s3 answers ranged GETs with 200; read goes through the proxy that restores S3's 206."""
    key = catalog.asset("ophys", "workload-friendly").key
    result = nwb_cloud(
        "read", f"s3://nwb-cloud/{key}", "--method", "obstore", "--workload", "ophys_patch", env=state_env
    )
    assert result.returncode == 0, result.stderr
    assert "ophys_patch:" in result.stdout and "(87, 32, 32)" in result.stdout
