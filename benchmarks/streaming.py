"""Streaming reads of NWB files from S3: workload x read method x layout x network profile.

The classes are generated from the registries of :mod:`nwb_cloud` (see :mod:`nwb_cloud.suite.asv_grid`);
nothing here is written per method or per layout.
"""

from nwb_cloud.suite.asv_grid import benchmark_classes

globals().update(benchmark_classes())
