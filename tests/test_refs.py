"""The NWB-complete reference index: every object, attribute and value as h5py reads them, or a named error."""

from __future__ import annotations

import json

import h5py
import hdf5plugin
import numpy as np
import pytest
import zarr
from fsspec.implementations.reference import ReferenceFileSystem
from pynwb import NWBHDF5IO

import nwb_cloud.refs.source as source_module
from nwb_cloud.access import AccessError, open_nwb
from nwb_cloud.access.kerchunk_refs import open_index, prepare
from nwb_cloud.cloud import upload
from nwb_cloud.datasets.session import write_session
from nwb_cloud.refs import CorruptIndex, RefsError, build_index, open_zarr_io, with_url
from nwb_cloud.refs import sidecar as sidecars
from nwb_cloud.refs.build import DEFAULT_INLINE_THRESHOLD
from nwb_cloud.refs.compare import assert_same_nwb, compare_containers, compare_ios

TINY_ASSETS = ["ecephys/neuroconv-default", "ecephys/workload-friendly", "ophys/neuroconv-default",
               "ophys/workload-friendly"]  # fmt: skip


@pytest.fixture(scope="module")
def session_path(tmp_path_factory):
    return write_session(tmp_path_factory.mktemp("refs-session"), seed=0, n_small_series=6)


@pytest.fixture(scope="module")
def session_refs(session_path):
    return build_index(session_path)


def _local_path(catalog, name: str, session_path):
    return session_path if name == "session" else catalog.assets[name].local_path


# -- fidelity ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [*TINY_ASSETS, "session"])
def test_the_index_reads_exactly_like_h5py(catalog, session_path, name):
    path = _local_path(catalog, name, session_path)
    refs = build_index(path)
    with NWBHDF5IO(path, "r") as expected:
        assert_same_nwb(expected, open_zarr_io(refs))


def test_the_comparison_sees_every_kind_of_change(session_path, session_refs):
    """The fidelity test above can fail: each corruption of the index is reported at the right place."""
    corruptions = {
        "a reference attribute": (
            "units/electrodes/.zattrs",
            lambda text: text.replace("/general/extracellular_ephys/electrodes", "/intervals/trials"),
            "/units/electrodes@.table",
        ),
        "a reference dataset": (
            "stimulus/templates/stimulus_images/order_of_images/0", lambda text: text.replace("frame2", "frame1"),
            "order_of_images",
        ),
        "a link": (
            "processing/behavior/speed/.zattrs", lambda text: text.replace('"timestamps"', '"stamps"'),
            "/processing/behavior/speed: links differ",
        ),
        "a text attribute": (
            "acquisition/ElectricalSeries/.zattrs", lambda text: text.replace("raw voltage", "raw voltagE"),
            "/acquisition/ElectricalSeries@.description",
        ),
    }  # fmt: skip
    for what, (key, change, where) in corruptions.items():
        refs = json.loads(json.dumps(session_refs))
        refs["refs"][key] = change(refs["refs"][key])
        assert refs["refs"][key] != session_refs["refs"][key], what
        with NWBHDF5IO(session_path, "r") as expected:
            found = compare_ios(expected, open_zarr_io(refs))
        assert any(where in difference for difference in found), f"{what} not reported: {found}"

    refs = json.loads(json.dumps(session_refs))  # the pynwb level sees it too, on the object's field
    key = "acquisition/ElectricalSeries/.zattrs"
    refs["refs"][key] = refs["refs"][key].replace("raw voltage", "raw voltagE")
    with NWBHDF5IO(session_path, "r") as expected:
        found = compare_containers(expected.read(), open_zarr_io(refs).read())
    assert [
        d for d in found if d.startswith("ElectricalSeries /acquisition/ElectricalSeries") and ".description" in d
    ], found

    refs = json.loads(json.dumps(session_refs))  # two chunks of the raw series swapped: values differ
    chunks = refs["refs"]
    chunks["acquisition/ElectricalSeries/data/0.0"], chunks["acquisition/ElectricalSeries/data/1.0"] = (
        chunks["acquisition/ElectricalSeries/data/1.0"], chunks["acquisition/ElectricalSeries/data/0.0"],
    )  # fmt: skip
    with NWBHDF5IO(session_path, "r") as expected:
        found = compare_ios(expected, open_zarr_io(refs))
    assert any(d.startswith("/acquisition/ElectricalSeries/data[0]") for d in found), found


