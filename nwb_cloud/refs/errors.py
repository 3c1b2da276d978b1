"""Errors of the reference index: each names the HDF5 object, the index or the asset that is wrong."""

from nwb_cloud.errors import NwbCloudError


class RefsError(NwbCloudError):
    """A reference index cannot be built, stored or opened."""


class Unrepresentable(RefsError):
    """An HDF5 object has no faithful form in the index (the message names the object and says why)."""


class CorruptIndex(RefsError):
    """A stored index cannot be parsed or is not an index this package wrote."""


class ChunkError(RefsError):
    """A chunk of the asset does not decode as the index says it should (the message names the chunk)."""
