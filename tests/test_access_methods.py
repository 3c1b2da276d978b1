"""Every read method of nwb_cloud.access against the real embedded endpoint.

Each method x layout reads a patch and a one-channel selection of the bulk series, compared exactly with h5py
on the local source file. The layouts are the registry's plus one with the plain Zstd HDF5 filter (32015),
defined here only. Two combinations fail for reasons outside this project, and the tests assert that they
fail loudly (an error, or a detected mismatch) instead of hiding them:

* LINDI on Zstd: lindi 0.4.6 zero-pads every numeric chunk shorter than its uncompressed size
  (``LindiReferenceFileSystemStore._get_padded_size``, lindi PR #84), so a Zstd frame gets trailing zeros
  and the decoder fails ("Src size is incorrect"). Upstream defect, see nwb_cloud/access/lindi_h5py.py.
* obstore directly on the embedded endpoint: rclone serve s3 1.75 answers ranged GETs with 200 (not S3's
  206), which object_store refuses with a clear error; through the shaping proxy (how the benchmarks read,
  and tests/test_readers.py) the status is S3's and obstore reads exactly. Its file object is also checked
  over obstore's LocalStore.
"""

from __future__ import annotations

import gc
import importlib
import io
import json
import re
import time
from concurrent.futures import ThreadPoolExecutor

import h5py
import hdf5plugin  # noqa: F401 - the local reference reads of the Zstd layout
import numpy as np
import obstore
import pytest
import requests
from obstore.store import LocalStore

from nwb_cloud.access import METHODS, AccessError, MethodUnavailable, NotNwbFile, open_nwb, translate_errors
from nwb_cloud.access.base import why_missing
from nwb_cloud.access.obstore_h5py import ObstoreFile, s3_store
from nwb_cloud.access.zarr_copy import zarr_io_settings
from nwb_cloud.cloud import upload
from nwb_cloud.cloud.endpoint import free_port
from nwb_cloud.cloud.profiles import PROFILES
from nwb_cloud.cloud.proxy import ShapingProxy
from nwb_cloud.datasets.layouts import LAYOUTS, Layout
from nwb_cloud.datasets.modalities import MODALITIES
from nwb_cloud.datasets.writer import write_recording

ZSTD = Layout(
    name="zstd-test",
    description="NeuroConv's default chunks with the plain Zstd HDF5 filter (32015), for LINDI's known defect",
    compressors=("Zstd",),
)
# The two core layouts of the registry (the rest is the layout study's matrix) and the Zstd one.
TEST_LAYOUTS = {**{name: LAYOUTS[name] for name in ("neuroconv-default", "workload-friendly")}, ZSTD.name: ZSTD}
TEST_MODALITIES = {name: MODALITIES[name] for name in ("ecephys", "ophys")}
# The methods of these modules (kerchunk_refs.py has its own tests).
MODULES = ("fsspec_s3", "fsspec_http", "remfile_http", "lindi_h5py", "obstore_h5py", "zarr_copy", "ros3")
OURS = [m.name for module in MODULES for m in importlib.import_module(f"nwb_cloud.access.{module}").METHODS]
# the page-buffer variants are their base method on these (unpaged) files: test_readers reads paged ones
RUNNABLE = [name for name in OURS if not METHODS[name].unavailable() and METHODS[name].varies != "paged"]
LINDI = ("lindi", "lindi-json")
DEAD_ENDPOINT_BOUND_S = 30  # with remfile's retries cut to one (its own backoff alone is ~25 s, see below)


def selections(modality: str, shape) -> dict[str, tuple]:
    """A patch crossing chunk boundaries, and one channel (one electrode / one pixel's time course)."""
    if modality == "ophys":
        return {"patch": (slice(10, 70), slice(20, 52), slice(5, 40)), "channel": (slice(None), 33, 17)}
    return {"patch": (slice(1_000, 30_000), slice(3, 19)), "channel": (slice(None), 7)}


def known_failure(method: str, layout: str) -> str | None:
    if method in LINDI and layout == ZSTD.name:
        return "lindi 0.4.6 zero-pads short chunks, which breaks the plain Zstd filter (upstream defect)"
    return None


@pytest.fixture(scope="module", autouse=True)
def young_objects_only():
    """Every ``Opened.close`` runs a full GC (see base.py); freezing what exists now makes each one cheap."""
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(scope="session")
def assets(store, data_dir):
    """(modality, layout) -> (key, local path, series name); written once, uploaded once."""
    found = {}
    for modality in TEST_MODALITIES.values():
        for layout in TEST_LAYOUTS.values():
            written = write_recording(modality, layout, "tiny", 0, data_dir / "access-assets")
            key = f"access/{written.path.name}"
            upload(store, written.path, key, progress=False)
            found[(modality.name, layout.name)] = (key, written.path, modality.series_path.split("/")[-1])
    return found


