"""An NWB file with a lab's extension, its specification cached in the file (as DANDI requires).

The extension has typed attributes (a float32 scalar, an int32 array), a compound dataset and a link, so
reading it back exercises the cached-spec path of both readers and the attribute types of the index.
"""

from __future__ import annotations

import numpy as np
from pynwb import NWBHDF5IO, get_class, load_namespaces
from pynwb.spec import NWBAttributeSpec, NWBDatasetSpec, NWBDtypeSpec, NWBGroupSpec, NWBLinkSpec, NWBNamespaceBuilder
from pynwb.testing.mock.base import mock_TimeSeries
from pynwb.testing.mock.file import mock_NWBFile

NAMESPACE = "ndx-corpus-lab"


def _define(folder) -> type:
    builder = NWBNamespaceBuilder("a lab's extension for the index corpus", NAMESPACE, version="0.1.0",
                                  author="nwb-cloud", contact="nwb-cloud@example.org")  # fmt: skip
    builder.include_type("TimeSeries", namespace="core")
    series = NWBGroupSpec(
        neurodata_type_def="LabSeries",
        neurodata_type_inc="TimeSeries",
        doc="a series with a lab's calibration",
        attributes=[
            NWBAttributeSpec(name="gain", doc="gain", dtype="float32"),
            NWBAttributeSpec(name="channels", doc="channels used", dtype="int32", shape=[None]),
        ],
        datasets=[
            NWBDatasetSpec(
                name="calibration",
                doc="calibration points",
                shape=[None],
                dtype=[NWBDtypeSpec("input", "input", "int32"), NWBDtypeSpec("output", "output", "float64")],
            ),  # fmt: skip
        ],
        links=[NWBLinkSpec(name="reference_series", doc="a series to compare with", target_type="TimeSeries")],
    )
    builder.add_spec(f"{NAMESPACE}.extensions.yaml", series)
    builder.export(f"{NAMESPACE}.namespace.yaml", outdir=str(folder))
    load_namespaces(str(folder / f"{NAMESPACE}.namespace.yaml"))
    return get_class("LabSeries", NAMESPACE)


def extension_file(path):
    lab_series = _define(path.parent)
    nwbfile = mock_NWBFile()
    reference = mock_TimeSeries(name="reference", nwbfile=nwbfile)
    calibration = np.array([(0, 0.0), (10, 1.5)], dtype=[("input", "<i4"), ("output", "<f8")])
    nwbfile.add_acquisition(lab_series(name="lab", data=np.arange(10.0), rate=10.0, unit="V", gain=np.float32(2.5),
                                       channels=np.array([1, 3], "i4"), calibration=calibration,
                                       reference_series=reference))  # fmt: skip
    with NWBHDF5IO(path, "w") as io:
        io.write(nwbfile, cache_spec=True)
    return path


WRITERS = {"extension-cached-spec": extension_file}
