"""The inflate decoders on this machine: the table that drives nwb-index's choice (see nwb_cloud.analysis.decode)."""

from nwb_cloud.analysis.decode import InflateDecoders  # noqa: F401