def test_nwb_structures_arrive_as_pynwb_objects(session_refs):
    nwbfile = open_zarr_io(session_refs).read()
    series = nwbfile.acquisition["ElectricalSeries"]
    assert series.electrodes.table is nwbfile.electrodes
    assert series.starting_time == 0.25 and isinstance(nwbfile.session_description, str)
    assert [i.name for i in nwbfile.stimulus_template["stimulus_images"].order_of_images[:]] == [
        "frame2", "colour", "frame0", "frame1",
    ]  # fmt: skip
    response = nwbfile.intracellular_recordings["responses"]["response"][0]
    assert response.timeseries is nwbfile.acquisition["response_0000"]
    assert nwbfile.epochs["timeseries"][1][0].timeseries is series
    assert nwbfile.devices["Probe"].model is nwbfile.device_models["SiliconProbe16"]
    assert (
        nwbfile.processing["behavior"]["speed"].timestamps.name == "/processing/behavior/Position/position/timestamps"
    )


# -- what the build reads ------------------------------------------------------------------------------------
def _chunk_ranges(path, dataset: str) -> list[tuple[int, int]]:
    with h5py.File(path, "r") as file:
        ident = file[dataset].id
        infos = [ident.get_chunk_info(i) for i in range(ident.get_num_chunks())]
    return [(info.byte_offset, info.byte_offset + info.size) for info in infos]


@pytest.mark.parametrize("name", ["ecephys/workload-friendly", "ophys/neuroconv-default"])
def test_the_build_reads_metadata_not_chunks(catalog, monkeypatch, name):
    asset = catalog.assets[name]
    reads: list[tuple[int, int]] = []
    readinto = source_module.CountingFile.readinto

    def logged(self, buffer):
        start = self.tell()
        count = readinto(self, buffer)
        reads.append((start, start + count))
        return count

    monkeypatch.setattr(source_module.CountingFile, "readinto", logged)
    refs = build_index(asset.local_path)
    chunks = [
        c for c in _chunk_ranges(asset.local_path, f"{asset.series}/data") if c[1] - c[0] >= DEFAULT_INLINE_THRESHOLD
    ]
    assert chunks
    touched = [c for c in chunks if any(start < c[1] and c[0] < end for start, end in reads)]
    assert not touched, f"the build read {len(touched)} bulk chunks of {len(chunks)}"
    build = refs["nwb_cloud"]["build"]
    assert build["bytes_read"] == sum(end - start for start, end in reads) > 0


def test_a_remote_build_fetches_few_blocks_and_gives_the_local_index(catalog, store):
    asset = catalog.assets["ecephys/neuroconv-default"]
    block = 64 * 2**10  # the tiny file is 2 MB: small blocks, so that "few" means something
    remote = build_index(store.s3_url(asset.key), storage_options=store.s3fs_options(), block_size=block)
    local = build_index(asset.local_path, url=store.s3_url(asset.key))
    assert remote["refs"] == local["refs"] and remote["templates"] == local["templates"]
    build = remote["nwb_cloud"]["build"]
    assert build["fetches"] > 0 and build["bytes_fetched"] <= build["fetches"] * block < asset.size_bytes / 4, build
    assert "secret" not in json.dumps(remote) and store.secret_key not in json.dumps(remote)


def test_with_url_moves_the_index_by_one_value(session_refs):
    moved = with_url(session_refs, "s3://bucket/moved.nwb")
    assert moved["refs"] is session_refs["refs"]
    assert moved["templates"] == {"u": "s3://bucket/moved.nwb"}
    assert any(isinstance(v, list) and v[0] == "{{u}}" for v in session_refs["refs"].values())


# -- the read method over the embedded S3 endpoint -----------------------------------------------------------
@pytest.fixture(scope="module")
def session_key(store, session_path):
    key = "refs-tests/session.nwb"
    upload(store, session_path, key, progress=False)
    return key


