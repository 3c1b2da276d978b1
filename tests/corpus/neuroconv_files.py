"""NWB files written by NeuroConv's mock interfaces through its default backend configuration.

``run_conversion`` with ``backend="hdf5"`` applies NeuroConv's default dataset configuration (chunking and
gzip compression chosen per dataset), as a lab converting its data does.
"""

from __future__ import annotations

from datetime import UTC, datetime

from neuroconv import ConverterPipe
from neuroconv.tools.testing import mock_interfaces as mocks


def _convert(interfaces: dict, path):
    converter = ConverterPipe(data_interfaces=interfaces)
    metadata = converter.get_metadata()
    metadata["NWBFile"]["session_start_time"] = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    metadata.setdefault("Subject", {}).update({"subject_id": "mouse", "species": "Mus musculus", "sex": "U",
                                               "age": "P30D"})  # fmt: skip
    converter.run_conversion(nwbfile_path=str(path), metadata=metadata, backend="hdf5", overwrite=True)
    return path


def ecephys_file(path):
    return _convert({"recording": mocks.MockRecordingInterface(num_channels=8, durations=(0.5,), set_probe=True),
                     "sorting": mocks.MockSortingInterface(num_units=5, durations=(0.5,))}, path)  # fmt: skip


def ophys_file(path):
    return _convert({"imaging": mocks.MockImagingInterface(num_samples=20, num_rows=16, num_columns=12),
                     "segmentation": mocks.MockSegmentationInterface(num_rois=4, num_samples=20,
                                                                     num_rows=16, num_columns=12)}, path)  # fmt: skip


def behavior_file(path):
    return _convert({"events": mocks.MockBehaviorEventInterface(),
                     "series": mocks.MockTimeSeriesInterface(num_channels=3, duration=0.2)}, path)  # fmt: skip


def icephys_file(path):
    return _convert({"icephys": mocks.MockIcephysInterface()}, path)


WRITERS = {
    "neuroconv-ecephys": ecephys_file,
    "neuroconv-ophys": ophys_file,
    "neuroconv-behavior": behavior_file,
    "neuroconv-icephys": icephys_file,
}
