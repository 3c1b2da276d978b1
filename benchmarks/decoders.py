"""The inflate decoders on this machine: the table that drives nwb-index's choice (see nwb_cloud.suite.asv_decoders)."""

from nwb_cloud.suite.asv_decoders import InflateDecoders  # noqa: F401
