"""NWB files written by pynwb (``pynwb.testing.mock``): every neurodata type pynwb ships, one file per area.

Objects the tests name are given their names: the mocks number default names per process (``ElectricalSeries2``).

Each writer takes a path, writes the file and returns it. Datasets are small; what matters is that every
type, table, reference and link pynwb writes is there once.
"""

from __future__ import annotations

import h5py
import numpy as np
from hdmf.backends.hdf5 import H5DataIO
from hdmf.common import DynamicTableRegion
from pynwb import NWBHDF5IO, TimeSeries
from pynwb.base import Images
from pynwb.behavior import BehavioralEpochs, BehavioralEvents, BehavioralTimeSeries, EyeTracking
from pynwb.ecephys import LFP, EventDetection, FeatureExtraction, FilteredEphys
from pynwb.epoch import TimeIntervals
from pynwb.image import GrayscaleImage, ImageSeries, IndexSeries, OpticalSeries, RGBAImage, RGBImage
from pynwb.misc import AbstractFeatureSeries, AnnotationSeries, DecompositionSeries, IntervalSeries
from pynwb.ophys import CorrectedImageStack, DfOverF, Fluorescence, ImageSegmentation, MotionCorrection
from pynwb.testing.mock import behavior, ecephys, icephys, ogen, ophys
from pynwb.testing.mock.base import mock_TimeSeries
from pynwb.testing.mock.file import mock_NWBFile, mock_Subject

RNG = np.random.default_rng(0)


def _write(nwbfile, path):
    with NWBHDF5IO(path, "w") as io:
        io.write(nwbfile)
    return path


def ecephys_file(path):
    nwbfile = mock_NWBFile()
    nwbfile.subject = mock_Subject()
    series = ecephys.mock_ElectricalSeries(name="ElectricalSeries", nwbfile=nwbfile,
                                           data=RNG.normal(size=(100, 5)).astype("f4"))  # fmt: skip
    region = DynamicTableRegion(name="electrodes", data=[0, 1], description="two", table=nwbfile.electrodes)
    lfp_series = ecephys.mock_ElectricalSeries(name="lfp", electrodes=region, data=np.ones((20, 2)), nwbfile=None)
    module = nwbfile.create_processing_module("ecephys", "extracellular processing")
    module.add(LFP(electrical_series=lfp_series))
    filtered = ecephys.mock_ElectricalSeries(name="filtered", electrodes=region, data=np.ones((20, 2)), nwbfile=None)
    module.add(FilteredEphys(electrical_series=filtered))
    nwbfile.add_acquisition(ecephys.mock_SpikeEventSeries(electrodes=region, nwbfile=None))
    module.add(FeatureExtraction(electrodes=region, description=["a", "b"], times=[0.1, 0.2],
                                 features=np.ones((2, 2, 2))))  # fmt: skip
    module.add(EventDetection(detection_method="threshold", source_electricalseries=series, source_idx=[1, 5],
                              times=[0.1, 0.5]))  # fmt: skip
    units = ecephys.mock_Units(nwbfile=None)
    nwbfile.units = units
    nwbfile.add_acquisition(ecephys.mock_ElectricalSeries(name="empty", data=np.empty((0, 5)), nwbfile=None,
                                                          electrodes=series.electrodes))  # fmt: skip
    return _write(nwbfile, path)


def icephys_file(path):
    nwbfile = mock_NWBFile()
    electrode = icephys.mock_IntracellularElectrode(nwbfile=nwbfile)
    stimulus = icephys.mock_VoltageClampStimulusSeries(electrode=electrode, nwbfile=None)
    response = icephys.mock_VoltageClampSeries(electrode=electrode, nwbfile=None)
    row = nwbfile.add_intracellular_recording(electrode=electrode, stimulus=stimulus, response=response)
    clamp = icephys.mock_CurrentClampSeries(electrode=electrode, nwbfile=None)
    izero = icephys.mock_IZeroClampSeries(electrode=electrode, nwbfile=None)
    stim2 = icephys.mock_CurrentClampStimulusSeries(electrode=electrode, nwbfile=None)
    row2 = nwbfile.add_intracellular_recording(electrode=electrode, stimulus=stim2, response=clamp)
    nwbfile.add_acquisition(izero)
    simultaneous = nwbfile.add_icephys_simultaneous_recording(recordings=[row, row2])
    sequential = nwbfile.add_icephys_sequential_recording(simultaneous_recordings=[simultaneous],
                                                          stimulus_type="square")  # fmt: skip
    run = nwbfile.add_icephys_repetition(sequential_recordings=[sequential])
    condition = nwbfile.add_icephys_experimental_condition(repetitions=[run])
    nwbfile.icephys_experimental_conditions.add_column("tag", "a tag", data=["x"])
    assert condition == 0
    return _write(nwbfile, path)


