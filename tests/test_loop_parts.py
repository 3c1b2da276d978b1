"""The parts the closed loop stands on: data of any shape and dtype, and a run step that adds blocks to a run."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from nwb_cloud.datasets.catalog import publish
from nwb_cloud.datasets.layouts import Layout, get_layout
from nwb_cloud.datasets.modalities import get_modality
from nwb_cloud.datasets.signals import EcephysSignal, EcephysSpec, OphysSignal, OphysSpec
from nwb_cloud.datasets.writer import asset_filename, write_recording
from nwb_cloud.suite.prepare import prepare_run
from nwb_cloud.suite.state import Block, Grid, RunState


@pytest.mark.parametrize(
    ("signal", "spec", "dtype"),
    [
        (OphysSignal, OphysSpec(40, 64, 48, dtype="float32"), "float32"),
        (OphysSignal, OphysSpec(40, 64, 48, dtype="uint8"), "uint8"),
        (EcephysSignal, EcephysSpec(30_000, 16, dtype="float32"), "float32"),
        (OphysSignal, OphysSpec(40, 64, 48), "uint16"),
        (EcephysSignal, EcephysSpec(30_000, 16), "int16"),
    ],
)
def test_a_spec_dtype_stores_the_same_signal_in_another_type(signal, spec, dtype):
    source = signal(spec, 0)
    data = source.read(0, spec.n_frames if isinstance(spec, OphysSpec) else spec.n_samples)
    assert data.dtype == np.dtype(dtype) and data.shape == source.shape
    assert np.array_equal(data, signal(spec, 0).read(0, len(data)))  # deterministic
    native = signal(type(spec)(**{**spec.__dict__, "dtype": None}), 0).read(0, len(data)).astype(np.float64)
    # the same recording: values follow the native counts (a float or 8-bit copy of the same signal)
    assert np.corrcoef(native.ravel(), data.astype(np.float64).ravel())[0, 1] > 0.95
    if dtype == "uint8":
        assert data.min() > 0 and data.max() < 255 and np.mean(data == 255) < 1e-3  # within the 8-bit range
    if isinstance(source, EcephysSignal) and dtype == "float32":
        assert source.conversion == 1e-6  # microvolts, and the series says so


def test_native_specs_keep_their_file_names():
    """A spec's dtype defaults to None, which the content key leaves out: every existing file keeps its name."""
    ophys = get_modality("ophys")
    layout = get_layout("neuroconv-default")
    assert asset_filename(ophys, "tiny", 0, layout) == asset_filename(ophys, "tiny", 0, layout, ophys.spec("tiny"))
    assert asset_filename(ophys, "tiny", 0, layout).endswith("-63a458d3f8-e469dda02b.nwb")
    other = asset_filename(ophys, "tiny", 0, layout, OphysSpec(96, 64, 64, dtype="float32"))
    assert other != asset_filename(ophys, "tiny", 0, layout)


def test_a_file_of_any_spec_is_written_and_published(tmp_path, store):
    ecephys = get_modality("ecephys")
    spec = EcephysSpec(n_samples=40_000, n_channels=12, dtype="float32")
    layout = Layout("loop-test-x", "test", chunks={"ecephys": (8_192, 4)}, modalities=("ecephys",))
    written = write_recording(ecephys, layout, "tiny", 0, tmp_path, spec=spec)
    with h5py.File(written.path, "r") as file:
        data = file["acquisition/ElectricalSeries/data"]
        assert data.shape == (40_000, 12) and data.dtype == np.float32 and data.chunks == (8_192, 4)
        assert np.array_equal(data[:], EcephysSignal(spec, 0).read(0, 40_000))
        assert file["acquisition/ElectricalSeries/data"].attrs["conversion"] == pytest.approx(1e-6)
    asset = publish(store, written, "ecephys", layout, "tiny")
    assert asset.key == f"tiny/{written.path.name}" and asset.layout == "loop-test-x"
    assert store.head(asset.key)["size"] == asset.size_bytes == written.path.stat().st_size
    assert asset.series == "acquisition/ElectricalSeries" and asset.compression_ratio > 0


