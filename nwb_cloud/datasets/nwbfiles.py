"""In-memory NWB files around the generated signals, with the metadata a real acquisition file has.

The bulk series is a data chunk iterator over a :class:`~nwb_cloud.datasets.signals.Signal`, so a
multi-GB file is written buffer by buffer and never held in memory.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
from hdmf.data_utils import GenericDataChunkIterator
from pynwb import NWBFile
from pynwb.ecephys import ElectricalSeries
from pynwb.ophys import OpticalChannel, TwoPhotonSeries

from nwb_cloud.datasets.signals import EcephysSignal, OphysSignal, Signal

SESSION_START = datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
BUFFER_BYTES = 256 * 2**20


class SignalIterator(GenericDataChunkIterator):
    """Feeds a signal to HDMF in buffers that are whole chunks along time and span every other axis."""

    def __init__(self, source: Signal, chunk_shape: tuple[int, ...], display_progress: bool = False):
        self.source = source
        chunk_shape = tuple(int(c) for c in chunk_shape)
        super().__init__(
            chunk_shape=chunk_shape,
            buffer_shape=buffer_shape_for(source.shape, source.dtype, chunk_shape),
            display_progress=display_progress,
            progress_bar_options={"desc": "write", "unit": "buffer"},
        )

    def _get_data(self, selection: tuple[slice, ...]) -> np.ndarray:
        return self.source.read(selection[0].start, selection[0].stop)[(slice(None), *selection[1:])]

    def _get_maxshape(self) -> tuple[int, ...]:
        return self.source.shape

    def _get_dtype(self) -> np.dtype:
        return self.source.dtype


def buffer_shape_for(shape, dtype, chunk_shape) -> tuple[int, ...]:
    """Whole rows of chunks along time (~256 MiB) spanning every other axis, so each chunk is written once."""
    row_bytes = math.prod(shape[1:]) * np.dtype(dtype).itemsize * chunk_shape[0]
    rows = max(1, BUFFER_BYTES // max(row_bytes, 1))
    return (min(shape[0], chunk_shape[0] * rows), *shape[1:])


def _nwbfile(identifier: str, description: str) -> NWBFile:
    return NWBFile(
        session_description=description,
        identifier=identifier,
        session_start_time=SESSION_START,
        experimenter=["Doe, Jane"],
        lab="nwb-cloud synthetic lab",
        institution="nwb-cloud",
        experiment_description="Synthetic recording generated deterministically for cloud read benchmarks.",
        session_id=identifier,
    )


def ecephys_nwbfile(source: EcephysSignal, data, identifier: str) -> NWBFile:
    """A Neuropixels 1.0 recording: one probe, four electrode groups (one per 96-site bank), the AP band."""
    nwbfile = _nwbfile(identifier, "Synthetic Neuropixels AP-band recording")
    device = nwbfile.create_device(
        name="NeuropixelsProbe", description="Neuropixels 1.0 probe (synthetic)", manufacturer="IMEC"
    )
    n_channels = source.spec.n_channels
    banks = max(1, min(4, n_channels // 96))
    groups = [
        nwbfile.create_electrode_group(
            name=f"bank{index}", description=f"sites of bank {index}", location="CA1", device=device
        )
        for index in range(banks)
    ]
    nwbfile.add_electrode_column(name="channel_name", description="acquisition channel name")
    for channel in range(n_channels):
        nwbfile.add_electrode(
            group=groups[min(channel * banks // n_channels, banks - 1)],
            location="CA1",
            rel_x=float([43, 11, 59, 27][channel % 4]),  # the staggered Neuropixels 1.0 site pattern
            rel_y=float(20 * (channel // 2)),
            channel_name=f"AP{channel}",
        )
    nwbfile.add_acquisition(
        ElectricalSeries(
            name="ElectricalSeries",
            description="raw AP band",
            data=data,
            electrodes=nwbfile.create_electrode_table_region(list(range(n_channels)), "all electrodes"),
            rate=source.spec.rate,
            starting_time=0.0,
            conversion=source.conversion,
            filtering="300 Hz high-pass in hardware (synthetic)",
        )
    )
    return nwbfile


def ophys_nwbfile(source: OphysSignal, data, identifier: str) -> NWBFile:
    """A two-photon session: microscope, optical channel, imaging plane, and the raw movie."""
    nwbfile = _nwbfile(identifier, "Synthetic two-photon calcium imaging")
    device = nwbfile.create_device(name="Microscope", description="two-photon microscope (synthetic)")
    channel = OpticalChannel(name="GreenChannel", description="GCaMP emission", emission_lambda=525.0)
    plane = nwbfile.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=channel,
        description="layer 2/3 of V1",
        device=device,
        excitation_lambda=920.0,
        imaging_rate=source.spec.rate,
        indicator="GCaMP6s",
        location="V1",
        grid_spacing=[1.2, 1.2],
        grid_spacing_unit="micrometers",
    )
    nwbfile.add_acquisition(
        TwoPhotonSeries(
            name="TwoPhotonSeries",
            description="raw two-photon movie",
            data=data,
            imaging_plane=plane,
            rate=source.spec.rate,
            starting_time=0.0,
            unit="n.a.",
            dimension=[source.spec.height, source.spec.width],
        )
    )
    return nwbfile