def ophys_file(path):
    nwbfile = mock_NWBFile()
    plane = ophys.mock_ImagingPlane(nwbfile=nwbfile)
    nwbfile.add_acquisition(ophys.mock_TwoPhotonSeries(imaging_plane=plane, nwbfile=None))
    nwbfile.add_acquisition(ophys.mock_OnePhotonSeries(imaging_plane=plane, nwbfile=None))
    external = ImageSeries(name="external_movie", external_file=["movie1.avi", "movie2.avi"],
                           starting_frame=[0, 10], format="external", timestamps=[0.0, 0.5], unit="n.a.")  # fmt: skip
    nwbfile.add_acquisition(external)
    module = nwbfile.create_processing_module("ophys", "optical physiology")
    segmentation = ImageSegmentation()
    module.add(segmentation)
    masks = ophys.mock_PlaneSegmentation(name="pixel_masks", imaging_plane=plane, nwbfile=None, n_rois=0)
    for roi in range(3):
        masks.add_roi(pixel_mask=[(roi, 1, 0.5), (roi + 1, 2, 1.0)])
    segmentation.add_plane_segmentation(masks)
    voxels = ophys.mock_PlaneSegmentation(name="voxel_masks", imaging_plane=plane, nwbfile=None, n_rois=0)
    for roi in range(2):
        voxels.add_roi(voxel_mask=[(roi, 1, 2, 0.5)])
    segmentation.add_plane_segmentation(voxels)
    images = ophys.mock_PlaneSegmentation(name="image_masks", imaging_plane=plane, nwbfile=None, n_rois=3)
    segmentation.add_plane_segmentation(images)
    rois = images.create_roi_table_region(description="all", region=[0, 1, 2])
    module.add(Fluorescence(roi_response_series=ophys.mock_RoiResponseSeries(name="f", rois=rois, nwbfile=None)))
    module.add(DfOverF(roi_response_series=ophys.mock_RoiResponseSeries(name="dff", rois=rois, nwbfile=None)))
    raw = nwbfile.acquisition["TwoPhotonSeries"]
    corrected = ophys.mock_TwoPhotonSeries(name="corrected", imaging_plane=plane, nwbfile=None)
    xy = TimeSeries(name="xy_translation", data=np.zeros((raw.data.shape[0], 2)), unit="px", rate=1.0)
    module.add(MotionCorrection(corrected_image_stacks=[CorrectedImageStack(corrected=corrected,
                                                                             original=raw,
                                                                             xy_translation=xy)]))  # fmt: skip
    return _write(nwbfile, path)


def behavior_file(path):
    nwbfile = mock_NWBFile()
    module = nwbfile.create_processing_module("behavior", "behavior")
    module.add(behavior.mock_Position(nwbfile=None))
    module.add(behavior.mock_PupilTracking(nwbfile=None))
    module.add(behavior.mock_CompassDirection(nwbfile=None))
    module.add(BehavioralEvents(time_series=mock_TimeSeries(name="licks", nwbfile=None)))
    module.add(BehavioralTimeSeries(time_series=mock_TimeSeries(name="speed", nwbfile=None)))
    module.add(BehavioralEpochs(interval_series=IntervalSeries(name="running", data=[1, -1],
                                                               timestamps=[0.5, 1.5])))  # fmt: skip
    module.add(EyeTracking(spatial_series=behavior.mock_SpatialSeries(name="eye", nwbfile=None)))
    return _write(nwbfile, path)


