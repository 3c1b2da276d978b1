"""First use: a fresh python to the first selection's data, per read method (nwb_cloud.suite.asv_first_use)."""

from nwb_cloud.suite.asv_first_use import first_use_classes

globals().update(first_use_classes())
