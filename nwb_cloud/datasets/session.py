"""A small but feature-rich NWB session: every structure an index or reader of NWB files must get right.

The bulk-signal files of :mod:`nwb_cloud.datasets.writer` hold one big series; real sessions also hold
what makes NWB hard to read remotely and hard to translate: tables whose columns reference other objects
(electrodes regions, ragged spike times, ``TimeSeriesReferenceVectorData`` compound columns), links (a
series whose timestamps are another series' timestamps, electrode groups linking devices), images ordered
by object references, compound datasets, scalar and variable-length string datasets, and - for the "many
small objects" open benchmark - an intracellular-electrophysiology layout of many small series.

Everything is derived from ``seed`` (including object IDs and creation dates), so two files written with
the same arguments hold the same content.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from unittest import mock

import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.base import ImageReferences, Images
from pynwb.behavior import Position, SpatialSeries
from pynwb.ecephys import LFP, ElectricalSeries
from pynwb.file import Subject
from pynwb.icephys import CurrentClampSeries, CurrentClampStimulusSeries
from pynwb.image import GrayscaleImage, RGBImage
from pynwb.ophys import ImageSegmentation, OpticalChannel

from nwb_cloud.datasets.nwbfiles import SESSION_START
from nwb_cloud.errors import NwbCloudError

SESSION_VERSION = 1  # bump when the content written for a given seed changes
N_ELECTRODES = 16
N_UNITS = 6
N_TRIALS = 8


class BadSession(NwbCloudError):
    pass


@contextlib.contextmanager
def seeded_object_ids(seed: int):
    """hdmf draws object IDs from ``uuid4()``; draw them from ``seed`` instead, in construction order."""
    rng = random.Random(f"nwb-cloud-session-{seed}")
    with mock.patch("hdmf.container.uuid4", lambda: uuid.UUID(int=rng.getrandbits(128), version=4)):
        yield


def make_session_nwbfile(seed: int = 0, n_small_series: int = 8) -> NWBFile:
    """The in-memory session (see the module docstring for what it holds)."""
    if n_small_series < 1:
        raise BadSession(f"a session needs at least one small series, got n_small_series={n_small_series}")
    rng = np.random.default_rng(seed)
    with seeded_object_ids(seed):
        nwbfile = NWBFile(
            session_description="Synthetic multi-modal session exercising every NWB structure",
            identifier=f"nwb-cloud-session-seed{seed}",
            session_start_time=SESSION_START,
            file_create_date=[SESSION_START + timedelta(days=1)],
            experimenter=["Doe, Jane", "Roe, Richard"],
            keywords=["synthetic", "fidelity", "kerchunk"],
            lab="nwb-cloud synthetic lab",
            institution="nwb-cloud",
            session_id=f"session-{seed}",
            related_publications=["doi:10.0000/nwb-cloud.synthetic"],
        )
        nwbfile.subject = Subject(
            subject_id=f"mouse-{seed}",
            species="Mus musculus",
            sex="F",
            age="P90D",
            date_of_birth=datetime(2023, 10, 17, tzinfo=UTC),
            description="synthetic subject",
        )
        electrical_series = _add_ecephys(nwbfile, rng)
        _add_units(nwbfile, rng)
        _add_trials_and_epochs(nwbfile, rng, electrical_series)
        _add_behavior(nwbfile, rng)
        _add_images(nwbfile, rng)
        _add_segmentation(nwbfile, rng)
        _add_icephys(nwbfile, rng, n_small_series)
    return nwbfile


def _add_ecephys(nwbfile: NWBFile, rng: np.random.Generator) -> ElectricalSeries:
    model = nwbfile.create_device_model(
        name="SiliconProbe16", manufacturer="synthetic", model_number="SP-16", description="16-site silicon probe"
    )
    # A device links its model: one more link to a group in the file.
    device = nwbfile.create_device(name="Probe", description="16-site silicon probe", model=model)
    groups = [
        nwbfile.create_electrode_group(
            name=f"shank{index}", description=f"shank {index}", location="CA1", device=device
        )
        for index in range(2)
    ]
    nwbfile.add_electrode_column(name="label", description="site label")
    nwbfile.add_electrode_column(name="is_good", description="passes impedance check")
    for index in range(N_ELECTRODES):
        nwbfile.add_electrode(
            group=groups[index // (N_ELECTRODES // 2)],
            location="CA1" if index % 3 else "CA3",
            x=float(index),
            y=float(20 * index),
            z=0.0,
            imp=float(rng.uniform(1e5, 1e6)),
            filtering="none",
            label=f"site-{index:02d}",
            is_good=bool(index % 5),
        )
    raw = rng.normal(0, 50, size=(3000, N_ELECTRODES)).astype(np.int16)
    electrical_series = ElectricalSeries(
        name="ElectricalSeries",
        description="raw voltage",
        data=H5DataIO(raw, chunks=(1000, 8), compression="gzip", compression_opts=4),
        electrodes=nwbfile.create_electrode_table_region(list(range(N_ELECTRODES)), "all sites"),
        rate=30_000.0,
        starting_time=0.25,
        conversion=0.195e-6,
        channel_conversion=rng.uniform(0.9, 1.1, N_ELECTRODES),
    )
    nwbfile.add_acquisition(electrical_series)

    module = nwbfile.create_processing_module(name="ecephys", description="processed extracellular data")
    lfp_sites = [1, 3, 5, 7, 9]
    module.add(
        LFP(
            electrical_series=ElectricalSeries(
                name="LFP",
                description="low-pass filtered",
                data=rng.normal(0, 20, size=(200, len(lfp_sites))).astype(np.float32),
                electrodes=nwbfile.create_electrode_table_region(lfp_sites, "LFP sites"),
                rate=1000.0,
                filtering="low-pass 300 Hz",
            )
        )
    )
    return electrical_series


def _add_units(nwbfile: NWBFile, rng: np.random.Generator) -> None:
    nwbfile.add_unit_column(name="quality", description="sorting quality label")
    for unit in range(N_UNITS):
        spikes = np.sort(rng.uniform(0, 10, size=int(rng.integers(3, 40))))
        nwbfile.add_unit(
            spike_times=spikes,
            obs_intervals=[[0.0, 5.0], [6.0, 10.0]],
            electrodes=sorted(rng.choice(N_ELECTRODES, size=int(rng.integers(1, 4)), replace=False).tolist()),
            waveform_mean=rng.normal(0, 1, size=(30, N_ELECTRODES)),
            quality="good" if unit % 2 else "mua",
        )


def _add_trials_and_epochs(nwbfile: NWBFile, rng: np.random.Generator, series: TimeSeries) -> None:
    nwbfile.add_trial_column(name="stimulus", description="stimulus name")
    nwbfile.add_trial_column(name="correct", description="response was correct")
    nwbfile.add_trial_column(name="reward_ul", description="reward volume")
    for trial in range(N_TRIALS):
        nwbfile.add_trial(
            start_time=float(trial),
            stop_time=trial + 0.8,
            stimulus=["grating", "noise", "blank"][trial % 3],
            correct=bool(rng.integers(0, 2)),
            reward_ul=float(rng.uniform(0, 5)),
        )
    # epochs inside the recording (0.25-0.35 s), so their TimeSeriesReferenceVectorData rows are valid
    nwbfile.add_epoch(start_time=0.25, stop_time=0.3, tags=["baseline"], timeseries=[series])
    nwbfile.add_epoch(start_time=0.3, stop_time=0.35, tags=["task", "stimulus"], timeseries=[series])


def _add_behavior(nwbfile: NWBFile, rng: np.random.Generator) -> None:
    module = nwbfile.create_processing_module(name="behavior", description="behavioural measurements")
    timestamps = np.cumsum(rng.uniform(0.009, 0.011, size=500))
    position = SpatialSeries(
        name="position",
        description="x, y of the head",
        data=rng.normal(size=(500, 2)),
        timestamps=timestamps,
        reference_frame="arena corner",
        unit="meters",
    )
    module.add(Position(spatial_series=position))
    # A series sharing the position's clock: pynwb writes its timestamps as a link to the position's.
    module.add(TimeSeries(name="speed", data=rng.uniform(0, 1, 500), unit="m/s", timestamps=position))
    module.add(
        TimeSeries(
            name="licks",
            data=rng.integers(0, 2, 500).astype(np.uint8),
            unit="n.a.",
            rate=100.0,
            comments="binary lick sensor",
            continuity="step",
        )
    )
    notes = nwbfile.create_events_table(name="notes", description="experimenter notes")
    for timestamp, duration, annotation in [(0.5, 1.0, "start"), (2.0, float("nan"), "distracted"), (9.5, 0.5, "end")]:
        notes.add_event(timestamp=timestamp, duration=duration, annotation=annotation)
    module.add(
        _dynamic_table(
            "events",
            "behavioural events",
            {
                "kind": ["lick", "turn", "lick", "groom"],
                "onset": [0.1, 0.7, 1.3, 2.2],
                "count": np.array([1, 3, 2, 5], dtype=np.int32),
            },
        )
    )


def _dynamic_table(name: str, description: str, columns: dict):
    from hdmf.common import DynamicTable, VectorData

    return DynamicTable(
        name=name,
        description=description,
        columns=[VectorData(name=key, description=f"{key} column", data=values) for key, values in columns.items()],
    )


def _add_images(nwbfile: NWBFile, rng: np.random.Generator) -> None:
    gray = [
        GrayscaleImage(name=f"frame{index}", data=rng.integers(0, 255, size=(16, 12)).astype(np.uint8), resolution=2.5)
        for index in range(3)
    ]
    color = RGBImage(name="colour", data=rng.integers(0, 255, size=(8, 8, 3)).astype(np.uint8), description="RGB")
    images = gray + [color]
    order = [gray[2], color, gray[0], gray[1]]
    nwbfile.add_stimulus_template(
        Images(
            name="stimulus_images",
            images=images,
            description="images shown, in presentation order",
            order_of_images=ImageReferences(name="order_of_images", data=order),
        )
    )


def _add_segmentation(nwbfile: NWBFile, rng: np.random.Generator) -> None:
    device = nwbfile.create_device(name="Microscope", description="two-photon microscope")
    plane = nwbfile.create_imaging_plane(
        name="ImagingPlane",
        optical_channel=OpticalChannel(name="green", description="GCaMP", emission_lambda=525.0),
        description="V1 layer 2/3",
        device=device,
        excitation_lambda=920.0,
        imaging_rate=30.0,
        indicator="GCaMP6s",
        location="V1",
    )
    segmentation = ImageSegmentation()
    planes = segmentation.create_plane_segmentation(name="PlaneSegmentation", description="cells", imaging_plane=plane)
    for _ in range(4):
        y, x = rng.integers(0, 60, size=2)
        # pixel masks are compound (x, y, weight) rows: a ragged compound dataset in the file.
        planes.add_roi(
            pixel_mask=[(int(x + dx), int(y + dy), float(rng.uniform())) for dx in range(3) for dy in range(2)]
        )
    nwbfile.create_processing_module(name="ophys", description="segmentation").add(segmentation)


def _add_icephys(nwbfile: NWBFile, rng: np.random.Generator, n_small_series: int) -> None:
    device = nwbfile.create_device(name="Amplifier", description="patch-clamp amplifier")
    electrode = nwbfile.create_icephys_electrode(name="patch", description="whole-cell pipette", device=device)
    recordings = []
    for sweep in range(n_small_series):
        stimulus = CurrentClampStimulusSeries(
            name=f"stimulus_{sweep:04d}",
            data=np.repeat(rng.uniform(-1e-10, 1e-10, 4), 25).astype(np.float32),
            starting_time=float(sweep),
            rate=10_000.0,
            electrode=electrode,
            gain=1.0,
            sweep_number=np.uint32(sweep),
        )
        response = CurrentClampSeries(
            name=f"response_{sweep:04d}",
            data=rng.normal(-0.065, 0.002, 100).astype(np.float32),
            starting_time=float(sweep),
            rate=10_000.0,
            electrode=electrode,
            gain=0.02,
            bias_current=0.0,
            sweep_number=np.uint32(sweep),
        )
        nwbfile.add_stimulus(stimulus)
        nwbfile.add_acquisition(response)
        recordings.append(
            nwbfile.add_intracellular_recording(electrode=electrode, stimulus=stimulus, response=response)
        )
    simultaneous = [nwbfile.add_icephys_simultaneous_recording(recordings=[index]) for index in recordings]
    halves = [simultaneous[: len(simultaneous) // 2 or 1], simultaneous[len(simultaneous) // 2 or 1 :]]
    sequential = [
        nwbfile.add_icephys_sequential_recording(simultaneous_recordings=half, stimulus_type="step")
        for half in halves
        if half
    ]
    repetition = nwbfile.add_icephys_repetition(sequential_recordings=sequential)
    nwbfile.add_icephys_experimental_condition(repetitions=[repetition])


def session_filename(seed: int, n_small_series: int) -> str:
    key = hashlib.sha256(f"{SESSION_VERSION}-{seed}-{n_small_series}".encode()).hexdigest()[:10]
    return f"session-s{seed}-n{n_small_series}-{key}.nwb"


def write_session(directory: Path, seed: int = 0, n_small_series: int = 8) -> Path:
    """The session file under ``directory`` (cached; written to a partial name and renamed when complete)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / session_filename(seed, n_small_series)
    if path.exists():
        return path
    nwbfile = make_session_nwbfile(seed, n_small_series)
    partial = path.with_name(f".{uuid.uuid4().hex[:8]}.partial.{path.name}")
    try:
        with NWBHDF5IO(partial, mode="w") as io:
            io.write(nwbfile)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return path


__all__ = ["BadSession", "make_session_nwbfile", "seeded_object_ids", "session_filename", "write_session"]