def images_file(path):
    nwbfile = mock_NWBFile()
    gray = GrayscaleImage(name="gray", data=RNG.integers(0, 255, (4, 5)).astype("u1"), resolution=2.0)
    rgb = RGBImage(name="rgb", data=RNG.integers(0, 255, (4, 5, 3)).astype("u1"))
    rgba = RGBAImage(name="rgba", data=RNG.integers(0, 255, (4, 5, 4)).astype("u1"))
    from pynwb.base import ImageReferences

    images = Images(name="stimuli", images=[gray, rgb, rgba], description="stimuli",
                    order_of_images=ImageReferences(name="order_of_images", data=[rgb, gray, rgba]))  # fmt: skip
    nwbfile.add_stimulus_template(images)
    nwbfile.add_stimulus(
        IndexSeries(name="shown", data=[0, 1, 2, 1], indexed_images=images, unit="N/A", timestamps=[0.0, 1, 2, 3])
    )
    optical = OpticalSeries(name="optical", data=np.ones((3, 4, 5), "u1"), distance=0.7, field_of_view=[0.2, 0.3],
                            orientation="up", rate=10.0, unit="n.a.")  # fmt: skip
    nwbfile.add_acquisition(optical)
    nwbfile.add_acquisition(ImageSeries(name="no_data", data=np.empty((0, 0, 0)), unit="n.a.", rate=1.0,
                                        external_file=["a.tif"], starting_frame=[0], format="external",
                                        num_samples=1))  # fmt: skip
    return _write(nwbfile, path)


def ogen_file(path):
    nwbfile = mock_NWBFile()
    ogen.mock_OptogeneticSeries(nwbfile=nwbfile)
    return _write(nwbfile, path)


def misc_file(path):
    """Decomposition, annotations, features and time intervals with references to series."""
    nwbfile = mock_NWBFile()
    source = mock_TimeSeries(name="source", data=np.arange(40.0), rate=10.0, nwbfile=nwbfile)
    decomposition = DecompositionSeries(name="bands", data=np.ones((5, 1, 2)), metric="power", rate=1.0,
                                        source_timeseries=source, description="power bands")  # fmt: skip
    decomposition.add_band(band_name="theta", band_limits=(4.0, 8.0), band_mean=6.0, band_stdev=1.0)
    decomposition.add_band(band_name="gamma", band_limits=(30.0, 80.0), band_mean=55.0, band_stdev=5.0)
    module = nwbfile.create_processing_module("misc", "misc")
    module.add(decomposition)
    nwbfile.add_acquisition(AnnotationSeries(name="notes", data=["start", "µ-stop"], timestamps=[0.0, 1.0]))
    nwbfile.add_acquisition(AbstractFeatureSeries(name="features", data=np.ones((3, 2)), feature_units=["a", "b"],
                                                  features=["f1", "f2"], timestamps=[0.0, 1, 2]))  # fmt: skip
    nwbfile.add_trial_column("stimulus", "which stimulus")
    nwbfile.add_trial(start_time=0.0, stop_time=1.0, stimulus="a", timeseries=[source])
    nwbfile.add_trial(start_time=1.0, stop_time=2.0, stimulus="b", timeseries=[source])
    nwbfile.add_epoch(start_time=0.0, stop_time=2.0, tags=["all"], timeseries=[source])
    saccades = TimeIntervals(name="saccades", description="eye movements")
    saccades.add_column("amplitude", "degrees")
    saccades.add_row(start_time=0.1, stop_time=0.2, amplitude=3.5, timeseries=[(0, 2, source)])
    saccades.add_row(start_time=0.3, stop_time=0.4, amplitude=1.5, timeseries=[(3, 1, source)])
    nwbfile.add_time_intervals(saccades)
    nwbfile.add_invalid_time_interval(start_time=5.0, stop_time=6.0)
    return _write(nwbfile, path)