@pytest.fixture(scope="session")
def prepared(store, assets):
    """Run every method's ``prepare`` (LINDI JSON, Zarr copy) once per asset; keep failures for their cells."""
    failures = {}
    for name in RUNNABLE:
        method = METHODS[name]
        for (modality, layout), (key, path, _) in assets.items() if method.prepare else ():
            try:
                method.prepare(store, key, str(path))
            except Exception as error:  # noqa: BLE001 - reported by the cell that needs it
                failures[(name, modality, layout)] = f"{type(error).__name__}: {error}"
    return failures


def expected(path, series: str, selection) -> np.ndarray:
    with h5py.File(path, "r") as file:
        return file[f"acquisition/{series}/data"][selection]


def read(store, key, method, series, wanted: dict) -> dict[str, np.ndarray]:
    with open_nwb(store, key, method) as opened:
        data = opened.nwbfile.acquisition[series].data
        return {label: np.asarray(data[selection]) for label, selection in wanted.items()}


@pytest.mark.parametrize("layout", list(TEST_LAYOUTS))
@pytest.mark.parametrize("modality", list(TEST_MODALITIES))
@pytest.mark.parametrize("method", RUNNABLE)
def test_every_method_reads_exactly(reading_store, assets, prepared, method, modality, layout):
    key, path, series = assets[(modality, layout)]
    assert (method, modality, layout) not in prepared, prepared.get((method, modality, layout))
    with h5py.File(path, "r") as file:
        wanted = selections(modality, file[f"acquisition/{series}/data"].shape)
    reason = known_failure(method, layout)
    if reason is None:
        got = read(reading_store, key, method, series, wanted)
        for label, selection in wanted.items():
            want = expected(path, series, selection)
            assert got[label].dtype == want.dtype and got[label].shape == want.shape, label
            assert np.array_equal(got[label], want), f"{method} read the {label} of {modality}/{layout} wrongly"
        return
    # A known failure must be loud: an error, or data that differ from the source. If it reads exactly, the
    # upstream defect is gone: this assertion fails so that the expectation is removed.
    try:
        got = read(reading_store, key, method, series, wanted)
    except Exception as error:  # noqa: BLE001 - any loud failure is what is expected here
        assert str(error).strip(), f"{method} failed on {modality}/{layout} without a message"
        return
    wrong = [label for label, sel in wanted.items() if not np.array_equal(got[label], expected(path, series, sel))]
    assert wrong, f"{method} now reads {modality}/{layout} exactly; the known failure ({reason}) is fixed"


@pytest.mark.parametrize("layout", list(TEST_LAYOUTS))
@pytest.mark.parametrize("modality", list(TEST_MODALITIES))
def test_obstore_file_object_reads_exactly(assets, modality, layout):
    """The h5py wrapper over obstore, on obstore's LocalStore (the endpoint cannot serve it, see above)."""
    from nwb_cloud.access._h5py import open_h5_fileobj

    key, path, series = assets[(modality, layout)]
    fileobj = ObstoreFile(LocalStore(str(path.parent)), path.name)
    assert fileobj.size == path.stat().st_size
    with open_h5_fileobj(fileobj, [fileobj.close]) as opened:
        data = opened.nwbfile.acquisition[series].data
        for selection in selections(modality, data.shape).values():
            assert np.array_equal(data[selection], expected(path, series, selection))


def test_obstore_file_object_is_a_plain_seekable_file(tmp_path):
    content = bytes(range(256)) * 8192  # 2 MiB: four 512 KiB blocks
    (tmp_path / "blob").write_bytes(content)
    fileobj = ObstoreFile(LocalStore(str(tmp_path)), "blob")
    fileobj.seek(1_000_000)
    assert fileobj.read(10) == content[1_000_000:1_000_010]  # small read: from a block
    assert fileobj.tell() == 1_000_010
    fileobj.seek(-5, io.SEEK_END)
    assert fileobj.read(100) == content[-5:] and fileobj.read(1) == b""
    fileobj.seek(100)
    assert fileobj.read(1_500_000) == content[100:1_500_100]  # large read: one exact range
    with pytest.raises(ValueError, match="negative seek"):
        fileobj.seek(-1)


def test_obstore_store_is_configured_for_the_endpoint(store, assets):
    key, path, _ = assets[("ecephys", "neuroconv-default")]
    assert obstore.head(s3_store(store), key)["size"] == path.stat().st_size


