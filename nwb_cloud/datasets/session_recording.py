"""The "session" modality: the rich session file of :mod:`~nwb_cloud.datasets.session` beside a bulk recording.

Opening a real session means reading hundreds of small objects (units with ragged spike times, trials, the
electrodes table, many short icephys sweeps) that sit in a file whose bulk is one large raw series. That is
where HDF5's paged file-space strategy acts: metadata and small raw data gathered into pages instead of
scattered between the bulk's chunks. So the session asset is the session generator's file plus a
Neuropixels-like AP-band series (384 electrodes added to the session's electrodes table), written through
the same NeuroConv path as the other modalities, so a layout (default or paged) applies to it the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from pynwb.ecephys import ElectricalSeries

from nwb_cloud.datasets.session import make_session_nwbfile, seeded_object_ids
from nwb_cloud.datasets.signals import EcephysSignal

BULK_SERIES = "ElectricalSeriesAP"
# Object IDs of what is added here are drawn from their own seeded stream, apart from the session's own.
_ID_STREAM = 1_000_003


@dataclass(frozen=True)
class SessionSpec:
    """The session's small-object count and its bulk series (the fields of an ``EcephysSpec``)."""

    n_small_series: int  # icephys sweeps: each is a stimulus and a response series (2 small series)
    n_samples: int
    n_channels: int = 384
    rate: float = 30_000.0


class SessionSignal(EcephysSignal):
    """The bulk series of a session: the ecephys generator, carrying the session's own spec."""

    def __init__(self, spec: SessionSpec, seed: int = 0):
        super().__init__(spec, seed)


def session_nwbfile(source: SessionSignal, data, identifier: str):
    """The session (``seed`` and ``n_small_series`` from the source's spec) with the bulk series in acquisition."""
    spec = source.spec
    nwbfile = make_session_nwbfile(seed=source.seed, n_small_series=spec.n_small_series)
    with seeded_object_ids(_ID_STREAM + source.seed):
        groups = list(nwbfile.electrode_groups.values())
        first = len(nwbfile.electrodes)
        for channel in range(spec.n_channels):
            nwbfile.add_electrode(
                group=groups[channel % len(groups)],
                location="CA1",
                x=float([43, 11, 59, 27][channel % 4]),
                y=float(20 * (channel // 2)),
                z=0.0,
                imp=1.5e5,
                filtering="300 Hz high-pass in hardware (synthetic)",
                label=f"AP{channel}",
                is_good=True,
            )
        region = nwbfile.create_electrode_table_region(
            list(range(first, first + spec.n_channels)), "the probe's AP-band sites"
        )
        nwbfile.add_acquisition(
            ElectricalSeries(
                name=BULK_SERIES,
                description="raw AP band (the session's bulk dataset)",
                data=data,
                electrodes=region,
                rate=spec.rate,
                starting_time=0.0,
                conversion=source.conversion,
            )
        )
    return nwbfile
