"""Building an NWB reference index from S3: ours vs LINDI's (see :mod:`nwb_cloud.suite.asv_index`)."""

from nwb_cloud.suite.asv_index import index_build_class

IndexBuild = index_build_class()
