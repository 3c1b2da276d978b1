"""The one error of reading results back: a results folder, asv file or run info that cannot be read."""

from nwb_cloud.errors import NwbCloudError


class ResultsError(NwbCloudError):
    pass