def test_obstore_reads_exactly_through_the_proxy_that_restores_206(store, reading_store, assets):
    key, path, series = assets[("ophys", "workload-friendly")]
    direct = requests.get(store.http_url(key), headers={"Range": "bytes=0-7"}, timeout=10).status_code
    proxied = requests.get(reading_store.http_url(key), headers={"Range": "bytes=0-7"}, timeout=10).status_code
    assert (direct, proxied) in {(200, 206), (206, 206)}
    with METHODS["obstore"](reading_store, key) as opened:
        data = opened.nwbfile.acquisition[series.rsplit("/", 1)[-1]].data[:10, :8, :8]
    with h5py.File(path, "r") as file:
        assert np.array_equal(data, file[f"acquisition/{series}/data"][:10, :8, :8])


def open_anyway(store, key, method):
    """``Method.__call__`` without its availability check: what the row would do if it ran here."""
    with translate_errors(store.s3_url(key), method, missing=lambda: why_missing(store, key)):
        return METHODS[method].open(store, key)


def test_obstore_directly_against_rclone_fails_in_one_clear_line(store, assets):
    key, _, _ = assets[("ophys", "workload-friendly")]
    with pytest.raises(AccessError, match=r"with 200 instead of 206 Partial Content") as raised:
        open_anyway(store, key, "obstore")
    assert "\n" not in str(raised.value)
    with pytest.raises(AccessError, match=r"^obstore: no such object: s3://nwb-cloud/bad/no-such\.nwb$"):
        open_anyway(store, "bad/no-such.nwb", "obstore")


def test_zarr_copy_keeps_chunks_and_codec_and_is_complete(store, assets, prepared):
    key, path, series = assets[("ophys", "workload-friendly")]
    client = store.client()
    zmetadata = client.get_object(Bucket=store.bucket, Key=f"{key}.zarr/.zmetadata")["Body"].read()
    array = json.loads(zmetadata)["metadata"][f"acquisition/{series}/data/.zarray"]
    with h5py.File(path, "r") as file:
        dataset = file[f"acquisition/{series}/data"]
        assert tuple(array["chunks"]) == dataset.chunks
        assert array["compressor"] == {"id": "zlib", "level": 4}
        assert array["filters"] is None
        settings = zarr_io_settings(dataset)
        chunk = dataset.id.read_direct_chunk((0, 0, 0))[1]
    assert settings["compressor"].get_config() == {"id": "zlib", "level": 4}
    stored = client.get_object(Bucket=store.bucket, Key=f"{key}.zarr/acquisition/{series}/data/0.0.0")["Body"].read()
    assert stored == chunk, "gzip chunks should be byte-identical to the HDF5 file's"


def test_a_filter_without_zarr_codec_fails_the_copy_instead_of_changing_the_codec(tmp_path):
    with h5py.File(tmp_path / "lzf.h5", "w") as file:
        dataset = file.create_dataset("x", data=np.arange(1000, dtype="int16"), chunks=(100,), compression="lzf")
        with pytest.raises(AccessError, match="/x uses HDF5 filter.*lzf.*no equivalent Zarr copy"):
            zarr_io_settings(dataset)


def test_consolidated_metadata_saves_requests(endpoint, store, assets, prepared):
    """hdmf-zarr 0.13: mode "r" reads ``.zmetadata`` once, "r-" fetches every group's and array's metadata."""
    key, _, _ = assets[("ecephys", "workload-friendly")]
    requests_by_mode = {}
    with ShapingProxy(endpoint.url, PROFILES["loopback"]) as proxy:
        for method in ("hdmf-zarr", "hdmf-zarr-unconsolidated"):
            with proxy.traffic.measure() as cost:
                open_nwb(store.via(proxy.url), key, method).close()
            requests_by_mode[method] = cost.requests_total
    assert requests_by_mode["hdmf-zarr"] < requests_by_mode["hdmf-zarr-unconsolidated"], requests_by_mode


def test_lindi_json_stores_no_presigned_url(store, assets, prepared):
    key, _, _ = assets[("ecephys", "workload-friendly")]
    text = store.client().get_object(Bucket=store.bucket, Key=f"{key}.lindi.json")["Body"].read().decode()
    assert "X-Amz-Signature" not in text and store.endpoint_url not in text
    assert f'"asset": "s3://{store.bucket}/{key}"' in text and '"{{asset}}"' in text


@pytest.mark.parametrize("method", [name for name in RUNNABLE if METHODS[name].prepare])
def test_prepare_on_a_read_only_store_fails_before_any_work(store, method):
    anonymous = type(store)(bucket=store.bucket, endpoint_url=store.endpoint_url)
    with pytest.raises(AccessError, match=r"cannot store it beside s3://nwb-cloud/big\.nwb: the store is read-only"):
        METHODS[method].prepare(anonymous, "big.nwb", None)


@pytest.mark.parametrize("method", [name for name in OURS if METHODS[name].unavailable()])
def test_an_unavailable_method_says_why(store, method):
    with pytest.raises(MethodUnavailable, match=f"'{method}' is unavailable here: .+"):
        open_nwb(store, "anything.nwb", method)


