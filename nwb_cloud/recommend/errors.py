"""Errors a user of the recommendations can cause: each names the thing that is wrong."""

from nwb_cloud.errors import NwbCloudError


class RecommendError(NwbCloudError):
    """A recommendation or rewrite cannot be made from this input."""


class BadChunkShape(RecommendError):
    """A chunk shape of the wrong rank, with a non-positive extent, or larger than the data."""


class UnknownCodec(RecommendError):
    pass


class UnknownWorkloadName(RecommendError):
    pass


class SeriesNotFound(RecommendError):
    """The NWB file has no dataset at the named series path."""


class OutputExists(RecommendError):
    pass


class NotEnoughMeasurements(RecommendError):
    """The results hold too little to fit or check the model (the message says what is missing)."""


class RewriteFailed(RecommendError):
    """The rewritten file differs from its source: it was removed, the source is untouched."""
