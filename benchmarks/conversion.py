"""NeuroConv conversion throughput per interface (see :mod:`nwb_cloud.convert.asv_throughput`)."""

from nwb_cloud.convert.asv_throughput import ConversionThroughput  # noqa: F401
