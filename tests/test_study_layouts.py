"""The layout study: every matrix row is a NeuroConv configuration that writes what it says, applicability rules
(layouts x modalities, read methods x backends) hold in the catalog, the grid, asv and the report, and the
write facts (time, compression ratio) and codec speeds are recorded."""

import numpy as np
import pytest
import zarr

from nwb_cloud.access import METHODS
from nwb_cloud.analysis.decode import codec_speeds
from nwb_cloud.datasets.catalog import prepare_embedded
from nwb_cloud.datasets.codecs import CODECS, UnknownCodec, codec_name, get_codec
from nwb_cloud.datasets.layouts import (
    LAYOUTS,
    QUICK_LAYOUTS,
    SHAPES,
    BadLayout,
    Layout,
    get_layout,
    layouts_for,
    study_layouts,
)
from nwb_cloud.datasets.modalities import MODALITIES, get_modality
from nwb_cloud.datasets.storage import requested, stored
from nwb_cloud.datasets.writer import write_recording
from nwb_cloud.settings import Settings
from nwb_cloud.suite.cell import Cell, CellRun
from nwb_cloud.suite.prepare import SESSION_METHODS, STUDY_METHODS, default_grid
from nwb_cloud.suite.state import NOT_IN_GRID, Grid, RunState
from nwb_cloud.workloads import WORKLOADS

PAIRS = [(m, name) for m in MODALITIES for name in layouts_for(m)]
READ = {"ophys": "ophys_patch", "ecephys": "ecephys_electrode", "session": "open_session"}


@pytest.fixture(scope="module")
def study_catalog(store, data_dir):
    """Every (modality, layout) pair of the matrix, tiny, uploaded (written two at a time; the quick layouts come
    from the cache)."""
    return prepare_embedded(store, data_dir, "tiny", 0, progress=False, log=lambda *_: None, workers=2)


# -- the matrix ------------------------------------------------------------------------------------------------
def test_the_matrix_covers_shapes_codecs_and_backends_per_modality():
    for modality in ("ophys", "ecephys"):
        names = layouts_for(modality)
        codecs = {LAYOUTS[n].codec for n in names}
        assert codecs == set(CODECS), f"{modality} misses codecs {set(CODECS) - codecs}"
        assert {LAYOUTS[n].backend for n in names} == {"hdf5", "zarr"}
        assert any(LAYOUTS[n].page_size for n in names)
        sizes = [np.prod(get_layout(n).chunks[modality]) * 2 for n in names if modality in get_layout(n).chunks]
        assert min(sizes) <= 150_000 and max(sizes) >= 15_000_000  # ~100 KB to ~20 MB chunks
    # the extremes of the sweep: whole frames / all channels, and one small patch / one channel
    assert any(shape[1:] == (512, 512) for shape, _ in SHAPES["ophys"])
    assert any(shape[1:] == (16, 16) for shape, _ in SHAPES["ophys"])
    assert any(shape[1] == 384 for shape, _ in SHAPES["ecephys"]) and any(s[1] == 1 for s, _ in SHAPES["ecephys"])
    assert layouts_for("session") == ["neuroconv-default", "neuroconv-default-paged"]
    assert len(study_layouts()) == len(LAYOUTS) - 2 and len(set(LAYOUTS)) == len(LAYOUTS)


def test_codec_names_are_the_tables():
    assert get_layout("neuroconv-default").codec == "gzip-4"  # gzip without options is h5py's level 4
    assert get_layout("ophys-neuroconv-blosc-zstd-bitshuffle").codec == "blosc-zstd-bitshuffle"
    assert codec_name(("Zstd",), ({"clevel": 7},)) == "Zstd"  # not a row of the table: spelled out
    with pytest.raises(UnknownCodec, match="'gzlp'.*known: none, gzip-1"):
        get_codec("gzlp")


