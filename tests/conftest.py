"""Shared fixtures: one embedded endpoint and one set of tiny assets per test session."""

from __future__ import annotations

import contextlib
import subprocess
import time

import pytest

from nwb_cloud.cloud import Endpoint
from nwb_cloud.datasets.catalog import prepare_embedded
from nwb_cloud.datasets.layouts import QUICK_LAYOUTS
from nwb_cloud.settings import Settings


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("nwb-cloud-data")


@pytest.fixture(scope="session")
def endpoint(data_dir):
    with Endpoint(data_dir / "s3") as running:
        yield running


@pytest.fixture(scope="session")
def store(endpoint):
    return endpoint.create_bucket("nwb-cloud")


@pytest.fixture(scope="session")
def reading_store(endpoint, store):
    """The store as the benchmarks read it: through the (unshaped) loopback proxy, which also restores S3's
    206 status for ranged GETs that rclone serve s3 answers with 200."""
    from nwb_cloud.cloud.profiles import PROFILES
    from nwb_cloud.cloud.proxy_process import ProxyProcess

    with ProxyProcess(endpoint.url, PROFILES["loopback"]) as proxy:
        yield store.via(proxy.url)


@pytest.fixture(scope="session")
def settings(data_dir):
    return Settings(data_dir=data_dir, size="tiny", seed=0)


@pytest.fixture(scope="session")
def catalog(settings, store):
    """Every modality in the representative layouts (quick mode's), tiny, uploaded to the session's endpoint."""
    layouts = QUICK_LAYOUTS  # the whole study matrix is written and checked once, in test_study_layouts.py
    return prepare_embedded(store, settings.data_dir, "tiny", 0, layouts=layouts, progress=False, log=lambda *_: None)


@contextlib.contextmanager
def serve_read_only(root, bucket: str, probe_key: str, credentials: tuple[str, str] | None = None):
    """``rclone serve s3 --read-only`` over the endpoint's folder ``root`` (writes refused; anonymous reads
    when no ``credentials``, as DANDI's bucket): yields its Store of ``bucket`` once ``probe_key`` answers."""
    from nwb_cloud.cloud.endpoint import SERVE_OPTIONS, free_port, rclone_binary, rclone_env
    from nwb_cloud.cloud.store import Store

    port = free_port()
    command = [rclone_binary(), "serve", "s3", str(root), "--addr", f"127.0.0.1:{port}", "--read-only",
               *SERVE_OPTIONS]  # fmt: skip
    if credentials:
        command += ["--auth-key", ",".join(credentials)]
    process = subprocess.Popen(command, env=rclone_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        access, secret = credentials or (None, None)
        store = Store(bucket, f"http://127.0.0.1:{port}", "us-east-1", access, secret)
        deadline = time.monotonic() + 20
        while True:
            try:
                store.head(probe_key)
                break
            except Exception:  # noqa: BLE001 - not answering yet
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield store
    finally:
        process.terminate()
        process.wait(timeout=10)
