"""Layouts are applied through NeuroConv, files are cached by content and never half-written."""

import h5py
import numpy as np
import pytest

from nwb_cloud.datasets import writer as writer_module
from nwb_cloud.datasets.layouts import QUICK_LAYOUTS, BadLayout, Layout, UnknownLayout, get_layout, layouts_for
from nwb_cloud.datasets.modalities import MODALITIES, UnknownModality, get_modality
from nwb_cloud.datasets.storage import requested, stored
from nwb_cloud.datasets.writer import write_recording

CATALOG_PAIRS = [(m, layout) for m in MODALITIES for layout in layouts_for(m, QUICK_LAYOUTS)]


@pytest.mark.parametrize(("modality", "layout"), CATALOG_PAIRS)
def test_written_file_holds_the_signal_in_the_layout(catalog, modality, layout):
    asset = catalog.asset(modality, layout)
    spec = get_modality(modality)
    source = spec.signal(spec.spec("tiny"), 0)
    assert stored(asset.local_path, f"{spec.series_path}/data") == requested(get_layout(layout), asset.chunk_shape)
    with h5py.File(asset.local_path, "r") as file:
        data = file[f"{spec.series_path}/data"]
        assert data.chunks == asset.chunk_shape
        if get_layout(layout).codec == "gzip-4":
            assert data.compression == "gzip" and data.compression_opts == 4
        assert np.array_equal(data[:], source.read(0, source.shape[0]))
        assert file.attrs["namespace"] == "core"
    assert asset.raw_bytes == source.dtype.itemsize * np.prod(source.shape)
    assert 0 < asset.stored_bytes < asset.size_bytes


def test_the_catalog_holds_only_the_pairs_a_layout_applies_to(catalog):
    assert sorted(catalog.assets) == sorted(f"{m}/{layout}" for m, layout in CATALOG_PAIRS)
    assert "session/workload-friendly" not in catalog.assets  # meant for ophys and ecephys only
    assert "session/neuroconv-default-paged" in catalog.assets


def test_neuroconv_default_chunks_are_neuroconvs():
    ophys = get_modality("ophys")
    shape = (1200, 512, 512)
    assert get_layout("neuroconv-default").chunk_shape(ophys, shape, "uint16") == (19, 512, 512)
    ecephys = get_modality("ecephys")
    assert get_layout("neuroconv-default").chunk_shape(ecephys, (900_000, 384), "int16") == (78125, 64)


def test_chunk_shapes_are_clipped_and_checked():
    ophys = get_modality("ophys")
    friendly = get_layout("workload-friendly")
    assert friendly.chunk_shape(ophys, (100, 16, 64), "uint16") == (100, 16, 32)
    with pytest.raises(BadLayout, match="rank 2"):
        Layout("bad", "rank mismatch", chunks={"ophys": (10, 10)}).chunk_shape(ophys, (100, 16, 64), "uint16")
    with pytest.raises(BadLayout, match="non-positive"):
        Layout("bad", "zero", chunks={"ophys": (0, 10, 10)}).chunk_shape(ophys, (100, 16, 64), "uint16")


def test_unknown_names_list_what_exists():
    with pytest.raises(UnknownLayout, match="known: neuroconv-default"):
        get_layout("neuroconv-defualt")
    with pytest.raises(UnknownModality, match="known: ecephys, ophys"):
        get_modality("icephys")


def test_second_write_is_served_from_the_cache(tmp_path):
    ophys, layout = get_modality("ophys"), get_layout("workload-friendly")
    first = write_recording(ophys, layout, "tiny", 7, tmp_path)
    second = write_recording(ophys, layout, "tiny", 7, tmp_path)
    assert not first.cached and second.cached and first.path == second.path
    other_seed = write_recording(ophys, layout, "tiny", 8, tmp_path)
    assert other_seed.path != first.path


def test_an_interrupted_write_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def explode(nwbfile, path, layout):
        path.write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(writer_module, "_write", explode)
    with pytest.raises(KeyboardInterrupt):
        write_recording(get_modality("ophys"), get_layout("neuroconv-default"), "tiny", 0, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_codec_is_a_clear_error(tmp_path):
    layout = Layout("bad-codec", "no such codec", compressors=("NoSuchCodec",))
    with pytest.raises(BadLayout, match="bad-codec"):
        write_recording(get_modality("ophys"), layout, "tiny", 0, tmp_path)
    assert not any(p.suffix == ".nwb" for p in tmp_path.iterdir())


def test_raw_copy_is_the_signal_and_never_half_written(tmp_path, monkeypatch):
    from nwb_cloud.datasets.raw import materialize
    from nwb_cloud.datasets.signals import EcephysSignal, EcephysSpec

    source = EcephysSignal(EcephysSpec(n_samples=70_000, n_channels=16), seed=2)
    raw = materialize(source, tmp_path / "raw.npy")
    assert np.array_equal(raw.read(0, 70_000), source.read(0, 70_000))
    assert np.array_equal(raw.read(29_000, 31_000), source.read(29_000, 31_000))

    def explode(start, stop):
        raise KeyboardInterrupt

    monkeypatch.setattr(source, "read", explode)
    with pytest.raises(KeyboardInterrupt):
        materialize(source, tmp_path / "other.npy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw.npy"]