def test_the_kerchunk_method_reads_the_published_index_exactly(store, session_key, session_path):
    assert prepare(store, session_key, str(session_path)) == sidecars.sidecar_key(session_key)
    refs = sidecars.fetch(store, session_key)
    assert refs["templates"]["u"] == store.s3_url(session_key)
    with NWBHDF5IO(session_path, "r") as expected:
        assert_same_nwb(expected, open_zarr_io(refs, store.s3fs_options()))
    with open_nwb(store, session_key, "kerchunk") as opened, NWBHDF5IO(session_path, "r") as expected:
        assert not compare_containers(expected.read(), opened.nwbfile)


def test_prepare_without_a_local_copy_builds_from_the_store(store, catalog):
    asset = catalog.assets["ophys/workload-friendly"]
    prepare(store, asset.key, None)
    with open_nwb(store, asset.key, "kerchunk") as opened, NWBHDF5IO(asset.local_path, "r") as expected:
        assert not compare_containers(expected.read(), opened.nwbfile)
        assert np.array_equal(opened.nwbfile.acquisition["TwoPhotonSeries"].data[:5, :7, 3:9],
                              expected.read().acquisition["TwoPhotonSeries"].data[:5, :7, 3:9])  # fmt: skip


def test_a_missing_index_says_how_to_build_it(store, catalog):
    upload(store, catalog.assets["ecephys/neuroconv-default"].local_path, "refs-tests/unindexed.nwb", progress=False)
    with pytest.raises(AccessError, match=r"no reference index .*unindexed\.nwb.*prepare"):
        open_nwb(store, "refs-tests/unindexed.nwb", "kerchunk")


def test_a_changed_asset_is_never_served_a_stale_index(store, catalog, session_path):
    key = "refs-tests/changing.nwb"
    upload(store, session_path, key, progress=False)
    prepare(store, key, str(session_path))
    upload(store, catalog.assets["ophys/neuroconv-default"].local_path, key, progress=False)
    with pytest.raises(sidecars.StaleIndex, match=r"changing\.nwb.*build and publish it again"):
        open_nwb(store, key, "kerchunk")


def test_a_corrupt_index_is_a_clear_error(store, session_key):
    key = "refs-tests/corrupt.nwb"
    store.client().copy_object(Bucket=store.bucket, Key=key, CopySource={"Bucket": store.bucket, "Key": session_key})
    store.client().put_object(Bucket=store.bucket, Key=sidecars.sidecar_key(key), Body=b'{"version": 1, "refs": {')
    with pytest.raises(CorruptIndex, match="not JSON"):
        open_nwb(store, key, "kerchunk")
    with pytest.raises(CorruptIndex, match="version 1"):
        open_index({"refs": {}})


# -- what has no faithful form: tests/corpus (each refusal asserted by message) ------------------------------
def test_not_an_hdf5_file_is_a_refs_error(tmp_path):
    path = tmp_path / "text.nwb"
    path.write_text("not hdf5")
    with pytest.raises(RefsError, match="not an HDF5 file"):
        build_index(path)
    with pytest.raises(RefsError, match="no such file"):
        build_index(tmp_path / "absent.nwb")


