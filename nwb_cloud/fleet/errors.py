"""The one error type of the fleet: a plan, submission, child or collection that cannot proceed."""

from nwb_cloud.errors import NwbCloudError


class FleetError(NwbCloudError):
    """A fleet plan, submission, child or collection cannot proceed, for the reason named in the message."""
