"""External links on S3: the linked file beside the asset is read through its own index (cache or sidecar)."""

from __future__ import annotations

import numpy as np
import pytest
from pynwb import NWBHDF5IO

from nwb_cloud.access import nwb_index
from nwb_cloud.cloud import upload
from nwb_cloud.refs.cache import IndexCache
from nwb_cloud.refs.compare import compare_containers
from nwb_cloud.refs.locate import NoIndex
from tests.corpus.pynwb_files import external_link_file


@pytest.fixture(scope="module")
def linked(store, tmp_path_factory):
    path = external_link_file(tmp_path_factory.mktemp("external") / "processed.nwb")
    for name in ("processed.nwb", "raw.nwb"):
        upload(store, path.with_name(name), f"external/{name}", progress=False)
    return path


def test_an_external_link_is_read_through_the_linked_files_index(store, linked, tmp_path):
    cache = IndexCache(tmp_path / "indexes")
    nwb_index.prepare(store, "external/processed.nwb", str(linked))  # published; the raw file's index is not
    with pytest.raises(NoIndex, match=r"external/raw\.nwb"):  # and is not to be built: named, at the open
        nwb_index.open_nwb_index(store, "external/processed.nwb", cache=cache, build=False)
    for build in (True, False):  # built into the cache at the first open, found there at the second
        opened = nwb_index.open_nwb_index(store, "external/processed.nwb", cache=cache, build=build)
        with opened, NWBHDF5IO(linked, "r") as expected:
            assert not compare_containers(expected.read(), opened.nwbfile)
            assert np.array_equal(opened.nwbfile.acquisition["linked"].data[:], np.arange(50.0))
    assert {entry.url.rpartition("/")[2] for entry in cache.entries()} >= {"raw.nwb"}
