"""Errors of the analysis layer: each names the asset, dataset or selection that cannot be analysed."""

from nwb_cloud.errors import NwbCloudError


class AnalysisError(NwbCloudError):
    """A chunk index, bound or measurement cannot be computed for the named asset."""


class FloorUnavailable(AnalysisError):
    """The physical bound needs something the asset lacks (a local copy to index and decode)."""
