"""The workloads that pull the other way (a clip of whole frames, all channels over a window) and the session open:
their selections, exact reads through the endpoint, and a wrong read caught."""

import shutil

import h5py
import numpy as np
import pytest
from pynwb import NWBHDF5IO

from nwb_cloud.datasets.modalities import get_modality
from nwb_cloud.datasets.session import N_TRIALS, N_UNITS
from nwb_cloud.suite.cell import Cell, CellRun
from nwb_cloud.workloads import WORKLOADS, WrongRead, get_workload
from nwb_cloud.workloads.opposing import (
    CLIP_FRAMES,
    WINDOW_SAMPLES,
    ecephys_window_selection,
    ophys_clip_selection,
)


def _shape(modality: str, size: str) -> tuple[int, ...]:
    spec = get_modality(modality).spec(size)
    return (spec.n_frames, spec.height, spec.width) if modality == "ophys" else (spec.n_samples, spec.n_channels)


@pytest.mark.parametrize("size", ["tiny", "quick", "full"])
def test_the_clip_is_whole_frames_and_the_window_every_channel(size):
    frames, height, width = shape = _shape("ophys", size)
    clip = ophys_clip_selection(shape)
    assert clip[0].stop - clip[0].start == CLIP_FRAMES and clip[0].start >= 0 and clip[0].stop <= frames
    assert (clip[1], clip[2]) == (slice(0, height), slice(0, width))
    assert clip[0].start % 19 != 0  # not aligned to NeuroConv's 19-frame chunks: a viewer's clip is anywhere
    samples, channels = shape = _shape("ecephys", size)
    window = ecephys_window_selection(shape)
    assert window[0].stop - window[0].start == min(WINDOW_SAMPLES, samples) and window[0].stop <= samples
    assert window[1] == slice(0, channels)


def test_the_registry_holds_the_new_rows():
    assert WORKLOADS["ophys_clip"].modality == "ophys" and WORKLOADS["ecephys_window"].modality == "ecephys"
    assert WORKLOADS["open_session"].modality == "session" and WORKLOADS["open_session"].includes_open


@pytest.mark.parametrize("layout", ["neuroconv-default", "workload-friendly", "neuroconv-default-paged"])
@pytest.mark.parametrize("workload", ["ophys_clip", "ecephys_window"])
def test_the_opposing_reads_are_exact_and_compute_what_they_say(catalog, workload, layout):
    run = CellRun(catalog, Cell(workload, "fsspec", layout))
    result = run.once()  # raises WrongRead on any difference from the local source file
    modality = get_modality(WORKLOADS[workload].modality)
    source = modality.signal(modality.spec("tiny"), 0)
    first = result.selection[0]
    want = source.read(first.start, first.stop)[(slice(None), *result.selection[1:])]
    assert np.array_equal(result.raw, want)
    if workload == "ophys_clip":
        assert np.allclose(result.derived, want.mean(axis=0))
    else:
        referenced = want.astype(np.float32) - np.median(want, axis=1, keepdims=True)
        assert np.allclose(result.derived, np.sqrt((referenced**2).mean(axis=0)), rtol=1e-4)  # float32 sums


@pytest.mark.parametrize("layout", ["neuroconv-default", "neuroconv-default-paged"])
def test_opening_the_session_touches_its_tables_and_small_series(catalog, layout):
    run = CellRun(catalog, Cell("open_session", "remfile", layout))
    summary = run.once().raw
    spec = get_modality("session").spec("tiny")
    assert summary["units"] == N_UNITS and summary["trials"] == N_TRIALS
    assert summary["electrodes"] == 16 + spec.n_channels  # the session's own sites and the probe's
    assert summary["small_series"] == 2 * spec.n_small_series + 1  # each sweep's two series, and one short ES
    assert summary["bulk_shape"] == (spec.n_samples, spec.n_channels)
    assert len(summary["spikes_per_unit"]) == N_UNITS and sum(summary["spikes_per_unit"]) > 0


def test_default_and_paged_sessions_hold_the_same_content(catalog):
    results = [CellRun(catalog, Cell("open_session", "fsspec", layout)).once().raw
               for layout in ("neuroconv-default", "neuroconv-default-paged")]  # fmt: skip
    assert results[0] == results[1]


def test_a_changed_small_series_is_a_wrong_read(catalog, tmp_path):
    asset = catalog.asset("session", "neuroconv-default")
    workload = get_workload("open_session")
    expected = CellRun(catalog, Cell("open_session", "remfile", "neuroconv-default")).expected()
    copy = tmp_path / "session.nwb"
    shutil.copy(asset.local_path, copy)
    with h5py.File(copy, "r+") as file:
        file["acquisition/response_0003/data"][5] += 1e-3
    with NWBHDF5IO(copy, "r") as io:
        result = workload.run(io.read(), asset.series)
    with pytest.raises(WrongRead, match="small_series_data"):
        workload.check(result, expected)