def test_ros3_absence_is_detected_from_h5py():
    assert (METHODS["ros3"].unavailable() is None) == ("ros3" in h5py.registered_drivers())


# -- bad input: one line, the right error, in bounded time -------------------------------------------------------
@pytest.fixture(scope="session")
def bad_objects(store):
    client = store.client()
    client.put_object(Bucket=store.bucket, Key="bad/text.nwb", Body=b"this is not an HDF5 file\n" * 4000)
    buffer = io.BytesIO()
    with h5py.File(buffer, "w") as file:
        file["x"] = np.arange(10)
    client.put_object(Bucket=store.bucket, Key="bad/plain.h5", Body=buffer.getvalue())
    return {"missing": "bad/no-such.nwb", "not-hdf5": "bad/text.nwb", "not-nwb": "bad/plain.h5"}


def attempt(store, key, method) -> Exception | None:
    """What a run does with an asset: prepare what the method needs beside it, then open it."""
    try:
        if METHODS[method].prepare:
            METHODS[method].prepare(store, key, None)
        open_nwb(store, key, method).close()
    except Exception as error:  # noqa: BLE001 - the error is what the tests look at
        return error
    return None


EXPECTED_BAD = {
    "missing": (AccessError, r"no such object: s3://nwb-cloud/bad/no-such\.nwb|no (Zarr copy|LINDI JSON) at"),
    "not-hdf5": (NotNwbFile, r"bad/text\.nwb is not an HDF5/NWB file"),
    "not-nwb": (NotNwbFile, r"bad/plain\.h5 is not an NWB file"),
}


@pytest.mark.parametrize("case", list(EXPECTED_BAD))
@pytest.mark.parametrize("method", RUNNABLE)
def test_bad_input_is_one_clear_line(reading_store, bad_objects, method, case):
    error = attempt(reading_store, bad_objects[case], method)
    assert error is not None, f"{method} opened the {case} object without an error"
    assert "\n" not in str(error), f"{method}: {error}"
    kind, pattern = EXPECTED_BAD[case]
    assert isinstance(error, kind), f"{method} on {case}: {type(error).__name__}: {error}"
    assert re.search(pattern, str(error)), f"{method} on {case}: {error}"


@pytest.fixture(scope="session")
def dead_endpoint_outcomes(store):
    """Every method against an endpoint nothing listens on, all at once (each mostly waits on its backoff).

    remfile retries 8 times with exponential backoff (0.1 s x 2^n: ~25 s in all, measured 25.6 s) before it
    gives up; that bound is remfile's own, so here its retries are cut to one to keep the module short.
    """
    remfile_module = importlib.import_module("remfile.RemFile")
    dead = type(store)(**{**store.to_dict(), "endpoint_url": f"http://127.0.0.1:{free_port()}"})

    def timed(method):
        started = time.perf_counter()
        return attempt(dead, "dead/x.nwb", method), time.perf_counter() - started

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(remfile_module, "_num_request_retries", 1)
        with ThreadPoolExecutor(max_workers=len(RUNNABLE) + 1) as pool:
            outcomes = dict(zip(RUNNABLE, pool.map(timed, RUNNABLE)))
    return outcomes


@pytest.mark.parametrize("method", RUNNABLE)
def test_a_dead_endpoint_is_named_in_bounded_time(dead_endpoint_outcomes, method):
    error, seconds = dead_endpoint_outcomes[method]
    assert isinstance(error, AccessError), f"{method}: {type(error).__name__}: {error}"
    assert "cannot reach the store" in str(error) and "\n" not in str(error), str(error)
    assert seconds < DEAD_ENDPOINT_BOUND_S, f"{method} took {seconds:.1f} s to give up"


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        # a 503 whose presigned URL's signature happens to hold "404" and "403" is still a 503, not a missing object
        (
            "503, message='Service Unavailable', url='http://127.0.0.1:9/b/k.nwb?X-Amz-Signature=9f4040a403b'",
            r"^m: RuntimeError: 503, message='Service Unavailable'",
        ),
        ("404, message='Not Found', url='http://127.0.0.1:9/b/k.nwb'", r"^m: no such object: s3://b/k\.nwb$"),
        ("403, message='Forbidden'", r"^m: access denied to s3://b/k\.nwb$"),
    ],
)
def test_status_codes_are_read_from_the_message_not_from_its_urls(message, expected):
    with pytest.raises(Exception) as raised, translate_errors("s3://b/k.nwb", "m"):
        raise RuntimeError(message)
    text = str(raised.value) if isinstance(raised.value, AccessError) else f"m: RuntimeError: {raised.value}"
    assert re.match(expected, text), text
