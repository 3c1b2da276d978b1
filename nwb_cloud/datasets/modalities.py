"""The two recording modalities of the suite: their signal, file builder, sizes and NeuroConv's default chunks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from neuroconv.tools.iterative_write import get_electrical_series_chunk_shape, get_image_series_chunk_shape

from nwb_cloud.datasets.nwbfiles import ecephys_nwbfile, ophys_nwbfile
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
            "quick": EcephysSpec(n_samples=30 * 30_000),  # 30 s of a 384-channel probe, 691 MB raw
            "full": EcephysSpec(n_samples=300 * 30_000),  # 5 min, 6.9 GB raw
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
            "quick": OphysSpec(n_frames=1_200),  # 40 s at 30 Hz, 629 MB raw
            "full": OphysSpec(n_frames=9_000),  # 5 min, 4.7 GB raw
        },
        signal=OphysSignal,
        build=ophys_nwbfile,
        neuroconv_chunks=_ophys_default_chunks,
    ),
}


def get_modality(name: str) -> Modality:
    try:
        return MODALITIES[name]
    except KeyError:
        raise UnknownModality(f"unknown modality {name!r}; known: {', '.join(MODALITIES)}") from None
