"""The one error type of the report: input (results, run info) that cannot be turned into a report."""

from nwb_cloud.errors import NwbCloudError


class ReportError(NwbCloudError):
    pass