def test_hdf5_storage_features_read_exactly(tmp_path):
    """Plain Zstd (32015, which LINDI's zero-padding breaks), shuffle, fletcher32, big-endian, unwritten chunks."""
    path = tmp_path / "features.h5"
    values = np.random.default_rng(0).integers(-1000, 1000, 200_000).astype(np.int16)  # chunks too big to inline
    with h5py.File(path, "w") as file:
        file.create_dataset("zstd", data=values, chunks=(30_000,), shuffle=True, **hdf5plugin.Zstd(clevel=5))
        file.create_dataset("fletcher", data=values, chunks=(30_000,), fletcher32=True, compression="gzip")
        file.create_dataset("big_endian", data=values.astype(">f8"), chunks=(50_000,))
        sparse = file.create_dataset("sparse", shape=(100_000,), dtype="f4", chunks=(10_000,), fillvalue=-1.5)
        sparse[40_000:45_000] = 2.0
    refs = build_index(path)
    group = zarr.open(ReferenceFileSystem(refs, remote_protocol="file").get_mapper(""), mode="r")
    with h5py.File(path, "r") as file:
        for name in ("zstd", "fletcher", "big_endian", "sparse"):
            assert group[name].dtype == file[name].dtype, name
            assert np.array_equal(group[name][:], file[name][:]), name
    assert group["zstd"].attrs["zarr_dtype"] == "int16"

    offset, size = refs["refs"]["fletcher/0"][1:]  # the checksum is verified, not cut off
    with open(path, "r+b") as file:
        file.seek(offset + size // 2)
        byte = file.read(1)
        file.seek(offset + size // 2)
        file.write(bytes([byte[0] ^ 0xFF]))
    fresh = zarr.open(ReferenceFileSystem(refs, remote_protocol="file").get_mapper(""), mode="r")
    with pytest.raises(RuntimeError, match="fletcher32 checksum"):
        fresh["fletcher"][:30_000]


def test_inline_chunks_that_look_like_json_are_kept_byte_for_byte(tmp_path):
    """Stock kerchunk 0.2.7 re-serialises inline chunks that parse as JSON (b" 1" -> b"1"); the index does not."""
    path = tmp_path / "json-like.h5"
    samples = {"space-digit": b" 1", "list": b"[1.50, 2]", "prefix": b"base64:AAAA", "binary": bytes(range(250, 256))}
    with h5py.File(path, "w") as file:
        for name, data in samples.items():
            file.create_dataset(name, data=np.frombuffer(data, dtype=np.uint8))
    refs = build_index(path)
    group = zarr.open(ReferenceFileSystem(refs, remote_protocol="file").get_mapper(""), mode="r")
    for name, data in samples.items():
        assert group[name][:].tobytes() == data, name


def test_hard_and_soft_links_become_zarr_links_and_references_use_primary_paths(tmp_path):
    path = tmp_path / "links.h5"
    with h5py.File(path, "w") as file:
        group = file.create_group("g")
        group.create_dataset("d", data=np.arange(4)).attrs["object_id"] = "d-id"
        file["h"] = group  # a second hard link to the group: "/g" comes first in HDF5's visit order
        file["s"] = h5py.SoftLink("/h/d")
        file.attrs["target"] = file["h/d"].ref
    refs = build_index(path)
    root = zarr.open(ReferenceFileSystem(refs, remote_protocol="file").get_mapper(""), mode="r")
    assert sorted(root.attrs["zarr_link"], key=lambda link: link["name"]) == [
        {"name": "h", "source": ".", "path": "/g", "hard": True},
        {"name": "s", "source": ".", "path": "/g/d"},
    ]
    assert root.attrs["target"]["value"]["path"] == "/g/d" and root.attrs["target"]["value"]["object_id"] == "d-id"
    assert sorted(root) == ["g"] and np.array_equal(root["g/d"][:], np.arange(4))


def test_stock_fsspec_refuses_an_index_with_chunks_stored_unfiltered(tmp_path):
    """fsspec/zarr would apply the LZF filter to the chunks HDF5 stored without it: the kerchunk path refuses."""
    from tests.corpus.pynwb_files import lzf_file

    path = lzf_file(tmp_path / "lzf.nwb")
    local = build_index(path)
    with NWBHDF5IO(path, "r") as expected, open_zarr_io(local) as actual:  # the nwb-index store reads it
        assert_same_nwb(expected, actual)
    with pytest.raises(RefsError, match=r"acquisition/lzf/data.*filter skipped.*nwb-index"):
        open_zarr_io(with_url(local, "s3://bucket/lzf.nwb"))


def test_lindis_refusal_of_lzf_is_unrepresentable_not_a_failure(store, tmp_path):
    """The index-build benchmark skips such a cell as unsupported (suite.asv_index) on this error alone."""
    from nwb_cloud.cloud import upload
    from nwb_cloud.refs.errors import Unrepresentable
    from nwb_cloud.refs.measure import lindi_build_cost
    from tests.corpus.pynwb_files import lzf_file

    upload(store, lzf_file(tmp_path / "lzf.nwb"), "refs/lzf.nwb", progress=False)
    with pytest.raises(Unrepresentable, match=r"^LINDI: .*lzf.*not supported"):
        lindi_build_cost(store, "refs/lzf.nwb")
