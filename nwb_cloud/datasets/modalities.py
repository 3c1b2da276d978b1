"""The modalities of the suite: their signal, file builder, sizes and NeuroConv's default chunks.

``ophys`` and ``ecephys`` are one bulk recording each; ``session`` is a rich session file (hundreds of small
objects) beside a bulk AP-band series, for the open workloads where paged HDF5 acts.

Sizes. ``tiny`` is for tests. ``quick`` and ``full`` are real in everything a read sees: whole 512x512
frames, 384 channels at 30 kHz, the ophys patch's 500 frames, and NeuroConv's default chunk shapes exactly as
for an hour-long recording, so the patch, the clip, the window and the opens touch the same chunks as in a
real file. What is short is the recording's length, which only the per-electrode trace reads whole: its time
grows linearly with length for every layout alike (it touches every time chunk of one channel), so layout
ratios are those of a longer recording; a longer file would only have a larger chunk index.

``full`` is the layout study's size, bounded by this machine's disk (~60 GB free, shared): the study writes
~29 layouts per modality, each once here and once more into the embedded store, ~17 GB of files plus their
~17 GB copy at these sizes (5-minute recordings would need ~10 times that). The per-electrode trace is 20 s
(600,000 samples: 8 of NeuroConv's 78,125-sample chunks, 3 of the workload-friendly 2^18).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from neuroconv.tools.iterative_write import get_electrical_series_chunk_shape, get_image_series_chunk_shape

from nwb_cloud.datasets.nwbfiles import ecephys_nwbfile, ophys_nwbfile
from nwb_cloud.datasets.session_recording import BULK_SERIES, SessionSignal, SessionSpec, session_nwbfile
from nwb_cloud.datasets.signals import EcephysSignal, EcephysSpec, OphysSignal, OphysSpec
from nwb_cloud.errors import NwbCloudError


class UnknownModality(NwbCloudError):
    pass


def _ecephys_default_chunks(shape, dtype) -> tuple[int, ...]:
    chunks = get_electrical_series_chunk_shape(
        number_of_frames=shape[0], number_of_channels=shape[1], dtype=np.dtype(dtype)
    )
    return tuple(int(c) for c in chunks)


def _ophys_default_chunks(shape, dtype) -> tuple[int, ...]:
    chunks = get_image_series_chunk_shape(num_samples=shape[0], sample_shape=shape[1:], dtype=np.dtype(dtype))
    return tuple(int(c) for c in chunks)


@dataclass(frozen=True)
class Modality:
    name: str
    series_path: str  # where the bulk series lives in the file
    sizes: dict  # size name -> spec of the signal
    signal: Callable  # (spec, seed) -> Signal
    build: Callable  # (signal, data, identifier) -> NWBFile
    neuroconv_chunks: Callable  # (shape, dtype) -> NeuroConv's default chunk shape

    def spec(self, size: str):
        try:
            return self.sizes[size]
        except KeyError:
            raise UnknownModality(f"no size {size!r} for {self.name}; known: {', '.join(self.sizes)}") from None


MODALITIES: dict[str, Modality] = {
    "ecephys": Modality(
        name="ecephys",
        series_path="acquisition/ElectricalSeries",
        sizes={
            "tiny": EcephysSpec(n_samples=45_000, n_channels=32),
            "quick": EcephysSpec(n_samples=10 * 30_000),  # 10 s of a 384-channel probe, 230 MB raw
            "full": EcephysSpec(n_samples=20 * 30_000),  # 20 s, 461 MB raw (see the module docstring)
        },
        signal=EcephysSignal,
        build=ecephys_nwbfile,
        neuroconv_chunks=_ecephys_default_chunks,
    ),
    "ophys": Modality(
        name="ophys",
        series_path="acquisition/TwoPhotonSeries",
        sizes={
            "tiny": OphysSpec(n_frames=96, height=64, width=64),
            "quick": OphysSpec(n_frames=600),  # 20 s at 30 Hz, 315 MB raw
            "full": OphysSpec(n_frames=1_000),  # 33 s, 524 MB raw (see the module docstring)
        },
        signal=OphysSignal,
        build=ophys_nwbfile,
        neuroconv_chunks=_ophys_default_chunks,
    ),
    "session": Modality(
        name="session",
        series_path=f"acquisition/{BULK_SERIES}",
        sizes={
            "tiny": SessionSpec(n_small_series=8, n_samples=45_000, n_channels=32),
            "quick": SessionSpec(n_small_series=50, n_samples=5 * 30_000),  # 100 small series, 115 MB bulk
            "full": SessionSpec(n_small_series=200, n_samples=10 * 30_000),  # 400 small series, 230 MB bulk
        },
        signal=SessionSignal,
        build=session_nwbfile,
        neuroconv_chunks=_ecephys_default_chunks,
    ),
}


def get_modality(name: str) -> Modality:
    try:
        return MODALITIES[name]
    except KeyError:
        raise UnknownModality(f"unknown modality {name!r}; known: {', '.join(MODALITIES)}") from None
