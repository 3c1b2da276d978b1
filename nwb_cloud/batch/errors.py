"""The errors of planning and running conversions on AWS Batch: one root type, a subclass per kind."""

from nwb_cloud.errors import NwbCloudError


class BatchError(NwbCloudError):
    """A Batch plan, submission or clean-up cannot proceed, for the reason named in the message."""


class PriceError(BatchError):
    """An instance type or region is not in the price table, or the prices cannot be refreshed."""


class AwsError(BatchError):
    """AWS refused a request or cannot be reached (credentials, permissions, limits, network)."""


class NotConfirmed(BatchError):
    """The user did not agree to start instances."""
