"""The rich session file: deterministic, and holding every structure the fidelity tests rely on."""

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

from nwb_cloud.datasets.session import BadSession, write_session

N_SMALL = 5


@pytest.fixture(scope="module")
def session_path(tmp_path_factory):
    return write_session(tmp_path_factory.mktemp("session"), seed=3, n_small_series=N_SMALL)


def test_same_seed_same_bytes_other_seed_other_content(session_path, tmp_path):
    again = write_session(tmp_path / "again", seed=3, n_small_series=N_SMALL)
    assert again.read_bytes() == session_path.read_bytes()
    other = write_session(tmp_path / "other", seed=4, n_small_series=N_SMALL)
    with h5py.File(session_path, "r") as one, h5py.File(other, "r") as two:
        assert one.attrs["object_id"] != two.attrs["object_id"]
        assert not np.array_equal(one["units/spike_times"][:], two["units/spike_times"][:])


def test_a_cached_session_is_reused(session_path):
    stamp = session_path.stat().st_mtime_ns
    assert write_session(session_path.parent, seed=3, n_small_series=N_SMALL) == session_path
    assert session_path.stat().st_mtime_ns == stamp
    assert not [p for p in session_path.parent.iterdir() if "partial" in p.name]


def test_no_small_series_is_a_clear_error(tmp_path):
    with pytest.raises(BadSession, match="n_small_series=0"):
        write_session(tmp_path, n_small_series=0)
    assert not list(tmp_path.iterdir())


def test_the_session_holds_every_structure(session_path):
    with NWBHDF5IO(session_path, "r") as io:
        nwbfile = io.read()
        series = nwbfile.acquisition["ElectricalSeries"]
        assert series.electrodes.table is nwbfile.electrodes
        assert len(nwbfile.electrodes) == 16 and series.data.shape == (3000, 16)
        lfp = nwbfile.processing["ecephys"]["LFP"]["LFP"]
        assert list(lfp.electrodes.data[:]) == [1, 3, 5, 7, 9]
        units = nwbfile.units
        lengths = [len(units["spike_times"][i]) for i in range(len(units))]
        assert len(set(lengths)) > 1  # ragged
        assert all(units["electrodes"][i].shape[0] >= 1 for i in range(len(units)))
        assert len(nwbfile.trials) == 8 and set(nwbfile.trials["stimulus"][:]) == {"grating", "noise", "blank"}
        images = nwbfile.stimulus_template["stimulus_images"]
        assert [image.name for image in images.order_of_images[:]] == ["frame2", "colour", "frame0", "frame1"]
        assert len(nwbfile.intracellular_recordings) == N_SMALL
        assert len(nwbfile.icephys_simultaneous_recordings) == N_SMALL
        assert nwbfile.epochs["timeseries"][0][0].timeseries is series
        speed = nwbfile.processing["behavior"]["speed"]
        assert speed.timestamps.name == "/processing/behavior/Position/position/timestamps"  # the linked dataset
        assert nwbfile.devices["Probe"].model is nwbfile.device_models["SiliconProbe16"]
        assert len(nwbfile.events["notes"]) == 3
    with h5py.File(session_path, "r") as file:
        assert isinstance(file["processing/behavior/speed"].get("timestamps", getlink=True), h5py.SoftLink)
        assert file["intervals/epochs/timeseries"].dtype.names == ("idx_start", "count", "timeseries")
        assert file["processing/ophys/ImageSegmentation/PlaneSegmentation/pixel_mask"].dtype.names == (
            "x", "y", "weight",
        )  # fmt: skip
        assert h5py.check_ref_dtype(file["stimulus/templates/stimulus_images/order_of_images"].dtype)
        assert file["acquisition/ElectricalSeries/starting_time"].shape == ()