def test_layouts_apply_to_their_modalities_only(tmp_path):
    assert get_layout("ophys-64x128x128").applies_to("ophys")
    assert not get_layout("ophys-64x128x128").applies_to("ecephys")
    assert not get_layout("workload-friendly").applies_to("session")
    assert get_layout("neuroconv-default").applies_to("session")
    with pytest.raises(BadLayout, match="'ecephys-65536x1' does not apply to ophys data.*meant for ecephys"):
        write_recording(get_modality("ophys"), get_layout("ecephys-65536x1"), "tiny", 0, tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(BadLayout, match="page size applies to HDF5 files only"):
        Layout("bad", "paged zarr", backend="zarr", page_size=2**20)
    with pytest.raises(BadLayout, match="unknown backend 'n5'"):
        Layout("bad", "n5", backend="n5")


def test_the_catalog_writes_only_applicable_pairs(study_catalog):
    assert sorted(study_catalog.assets) == sorted(f"{m}/{name}" for m, name in PAIRS)
    assert "ecephys/ophys-1x512x512" not in study_catalog.assets


@pytest.mark.parametrize(("modality", "layout"), PAIRS)
def test_every_row_writes_what_it_asks_through_neuroconv(study_catalog, modality, layout):
    """Chunks, codec pipeline (hdf5plugin filters included), backend and page size, read back from the file."""
    asset = study_catalog.asset(modality, layout)
    spec = get_modality(modality)
    assert stored(asset.local_path, f"{spec.series_path}/data") == requested(get_layout(layout), asset.chunk_shape)
    source = spec.signal(spec.spec("tiny"), 0)
    if get_layout(layout).backend == "zarr":  # read with zarr itself, not with the reader under test
        data = zarr.open_array(f"{asset.local_path}/{spec.series_path}/data", mode="r")[...]
    else:
        import h5py

        with h5py.File(asset.local_path, "r") as file:
            data = file[f"{spec.series_path}/data"][...]
    assert np.array_equal(data, source.read(0, source.shape[0]))


@pytest.mark.parametrize(("modality", "layout"), PAIRS)
def test_every_asset_is_read_exactly_through_the_endpoint(study_catalog, data_dir, modality, layout):
    """One cold cell per asset: an h5py reader on HDF5, hdmf-zarr on the native Zarr asset."""
    method = "hdmf-zarr" if get_layout(layout).backend == "zarr" else "remfile"
    run = CellRun(study_catalog, Cell(READ[modality], method, layout), expected_dir=data_dir / "expected-study")
    run.once()  # raises WrongRead on any difference from the local source


@pytest.mark.parametrize(("modality", "layout"), [(m, n) for m, n in PAIRS if get_layout(n).backend == "hdf5"])
def test_every_deflate_chunk_of_every_layout_inflates_to_zlibs_bytes_with_every_decoder(
    study_catalog, modality, layout
):
    """The index's faster inflate (nwb_cloud.refs.inflate) against zlib on every stored chunk of every dataset
    HDF5's deflate filter wrote in the asset (the bulk series and the small ones beside it); a wrong byte fails."""
    import zlib

    import h5py

    from nwb_cloud.refs import inflate

    decoders = {name: inflate.exact(name) for name in inflate.available()}
    datasets = []
    with h5py.File(study_catalog.asset(modality, layout).local_path, "r") as file:
        file.visititems(lambda name, obj: datasets.append(obj) if isinstance(obj, h5py.Dataset) else None)
        checked = 0
        for dataset in datasets:
            if dataset.chunks is None or dataset.compression != "gzip":
                continue
            nbytes = int(np.prod(dataset.chunks)) * dataset.dtype.itemsize
            for index in range(dataset.id.get_num_chunks()):
                mask, stored = dataset.id.read_direct_chunk(dataset.id.get_chunk_info(index).chunk_offset)
                expected = zlib.decompress(stored) if mask == 0 else None  # an unfiltered chunk: zlib's error
                for name, decode in decoders.items():
                    if expected is None:
                        with pytest.raises(zlib.error):
                            decode(stored, nbytes)
                    else:
                        assert bytes(decode(stored, nbytes)) == expected, (dataset.name, index, name)
                checked += 1
    if get_layout(layout).codec in ("gzip-1", "gzip-4", "gzip-9", "shuffle-gzip-4"):
        assert checked > 0


# -- what each write records ----------------------------------------------------------------------------------
def test_write_time_and_compression_ratio_are_recorded_and_survive_the_cache(tmp_path):
    ophys = get_modality("ophys")
    first = write_recording(ophys, get_layout("ophys-neuroconv-zstd"), "tiny", 0, tmp_path)
    again = write_recording(ophys, get_layout("ophys-neuroconv-zstd"), "tiny", 0, tmp_path)
    assert not first.cached and again.cached
    assert first.write_seconds > 0 and again.write_seconds == first.write_seconds and again.seconds == 0
    assert first.write_cpu_seconds > 0 and again.write_cpu_seconds == first.write_cpu_seconds
    assert first.raw_bytes == 96 * 64 * 64 * 2 and first.compression_ratio > 1.2
    raw = write_recording(ophys, get_layout("ophys-neuroconv-none"), "tiny", 0, tmp_path)
    assert raw.stored_bytes == raw.raw_bytes and raw.compression_ratio == 1.0


def test_catalog_and_run_info_carry_the_write_facts(study_catalog, settings, tmp_path):
    from nwb_cloud.suite.run_info import run_info

    asset = study_catalog.asset("ecephys", "ecephys-neuroconv-blosc-zstd-bitshuffle")
    assert asset.codec == "blosc-zstd-bitshuffle" and asset.backend == "hdf5"
    assert asset.compression_ratio == pytest.approx(asset.raw_bytes / asset.stored_bytes)
    zarr_asset = study_catalog.asset("ophys", "workload-friendly-zarr")
    assert zarr_asset.backend == "zarr" and zarr_asset.compression_ratio > 1
    grid = Grid(["ecephys_electrode"], ["remfile"], ["ecephys-neuroconv-blosc-zstd-bitshuffle"], ["loopback"])
    state = RunState(study_catalog, grid, str(tmp_path), "test-run", extra={"codecs": [{"codec": "zstd"}]})
    info = run_info(state)
    summary = info["assets"]["ecephys/ecephys-neuroconv-blosc-zstd-bitshuffle"]
    assert summary["compression_ratio"] == asset.compression_ratio and summary["codec"] == "blosc-zstd-bitshuffle"
    assert "write_seconds" in summary and "local_path" not in summary
    assert info["codecs"] == [{"codec": "zstd"}]


def test_codec_speeds_cover_every_codec_of_both_modalities():
    rows = codec_speeds("tiny", codecs=["none", "gzip-4", "blosc-zstd-bitshuffle", "zstd"])
    assert {(r["modality"], r["codec"]) for r in rows} == {
        (m, c) for m in ("ophys", "ecephys") for c in ("none", "gzip-4", "blosc-zstd-bitshuffle", "zstd")
    }
    by = {(r["modality"], r["codec"]): r for r in rows}
    assert by["ophys", "none"]["stored_bytes"] == by["ophys", "none"]["raw_bytes"]
    assert by["ophys", "gzip-4"]["ratio"] > 1.2 and by["ecephys", "zstd"]["ratio"] > 1.1
    assert by["ophys", "none"]["chunk_shape"] == [96, 64, 64]  # NeuroConv's default chunk of the tiny movie
    assert all(r["decode_mb_s"] > 0 and r["encode_mb_s"] > 0 for r in rows)


# -- applicability in the grid, asv and the report -----------------------------------------------------------
def test_method_formats_decide_which_backend_a_method_reads():
    grid = Grid(
        workloads=["ophys_patch", "ecephys_electrode"],
        methods=["fsspec", "hdmf-zarr"],
        layouts=["neuroconv-default", "neuroconv-default-zarr", "ophys-64x128x128"],
        profiles=["loopback"],
    )
    assert METHODS["hdmf-zarr"].formats == ("hdf5", "zarr") and METHODS["fsspec"].formats == ("hdf5",)
    assert grid.applies("ophys_patch", "hdmf-zarr", "neuroconv-default-zarr") is None  # the native Zarr asset
    assert grid.applies("ophys_patch", "hdmf-zarr", "neuroconv-default") is None  # a Zarr copy of the HDF5 one
    reason = grid.applies("ophys_patch", "fsspec", "neuroconv-default-zarr")
    assert reason.startswith(NOT_IN_GRID) and "does not apply" in reason and "is zarr" in reason
    reason = grid.exclusion("fsspec", "loopback", "ecephys_electrode", "ophys-64x128x128")
    assert "does not apply to ecephys data" in reason
    assert grid.layouts_of("ecephys_electrode") == ["neuroconv-default", "neuroconv-default-zarr"]
    assert not grid.measures("fsspec", "ophys", "neuroconv-default-zarr")
    assert grid.assets() == {
        "ophys": ["neuroconv-default", "neuroconv-default-zarr", "ophys-64x128x128"],
        "ecephys": ["neuroconv-default", "neuroconv-default-zarr"],
    }
    again = Grid.from_dict(grid.to_dict())
    assert again.cells() == grid.cells() and again.facts == grid.facts


def test_the_setup_of_an_inapplicable_cell_says_it_does_not_apply(monkeypatch, study_catalog, tmp_path):
    from nwb_cloud.suite import asv_grid

    layouts = ["neuroconv-default", "neuroconv-default-zarr"]
    grid = Grid(["ophys_patch"], ["fsspec", "hdmf-zarr"], layouts, ["loopback"])
    state = RunState(study_catalog, grid, str(tmp_path), "test-run")
    monkeypatch.setattr(asv_grid, "load_state", lambda: state)
    cls = asv_grid.benchmark_classes()["OphysPatch"]
    assert cls.params == [["fsspec", "hdmf-zarr"], layouts, ["loopback"]]  # fsspec x Zarr is in the product
    benchmark = cls()
    with pytest.raises(NotImplementedError, match="does not apply"):
        benchmark.setup("fsspec", "neuroconv-default-zarr", "loopback")


def test_the_report_counts_inapplicable_and_unmeasured_cells_as_not_in_the_grid():
    from nwb_cloud.results.run_info import grid_excludes

    info = {"grid": default_grid(Settings(size="full")).to_dict()}
    inapplicable = grid_excludes(info, "remfile", "in-region", "ophys_patch", "ecephys-1300x384")
    assert inapplicable.startswith(NOT_IN_GRID) and "does not apply" in inapplicable
    unmeasured = grid_excludes(info, "lindi", "in-region", "ophys_patch", "ophys-neuroconv-zstd")
    assert unmeasured.startswith(NOT_IN_GRID) and "codecs block measures fsspec, remfile" in unmeasured
    assert grid_excludes(info, "remfile", "in-region", "ophys_patch", "ophys-neuroconv-zstd") is None


# -- the grids ------------------------------------------------------------------------------------------------
def test_the_full_grid_is_the_study():
    grid = default_grid(Settings(size="full"))
    assets = grid.assets()
    assert {m: set(layouts) for m, layouts in assets.items()} == {m: set(layouts_for(m)) for m in MODALITIES}
    study = [m for m in STUDY_METHODS if m in METHODS]
    assert {m for _, m, layout, _ in grid.cells() if layout == "ophys-neuroconv-zstd"} == set(study)
    # the Zarr readers read the native Zarr assets; no Zarr copy of the codec sweep is made
    assert grid.measures("hdmf-zarr", "ophys", "workload-friendly-zarr")
    assert not grid.measures("hdmf-zarr", "ophys", "ophys-neuroconv-zstd")
    # opening does not depend on the codec: the codec sweep times the reads only
    assert not any(w.startswith("open") for w, _, layout, _ in grid.cells() if layout == "ecephys-neuroconv-lzf")
    assert {p for w, *_, p in grid.cells() if w == "open_session"} == {"in-region"}
    sessions = {m for m in SESSION_METHODS if m in METHODS}
    buffered = {n for n, m in METHODS.items() if m.varies == "paged" and m.variant_of in sessions}
    assert {m for w, m, *_ in grid.cells() if w == "open_session"} == sessions | buffered
    # the shape sweep is read under lab too (where the network binds): the recommendation depends on it
    lab = {(w, layout) for w, _, layout, p in grid.cells() if p == "lab"}
    assert ("ophys_patch", "ophys-200x16x16") in lab and ("ecephys_electrode", "ecephys-65536x1") in lab
    assert len(grid.cells()) <= 350  # ~50 min on 2 cores with the files written (see default_grid)


@pytest.mark.parametrize("size", ["quick", "full"])
def test_open_only_variants_are_measured_on_opens_only(size):
    grid = default_grid(Settings(size=size))
    variants = {name for name, method in METHODS.items() if method.variant_of and method.varies == "opens"}
    assert variants, "the registry names the variants that differ only in how they open"
    measured = {(w, m) for w, m, *_ in grid.cells() if m in variants}
    assert measured and all(WORKLOADS[w].select is None for w, _ in measured)
    assert all(METHODS[m].variant_of in {c[1] for c in grid.cells()} for m in variants)


@pytest.mark.parametrize("size", ["quick", "full"])
def test_paged_layouts_are_read_with_and_without_a_page_buffer_by_every_h5py_method(size):
    grid = default_grid(Settings(size=size))
    buffered = {n: m.variant_of for n, m in METHODS.items() if m.varies == "paged"}
    cells = {(w, m, layout) for w, m, layout, _ in grid.cells()}
    paged = {(w, layout) for w, m, layout in cells if m in buffered}
    assert paged and all(LAYOUTS[layout].page_size for _, layout in paged)
    reads = [(w, layout) for w, layout in paged if WORKLOADS[w].select is not None]
    for workload, layout in reads:  # every variant measured on a read has its base beside it, and vice versa
        measured = {m for w, m, lay in cells if (w, lay) == (workload, layout)}
        assert {buffered[m] for m in measured if m in buffered} == {m for m in measured if m in buffered.values()}
    if size == "quick":  # every h5py-based method (not its cache configurations), both seed reads
        from nwb_cloud.suite.prepare import CONFIGURATIONS

        expected = {n for n, base in buffered.items() if base not in CONFIGURATIONS}
        assert {m for w, m, _ in cells if m in buffered and WORKLOADS[w].select is not None} == expected


def test_the_quick_grid_keeps_a_representative_subset():
    grid = default_grid(Settings(size="quick"))
    measured_layouts = {layout for _, _, layout, _ in grid.cells()}
    # the Blosc layouts are the study's (see default_grid: what a quick run leaves out, and why)
    assert measured_layouts == {lay for lay in QUICK_LAYOUTS if "blosc" not in lay}
    # the seed's reads and opens and the session open; the opposing reads are the study's
    assert {w for w, *_ in grid.cells()} == {"ophys_patch", "ecephys_electrode", "open_ophys", "open_ecephys",
                                             "open_session"}  # fmt: skip
    # the session open: the two readers labs use most, fsspec with the block cache that cures stock fsspec's
    # 15 s open of it (the study measures that one) and with the page buffer on the paged file
    session = {(m, layout) for w, m, layout, _ in grid.cells() if w == "open_session"}
    assert {("remfile", "neuroconv-default"), ("fsspec-blockcache", "neuroconv-default"),
            ("fsspec-pagebuf", "neuroconv-default-paged")} <= session  # fmt: skip
    assert "fsspec" not in {m for m, _ in session}
    assert len(grid.cells()) <= 210  # see nwb_cloud.suite.prepare.default_grid for its length


def test_the_ratio_explanation_names_what_binds_each_side():
    from nwb_cloud.analysis.bound import Measured, bound
    from nwb_cloud.analysis.decode import explain_ratio
    from nwb_cloud.cloud.profiles import get_profile

    def floor(chunks, stored, decoded, local_s):
        measured = Measured("key", "ophys_patch", "read", cores=2, local_s=local_s, chunks=chunks,
                            compressed_bytes=stored, selection_bytes=1_024_000, chunk_bytes=decoded)  # fmt: skip
        return bound(measured, get_profile("in-region")).to_dict()

    default = floor(27, 150_000_000, 283_000_000, 2.8)  # ~10 MB gzip chunks: 2.8 s of inflating
    friendly = floor(2, 1_100_000, 2_000_000, 0.01)
    text = explain_ratio(default, friendly, measured=20.0, claimed=14)
    assert default["binding"] == "decode" and friendly["binding"] == "network"
    assert "touches 27 chunk(s)" in text and "set by decode" in text and "set by network" in text
    ratio = default["seconds"] / friendly["seconds"]
    assert f"bound ratio {ratio:.1f}x" in text and "seed reports 14x" in text
    assert ("above the bound ratio" in text) == (ratio < 20.0)


def test_the_storage_check_sees_a_different_codec_level_shape_or_page(study_catalog):
    asset = study_catalog.asset("ophys", "ophys-neuroconv-blosc-zstd-bitshuffle")
    on_disk = stored(asset.local_path, "acquisition/TwoPhotonSeries/data")
    layout = get_layout("ophys-neuroconv-blosc-zstd-bitshuffle")
    assert on_disk == requested(layout, asset.chunk_shape)
    other_shuffle = Layout("x", "x", compressors=("Blosc",), compressor_options=({"cname": "zstd", "clevel": 5},))
    assert on_disk != requested(other_shuffle, asset.chunk_shape)  # hdf5plugin's default shuffle is byte shuffle
    assert on_disk != requested(layout, (asset.chunk_shape[0] - 1, *asset.chunk_shape[1:]))
    paged = Layout("y", "y", compressors=layout.compressors, compressor_options=layout.compressor_options,
                   page_size=2**20)  # fmt: skip
    assert on_disk != requested(paged, asset.chunk_shape)


@pytest.mark.parametrize("method", [name for name, m in METHODS.items() if "zarr" in m.formats])
@pytest.mark.parametrize("workload", ["ophys_clip", "open_ecephys"])
def test_every_zarr_reader_reads_the_native_zarr_assets(study_catalog, data_dir, method, workload):
    run = CellRun(study_catalog, Cell(workload, method, "workload-friendly-zarr"), expected_dir=data_dir / "expected")
    run.once()
