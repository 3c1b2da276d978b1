"""The reads that pull the other way: what whole frames and all channels cost in a layout built for patches.

A layout tuned for the seed's reads (a small patch over many frames, one electrode over the whole
recording) makes these slow, and NeuroConv's default makes them fast: measured side by side, the layout
study shows the trade-off instead of a one-sided win.
"""

from __future__ import annotations

import numpy as np

from nwb_cloud.workloads.base import Result, Workload

# -- ophys: a short movie clip of whole frames, as a viewer or a motion-correction check reads it ---------
CLIP_FRAMES = 30  # 1 s at 30 Hz


def ophys_clip_selection(shape) -> tuple[slice, ...]:
    """30 whole frames from the middle of the movie (not aligned to any chunk boundary on purpose)."""
    frames = shape[0]
    t0 = max(0, min(frames - CLIP_FRAMES, frames // 2 + 3))
    return (slice(t0, min(frames, t0 + CLIP_FRAMES)), slice(0, shape[1]), slice(0, shape[2]))


def read_ophys_clip(nwbfile, series_path: str) -> Result:
    data = nwbfile.acquisition[series_path.rsplit("/", 1)[-1]].data
    selection = ophys_clip_selection(data.shape)
    clip = np.asarray(data[selection])
    return Result(raw=clip, derived=clip.mean(axis=0), selection=selection)


# -- ecephys: every channel over a short window, as a spike sorter's batch or a trace viewer reads it ------
WINDOW_SAMPLES = 30_000  # 1 s at 30 kHz


def ecephys_window_selection(shape) -> tuple[slice, ...]:
    """One second of every channel from the middle of the recording (not chunk-aligned on purpose)."""
    samples = shape[0]
    t0 = max(0, min(samples - WINDOW_SAMPLES, samples // 2 + 777))
    return (slice(t0, min(samples, t0 + WINDOW_SAMPLES)), slice(0, shape[1]))


def read_ecephys_window(nwbfile, series_path: str) -> Result:
    """The window, common-average referenced; per-channel RMS of the result (a sorter's whitening input)."""
    data = nwbfile.acquisition[series_path.rsplit("/", 1)[-1]].data
    selection = ecephys_window_selection(data.shape)
    window = np.asarray(data[selection])
    referenced = window.astype(np.float32) - np.median(window, axis=1, keepdims=True).astype(np.float32)
    return Result(raw=window, derived=np.sqrt(np.mean(referenced**2, axis=0)), selection=selection)


WORKLOADS = [
    Workload(
        name="ophys_clip",
        modality="ophys",
        description=f"a {CLIP_FRAMES}-frame clip of whole frames (1 s of the movie), mean frame",
        run=read_ophys_clip,
        select=ophys_clip_selection,
    ),
    Workload(
        name="ecephys_window",
        modality="ecephys",
        description="1 s of every channel, common-average referenced, per-channel RMS",
        run=read_ecephys_window,
        select=ecephys_window_selection,
    ),
]