def test_an_added_block_joins_the_axes_with_its_layouts_facts():
    grid = Grid(workloads=["ophys_patch"], methods=["remfile"], layouts=["neuroconv-default"], profiles=["loopback"])
    before = set(grid.cells())
    grid.add_block(
        Block("extra", workloads=["ecephys_window"], methods=["hdmf-zarr"], layouts=["made-z"], profiles=["lab"]),
        layouts={"made-z": ("ecephys", "zarr", False)},
    )
    assert before <= set(grid.cells())  # a grid of every combination keeps its cells (as a block)
    assert ("ecephys_window", "hdmf-zarr", "made-z", "lab") in grid.cells()
    assert grid.applies("ophys_patch", "remfile", "made-z")  # made for ecephys, in Zarr: remfile cannot read it
    assert not grid.excludes("hdmf-zarr", "lab", "ecephys_window", "made-z")
    assert grid.excludes("remfile", "lab", "ophys_patch", "neuroconv-default")  # no block measures it under lab
    again = Grid.from_dict(grid.to_dict())
    assert set(again.cells()) == set(grid.cells())
    with pytest.raises(ValueError, match="names its methods"):
        grid.add_block(Block("vague", workloads=["ophys_patch"], layouts=["x"], profiles=["lab"]))


def test_a_run_step_adds_assets_and_blocks_that_are_prepared_like_the_grids(settings, store, tmp_path):
    ophys = get_modality("ophys")
    spec = OphysSpec(n_frames=70, height=40, width=40, dtype="uint8")
    layout = Layout("loop-test-patch", "test", chunks={"ophys": (64, 8, 8)}, modalities=("ophys",))

    def extend(catalog, grid, log):
        written = write_recording(ophys, layout, "tiny", 0, tmp_path / "assets", spec=spec)
        catalog.add(publish(store, written, "ophys", layout, "tiny"))
        grid.add_block(Block("loop-test", ["ophys_patch"], ["remfile"], [layout.name], ["in-region"]),
                       layouts={layout.name: ("ophys", "hdf5", False)})  # fmt: skip
        return {"loop": {"cases": ["test"]}}

    grid = Grid(workloads=["ophys_patch"], methods=[], layouts=[], profiles=[], blocks=[])
    state_file = tmp_path / "state.json"
    state = prepare_run(settings.with_(state_file=state_file, data_dir=tmp_path), store, grid, progress=False,
                        log=lambda *_: None, extend=extend)  # fmt: skip
    assert state.grid.cells() == [("ophys_patch", "remfile", "loop-test-patch", "in-region")]
    assert state.extra["loop"] == {"cases": ["test"]}
    (floor,) = state.extra["floors"]  # the added cell's bound, from the file's own chunk index
    assert floor["layout"] == "loop-test-patch"
    assert floor["chunks"] == 2 * 4 * 4  # frames 7-69 over two 64-frame chunks, 32x32 px over 4x4 8-px chunks
    loaded = RunState.load(state_file)
    assert loaded.catalog.asset("ophys", "loop-test-patch").chunk_shape == (64, 8, 8)
    from nwb_cloud.suite.run_info import run_info

    assert run_info(loaded)["loop"] == {"cases": ["test"]}


def test_the_recommendation_states_and_flags_its_cost_side():
    from nwb_cloud.recommend import RecommendError, recommend

    data = ((30_000, 512, 512), "uint16", "ophys")
    plain = recommend(data, {"ophys_patch": 0.8, "ophys_clip": 0.2}, "in-region")
    cost = plain.cost
    assert cost.write_cpu_s_per_gb > 0 and cost.default_write_cpu_s_per_gb > 0 and cost.flags == []
    assert cost.write_slowdown == pytest.approx(cost.write_cpu_s_per_gb / cost.default_write_cpu_s_per_gb)
    assert 0 < cost.read_memory_bytes < cost.memory_limit_bytes and cost.write_buffer_bytes > plain.chunk_bytes
    assert "CPU-s/GB" in plain.summary() and "FLAG" not in plain.summary()
    slow = recommend(data, {"ophys_clip": 1.0}, "in-region", codecs=["gzip-9"])  # gzip-9 writes ~6x slower
    assert any("NeuroConv's default" in flag and "compression ratio" in flag for flag in slow.cost.flags)
    tight = recommend(data, {"ophys_patch": 1.0}, "in-region", memory_limit_bytes=2_000_000, write_cost=False)
    assert any("write buffer" in flag for flag in tight.cost.flags)
    assert any("one read holds" in flag for flag in tight.cost.flags)
    assert tight.cost.write_cpu_s_per_gb is None  # not measured when asked not to
    with pytest.raises(RecommendError, match="memory limit"):
        recommend(data, {"ophys_patch": 1.0}, "in-region", memory_limit_bytes=0)