def lzf_file(path):
    """LZF (h5py's filter) on a series whose second half is random: those chunks HDF5 stores unfiltered."""
    nwbfile = mock_NWBFile()
    values = np.concatenate([np.zeros(40_000, "u1"), RNG.integers(0, 256, 40_000).astype("u1")])
    nwbfile.add_acquisition(TimeSeries(name="lzf", data=H5DataIO(values, compression="lzf", chunks=(10_000,),
                                                                 shuffle=True), unit="V", rate=1.0))  # fmt: skip
    nwbfile.add_acquisition(TimeSeries(name="gzip", data=H5DataIO(values, compression="gzip", chunks=(10_000,)),
                                       unit="V", rate=1.0))  # fmt: skip
    return _write(nwbfile, path)


def external_link_file(path):
    """A processed file whose series' data is an external link into the raw file beside it (``link_data``)."""
    raw = path.with_name("raw.nwb")
    raw_file = mock_NWBFile()
    mock_TimeSeries(name="raw", data=np.arange(50.0), nwbfile=raw_file)
    _write(raw_file, raw)
    with NWBHDF5IO(raw, "r") as raw_io:
        data = raw_io.read().acquisition["raw"].data
        nwbfile = mock_NWBFile()
        nwbfile.add_acquisition(TimeSeries(name="linked", data=H5DataIO(data, link_data=True), unit="V", rate=1.0))
        _write(nwbfile, path)
    return path


def micro_sign_file(path):
    """A unit written by a MATLAB-era writer: Latin-1 bytes (a micro sign) in a variable-length ASCII string,
    which h5py (and so NWBHDF5IO) reads as text with the undecodable byte kept as a lone surrogate."""
    nwbfile = mock_NWBFile()
    mock_TimeSeries(name="voltage", data=np.arange(5.0), nwbfile=nwbfile)
    _write(nwbfile, path)
    with h5py.File(path, "r+") as file:
        data = file["acquisition/voltage/data"]
        del data.attrs["unit"]
        data.attrs.create("unit", b"\xb5V", dtype=h5py.string_dtype("ascii"))
    return path


def latin1_fixed_string_file(path):
    """Latin-1 bytes in a fixed-length string attribute: h5py gives them as ``np.bytes_``; NWBHDF5IO decodes
    them as UTF-8 and fails, the index gives the text with the byte kept as a lone surrogate."""
    nwbfile = mock_NWBFile()
    mock_TimeSeries(name="voltage", data=np.arange(5.0), nwbfile=nwbfile)
    _write(nwbfile, path)
    with h5py.File(path, "r+") as file:
        file["acquisition/voltage"].attrs.create("comments", np.bytes_(b"gain 10 \xb5V/bit"))
    return path


def region_reference_file(path):
    """A units table whose ``spike_times_index`` is a dataset of region references into ``spike_times``, as
    pynwb 2.0 betas and MatNWB wrote VectorIndex (hdmf reads each as a reference to the indexed dataset)."""
    ecephys_file(path)
    with h5py.File(path, "r+") as file:
        units = file["units"]
        ends = units["spike_times_index"][()]
        attrs = dict(units["spike_times_index"].attrs)
        del units["spike_times_index"]
        times = units["spike_times"]
        regions = [times.regionref[start:end] for start, end in zip(np.r_[0, ends[:-1]], ends, strict=True)]
        index = units.create_dataset("spike_times_index", data=regions, dtype=h5py.regionref_dtype)
        index.attrs.update(attrs)
    return path


WRITERS = {
    "pynwb-ecephys": ecephys_file,
    "pynwb-icephys": icephys_file,
    "pynwb-ophys": ophys_file,
    "pynwb-behavior": behavior_file,
    "pynwb-images": images_file,
    "pynwb-ogen": ogen_file,
    "pynwb-misc": misc_file,
    "pynwb-lzf-unfiltered-chunks": lzf_file,
    "pynwb-external-link": external_link_file,
    "pynwb-latin1-micro-sign": micro_sign_file,
    "pynwb-region-reference-index": region_reference_file,
}


# files NWBHDF5IO itself cannot read (name -> (writer, its error as a regular expression)): the index reads them
# exactly at the raw level, and pynwb through the index gets what h5py gives
REFERENCE_FAILS = {
    "pynwb-latin1-fixed-length-string": (latin1_fixed_string_file, r"'utf-8' codec can't decode byte 0xb5"),
}
