"""The seed's two use cases, and opening a file, as workload rows."""

from __future__ import annotations

import numpy as np
from scipy import signal

from nwb_cloud.workloads.base import Result, Workload


def _series(nwbfile, series_path: str):
    return nwbfile.acquisition[series_path.rsplit("/", 1)[-1]]


# -- ophys: a small spatial patch over a block of time --------------------------------------------------------
PATCH = 32
PATCH_FRAMES = 500


def ophys_patch_selection(shape) -> tuple[slice, ...]:
    """500 frames of a 32x32 patch, starting a tenth into the movie, at a fixed place off-centre."""
    frames, height, width = shape
    t0 = frames // 10
    y0 = (height * 3 // 8) // PATCH * PATCH
    x0 = (width * 5 // 8) // PATCH * PATCH
    return (
        slice(t0, min(frames, t0 + PATCH_FRAMES)),
        slice(y0, min(height, y0 + PATCH)),
        slice(x0, min(width, x0 + PATCH)),
    )


def read_ophys_patch(nwbfile, series_path: str) -> Result:
    data = _series(nwbfile, series_path).data
    selection = ophys_patch_selection(data.shape)
    patch = np.asarray(data[selection])
    return Result(raw=patch, derived=patch.mean(axis=(1, 2)), selection=selection)


# -- ecephys: one electrode's whole trace, band-passed ----------------------------------------------------------
BAND_HZ = (300.0, 6000.0)


def electrode_index(n_channels: int) -> int:
    return min(n_channels - 1, n_channels // 3 + 1)


def ecephys_electrode_selection(shape) -> tuple[slice, ...]:
    channel = electrode_index(shape[1])
    return (slice(0, shape[0]), slice(channel, channel + 1))


def read_ecephys_electrode(nwbfile, series_path: str) -> Result:
    series = _series(nwbfile, series_path)
    selection = ecephys_electrode_selection(series.data.shape)
    trace = np.asarray(series.data[selection])
    rate = float(series.rate)
    sos = signal.butter(4, [BAND_HZ[0], min(BAND_HZ[1], 0.45 * rate)], btype="bandpass", fs=rate, output="sos")
    filtered = signal.sosfiltfilt(sos, trace[:, 0].astype(np.float32) * float(series.conversion))
    return Result(raw=trace, derived=filtered, selection=selection)


# -- opening: what pynwb does before any read ------------------------------------------------------------------
def open_summary(nwbfile, series_path: str) -> Result:
    """Look up the series and touch its linked tables, as a viewer does on open."""
    series = _series(nwbfile, series_path)
    summary = {
        "series": series.name,
        "neurodata_type": series.neurodata_type,
        "shape": tuple(int(s) for s in series.data.shape),
        "dtype": str(series.data.dtype),
        "rate": float(series.rate),
    }
    if nwbfile.electrodes is not None:
        electrodes = nwbfile.electrodes.to_dataframe()
        summary["electrodes"] = len(electrodes)
        summary["electrode_groups"] = len({group.name for group in electrodes["group"]})
    if hasattr(series, "imaging_plane"):
        summary["imaging_plane"] = series.imaging_plane.name
        summary["indicator"] = series.imaging_plane.indicator
    return Result(raw=summary)


WORKLOADS = [
    Workload(
        name="ophys_patch",
        modality="ophys",
        description="a 32x32-pixel patch over 500 frames of a two-photon movie",
        run=read_ophys_patch,
        select=ophys_patch_selection,
    ),
    Workload(
        name="ecephys_electrode",
        modality="ecephys",
        description="one electrode's whole trace, band-pass filtered 300-6000 Hz (sosfiltfilt)",
        run=read_ecephys_electrode,
        select=ecephys_electrode_selection,
    ),
    Workload(
        name="open_ecephys",
        modality="ecephys",
        description="pynwb open, look up the ElectricalSeries, read the electrodes table",
        run=open_summary,
        includes_open=True,
    ),
    Workload(
        name="open_ophys",
        modality="ophys",
        description="pynwb open, look up the TwoPhotonSeries and its imaging plane",
        run=open_summary,
        includes_open=True,
    ),
]
