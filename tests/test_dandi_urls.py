"""Reading DANDI as users do: by s3://, https:// object and DANDI API asset URLs, anonymously, against an
endpoint laid out like the ``dandiarchive`` bucket (read-only, anonymous, ``blobs/abc/def/<uuid>`` keys, no
sidecars): the index is built into the local cache on the first open and found there afterwards."""

from __future__ import annotations

import http.server
import threading

import pytest
from pynwb import NWBHDF5IO

from nwb_cloud.cloud import StoreError, upload
from nwb_cloud.cloud.store import Store
from nwb_cloud.cloud.urls import store_for_url
from nwb_cloud.errors import NwbCloudError
from nwb_cloud.refs import sidecar as sidecars
from nwb_cloud.refs.cache import IndexCache
from nwb_cloud.refs.compare import compare_containers
from tests.conftest import serve_read_only

BUCKET = "dandiarchive"
ASSET_ID = "0f5c5a2e-1b7d-4c5e-9a43-6f0f3d6a2b11"
KEY = "blobs/3a1/9c2/3a19c2d4-8b6e-4f0a-a1b2-c3d4e5f60718"


def test_every_form_of_url_names_the_bucket_and_key():
    cases = {
        f"s3://{BUCKET}/{KEY}": (BUCKET, KEY, "us-east-1"),
        f"https://{BUCKET}.s3.amazonaws.com/{KEY}": (BUCKET, KEY, "us-east-1"),
        f"https://{BUCKET}.s3.us-east-2.amazonaws.com/{KEY}?versionId=1": (BUCKET, KEY, "us-east-2"),
        f"https://s3.amazonaws.com/{BUCKET}/{KEY}": (BUCKET, KEY, "us-east-1"),
        f"https://s3.eu-west-1.amazonaws.com/{BUCKET}/a%20b.nwb": (BUCKET, "a b.nwb", "eu-west-1"),
    }
    for url, (bucket, key, region) in cases.items():
        store, found = store_for_url(url)
        assert (store.bucket, found, store.region, store.endpoint_url) == (bucket, key, region, None), url
        assert store.anonymous, url
    for bad in ("https://example.org/file.nwb", "ftp://x/y", f"s3://{BUCKET}/", "not a url"):
        with pytest.raises(StoreError, match="bucket"):
            store_for_url(bad)


@pytest.fixture(scope="module")
def dandi(endpoint, catalog):
    """The embedded endpoint's files, a ``dandiarchive`` bucket with one asset, served read-only and anonymous."""
    endpoint.create_bucket(BUCKET)
    writer = Store(BUCKET, endpoint.url, "us-east-1", endpoint.access_key, endpoint.secret_key)
    upload(writer, catalog.assets["ophys/workload-friendly"].local_path, KEY, progress=False)
    with serve_read_only(endpoint.root, BUCKET, KEY) as served:  # no credentials: anonymous, as DANDI's
        yield served.endpoint_url


@pytest.fixture(scope="module")
def dandi_api():
    """A DANDI API on loopback: an asset's download URL redirects to its object in the bucket."""

    class Api(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 - http.server's name
            if self.path.rstrip("/") == f"/api/assets/{ASSET_ID}/download":
                self.send_response(302)
                self.send_header("Location", f"https://{BUCKET}.s3.amazonaws.com/{KEY}?response-content-"
                                             "disposition=attachment%3B%20filename%3D%22sub-1.nwb%22")  # fmt: skip
            else:
                self.send_response(404)
            self.end_headers()

        do_GET = do_HEAD

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_dandi_urls_open_anonymously_and_the_index_is_built_into_the_cache(dandi, dandi_api, catalog, tmp_path):
    from nwb_cloud.access import nwb_index

    cache = IndexCache(tmp_path / "indexes")
    local = catalog.assets["ophys/workload-friendly"].local_path
    urls = [
        f"{dandi_api}/api/assets/{ASSET_ID}/download/",  # the first open: no sidecar, so the index is built
        f"s3://{BUCKET}/{KEY}",
        f"https://{BUCKET}.s3.amazonaws.com/{KEY}",
        f"{dandi}/{BUCKET}/{KEY}",  # the object URL on the endpoint itself (path style)
    ]
    built_at = None
    for url in urls:
        store, key = store_for_url(url, endpoint_url=dandi)
        assert store.anonymous and (store.bucket, key) == (BUCKET, KEY), url
        with nwb_index.open_url(url, endpoint_url=dandi, cache=cache) as opened, NWBHDF5IO(local, "r") as expected:
            assert not compare_containers(expected.read(), opened.nwbfile), url
            assert opened.nwbfile.acquisition["TwoPhotonSeries"].data[:3, :4, :5].shape == (3, 4, 5)
        entries = cache.entries()
        assert len(entries) == 1 and entries[0].url == f"s3://{BUCKET}/{KEY}", url
        modified = entries[0].path.stat().st_mtime_ns
        assert built_at in (None, modified), f"{url}: the index was built again instead of read from the cache"
        built_at = modified
    with pytest.raises(sidecars.MissingIndex):  # nothing was (or could be) published in the bucket
        sidecars.fetch(Store(BUCKET, dandi), KEY)


def test_a_bad_dandi_url_is_one_named_error(dandi, dandi_api, tmp_path):
    from nwb_cloud.access import nwb_index

    with pytest.raises(StoreError, match=r"HTTP 404"):
        nwb_index.open_url(f"{dandi_api}/api/assets/{'0' * 8}-0000-0000-0000-{'0' * 12}/download/",
                           endpoint_url=dandi, cache=IndexCache(tmp_path))  # fmt: skip
    with pytest.raises(NwbCloudError, match=r"no such object|access denied"):
        nwb_index.open_url(f"s3://{BUCKET}/blobs/missing", endpoint_url=dandi, cache=IndexCache(tmp_path))


def test_the_cli_opens_a_dandi_api_url(dandi, dandi_api, tmp_path):
    import os
    import subprocess
    import sys

    url = f"{dandi_api}/api/assets/{ASSET_ID}/download/"
    command = [sys.executable, "-m", "nwb_cloud", "index", "open", url, "--endpoint-url", dandi, "--build"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "NWB_CLOUD_DATA_DIR": str(tmp_path)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert f"opened {url} through its index (built)" in result.stdout and "TwoPhotonSeries" in result.stdout
