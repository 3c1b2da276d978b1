"""NeuroConv conversion throughput per interface (see :mod:`nwb_cloud.suite.asv_conversion`)."""

from nwb_cloud.suite.asv_conversion import ConversionThroughput  # noqa: F401
