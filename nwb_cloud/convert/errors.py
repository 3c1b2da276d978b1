"""The errors of a conversion: one root type, with a subclass per thing a user can get wrong."""

from nwb_cloud.errors import NwbCloudError


class ConvertError(NwbCloudError):
    """A conversion cannot start, or one of its steps failed, for the reason named in the message."""


class SpecError(ConvertError):
    """The NeuroConv YAML conversion specification is invalid."""


class SourceError(ConvertError):
    """The source (an rclone remote path) does not exist, is empty, or lacks a file the spec names."""


class DestinationError(ConvertError):
    """The destination (S3 prefix or folder) cannot be written, or holds something unexpected."""


class CheckFailed(ConvertError):
    """A converted file does not open, or nwbinspector reports a critical problem in it."""


class ChecksumMismatch(ConvertError):
    """What the store holds is not what was sent."""
