"""Every read method returns exactly the source data, on every layout, for every workload."""

import numpy as np
import pytest

from nwb_cloud.access import METHODS, AccessError, NotNwbFile, UnknownMethod, get_method, open_nwb
from nwb_cloud.cloud import upload
from nwb_cloud.datasets.layouts import QUICK_LAYOUTS, layouts_for
from nwb_cloud.suite.cell import Cell, CellRun
from nwb_cloud.workloads import WORKLOADS, Result, WrongRead

AVAILABLE = [name for name, method in METHODS.items() if not method.unavailable() and "hdf5" in method.formats]
# the page-buffer variants read the paged cells (below); on the others they are their base method
BUFFERED = [name for name in AVAILABLE if METHODS[name].varies == "paged"]
AVAILABLE = [name for name in AVAILABLE if name not in BUFFERED]
SKELETON_METHODS = ["fsspec", "remfile", "kerchunk"]


@pytest.fixture(scope="module")
def prepared(catalog):
    """Run what methods need beside each asset (reference indexes, ...) once."""
    from nwb_cloud.suite.prepare import prepare_methods

    failures = prepare_methods(catalog, AVAILABLE + BUFFERED, log=lambda *_: None)
    return failures


def test_the_skeleton_methods_are_registered():
    missing = [name for name in SKELETON_METHODS if name not in METHODS]
    assert not missing, f"read methods missing from the registry: {missing}"


# The seed's reads and opens on both core layouts; the opposing reads where they touch the most chunks; the
# session open unpaged and paged; one Blosc and one paged bulk read (every study layout is written and read
# by one method in test_study_layouts.py).
SEED = ["ophys_patch", "ecephys_electrode", "open_ecephys", "open_ophys"]
CELLS = [
    *[(w, layout) for w in SEED for layout in ("neuroconv-default", "workload-friendly")],
    ("ophys_clip", "workload-friendly"),
    ("ecephys_window", "workload-friendly"),
    ("open_session", "neuroconv-default"),
    ("open_session", "neuroconv-default-paged"),
    ("ophys_patch", "ophys-friendly-blosc-zstd-bitshuffle"),
    ("ecephys_electrode", "neuroconv-default-paged"),
]
assert all(layout in layouts_for(WORKLOADS[w].modality, QUICK_LAYOUTS) for w, layout in CELLS)


@pytest.mark.parametrize(("workload", "layout"), CELLS)
@pytest.mark.parametrize("method", AVAILABLE)
def test_every_method_reads_exactly(catalog, prepared, reading_store, method, layout, workload):
    asset_name = f"{WORKLOADS[workload].modality}/{layout}"
    if f"{method}|{asset_name}" in prepared:
        pytest.fail(f"{method} could not be prepared for {asset_name}: {prepared[f'{method}|{asset_name}']}")
    run = CellRun(catalog, Cell(workload, method, layout), store=reading_store)
    result = run.once()  # raises WrongRead on any difference from the local source file
    if isinstance(result.raw, np.ndarray):
        assert result.raw.size > 0


@pytest.mark.parametrize(("workload", "layout"), [(w, lay) for w, lay in CELLS if lay.endswith("-paged")])
@pytest.mark.parametrize("method", BUFFERED)
def test_every_page_buffer_variant_reads_paged_files(catalog, prepared, reading_store, method, layout, workload):
    assert BUFFERED, "every h5py-based method has a page-buffer variant"
    CellRun(catalog, Cell(workload, method, layout), store=reading_store).once()  # raises WrongRead


def test_a_wrong_read_is_a_failure_not_a_time(catalog):
    run = CellRun(catalog, Cell("ophys_patch", "remfile", "workload-friendly"))
    run.setup()
    result = run.run()
    result.raw = result.raw.copy()
    result.raw[0, 0, 0] ^= 1
    with pytest.raises(WrongRead, match="1 of .* values differ"):
        run.finish()
    run.result = Result(raw=result.raw[:-1])
    with pytest.raises(WrongRead, match="the source has"):
        run.workload.check(run.result, run.expected())


def test_expected_answers_are_cached_on_disk(catalog, tmp_path):
    run = CellRun(catalog, Cell("ecephys_electrode", "remfile", "neuroconv-default"), expected_dir=tmp_path)
    first = run.expected()
    assert len(list(tmp_path.iterdir())) == 1
    assert np.array_equal(run.expected().raw, first.raw)


def test_unknown_method_lists_the_known_ones():
    with pytest.raises(UnknownMethod, match="'remfle'.*known: .*remfile"):
        get_method("remfle")


@pytest.mark.parametrize("method", SKELETON_METHODS[:2])
def test_missing_object_is_named(store, method):
    with pytest.raises(AccessError, match="no such object: s3://nwb-cloud/no/such.nwb"):
        open_nwb(store, "no/such.nwb", method)


@pytest.mark.parametrize("method", SKELETON_METHODS[:2])
def test_a_file_that_is_not_hdf5_is_named(store, tmp_path, method):
    junk = tmp_path / "junk.nwb"
    junk.write_bytes(b"this is not an HDF5 file\n" * 4000)
    upload(store, junk, "junk/junk.nwb", progress=False)
    with pytest.raises(NotNwbFile, match="junk/junk.nwb is not an HDF5/NWB file"):
        open_nwb(store, "junk/junk.nwb", method)


def test_a_dead_endpoint_is_named(store):
    from nwb_cloud.cloud.endpoint import free_port

    dead = type(store)(**{**store.to_dict(), "endpoint_url": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(AccessError, match="cannot reach the store"):
        open_nwb(dead, "anything.nwb", "fsspec")
