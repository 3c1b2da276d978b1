"""``nwb-cloud index``: build (and publish), open, info; every bad input is one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from nwb_cloud.cloud import upload
from nwb_cloud.cloud.endpoint import free_port
from nwb_cloud.refs import sidecar as sidecars
from nwb_cloud.refs.cache import AssetIdentity, IndexCache
from nwb_cloud.suite.state import Grid, RunState


def nwb_cloud(*args, env):
    return subprocess.run(
        [sys.executable, "-m", "nwb_cloud", "index", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=300,
    )


def assert_one_line_error(result, *fragments):
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def env(catalog, tmp_path_factory):
    """A run state naming the embedded endpoint (and its credentials) and a data dir of this module."""
    folder = tmp_path_factory.mktemp("index-cli")
    state = folder / "state.json"
    grid = Grid(workloads=["ophys_patch"], methods=["nwb-index"], layouts=["workload-friendly"], profiles=["loopback"])
    RunState(catalog=catalog, grid=grid, data_dir=str(folder), run_id="index-cli").save(state)
    return {"NWB_CLOUD_STATE": str(state), "NWB_CLOUD_DATA_DIR": str(folder / "data")}


@pytest.fixture(scope="module")
def key(store, catalog):
    key = "index-cli/ecephys.nwb"
    upload(store, catalog.assets["ecephys/workload-friendly"].local_path, key, progress=False)
    return key


def test_build_publish_open_and_info(store, key, env):
    url = f"s3://nwb-cloud/{key}"
    built = nwb_cloud("build", url, "--publish", env=env)
    assert built.returncode == 0, built.stderr
    assert "built the index" in built.stdout and "% of the file" in built.stdout
    assert f"published beside the asset: {url}.refs.json" in built.stdout
    cache = IndexCache(os.path.join(env["NWB_CLOUD_DATA_DIR"], "indexes"))
    assert cache.get(AssetIdentity.of(store, key)) is not None
    assert sidecars.fetch(store, key)["refs"] == cache.get(AssetIdentity.of(store, key))["refs"]

    again = nwb_cloud("build", url, env=env)
    assert again.returncode == 0 and "already holds" in again.stdout

    opened = nwb_cloud("open", url, env=env)
    assert opened.returncode == 0, opened.stderr
    assert "through its index (cache)" in opened.stdout and "ElectricalSeries (45000, 32)" in opened.stdout

    listed = nwb_cloud("info", env=env)
    assert listed.returncode == 0 and "1 cached indexes" in listed.stdout and url in listed.stdout
    described = nwb_cloud("info", url, env=env)
    assert "cache:   current" in described.stdout and "sidecar: current" in described.stdout


def test_open_builds_with_a_progress_bar_when_asked(store, catalog, env):
    key = "index-cli/unindexed.nwb"
    upload(store, catalog.assets["ophys/workload-friendly"].local_path, key, progress=False)
    missing = nwb_cloud("open", f"s3://nwb-cloud/{key}", env=env)
    assert_one_line_error(missing, "no usable reference index", "unindexed.nwb", "nwb-cloud index build")
    built = nwb_cloud("open", f"s3://nwb-cloud/{key}", "--build", env=env)
    assert built.returncode == 0, built.stderr
    assert "through its index (built)" in built.stdout and "TwoPhotonSeries" in built.stdout
    assert "indexing s3://nwb-cloud/index-cli/unindexed.nwb" in built.stderr  # the bar


def test_a_corrupt_cached_index_offers_the_rebuild(store, catalog, env):
    key = "index-cli/corrupt.nwb"
    upload(store, catalog.assets["ophys/neuroconv-default"].local_path, key, progress=False)
    assert nwb_cloud("build", f"s3://nwb-cloud/{key}", env=env).returncode == 0
    cache = IndexCache(os.path.join(env["NWB_CLOUD_DATA_DIR"], "indexes"))
    path = cache.path(AssetIdentity.of(store, key))
    path.write_text(path.read_text()[:300])
    assert_one_line_error(nwb_cloud("open", f"s3://nwb-cloud/{key}", env=env), "corrupt", "--rebuild")
    assert nwb_cloud("build", f"s3://nwb-cloud/{key}", "--rebuild", env=env).returncode == 0
    assert nwb_cloud("open", f"s3://nwb-cloud/{key}", env=env).returncode == 0


def test_a_stale_sidecar_is_refused(store, catalog, env, tmp_path):
    key = "index-cli/stale.nwb"
    upload(store, catalog.assets["ophys/neuroconv-default"].local_path, key, progress=False)
    assert nwb_cloud("build", f"s3://nwb-cloud/{key}", "--publish", env=env).returncode == 0
    upload(store, catalog.assets["ophys/workload-friendly"].local_path, key, progress=False)
    fresh_cache = {**env, "NWB_CLOUD_DATA_DIR": str(tmp_path)}
    assert_one_line_error(nwb_cloud("open", f"s3://nwb-cloud/{key}", env=fresh_cache), "was built for", "stale.nwb")


def test_bad_input_is_one_line(store, key, env):
    assert_one_line_error(nwb_cloud("open", "s3://nwb-cloud/index-cli/absent.nwb", env=env), "no such object")
    assert_one_line_error(nwb_cloud("build", "s3://nwb-cloud/index-cli/absent.nwb", env=env), "no such object")
    assert_one_line_error(nwb_cloud("open", "http://x/y.nwb", env=env), "cannot tell the S3 bucket and key")
    not_hdf5 = "index-cli/text.nwb"
    store.client().put_object(Bucket=store.bucket, Key=not_hdf5, Body=b"not an hdf5 file at all")
    assert_one_line_error(nwb_cloud("build", f"s3://nwb-cloud/{not_hdf5}", env=env), "not an HDF5 file")
    dead = ["--endpoint-url", f"http://127.0.0.1:{free_port()}"]
    assert_one_line_error(nwb_cloud("open", f"s3://nwb-cloud/{key}", *dead, env=env), "cannot reach")
    usage = nwb_cloud("build", f"s3://nwb-cloud/{key}", "--format", "xml", env=env)  # argparse: usage, then the error
    assert usage.returncode == 2 and "invalid choice: 'xml'" in usage.stderr.strip().splitlines()[-1]
